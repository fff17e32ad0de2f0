"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): a fixed policy of simple differentiable transforms applied to every image D sees.

Policies (comma-separated, applied in the order given):

* ``color``: brightness ``x + U(-0.5, 0.5)``; saturation, scaling each pixel's distance from
  its channel mean by ``U(0, 2)``; contrast, scaling the distance from the image mean by
  ``U(0.5, 1.5)`` (one draw per sample for each);
* ``translation``: an integer shift of up to 1/8 of the image size along each axis
  (uniform in ``[-s, s]`` with ``s = round(size / 8)``); the uncovered border is 0;
* ``cutout``: a square of half the image size (``round(size / 2)`` pixels) at a uniform
  integer centre is set to 0 (clipped at the borders).
"""

from __future__ import annotations

import torch

from gankern.ops._checks import check_tensor

DIFF_AUGMENT_POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


class _Draws:
    def __init__(self, generator: torch.Generator | None, device: torch.device):
        self.generator = generator
        self.source = torch.device("cpu") if generator is None else generator.device
        self.device = device

    def uniform(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        u = torch.rand(n, generator=self.generator, device=self.source, dtype=torch.float32)
        return u.to(device=self.device, dtype=dtype).view(n, 1, 1, 1)

    def integers(self, low: int, high: int, n: int) -> torch.Tensor:
        """``[n]`` int64 uniform in ``[low, high)``."""
        out = torch.randint(low, high, (n,), generator=self.generator, device=self.source)
        return out.to(self.device)


def _color(x: torch.Tensor, draws: _Draws) -> torch.Tensor:
    n = x.shape[0]
    x = x + (draws.uniform(n, x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (draws.uniform(n, x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (draws.uniform(n, x.dtype) + 0.5) + mean


def _shift_index(size: int, shift: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``[N]`` shifts: the source index of each output position (``[N, size]``, clamped)
    and whether it lies inside the image."""
    source = torch.arange(size, device=shift.device)[None, :] - shift[:, None]
    inside = (source >= 0) & (source < size)
    return source.clamp(0, size - 1), inside


def _translation(x: torch.Tensor, draws: _Draws) -> torch.Tensor:
    n, c, h, w = x.shape
    sx, sy = int(w * TRANSLATION_RATIO + 0.5), int(h * TRANSLATION_RATIO + 0.5)
    tx = draws.integers(-sx, sx + 1, n)
    ty = draws.integers(-sy, sy + 1, n)
    cols, col_in = _shift_index(w, tx)
    rows, row_in = _shift_index(h, ty)
    x = x.gather(3, cols[:, None, None, :].expand(n, c, h, w))
    x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    keep = col_in[:, None, None, :] & row_in[:, None, :, None]
    return x * keep.to(x.dtype)


def _cutout(x: torch.Tensor, draws: _Draws) -> torch.Tensor:
    n, _, h, w = x.shape
    size_x, size_y = int(w * CUTOUT_RATIO + 0.5), int(h * CUTOUT_RATIO + 0.5)
    cx = draws.integers(0, w, n)
    cy = draws.integers(0, h, n)
    x0 = (cx - size_x // 2)[:, None]
    y0 = (cy - size_y // 2)[:, None]
    cols = torch.arange(w, device=x.device)[None, :]
    rows = torch.arange(h, device=x.device)[None, :]
    in_x = (cols >= x0) & (cols < x0 + size_x)  # [N, W]
    in_y = (rows >= y0) & (rows < y0 + size_y)  # [N, H]
    cut = in_y[:, None, :, None] & in_x[:, None, None, :]
    return x * (~cut).to(x.dtype)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def parse_policy(policy: str) -> list[str]:
    """``"color,translation"`` -> ``["color", "translation"]`` (validated; ``""`` -> [])."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a comma-separated string, got {type(policy).__name__}")
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in _OPS]
    if unknown:
        raise ValueError(
            f"policy must name transforms among {DIFF_AUGMENT_POLICIES}, got {policy!r} "
            f"(unknown: {unknown})"
        )
    return names


def diff_augment(
    x: torch.Tensor,
    policy: str = "color,translation,cutout",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply DiffAugment to a batch of ``[N, C, H, W]`` images in ``[-1, 1]``.

    Args:
        x: float images.
        policy: comma-separated transforms among ``color``, ``translation``, ``cutout``
            (see the module docstring); ``""`` applies nothing.
        generator: source of randomness (parameters are drawn on its device and moved to
            x's); None uses torch's global CPU generator.

    Returns:
        The augmented batch (same shape, dtype, device), differentiable with respect to x.
    """
    check_tensor("x", x, ndim=4)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    draws = _Draws(generator, x.device)
    for name in parse_policy(policy):
        x = _OPS[name](x, draws)
    return x
