"""Adaptive instance normalization, StyleGAN v1's style injection: :class:`AdaIN`.

Each feature map of each sample is normalized to zero mean and unit variance over its pixels
(instance normalization), then scaled and shifted by per-sample, per-channel amounts computed
from the intermediate latent w (Huang & Belongie, 2017; Karras et al., 2019).
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.nn.equalized import FullyConnectedLayer
from gankern.ops._checks import check_int, check_number, check_tensor


def adaptive_instance_norm(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps) * scale + shift``, statistics per sample and channel.

    Args:
        x: features ``[N, C, H, W]``.
        scale: multiplier ``[N, C]`` of the normalized features.
        shift: offset ``[N, C]``.
        eps: added to the (biased) variance over the ``H * W`` pixels (StyleGAN: 1e-8).

    Returns:
        ``[N, C, H, W]``. The normalization and the style are applied in one pass:
        ``x * a + b`` with ``a = scale / sqrt(var + eps)`` and ``b = shift - mean * a``.
    """
    check_tensor("x", x, ndim=4)
    for name, t in (("scale", scale), ("shift", shift)):
        check_tensor(name, t, ndim=2)
        if tuple(t.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"{name} must have shape [N, C] = {tuple(x.shape[:2])}, got {tuple(t.shape)}"
            )
    eps = check_number("eps", eps, min_value=0.0)
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    a = scale[:, :, None, None] * torch.rsqrt(var + eps)
    b = shift[:, :, None, None] - mean * a
    return torch.addcmul(b, x, a)


class AdaIN(nn.Module):
    """StyleGAN v1's ``StyleMod`` after instance normalization: ``IN(x) * (1 + s) + t``.

    ``[s, t] = affine(w)``: an equalized-learning-rate linear layer from w to ``2 * C``
    values, with gain 1 and biases initialized to 0 (so the initial scale is about 1), as in
    the official ``style_mod``. Parameter names: ``affine.weight`` ``[2C, w_dim]`` and
    ``affine.bias`` ``[2C]`` (first the C scales, then the C shifts).

    Args:
        num_channels: feature maps C of the input.
        w_dim: dimensionality of w.
        eps: epsilon of the instance normalization (StyleGAN: 1e-8).
        impl: backend of the ops of the affine layer.
    """

    def __init__(self, num_channels: int, w_dim: int, eps: float = 1e-8, impl: str = "auto"):
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, min_value=1)
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.eps = check_number("eps", eps, min_value=0.0)
        self.affine = FullyConnectedLayer(w_dim, 2 * num_channels, impl=impl)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, num_channels, H, W]``; ``w``: ``[N, w_dim]``; returns x's shape."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.num_channels:
            raise ValueError(
                f"x must have {self.num_channels} channels, got shape {tuple(x.shape)}"
            )
        check_tensor("w", w, ndim=2)
        if tuple(w.shape) != (x.shape[0], self.w_dim):
            raise ValueError(
                f"w must have shape [{x.shape[0]}, {self.w_dim}], got {tuple(w.shape)}"
            )
        scale, shift = self.affine(w.to(x.dtype)).chunk(2, dim=1)
        return adaptive_instance_norm(x, scale + 1, shift, eps=self.eps)

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, w_dim={self.w_dim}, eps={self.eps:g}"
