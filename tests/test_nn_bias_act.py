"""Tests of gankern.nn.FusedBiasAct: its formula and StyleGAN2's bias learning-rate scaling,
checked against explicit numpy computations, its backends, dtypes and argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from testutils import assert_close, requires_triton_interpreter

from gankern.nn import FusedBiasAct, set_impl


def test_forward_is_the_formula_with_the_scaled_bias():
    layer = FusedBiasAct(4, act="lrelu", bias_init=0.5, lr_multiplier=0.01, clamp=1.0)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64)
    z = x.numpy() + 0.5 * 0.01  # effective bias: bias_init * lr_multiplier (StyleGAN2-ADA)
    expected = np.clip(np.where(z > 0, z, 0.2 * z) * math.sqrt(2), -1.0, 1.0)
    assert_close(layer(x), torch.from_numpy(expected))
    assert_close(layer.effective_bias(), torch.full([4], 0.005))


def test_bias_gradient_is_scaled_by_the_lr_multiplier():
    layer = FusedBiasAct(3, act="linear", gain=2.0, lr_multiplier=0.1, dim=-1).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    w = torch.randn(5, 2, 3, dtype=torch.float64)
    (layer(x) * w).sum().backward()
    # y = (x + 0.1 * p) * 2  =>  dL/dp = 0.1 * 2 * sum of w over every axis but the last.
    expected = 0.1 * 2.0 * w.numpy().sum(axis=(0, 1))
    assert_close(layer.bias.grad, torch.from_numpy(expected))


def test_half_input_keeps_its_dtype_and_a_float32_parameter():
    layer = FusedBiasAct(3, act="swish", bias_init=0.25)
    x = torch.randn(2, 3, 4).to(torch.bfloat16)
    y = layer(x)
    assert y.dtype == torch.bfloat16 and layer.bias.dtype == torch.float32
    z = x.double().numpy() + 0.25
    expected = z / (1.0 + np.exp(-z)) * math.sqrt(2)
    assert_close(y, torch.from_numpy(expected).to(torch.bfloat16))
    y.float().sum().backward()
    assert layer.bias.grad.dtype == torch.float32


@requires_triton_interpreter
def test_triton_backend_matches_reference():
    torch.manual_seed(1)
    layer = FusedBiasAct(5, act="tanh", bias_init=0.3, lr_multiplier=0.5, impl="triton")
    x = torch.randn(2, 5, 3, 3).to(memory_format=torch.channels_last)
    y = layer(x)
    y.square().sum().backward()
    grad = layer.bias.grad.clone()
    layer.bias.grad = None
    set_impl(layer, "ref")
    y_ref = layer(x)
    y_ref.square().sum().backward()
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref)
    assert_close(grad, layer.bias.grad)


def test_state_dict_and_repr():
    layer = FusedBiasAct(8, act="lrelu", clamp=256, lr_multiplier=0.01)
    assert list(layer.state_dict()) == ["bias"]
    assert repr(layer) == "FusedBiasAct(8, act=lrelu, clamp=256, lr_multiplier=0.01)"


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="num_channels must be >= 1, got 0"):
        FusedBiasAct(0)
    with pytest.raises(TypeError, match="num_channels must be an integer, got 2.5"):
        FusedBiasAct(2.5)
    with pytest.raises(ValueError, match="act must be one of .*got 'gelu'"):
        FusedBiasAct(3, act="gelu")
    with pytest.raises(ValueError, match="lr_multiplier must be > 0, got 0.0"):
        FusedBiasAct(3, lr_multiplier=0)
    with pytest.raises(ValueError, match="lr_multiplier must be finite, got nan"):
        FusedBiasAct(3, lr_multiplier=float("nan"))
    with pytest.raises(ValueError, match="clamp must be >= 0.0, got -1.0"):
        FusedBiasAct(3, clamp=-1)
    with pytest.raises(ValueError, match="bias_init must be finite, got inf"):
        FusedBiasAct(3, bias_init=math.inf)
    with pytest.raises(TypeError, match="gain must be a real number, got str"):
        FusedBiasAct(3, gain="1")
    with pytest.raises(TypeError, match="dim must be an integer, got '1'"):
        FusedBiasAct(3, dim="1")
    with pytest.raises(ValueError, match="impl must be one of .*got 'gpu'"):
        FusedBiasAct(3, impl="gpu")
    layer = FusedBiasAct(3)
    with pytest.raises(
        ValueError, match=r"x.shape\[1\] must equal num_channels = 3, got x of shape"
    ):
        layer(torch.randn(2, 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        layer([1.0, 2.0, 3.0])
