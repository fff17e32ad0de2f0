"""gankern.nn Upsample, Downsample and Blur against plain-PyTorch formulations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close, requires_triton_interpreter

from gankern.nn import Blur, Downsample, Upsample, set_impl


def _binomial_2d(taps, dtype=torch.float64):
    k = torch.tensor(taps, dtype=dtype)
    k = torch.outer(k, k)
    return k / k.sum()


def test_box_filters_give_nearest_upsampling_and_average_pooling():
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64)
    assert_close(Upsample(2, filter=[1, 1]).double()(x), F.interpolate(x, scale_factor=2))
    # fh=2, fw=3; the taps (1/6) were normalized in float32 (setup_filter), so the result
    # carries float32 rounding even in float64.
    assert_close(Upsample([3, 2], filter=torch.ones(2, 3)).double()(x),
                 F.interpolate(x, scale_factor=(2, 3)), torch.float32)
    assert_close(Downsample(2, filter=[1, 1]).double()(x[:, :, :, :4]),
                 F.avg_pool2d(x[:, :, :, :4], 2))


def test_upsample_is_transposed_convolution_then_blur():
    """StyleGAN2's 2x upsampling, written as zero insertion + a padded 4x4 convolution."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    k = _binomial_2d([1, 3, 3, 1]) * 4  # x4: the zero insertion keeps a quarter of the energy
    xu = torch.zeros(1, 2, 10, 12, dtype=torch.float64)
    xu[:, :, ::2, ::2] = x
    xp = F.pad(xu, [2, 1, 2, 1])
    expected = F.conv2d(xp, k.flip([0, 1])[None, None].repeat(2, 1, 1, 1), groups=2)
    layer = Upsample().double()
    assert_close(layer(x), expected)
    assert layer(x).shape == (1, 2, 10, 12)


def test_downsample_is_blur_then_stride():
    x = torch.randn(1, 2, 8, 6, dtype=torch.float64)
    k = _binomial_2d([1, 3, 3, 1])
    xp = F.pad(x, [1, 1, 1, 1])
    expected = F.conv2d(xp, k[None, None].repeat(2, 1, 1, 1), groups=2, stride=2)
    assert_close(Downsample().double()(x), expected)


def test_blur_padding_and_upsample_factor():
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64)
    k = _binomial_2d([1, 3, 3, 1])
    expected = F.conv2d(F.pad(x, [2, 1, 1, 2]), k[None, None].repeat(3, 1, 1, 1), groups=3)
    assert_close(Blur([1, 3, 3, 1], padding=[2, 1, 1, 2]).double()(x), expected)
    assert_close(Blur([1, 3, 3, 1], padding=[2, 1, 1, 2], upsample_factor=2).double()(x),
                 4 * expected)
    assert Blur([1, 3, 3, 1], padding=1)(x.float()).shape == (1, 3, 6, 6)


def test_upsample_keeps_a_constant_image_in_the_interior():
    y = Upsample()(torch.full((1, 1, 6, 6), -1.25))
    assert_close(y[:, :, 2:-2, 2:-2], torch.full((1, 1, 8, 8), -1.25))


def test_filter_buffer_is_non_persistent_and_follows_the_module():
    layer = Downsample(filter=[1, 2, 1])
    assert "filter" in dict(layer.named_buffers())
    assert layer.state_dict() == {}
    assert layer.double().filter.dtype == torch.float64
    # A half-precision module still runs on float32 inputs (the taps go back to float32).
    half = Upsample().half()
    assert half(torch.randn(1, 1, 4, 4)).dtype == torch.float32
    assert "factor=(2, 2)" in repr(Upsample())


def test_set_impl_reaches_the_layers():
    model = torch.nn.Sequential(Upsample(), Blur([1, 2, 1], padding=1), Downsample())
    set_impl(model, "ref")
    assert all(m.impl == "ref" for m in model)


@requires_triton_interpreter
def test_layers_on_triton_match_the_reference():
    x = torch.randn(1, 2, 5, 6).to(memory_format=torch.channels_last)
    for layer in (Upsample(), Downsample(), Blur([1, 3, 3, 1], padding=[2, 1])):
        y = set_impl(layer, "triton")(x)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert_close(y, set_impl(layer, "ref")(x))


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: Upsample(factor=0), ValueError, "factor must be >= 1, got 0"),
        (lambda: Downsample(factor=1.5), TypeError, "factor must be a positive int"),
        (lambda: Upsample(filter="abc"), TypeError, "filter must be a sequence of numbers"),
        (lambda: Upsample(filter=[[[1.0]]]), ValueError, "f must have 0, 1 or 2 dimensions"),
        (lambda: Downsample(padding=[1, 2, 3]), TypeError, "padding must be an int"),
        (lambda: Blur([1, 2, 1], padding=1, upsample_factor=0), ValueError,
         "upsample_factor must be >= 1, got 0"),
        (lambda: Upsample(gain=float("inf")), ValueError, "gain must be finite"),
        (lambda: Upsample(flip_filter="yes"), TypeError, "flip_filter must be a bool"),
        (lambda: Blur([1, 2, 1], padding=1, impl="gpu"), ValueError,
         "impl must be one of .*got 'gpu'"),
    ],
)
def test_constructor_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()
