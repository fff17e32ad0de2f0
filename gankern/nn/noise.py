"""Per-pixel noise inputs, a learned strength per feature map (StyleGAN v1): :class:`NoiseInput`."""

from __future__ import annotations

import torch
from torch import nn

from gankern.nn._validate import NOISE_MODES, check_choice
from gankern.ops._checks import check_int, check_tensor


class NoiseInput(nn.Module):
    """``x + noise * noise_strength``: one noise image per sample, scaled per feature map.

    StyleGAN v1's ``apply_noise``: the noise ``[N, 1, H, W]`` is broadcast over the channels
    and multiplied by a learned strength per channel (initialized to 0). StyleGAN2's layers
    learn a single scalar strength instead (see :class:`gankern.nn.SynthesisLayer`).

    Args:
        num_channels: feature maps C of the input.
        resolution: height and width of the input (the stored constant noise's size).

    Buffers: ``noise_const`` ``[resolution, resolution]``, a fixed noise image drawn at
    construction, used by ``noise_mode="const"`` (deterministic images).
    """

    def __init__(self, num_channels: int, resolution: int):
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, min_value=1)
        self.resolution = check_int("resolution", resolution, min_value=1)
        self.noise_strength = nn.Parameter(torch.zeros([num_channels]))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(self, x: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """``x``: ``[N, num_channels, resolution, resolution]``.

        ``noise_mode``: ``"random"`` (fresh noise from the global RNG), ``"const"`` (the
        stored ``noise_const``) or ``"none"`` (no noise: returns x).
        """
        check_choice("noise_mode", noise_mode, NOISE_MODES)
        check_tensor("x", x, ndim=4)
        res = self.resolution
        if tuple(x.shape[1:]) != (self.num_channels, res, res):
            raise ValueError(
                f"x must have shape [N, {self.num_channels}, {res}, {res}], got {tuple(x.shape)}"
            )
        if noise_mode == "none":
            return x
        if noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, res, res], device=x.device, dtype=x.dtype)
        else:
            noise = self.noise_const.to(x.dtype).reshape(1, 1, res, res)
        return torch.addcmul(x, noise, self.noise_strength.to(x.dtype).reshape(1, -1, 1, 1))

    def extra_repr(self) -> str:
        return f"num_channels={self.num_channels}, resolution={self.resolution}"
