"""A learnable bias fused with an activation, a gain and a clamp: :class:`FusedBiasAct`."""

from __future__ import annotations

import torch
from torch import nn

from gankern.ops import ACTIVATIONS, bias_act
from gankern.ops._backend import check_impl
from gankern.ops._checks import check_int, check_number


class FusedBiasAct(nn.Module):
    """``y = clamp(act(x + bias * lr_multiplier) * gain, -clamp, clamp)`` in one pass.

    A learnable bias along ``dim`` followed by :func:`gankern.ops.bias_act`. As in StyleGAN2's
    equalized-learning-rate layers, the stored parameter is multiplied by ``lr_multiplier`` at
    run time (so Adam moves the effective bias ``lr_multiplier`` times slower), and the
    parameter starts at ``bias_init``: the effective initial bias is
    ``bias_init * lr_multiplier``, exactly as StyleGAN2-ADA's layers.

    Args:
        num_channels: length of the bias, i.e. ``x.shape[dim]``.
        act: activation: ``linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish``.
        alpha: lrelu's slope (default 0.2); the other activations ignore it.
        gain: output scale; default sqrt(2) for relu, lrelu and swish, 1 for the others.
        clamp: clamp the output to ``[-clamp, clamp]``; None for no clamping.
        bias_init: initial value of the bias parameter.
        lr_multiplier: learning-rate multiplier of the bias (> 0).
        dim: the dimension of the input that the bias runs along (default 1, channels).
        impl: backend of :func:`gankern.ops.bias_act`: ``"auto"``, ``"cuda"``, ``"triton"``,
            ``"ref"``.

    The bias is cast to the input's dtype, so the layer serves float16/bfloat16 inputs with
    a float32 parameter.
    """

    def __init__(
        self,
        num_channels: int,
        act: str = "linear",
        alpha: float | None = None,
        gain: float | None = None,
        clamp: float | None = None,
        bias_init: float = 0.0,
        lr_multiplier: float = 1.0,
        dim: int = 1,
        impl: str = "auto",
    ):
        super().__init__()
        self.num_channels = check_int("num_channels", num_channels, min_value=1)
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
        self.act = act
        self.alpha = check_number("alpha", alpha, allow_none=True)
        self.gain = check_number("gain", gain, allow_none=True)
        self.clamp = check_number("clamp", clamp, min_value=0.0, allow_none=True)
        bias_init = check_number("bias_init", bias_init)
        self.lr_multiplier = check_number("lr_multiplier", lr_multiplier)
        if self.lr_multiplier <= 0:
            raise ValueError(f"lr_multiplier must be > 0, got {self.lr_multiplier}")
        self.dim = check_int("dim", dim)
        self.impl = check_impl(impl)
        self.bias = nn.Parameter(torch.full([self.num_channels], bias_init))

    def effective_bias(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The bias that is added: the parameter times ``lr_multiplier``, in ``dtype``."""
        b = self.bias if dtype is None else self.bias.to(dtype)
        return b * self.lr_multiplier if self.lr_multiplier != 1 else b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: any shape with ``x.shape[dim] == num_channels``; returns x's shape and layout."""
        dtype = None
        if isinstance(x, torch.Tensor):
            dtype = x.dtype
            if -x.ndim <= self.dim < x.ndim and x.shape[self.dim] != self.num_channels:
                raise ValueError(
                    f"x.shape[{self.dim}] must equal num_channels = {self.num_channels}, "
                    f"got x of shape {tuple(x.shape)}"
                )
        return bias_act(
            x,
            self.effective_bias(dtype),
            dim=self.dim,
            act=self.act,
            alpha=self.alpha,
            gain=self.gain,
            clamp=self.clamp,
            impl=self.impl,
        )

    def extra_repr(self) -> str:
        text = f"{self.num_channels}, act={self.act}"
        for name in ("alpha", "gain", "clamp"):
            value = getattr(self, name)
            if value is not None:
                text += f", {name}={value:g}"
        if self.lr_multiplier != 1:
            text += f", lr_multiplier={self.lr_multiplier:g}"
        if self.dim != 1:
            text += f", dim={self.dim}"
        return text
