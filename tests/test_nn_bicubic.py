"""Bicubic downsampling on upfirdn2d: Keys' kernel, the filter, and Pillow's BICUBIC resize."""

import numpy as np
import pytest
import torch
from PIL import Image

from gankern.nn import BicubicDownsample, bicubic_filter, keys_cubic, set_impl


def _keys_reference(x, a):
    """Keys (1981), eq. (15), written piecewise with numpy."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    return np.piecewise(
        x, [x <= 1, (x > 1) & (x < 2)],
        [lambda t: (a + 2) * t**3 - (a + 3) * t**2 + 1,
         lambda t: a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0],
    )


@pytest.mark.parametrize("a", [-0.5, -0.75])
def test_keys_kernel(a):
    x = torch.linspace(-2.5, 2.5, 101, dtype=torch.float64)
    np.testing.assert_allclose(keys_cubic(x, a).numpy(), _keys_reference(x.numpy(), a),
                               atol=1e-12)
    # An interpolating kernel: 1 at 0, 0 at the other integers.
    values = keys_cubic(torch.tensor([0.0, 1.0, -1.0, 2.0, -2.0, 3.0], dtype=torch.float64), a)
    np.testing.assert_allclose(values.numpy(), [1, 0, 0, 0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("factor,length", [(1, 3), (2, 8), (3, 11), (4, 16), (5, 19)])
def test_filter_sums_to_one_and_is_symmetric(factor, length):
    taps = bicubic_filter(factor)
    assert taps.dtype == torch.float32 and taps.shape == (length,)
    assert abs(float(taps.double().sum()) - 1) < 1e-6
    torch.testing.assert_close(taps, taps.flip(0))
    # Unnormalized, the taps are the kernel at the offsets over the factor.
    offsets = (np.arange(length) - (length - 1) / 2) / factor
    raw = _keys_reference(offsets, -0.5)
    np.testing.assert_allclose(taps.numpy(), raw / raw.sum(), rtol=1e-6, atol=1e-7)


def _pil_bicubic(image, factor):
    h, w = image.shape
    return np.asarray(Image.fromarray(image).resize((w // factor, h // factor),
                                                    Image.Resampling.BICUBIC))


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_matches_pillow_bicubic_on_float_images(factor):
    rng = np.random.default_rng(factor)
    image = rng.uniform(0, 255, size=(12 * factor, 9 * factor)).astype(np.float32)
    ours = BicubicDownsample(factor, impl="ref")(torch.from_numpy(image)[None, None])[0, 0]
    difference = np.abs(ours.numpy() - _pil_bicubic(image, factor))
    assert difference.max() < 1e-3  # measured: <= 5e-5, float32 rounding on 0..255


def test_matches_pillow_bicubic_on_uint8_images_within_one_level():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 48), dtype=np.uint8)
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    ours = BicubicDownsample(4, impl="ref")(x)[0, 0].round().clamp(0, 255).numpy()
    difference = np.abs(ours - _pil_bicubic(image, 4).astype(np.float32))
    assert difference.max() <= 1  # Pillow rounds to 8 bits between its two passes
    assert (difference > 0).mean() < 0.2  # measured: about 10%


def test_constant_images_stay_constant_up_to_the_border():
    x = torch.full((2, 3, 16, 20), 0.7)
    torch.testing.assert_close(BicubicDownsample(4, impl="ref")(x), torch.full((2, 3, 4, 5), 0.7))


def test_shapes_gradients_and_errors():
    layer = BicubicDownsample(4, impl="ref")
    x = torch.randn(3, 2, 8, 16, dtype=torch.float64, requires_grad=True)
    assert layer(x).shape == (3, 2, 2, 4)
    assert torch.autograd.gradcheck(layer, (x,))
    with pytest.raises(ValueError, match="multiples of factor = 4"):
        layer(torch.randn(1, 1, 10, 8))
    with pytest.raises(ValueError, match="factor must be >= 1"):
        BicubicDownsample(0)
    set_impl(layer, "auto")
    assert layer.impl == "auto"
    assert len(layer.state_dict()) == 0  # the filter is fixed by the constructor
