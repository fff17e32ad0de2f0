"""Attributes measured on images, for InterFaceGAN and StyleSpace: ``f(images) -> scores``.

An attribute is any callable taking float images ``[N, C, H, W]`` in [-1, 1] (what
``G.synthesis`` draws) and returning one number per image, larger meaning "more of it".
Two work offline on the built-in digits (:func:`get_attribute` names them):

* ``thickness`` (:class:`InkMass`): the ink on the page, the mean brightness of the image
  in [0, 1] (the digits are white strokes on black, so thicker strokes mean more ink);
* ``class:A,B`` (:class:`DigitClassScore`): the built-in digits classifier's log
  probability of digit A minus that of digit B (``class:A``: log-odds of A against all
  others), so moving up means "looks more like an A than a B".
"""

from __future__ import annotations

import torch

__all__ = [
    "ATTRIBUTE_HELP",
    "DigitClassScore",
    "InkMass",
    "attribute_name",
    "get_attribute",
    "resolve_attribute",
]

ATTRIBUTE_HELP = ("'thickness' (ink mass: mean brightness) or 'class:A,B' (the built-in "
                  "digits classifier's log p(A) - log p(B); 'class:A' for A against the rest)")


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a float tensor [N, C, H, W], got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    return images.float()


class InkMass:
    """Stroke thickness as ink mass: the mean of ``(images + 1) / 2`` clipped to [0, 1] over
    the pixels and channels of each image."""

    name = "thickness"

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = _check_images(images)
        return ((x + 1) / 2).clamp(0, 1).mean(dim=(1, 2, 3))


class DigitClassScore:
    """How much more the built-in digits classifier sees digit ``a`` than digit ``b``:
    ``log p(a) - log p(b)`` (``b=None``: ``log p(a) - log(1 - p(a))``).

    Args:
        a: the digit the score grows towards (0..9).
        b: the digit it grows away from (0..9, not ``a``), or None for all others.
        classifier: a :class:`gankern.metrics.DigitsFeatureNet` (default: the cached one,
            built on first use).
        device: where the classifier runs (default: CUDA if available).
    """

    def __init__(self, a: int, b: int | None = None, classifier=None, device=None):
        for name, value in (("a", a), ("b", b)):
            if value is not None and (isinstance(value, bool) or value not in range(10)):
                raise ValueError(f"{name} must be a digit 0..9, got {value!r}")
        if a is None or a == b:
            raise ValueError(f"a and b must be two different digits, got {a!r} and {b!r}")
        self.a, self.b = int(a), (None if b is None else int(b))
        self.name = f"class:{a}" + ("" if b is None else f",{b}")
        if classifier is None:
            from gankern.metrics import load_digits_extractor

            classifier = load_digits_extractor(device=device)
        self.classifier = classifier

    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """The classifier's log probabilities ``[N, 10]`` of float images in [-1, 1]."""
        x = _check_images(images)
        net = self.classifier
        logits = net.trunk(net.preprocess(((x + 1) * 127.5).clamp(0, 255)))[1]
        return torch.log_softmax(logits.float(), dim=1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        lp = self.log_probs(images)
        if self.b is not None:
            return lp[:, self.a] - lp[:, self.b]
        others = torch.cat([lp[:, : self.a], lp[:, self.a + 1 :]], dim=1)
        return lp[:, self.a] - torch.logsumexp(others, dim=1)

    def decision(self, images: torch.Tensor) -> torch.Tensor:
        """Whether each image is classified as ``a`` rather than ``b`` (bool ``[N]``)."""
        return self(images) > 0


def get_attribute(spec: str, device=None):
    """The attribute named ``spec`` (see the module doc), ``ValueError`` otherwise."""
    if not isinstance(spec, str):
        raise TypeError(f"attribute must be a string, got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in ("thickness", "ink"):
        return InkMass()
    if text.startswith("class:"):
        parts = [p.strip() for p in text[len("class:") :].split(",")]
        try:
            digits = [int(p) for p in parts]
        except ValueError:
            digits = []
        if len(digits) in (1, 2) and len(set(digits)) == len(digits) \
                and all(0 <= d <= 9 for d in digits):
            return DigitClassScore(digits[0], digits[1] if len(digits) == 2 else None,
                                   device=device)
    raise ValueError(f"attribute must be {ATTRIBUTE_HELP}, got {spec!r}")


def resolve_attribute(attr, device=None):
    """``attr`` itself if it is a callable, else the attribute it names (:func:`get_attribute`)."""
    if isinstance(attr, str):
        return get_attribute(attr, device=device)
    if not callable(attr):
        raise TypeError(f"an attribute must be a name or a callable, got {type(attr).__name__}")
    return attr


def attribute_name(attr) -> str:
    """A readable name of an attribute (its ``name``, else the function's name)."""
    return getattr(attr, "name", getattr(attr, "__name__", type(attr).__name__))
