"""StyleGAN2's synthesis layers: the modulated convolution with noise, and ToRGB.

Both are one call of :func:`gankern.ops.modulated_conv2d`, which fuses the modulation,
convolution, demodulation, noise, bias, activation, gain and clamp. Names and semantics follow
StyleGAN2-ADA's ``SynthesisLayer`` and ``ToRGBLayer`` (``affine``, ``weight``, ``bias``,
``noise_strength``, ``noise_const``), so official checkpoints map onto them name for name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankern.nn._validate import (
    NOISE_MODES,
    check_activation,
    check_bool,
    check_choice,
    check_filter_taps,
    check_optional_clamp,
)
from gankern.nn.equalized import FullyConnectedLayer
from gankern.ops import ACTIVATIONS, setup_filter
from gankern.ops._checks import check_int, check_tensor
from gankern.ops.modulated_conv2d import modulated_conv2d


def _check_latent(w: torch.Tensor, batch: int, w_dim: int) -> None:
    check_tensor("w", w, ndim=2)
    if w.shape[0] != batch or w.shape[1] != w_dim:
        raise ValueError(f"w must have shape [{batch}, {w_dim}], got {tuple(w.shape)}")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally 2x upsampling) + noise + bias + activation.

    The style of each sample is ``affine(w)`` (an equalized linear layer with bias 1); the
    weight is modulated by it and demodulated; per-pixel noise scaled by the learned
    ``noise_strength`` is added, then the bias, the activation (gain ``act_gain * gain``) and
    the clamp ``conv_clamp * gain``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        w_dim: dimensionality of the intermediate latent w.
        resolution: output resolution of this layer (the noise's size).
        kernel_size: convolution kernel size (default 3).
        up: 1, or 2 to upsample the input first (through ``resample_filter``).
        use_noise: learn a noise strength and add noise.
        activation: activation name (default lrelu).
        resample_filter: FIR taps of the upsampling filter (default ``[1, 3, 3, 1]``).
        conv_clamp: clamp of the output (None: no clamping).
        channels_last: store the weight in channels_last memory format.
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        impl: str = "auto",
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min_value=1)
        self.out_channels = check_int("out_channels", out_channels, min_value=1)
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        self.resolution = check_int("resolution", resolution, min_value=1)
        kernel_size = check_int("kernel_size", kernel_size, min_value=1)
        self.up = check_int("up", up, min_value=1)
        self.use_noise = check_bool("use_noise", use_noise)
        self.activation = check_activation("activation", activation)
        self.conv_clamp = check_optional_clamp("conv_clamp", conv_clamp)
        self.impl = impl
        self.register_buffer(
            "resample_filter", setup_filter(check_filter_taps(resample_filter)), persistent=False
        )
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1, impl=impl)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(weight.to(memory_format=memory_format))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused_modconv: bool = True,
        gain: float = 1,
    ) -> torch.Tensor:
        """``x``: ``[N, in_channels, resolution / up, resolution / up]``, ``w``: ``[N, w_dim]``.

        ``noise_mode``: ``"random"`` (fresh noise), ``"const"`` (the stored ``noise_const``)
        or ``"none"``. ``fused_modconv`` picks the formulation (same result). ``gain`` scales
        the output and the clamp (resnet blocks pass sqrt(0.5)).
        """
        check_choice("noise_mode", noise_mode, NOISE_MODES)
        check_tensor("x", x, ndim=4)
        in_res = self.resolution // self.up
        if tuple(x.shape[1:]) != (self.in_channels, in_res, in_res):
            raise ValueError(
                f"x must have shape [N, {self.in_channels}, {in_res}, {in_res}], "
                f"got {tuple(x.shape)}"
            )
        _check_latent(w, x.shape[0], self.w_dim)
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
                * self.noise_strength
            )
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        if noise is not None:
            noise = noise.reshape(-1, 1, self.resolution, self.resolution).to(x.dtype)

        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return modulated_conv2d(
            x,
            self.weight,
            styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),  # StyleGAN2's convention for the transposed conv
            fused_modconv=fused_modconv,
            bias=self.bias.to(x.dtype),
            act=self.activation,
            gain=self.act_gain * gain,
            clamp=act_clamp,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"w_dim={self.w_dim}, resolution={self.resolution}, up={self.up}, "
            f"activation={self.activation}, conv_clamp={self.conv_clamp}"
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation + bias (+ clamp): features -> image.

    Args:
        in_channels: input channels.
        out_channels: image channels.
        w_dim: dimensionality of w.
        kernel_size: kernel size (default 1).
        conv_clamp: clamp of the output (None: no clamping).
        channels_last: store the weight in channels_last memory format.
        impl: backend of the ops.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
        impl: str = "auto",
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min_value=1)
        self.out_channels = check_int("out_channels", out_channels, min_value=1)
        self.w_dim = check_int("w_dim", w_dim, min_value=1)
        kernel_size = check_int("kernel_size", kernel_size, min_value=1)
        self.conv_clamp = check_optional_clamp("conv_clamp", conv_clamp)
        self.impl = impl
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1, impl=impl)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        self.weight = nn.Parameter(weight.to(memory_format=memory_format))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        # Without demodulation the equalized-lr gain goes onto the styles.
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        """Features ``x`` ``[N, in_channels, H, W]``, ``w`` ``[N, w_dim]`` -> ``[N, C, H, W]``."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        _check_latent(w, x.shape[0], self.w_dim)
        styles = self.affine(w) * self.weight_gain
        return modulated_conv2d(
            x,
            self.weight,
            styles,
            padding=self.padding,
            demodulate=False,
            fused_modconv=fused_modconv,
            bias=self.bias.to(x.dtype),
            act="linear",
            clamp=self.conv_clamp,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"w_dim={self.w_dim}, conv_clamp={self.conv_clamp}"
        )
