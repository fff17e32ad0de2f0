"""torch layers whose bias and activation run through :func:`gankern.ops.bias_act`.

The classic GANs (GAN, DCGAN, SNGAN, WGAN-GP) are built from ``nn.Linear``, ``nn.Conv2d``
and ``nn.ConvTranspose2d`` followed by an activation. These subclasses keep torch's modules
(same parameters, ``state_dict`` names and initialization, and
:func:`gankern.nn.apply_spectral_norm` finds them) and fuse the bias addition and the
activation into one :func:`~gankern.ops.bias_act` call:

* :class:`Activation`: an activation alone (``bias_act`` without a bias).
* :class:`LinearAct`, :class:`Conv2dAct`, :class:`ConvTranspose2dAct`: the layer without its
  bias, then ``bias_act(y, bias, act)``.

Unlike ``bias_act``'s StyleGAN convention (gain sqrt(2) for relu and lrelu), the gain here
defaults to 1, the plain activation of the classic models. Every layer has an ``impl``
attribute (see :func:`gankern.nn.set_impl`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankern.nn._validate import check_activation
from gankern.ops import bias_act
from gankern.ops._backend import check_impl
from gankern.ops._checks import check_number


class _ActMixin:
    """The activation settings and the fused call shared by the layers below."""

    act: str
    alpha: float | None
    gain: float
    impl: str

    def _set_act(self, act: str, alpha, gain, impl: str) -> None:
        self.act = check_activation("act", act)
        self.alpha = check_number("alpha", alpha, allow_none=True)
        self.gain = check_number("gain", gain)
        self.impl = check_impl(impl)

    def _bias_act(self, y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if bias is None and self.act == "linear" and self.gain == 1:
            return y
        if bias is not None and bias.dtype != y.dtype:
            bias = bias.to(y.dtype)  # e.g. float32 parameters under autocast
        return bias_act(
            y, bias, dim=1, act=self.act, alpha=self.alpha, gain=self.gain, impl=self.impl
        )

    def _act_repr(self) -> str:
        text = f"act={self.act}"
        if self.alpha is not None:
            text += f", alpha={self.alpha:g}"
        if self.gain != 1:
            text += f", gain={self.gain:g}"
        return text + f", impl={self.impl!r}"


class Activation(_ActMixin, nn.Module):
    """An activation through :func:`gankern.ops.bias_act`: ``act(x) * gain``.

    Args:
        act: ``linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish``.
        alpha: lrelu's negative slope (bias_act's default 0.2 when None).
        gain: output scale (default 1, the plain activation).
        impl: backend of :func:`gankern.ops.bias_act`.
    """

    def __init__(self, act: str, alpha: float | None = None, gain: float = 1.0, impl: str = "auto"):
        super().__init__()
        self._set_act(act, alpha, gain, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._bias_act(x, None)

    def extra_repr(self) -> str:
        return self._act_repr()


class LinearAct(_ActMixin, nn.Linear):
    """``act(x @ W^T + b) * gain``: ``nn.Linear`` with its bias fused into the activation.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        act, alpha, gain, impl: as :class:`Activation` (default: no activation).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        act: str = "linear",
        alpha: float | None = None,
        gain: float = 1.0,
        impl: str = "auto",
    ):
        super().__init__(in_features, out_features, bias=bias)
        self._set_act(act, alpha, gain, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._bias_act(F.linear(x, self.weight), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._act_repr()}"


class _ConvAct(_ActMixin):
    """The constructor shared by the two convolutions: torch's layer, then the activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
        act: str = "linear",
        alpha: float | None = None,
        gain: float = 1.0,
        impl: str = "auto",
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias
        )
        self._set_act(act, alpha, gain, impl)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, {self._act_repr()}"


class Conv2dAct(_ConvAct, nn.Conv2d):
    """``nn.Conv2d`` with its bias fused into the activation that follows.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as ``nn.Conv2d``
            (zero padding, no dilation or groups).
        act, alpha, gain, impl: as :class:`Activation` (default: no activation).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._bias_act(self._conv_forward(x, self.weight, None), self.bias)


class ConvTranspose2dAct(_ConvAct, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with its bias fused into the activation that follows.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias: as
            ``nn.ConvTranspose2d`` (no output padding, dilation or groups).
        act, alpha, gain, impl: as :class:`Activation` (default: no activation).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding)
        return self._bias_act(y, self.bias)
