"""Self-attention over the pixels of a feature map (SAGAN): :class:`SelfAttention`.

The block of the official SAGAN code (brain-research/self-attention-gan,
``sn_non_local_block_sim``) and BigGAN-PyTorch's ``layers.Attention``:

* queries ``theta = W_theta x`` (C/8 channels), keys ``phi = maxpool2(W_phi x)`` (C/8),
  values ``g = maxpool2(W_g x)`` (C/2): 1x1 convolutions without bias, keys and values
  max-pooled 2x2 (a quarter of the positions);
* ``o = softmax(theta^T phi) g^T`` (no 1/sqrt(d) scaling) over the key positions, mapped back
  to C channels by the 1x1 convolution ``W_o``;
* ``y = x + gamma * W_o o`` with a learned scalar ``gamma`` initialized to 0 (the block starts
  as the identity).

The attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (scale 1),
so a GPU picks a fused kernel (flash or memory-efficient attention) instead of materializing
the ``HW x HW/4`` attention matrix. The three input projections run as one convolution over
the concatenated (possibly spectrally normalized) weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankern.nn.spectral_norm import spectral_norm as _spectral_norm
from gankern.ops._checks import check_int, check_tensor


class SelfAttention(nn.Module):
    """SAGAN's self-attention block: ``x + gamma * W_o softmax(theta^T phi) g``.

    Args:
        channels: feature maps C of the input (divisible by ``qk_ratio`` and ``v_ratio``).
        qk_ratio: channels of queries and keys are ``C // qk_ratio`` (SAGAN: 8).
        v_ratio: channels of the values are ``C // v_ratio`` (SAGAN: 2).
        pool: max-pooling factor of keys and values (SAGAN: 2; 1 attends to every pixel).
        spectral_norm: spectrally normalize the four convolutions (with ``sn_eps``); a model
            that initializes its weights itself builds with False and normalizes afterwards
            (:func:`gankern.nn.apply_spectral_norm`).
        sn_eps: epsilon of the spectral normalization.

    Parameters: ``theta``, ``phi``, ``g``, ``o`` (``nn.Conv2d`` 1x1, no bias, torch's default
    initialization) and ``gamma`` (a scalar, 0).
    """

    def __init__(
        self,
        channels: int,
        qk_ratio: int = 8,
        v_ratio: int = 2,
        pool: int = 2,
        spectral_norm: bool = False,
        sn_eps: float = 1e-12,
    ):
        super().__init__()
        self.channels = check_int("channels", channels, min_value=1)
        qk_ratio = check_int("qk_ratio", qk_ratio, min_value=1)
        v_ratio = check_int("v_ratio", v_ratio, min_value=1)
        self.pool = check_int("pool", pool, min_value=1)
        if channels % qk_ratio or channels % v_ratio:
            raise ValueError(
                f"channels must be divisible by qk_ratio={qk_ratio} and v_ratio={v_ratio}, "
                f"got {channels}"
            )
        if not isinstance(spectral_norm, bool):
            raise TypeError(f"spectral_norm must be a bool, got {spectral_norm!r}")
        self.qk_channels = channels // qk_ratio
        self.v_channels = channels // v_ratio
        self.theta = nn.Conv2d(channels, self.qk_channels, 1, bias=False)
        self.phi = nn.Conv2d(channels, self.qk_channels, 1, bias=False)
        self.g = nn.Conv2d(channels, self.v_channels, 1, bias=False)
        self.o = nn.Conv2d(self.v_channels, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros([]))
        if spectral_norm:
            for conv in (self.theta, self.phi, self.g, self.o):
                _spectral_norm(conv, eps=sn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, C, H, W]`` with H and W divisible by ``pool``; returns x's shape."""
        check_tensor("x", x, ndim=4)
        n, c, h, w = x.shape
        if c != self.channels or h % self.pool or w % self.pool:
            raise ValueError(
                f"x must have shape [N, {self.channels}, H, W] with H and W divisible by "
                f"pool={self.pool}, got {tuple(x.shape)}"
            )
        qk, v = self.qk_channels, self.v_channels
        weight = torch.cat([self.theta.weight, self.phi.weight, self.g.weight]).to(x.dtype)
        theta, phi, g = F.conv2d(x, weight).split([qk, qk, v], dim=1)
        if self.pool > 1:
            phi = F.max_pool2d(phi, self.pool)
            g = F.max_pool2d(g, self.pool)
        # [N, 1 head, positions, channels]
        query = theta.flatten(2).transpose(1, 2).unsqueeze(1)
        key = phi.flatten(2).transpose(1, 2).unsqueeze(1)
        value = g.flatten(2).transpose(1, 2).unsqueeze(1)
        out = F.scaled_dot_product_attention(query, key, value, scale=1.0)
        out = out.squeeze(1).transpose(1, 2).reshape(n, v, h, w)
        return x + self.gamma.to(x.dtype) * self.o(out)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, qk_channels={self.qk_channels}, "
            f"v_channels={self.v_channels}, pool={self.pool}"
        )
