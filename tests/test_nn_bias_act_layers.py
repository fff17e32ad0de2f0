"""gankern.nn's fused torch layers (LinearAct, Conv2dAct, ...) against torch's layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close, requires_triton_interpreter
from torch import nn

from gankern.nn import (
    Activation,
    Conv2dAct,
    ConvTranspose2dAct,
    LinearAct,
    apply_spectral_norm,
    set_impl,
)
from gankern.ops import BackendUnavailableError


def test_activation_matches_torch():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    assert_close(Activation("relu")(x), F.relu(x))
    assert_close(Activation("lrelu", alpha=0.2)(x), F.leaky_relu(x, 0.2))
    assert_close(Activation("lrelu")(x), F.leaky_relu(x, 0.2))  # bias_act's default slope
    assert_close(Activation("tanh", gain=3.0)(x), 3 * torch.tanh(x))


def test_linear_act_is_linear_then_activation():
    torch.manual_seed(1)
    layer = LinearAct(6, 4, act="lrelu", alpha=0.1).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    assert_close(layer(x), F.leaky_relu(F.linear(x, layer.weight, layer.bias), 0.1))
    plain = LinearAct(6, 4, bias=False).double()
    assert_close(plain(x), x @ plain.weight.t())
    # the same parameters, names and initialization scheme as nn.Linear
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_conv_layers_are_conv_then_activation():
    torch.manual_seed(2)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    conv = Conv2dAct(3, 5, 3, stride=2, padding=1, act="relu").double()
    assert_close(conv(x), F.relu(F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)))
    up = ConvTranspose2dAct(3, 2, 4, stride=2, padding=1, act="tanh").double()
    expected = torch.tanh(F.conv_transpose2d(x, up.weight, up.bias, stride=2, padding=1))
    assert_close(up(x), expected)
    assert up(x).shape == (2, 2, 14, 12)
    nobias = Conv2dAct(3, 5, 1, bias=False, act="lrelu", alpha=0.2).double()
    assert_close(nobias(x), F.leaky_relu(F.conv2d(x, nobias.weight), 0.2))


def test_gradients_and_spectral_norm():
    torch.manual_seed(3)
    net = nn.Sequential(
        Conv2dAct(2, 3, 3, padding=1, act="relu"), nn.Flatten(), LinearAct(48, 1, act="lrelu")
    )
    apply_spectral_norm(net)
    assert all(hasattr(net[i], "parametrizations") for i in (0, 2))
    net(torch.randn(4, 2, 4, 4)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_set_impl_reaches_the_layers():
    net = nn.Sequential(Conv2dAct(2, 3, 3, act="relu"), Activation("tanh"))
    set_impl(net, "cuda")
    assert net[0].impl == "cuda" and net[1].impl == "cuda"
    with pytest.raises(BackendUnavailableError):
        net(torch.randn(1, 2, 5, 5))  # CPU tensors: the CUDA backend cannot take them
    set_impl(net, "ref")
    assert net(torch.randn(1, 2, 5, 5)).shape == (1, 3, 3, 3)


@requires_triton_interpreter
def test_triton_backend_matches_reference():
    torch.manual_seed(4)
    layer = Conv2dAct(2, 3, 3, padding=1, act="lrelu", alpha=0.2)
    x = torch.randn(2, 2, 4, 4)
    expected = layer(x)
    set_impl(layer, "triton")
    assert_close(layer(x), expected)


def test_errors():
    with pytest.raises(ValueError, match="act must be one of"):
        Activation("gelu")
    with pytest.raises(ValueError, match="impl must be one of"):
        LinearAct(2, 2, impl="fast")
    with pytest.raises(TypeError, match="gain must be a real number"):
        Conv2dAct(2, 2, 3, gain="2")
