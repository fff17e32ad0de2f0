"""Equalized-learning-rate layers: a fully connected layer and a convolution with resampling.

Equalized learning rate (Karras et al., 2018), as StyleGAN2 uses it everywhere: weights are
stored with unit variance (divided by the learning-rate multiplier) and multiplied at run time
by ``weight_gain = lr_multiplier / sqrt(fan_in)``; biases are multiplied by ``lr_multiplier``.
Adam then updates every weight at the same effective rate, whatever its fan-in.

Parameter and buffer names follow StyleGAN2-ADA (``weight``, ``bias``), so that official
checkpoints map onto these layers name for name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gankern.nn._validate import check_activation, check_filter_taps, check_optional_clamp
from gankern.ops import ACTIVATIONS, bias_act, conv2d_resample, setup_filter
from gankern.ops._checks import check_int, check_number, check_tensor


class FullyConnectedLayer(nn.Module):
    """Equalized-learning-rate linear layer followed by :func:`gankern.ops.bias_act`.

    Args:
        in_features: size of each input vector.
        out_features: size of each output vector.
        bias: learn an additive bias (applied before the activation).
        activation: activation name of :data:`gankern.ops.ACTIVATIONS` (default linear).
        lr_multiplier: learning-rate multiplier (StyleGAN2's mapping network uses 0.01).
        bias_init: initial value of the bias (the affine style layers use 1).
        impl: backend of :func:`gankern.ops.bias_act`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        impl: str = "auto",
    ):
        super().__init__()
        self.in_features = check_int("in_features", in_features, min_value=1)
        self.out_features = check_int("out_features", out_features, min_value=1)
        self.activation = check_activation("activation", activation)
        lr_multiplier = check_number("lr_multiplier", lr_multiplier)
        if lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be > 0, got {lr_multiplier}")
        bias_init = check_number("bias_init", bias_init)
        self.lr_multiplier = lr_multiplier
        self.impl = impl
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, in_features]`` -> ``[N, out_features]``."""
        check_tensor("x", x, ndim=2)
        if x.shape[1] != self.in_features:
            raise ValueError(f"x must have shape [N, {self.in_features}], got {tuple(x.shape)}")
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation, impl=self.impl)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"activation={self.activation}, lr_multiplier={self.lr_multiplier:g}"
        )


class Conv2dLayer(nn.Module):
    """Equalized-learning-rate convolution with optional FIR up/downsampling, bias and activation.

    ``y = clamp(act(conv2d_resample(x, w * weight_gain) + b) * act_gain * gain)``, as
    StyleGAN2-ADA's ``Conv2dLayer``: the convolution is :func:`gankern.ops.conv2d_resample`
    (padding ``kernel_size // 2``), the rest :func:`gankern.ops.bias_act`.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: width and height of the (square) kernel.
        bias: learn an additive bias.
        activation: activation name (default linear).
        up: upsampling factor (1 or more).
        down: downsampling factor (1 or more).
        resample_filter: FIR filter taps for the resampling (default ``[1, 3, 3, 1]``).
        conv_clamp: clamp the output to ``[-conv_clamp, conv_clamp]`` (scaled by ``gain``);
            None for no clamping.
        channels_last: store the weight in channels_last memory format.
        trainable: False registers weight and bias as buffers (frozen layers, Freeze-D).
        impl: backend of the ops (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
        impl: str = "auto",
    ):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, min_value=1)
        self.out_channels = check_int("out_channels", out_channels, min_value=1)
        kernel_size = check_int("kernel_size", kernel_size, min_value=1)
        self.activation = check_activation("activation", activation)
        self.up = check_int("up", up, min_value=1)
        self.down = check_int("down", down, min_value=1)
        self.conv_clamp = check_optional_clamp("conv_clamp", conv_clamp)
        self.impl = impl
        self.register_buffer(
            "resample_filter", setup_filter(check_filter_taps(resample_filter)), persistent=False
        )
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
        weight = weight.to(memory_format=memory_format)
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_t is not None:
                self.register_buffer("bias", bias_t)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        """``x``: ``[N, in_channels, H, W]``; ``gain`` scales the output and the clamp."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        w = (self.weight * self.weight_gain).to(x.dtype)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(
            x,
            w,
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=(self.up == 1),  # StyleGAN2's convention (and slightly faster)
            impl=self.impl,
        )
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp, impl=self.impl
        )

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.weight.shape[-1]}, activation={self.activation}, "
            f"up={self.up}, down={self.down}, conv_clamp={self.conv_clamp}"
        )
