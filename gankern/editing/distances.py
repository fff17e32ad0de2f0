"""Image distances for projection: perceptual when a network is available offline, else MSE.

``distance(a, b) -> [N]`` on float images in [-1, 1] (differentiable in both):

* ``"lpips"``: LPIPS (VGG16 "lin"), needs the VGG16 and the LPIPS calibration weight files
  (:func:`gankern.metrics.load_lpips`; never downloaded);
* ``"vgg16"``: the same VGG16 features compared with unit channel weights (what
  StyleGAN2-ADA's projector does), needs only the VGG16 weights;
* ``"digits"``: the built-in digits classifier's feature maps compared the same way
  (:meth:`gankern.metrics.DigitsFeatureNet.perceptual_distance`), always available, meant
  for generators of the built-in digits;
* ``"mse"``: mean squared pixel difference, no network;
* ``"auto"``: ``lpips``, else ``vgg16``, else ``mse`` (with a note saying so).

The VGG16 distances see images of at most 256 px (larger ones are box-downsampled first,
as StyleGAN2-ADA does).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DISTANCES = ("auto", "lpips", "vgg16", "digits", "mse")
_VGG_MAX_RESOLUTION = 256

__all__ = ["DISTANCES", "mse_distance", "resolve_distance"]


def mse_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image ``[N]``."""
    return (a.float() - b.float()).square().flatten(1).mean(dim=1)


def _at_most_256(images: torch.Tensor) -> torch.Tensor:
    if images.shape[-1] > _VGG_MAX_RESOLUTION:
        return F.interpolate(images, size=(_VGG_MAX_RESOLUTION, _VGG_MAX_RESOLUTION),
                             mode="area")
    return images


def _vgg_distance(model):
    model.requires_grad_(False)
    return lambda a, b: model(_at_most_256(a.float()), _at_most_256(b.float()))


def _unit_weight_vgg16(device):
    """LPIPS's VGG16 taps with every channel weighted 1 (no calibration file needed)."""
    from gankern.metrics.vgg16 import LPIPS, VGG16_WEIGHTS_ENV, VGG16_WEIGHTS_FILENAME
    from gankern.metrics.weights import load_state_dict_strict, resolve_weights_path

    path = resolve_weights_path(
        None, env_var=VGG16_WEIGHTS_ENV, filename=VGG16_WEIGHTS_FILENAME,
        what="VGG16 weights", source="torchvision's ImageNet VGG16 weights",
    )
    model = LPIPS()
    load_state_dict_strict(model.net, path, "VGG16 weights", ignore=("classifier.",))
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.out_channels == 1:
            torch.nn.init.ones_(module.weight)  # the "lin" layers
    return model.to(device).eval()


def resolve_distance(distance="auto", device=None) -> tuple[object, str, str | None]:
    """The distance function named ``distance`` (or a callable ``f(a, b) -> [N]`` itself).

    Returns:
        ``(fn, name, note)``: ``note`` says what ``"auto"`` fell back to and why (None
        when it found LPIPS, or for an explicit choice).

    Raises:
        gankern.metrics.WeightsNotFoundError: an explicit ``"lpips"``/``"vgg16"`` whose
        weight files are not there.
    """
    from gankern.metrics.weights import WeightsNotFoundError

    if callable(distance) and not isinstance(distance, str):
        return distance, getattr(distance, "__name__", "custom"), None
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES} or a callable, got {distance!r}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if distance == "mse":
        return mse_distance, "mse", None
    if distance == "digits":
        from gankern.metrics import load_digits_extractor

        return load_digits_extractor(device=device).perceptual_distance, "digits", None
    if distance == "lpips":
        from gankern.metrics import load_lpips

        return _vgg_distance(load_lpips(device=device)), "lpips", None
    if distance == "vgg16":
        return _vgg_distance(_unit_weight_vgg16(device)), "vgg16", None
    reasons = []
    for name in ("lpips", "vgg16"):
        try:
            fn, label, _ = resolve_distance(name, device)
        except WeightsNotFoundError as exc:
            reasons.append(str(exc).split(" gankern never downloads")[0].rstrip(". "))
            continue
        note = None if name == "lpips" else f"LPIPS weights not found; using {label}"
        return fn, label, note
    return mse_distance, "mse", ("no perceptual network available offline (" +
                                 "; ".join(reasons) + "): the distance is MSE only")
