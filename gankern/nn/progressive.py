"""Progressive growing (Karras et al., 2018): fade-in of a new resolution, nearest/box resampling.

A progressively grown network is run at a *level* (0 = 4x4, each level doubles the
resolution) with a fade-in weight *alpha* in [0, 1]: while the block of a new level is faded
in, its output is blended with the nearest-upsampled output of the level below
(:func:`fade_in`); at alpha 1 the new block alone is used.

Nearest-neighbour upsampling and 2x2 average pooling are FIR filters (a box of ``factor``
taps), so they run through :func:`gankern.ops.upsample2d` / :func:`gankern.ops.downsample2d`
with the backend ``impl``; they equal ``F.interpolate(mode="nearest")`` and
``F.avg_pool2d`` exactly.
"""

from __future__ import annotations

import numbers

import torch

from gankern.ops import downsample2d, setup_filter, upsample2d
from gankern.ops._checks import check_int, check_tensor


def _box_filter(factor: int, device) -> torch.Tensor:
    return setup_filter([1] * factor, device=device)


def nearest_upsample(x: torch.Tensor, factor: int = 2, impl: str = "auto") -> torch.Tensor:
    """Nearest-neighbour upsampling of ``[N, C, H, W]`` by the integer ``factor``.

    Equal to ``F.interpolate(x, scale_factor=factor, mode="nearest")``; runs through
    :func:`gankern.ops.upsample2d` with a box filter (backend ``impl``).
    """
    check_tensor("x", x, ndim=4)
    factor = check_int("factor", factor, min_value=1)
    if factor == 1:
        return x
    return upsample2d(x, _box_filter(factor, x.device), up=factor, impl=impl)


def box_downsample(x: torch.Tensor, factor: int = 2, impl: str = "auto") -> torch.Tensor:
    """Average pooling of ``[N, C, H, W]`` over ``factor x factor`` blocks (H, W divisible).

    Equal to ``F.avg_pool2d(x, factor)``; runs through :func:`gankern.ops.downsample2d` with
    a box filter (backend ``impl``).
    """
    check_tensor("x", x, ndim=4)
    factor = check_int("factor", factor, min_value=1)
    if x.shape[2] % factor or x.shape[3] % factor:
        raise ValueError(
            f"x's height and width must be divisible by factor={factor}, got {tuple(x.shape)}"
        )
    if factor == 1:
        return x
    return downsample2d(x, _box_filter(factor, x.device), down=factor, impl=impl)


def check_alpha(alpha) -> float:
    """A fade-in weight: a real number in [0, 1] (a 0-d tensor is read as its value)."""
    if isinstance(alpha, torch.Tensor) and alpha.ndim == 0 and not alpha.requires_grad:
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a number in [0, 1], got {alpha!r}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha


def check_level(level, max_level: int) -> int:
    """A growth level: None (the full resolution, ``max_level``) or an int in [0, max_level]."""
    if level is None:
        return max_level
    level = check_int("level", level, min_value=0)
    if level > max_level:
        raise ValueError(f"level must be in [0, {max_level}] (None: {max_level}), got {level}")
    return level


def fade_in(new: torch.Tensor, old: torch.Tensor, alpha, impl: str = "auto") -> torch.Tensor:
    """Blend ``alpha * new + (1 - alpha) * upsampled(old)``: the fade-in of a new level.

    Args:
        new: output of the new (higher-resolution) block ``[N, C, H, W]``.
        old: output of the level below, ``[N, C, H / k, W / k]`` for an integer ``k >= 1``; it
            is upsampled by nearest neighbour when ``k > 1`` (the generator's images) and used
            as is when ``k == 1`` (the discriminator's features).
        alpha: weight of ``new`` in [0, 1]: 0 gives the upsampled ``old``, 1 gives ``new``.
        impl: backend of the upsampling.

    Returns:
        ``[N, C, H, W]``; at ``alpha`` 0 and 1 exactly the upsampled ``old`` and ``new``.
    """
    check_tensor("new", new, ndim=4)
    check_tensor("old", old, ndim=4)
    alpha = check_alpha(alpha)
    n, c, h, w = new.shape
    factor = h // old.shape[2] if old.shape[2] else 0
    if (
        old.shape[:2] != new.shape[:2]
        or factor < 1
        or old.shape[2] * factor != h
        or old.shape[3] * factor != w
    ):
        raise ValueError(
            f"old must have shape [{n}, {c}, H / k, W / k] for new of shape {tuple(new.shape)} "
            f"and an integer k >= 1, got {tuple(old.shape)}"
        )
    if alpha == 1.0:
        return new
    old = nearest_upsample(old, factor, impl=impl)
    if alpha == 0.0:
        return old
    return torch.lerp(old, new, alpha)
