"""Pixelwise feature-vector normalization (Karras et al., 2018): :class:`PixelNorm`."""

from __future__ import annotations

import torch
from torch import nn

from gankern.nn.mapping import normalize_2nd_moment
from gankern.ops._checks import check_int, check_number, check_tensor


class PixelNorm(nn.Module):
    """Scale the feature vector at every pixel to unit mean square: ProGAN's pixel norm.

    ``y = x / sqrt(mean_c(x ** 2) + eps)``, the mean taken over ``dim`` (the channels). The
    same normalization is applied to the latents z by StyleGAN's mapping networks
    (:func:`gankern.nn.normalize_2nd_moment`, which this layer calls).

    Args:
        eps: added to the mean square before the square root (ProGAN: 1e-8).
        dim: the dimension normalized over (default 1, the channels of ``[N, C, ...]``).
    """

    def __init__(self, eps: float = 1e-8, dim: int = 1):
        super().__init__()
        self.eps = check_number("eps", eps, min_value=0.0)
        self.dim = check_int("dim", dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: any tensor with the normalized dimension ``dim``; returns x's shape."""
        check_tensor("x", x)
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"x must have a dimension {self.dim}, got shape {tuple(x.shape)}")
        return normalize_2nd_moment(x, dim=self.dim, eps=self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, dim={self.dim}"
