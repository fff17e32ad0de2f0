"""Pixel norm, AdaIN (StyleGAN v1's style modulation) and per-channel noise inputs against
formulas written out here."""

from __future__ import annotations

import math

import pytest
import torch
from testutils import assert_close

from gankern.nn import AdaIN, NoiseInput, PixelNorm, adaptive_instance_norm


def test_pixel_norm_against_the_formula():
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64)
    y = PixelNorm(eps=1e-8)(x)
    # Loop over pixels: divide the C-vector at each pixel by its root mean square.
    expected = torch.empty_like(x)
    for n in range(3):
        for i in range(4):
            for j in range(6):
                v = x[n, :, i, j]
                expected[n, :, i, j] = v / math.sqrt(float((v * v).sum()) / 5 + 1e-8)
    assert_close(y, expected)
    # Along another dimension (the latent vectors of a mapping network).
    z = torch.randn(4, 7, dtype=torch.float64)
    assert_close(PixelNorm(dim=1)(z), z / (z.square().mean(1, keepdim=True) + 1e-8).sqrt())


def test_pixel_norm_errors():
    with pytest.raises(ValueError, match="eps"):
        PixelNorm(eps=-1)
    with pytest.raises(ValueError, match="dimension 3"):
        PixelNorm(dim=3)(torch.randn(2, 3))
    with pytest.raises(TypeError, match="x"):
        PixelNorm()([1.0, 2.0])


def _instance_norm_loop(x: torch.Tensor, eps: float) -> torch.Tensor:
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[n, c]
            mean = float(v.sum()) / v.numel()
            var = float(((v - mean) ** 2).sum()) / v.numel()  # biased, as StyleGAN's
            out[n, c] = (v - mean) / math.sqrt(var + eps)
    return out


def test_adaptive_instance_norm_against_the_formula():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64) * 3 + 1
    scale = torch.randn(2, 3, dtype=torch.float64)
    shift = torch.randn(2, 3, dtype=torch.float64)
    y = adaptive_instance_norm(x, scale, shift, eps=1e-5)
    expected = _instance_norm_loop(x, 1e-5) * scale[:, :, None, None] + shift[:, :, None, None]
    assert_close(y, expected)


def test_adain_layer_is_style_mod_of_instance_norm():
    layer = AdaIN(4, w_dim=6).double()
    with torch.no_grad():
        layer.affine.bias.normal_()
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(3, 6, dtype=torch.float64)
    # StyleGAN v1's style_mod: style = w @ W^T / sqrt(w_dim) + b; x * (style[:C] + 1) + style[C:]
    style = w @ layer.affine.weight.t() / math.sqrt(6) + layer.affine.bias
    expected = _instance_norm_loop(x, 1e-8) * (style[:, :4, None, None] + 1)
    expected = expected + style[:, 4:, None, None]
    assert_close(layer(x, w), expected)
    # Initially (bias 0) the style is about the identity: the scale is 1 + O(w).
    assert torch.equal(AdaIN(4, 6).affine.bias, torch.zeros(8))


def test_adain_gradients_and_errors():
    layer = AdaIN(4, w_dim=6)
    x = torch.randn(2, 4, 4, 4, requires_grad=True)
    w = torch.randn(2, 6, requires_grad=True)
    layer(x, w).square().sum().backward()
    for t in (x.grad, w.grad, layer.affine.weight.grad, layer.affine.bias.grad):
        assert t is not None and torch.isfinite(t).all() and t.abs().sum() > 0
    with pytest.raises(ValueError, match="4 channels"):
        layer(torch.randn(2, 3, 4, 4), w)
    with pytest.raises(ValueError, match=r"w must have shape \[2, 6\]"):
        layer(x, torch.randn(2, 5))
    with pytest.raises(ValueError, match="scale must have shape"):
        adaptive_instance_norm(x, torch.ones(2, 3), torch.zeros(2, 4))


def test_noise_input_modes():
    layer = NoiseInput(3, resolution=4).double()
    with torch.no_grad():
        layer.noise_strength.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    # "const": the stored noise image, scaled per channel, the same for every sample.
    expected = x + layer.noise_const[None, None] * layer.noise_strength[None, :, None, None]
    assert_close(layer(x, noise_mode="const"), expected)
    assert torch.equal(layer(x, noise_mode="none"), x)
    # "random": one noise image per sample, shared by the channels (scaled per channel).
    torch.manual_seed(1)
    y = layer(x, noise_mode="random")
    torch.manual_seed(1)
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    assert_close(y, x + noise * layer.noise_strength[None, :, None, None])
    assert "noise_const" in layer.state_dict()


def test_noise_input_errors():
    layer = NoiseInput(3, resolution=4)
    with pytest.raises(ValueError, match="noise_mode"):
        layer(torch.randn(1, 3, 4, 4), noise_mode="fixed")
    with pytest.raises(ValueError, match=r"\[N, 3, 4, 4\]"):
        layer(torch.randn(1, 3, 8, 8))
