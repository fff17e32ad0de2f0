"""AugmentPipe (StyleGAN2-ADA augmentation) against independent computations: torch.flip,
torch.rot90, F.pad(mode="reflect"), closed-form color and geometry, explicit loops."""

import math

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_backend_ran, assert_close

from gankern.train.augment import AUGMENT_PRESETS, AugmentParams, AugmentPipe
from gankern.train.augment_geometry import (
    affine_resample,
    blit,
    resampling_filter,
    rotate2d,
    scale2d,
    translate2d,
)
from gankern.train.augment_pixels import apply_band_gains, filter_bank


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _images(n, c, h, w, seed=1, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=_gen(seed), dtype=dtype) * 2 - 1


def _smooth(n, c, size, dtype=torch.float64):
    """Smooth images that are even about the first and last pixel along both axes, so that
    mirror padding continues them smoothly: sums of cos(pi * k * index / (size - 1))."""
    idx = torch.arange(size, dtype=dtype)
    out = torch.zeros(n, c, size, size, dtype=dtype)
    g = _gen(7)
    for _ in range(3):
        kx, ky = torch.randint(0, 3, (2,), generator=g).tolist()
        amp = torch.rand(n, c, 1, 1, generator=g, dtype=dtype) - 0.5
        cx = torch.cos(math.pi * kx * idx / (size - 1))
        cy = torch.cos(math.pi * ky * idx / (size - 1))
        out = out + amp * cy[:, None] * cx[None, :]
    return out


def _sample(pipe, x, seed=0):
    n, c, h, w = x.shape
    return pipe.sample_params(n, c, h, w, _gen(seed))


# --- p = 0, shapes, dtypes ------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_identity(channels):
    x = _images(4, channels, 8, 8)
    pipe = AugmentPipe("bgcfnc", p=0.0)
    out = pipe(x, generator=_gen())
    assert torch.equal(out, x)
    assert pipe.state_dict().keys() == {"p"}


@pytest.mark.parametrize("preset", sorted(AUGMENT_PRESETS))
def test_presets_preserve_shape_dtype_and_change_images(preset):
    x = _images(3, 3, 8, 8)
    out = AugmentPipe(preset, p=1.0)(x, generator=_gen())
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)


def test_half_channels_last_and_float64_inputs():
    pipe = AugmentPipe("bgc", p=1.0)
    x = _images(2, 3, 8, 8)
    half = pipe(x.half(), generator=_gen())
    assert half.dtype == torch.float16 and half.shape == x.shape
    ref = pipe(x.half().float(), generator=_gen())
    assert_close(half, ref.half(), torch.float16)
    cl = pipe(x.to(memory_format=torch.channels_last), generator=_gen())
    assert_close(cl, pipe(x, generator=_gen()))
    assert pipe(x.double(), generator=_gen()).dtype == torch.float64


# --- Pixel blitting -------------------------------------------------------------------------


def test_xflip_matches_torch_flip():
    pipe = AugmentPipe(None, p=1.0, xflip=1.0)
    x = _images(16, 3, 6, 8)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    flipped = params.flip.tolist()
    assert 0 < sum(flipped) < 16  # at p=1 a flip happens half of the time
    for i, f in enumerate(flipped):
        assert torch.equal(out[i], torch.flip(x[i], dims=[2]) if f else x[i])


def test_rotate90_matches_torch_rot90():
    pipe = AugmentPipe(None, p=1.0, rotate90=1.0)
    x = _images(24, 1, 5, 5)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    assert set(params.rot90.tolist()) == {0, 1, 2, 3}
    for i, k in enumerate(params.rot90.tolist()):
        assert torch.equal(out[i], torch.rot90(x[i], k, dims=(1, 2)))
    with pytest.raises(ValueError, match="square"):
        pipe(_images(2, 1, 4, 6))


def test_integer_translation_reflects_at_the_borders():
    pipe = AugmentPipe(None, p=1.0, xint=1.0, xint_max=0.45)
    x = _images(12, 2, 8, 10)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    assert params.shift.abs().max() > 2 and (params.shift != 0).any(dim=1).sum() >= 10
    pad = 7  # shifts are at most round(0.45 * 10) = 5 < 7 < 8 (F.pad reflect needs pad < size)
    for i, (tx, ty) in enumerate(params.shift.tolist()):
        padded = F.pad(x[i : i + 1], [pad] * 4, mode="reflect")
        expected = padded[0, :, pad - ty : pad - ty + 8, pad - tx : pad - tx + 10]
        assert torch.equal(out[i], expected)


def test_blit_composes_flip_then_rotation_then_shift():
    x = _images(1, 1, 6, 6)
    out = blit(x, torch.tensor([True]), torch.tensor([1]), torch.tensor([[0, 0]]))
    assert torch.equal(out, torch.rot90(torch.flip(x, [3]), 1, dims=(2, 3)))
    far = blit(x, torch.tensor([False]), torch.tensor([0]), torch.tensor([[13, -11]]))
    # Shifts beyond the image keep reflecting: period 2 * (size - 1) = 10.
    near = blit(x, torch.tensor([False]), torch.tensor([0]), torch.tensor([[3, -1]]))
    assert torch.equal(far, near)


# --- General geometric ----------------------------------------------------------------------


def _resample(x, inverse):
    return affine_resample(x, inverse, resampling_filter().double(), impl="ref")


def test_identity_affine_returns_input_up_to_filter_precision():
    x = _smooth(2, 3, 12)
    out = _resample(x, torch.eye(3, dtype=torch.float64).repeat(2, 1, 1))
    torch.testing.assert_close(out, x, rtol=0, atol=2e-3)


def test_affine_quarter_turn_and_integer_shift_agree_with_exact_operations():
    x = _smooth(1, 2, 12)
    for k in range(4):
        # The inverse of a rotation by -k quarter turns (torch.rot90's direction in an
        # image whose y axis points down).
        out = _resample(x, rotate2d(torch.tensor([k * math.pi / 2])))
        torch.testing.assert_close(out, torch.rot90(x, k, dims=(2, 3)), rtol=0, atol=3e-3)
    shifted = _resample(x, translate2d(torch.tensor([-2.0]), torch.tensor([1.0])))
    expected = F.pad(x, [4] * 4, mode="reflect")[:, :, 4 + 1 : 4 + 13, 4 - 2 : 4 + 10]
    torch.testing.assert_close(shifted, expected, rtol=0, atol=3e-3)


def test_fractional_translation_and_zoom_sample_the_continuous_image():
    # A band-limited function sampled at pixel centres; the transform must read it at the
    # mapped positions (checked away from the borders, where mirror padding differs). The
    # bilinear step on the 2x grid costs about 1 - cos(pi * f / 2) at f cycles per pixel;
    # a half-pixel misalignment would cost 0.2 here.
    size = 16
    centres = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2

    def image(px, py):
        return torch.cos(2 * math.pi * px / 16 + 0.4) * torch.sin(2 * math.pi * py / 20 + 1.0)

    py, px = torch.meshgrid(centres, centres, indexing="ij")
    x = image(px, py)[None, None]
    inverse = translate2d(torch.tensor([0.3]), torch.tensor([-0.6])) @ scale2d(
        torch.tensor([0.7]), torch.tensor([0.7])
    )
    out = _resample(x, inverse)
    src = inverse[0] @ torch.stack([px.flatten(), py.flatten(), torch.ones(size * size)])
    expected = image(src[0], src[1]).reshape(size, size)
    inner = slice(4, -4)
    torch.testing.assert_close(out[0, 0, inner, inner], expected[inner, inner], rtol=0, atol=1e-2)


def test_geometric_stage_leaves_untouched_samples_bit_exact():
    pipe = AugmentPipe("geom", p=0.5)
    x = _images(8, 3, 8, 8)
    params = _sample(pipe, x, seed=3)
    mask = params.geom_mask
    assert 0 < int(mask.sum()) < 8
    out = pipe.apply(x, params)
    assert torch.equal(out[~mask], x[~mask])
    assert (out[mask] - x[mask]).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_geometric_parameters_follow_their_distributions():
    pipe = AugmentPipe(None, p=1.0, scale=1.0)
    params = pipe.sample_params(4000, 3, 8, 8, _gen())
    log_scale = -torch.log2(params.geom_inverse[:, 0, 0])
    assert abs(float(log_scale.std()) - 0.2) < 0.01
    assert params.geom_mask.all()
    pipe = AugmentPipe(None, p=0.5, rotate=1.0)
    params = pipe.sample_params(4000, 3, 8, 8, _gen())
    # Two rotations, each with the probability making "any rotation" happen with p.
    assert abs(float(params.geom_mask.double().mean()) - 0.5) < 0.03


# --- Color ----------------------------------------------------------------------------------


def _color_pipe(name, p=1.0):
    return AugmentPipe(None, p=p, **{name: 1.0})


def test_brightness_adds_a_constant_per_sample():
    pipe = _color_pipe("brightness")
    x = _images(400, 3, 4, 4)
    out = pipe(x, generator=_gen())
    delta = out - x
    per_sample = delta[:, :1, :1, :1]
    assert_close(delta, per_sample.expand_as(delta))
    assert abs(float(per_sample.std()) - 0.2) < 0.03


def test_contrast_scales_around_mid_gray():
    pipe = _color_pipe("contrast")
    x = _images(400, 3, 4, 4)
    out = pipe(x, generator=_gen())
    factor = (out * x).sum(dim=(1, 2, 3)) / x.square().sum(dim=(1, 2, 3))
    assert_close(out, x * factor.view(-1, 1, 1, 1))
    assert (factor > 0).all()
    assert abs(float(torch.log2(factor).std()) - 0.5) < 0.06


def test_lumaflip_reflects_through_the_gray_axis():
    pipe = _color_pipe("lumaflip")
    x = _images(16, 3, 4, 4)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    assert 0 < int(params.color_mask.sum()) < 16
    for i, flipped in enumerate(params.color_mask.tolist()):
        # Reflection: keep the chroma, negate the gray component.
        expected = x[i] - 2 * x[i].mean(dim=0, keepdim=True) if flipped else x[i]
        assert_close(out[i], expected)
    # On a gray image, the reflection inverts.
    gray = _images(16, 1, 4, 4)
    params = pipe.sample_params(16, 1, 4, 4, _gen())
    out = pipe.apply(gray, params)
    assert_close(out, torch.where(params.color_mask.view(-1, 1, 1, 1), -gray, gray))


@pytest.mark.parametrize("name", ["hue", "saturation"])
def test_hue_and_saturation_keep_gray_and_act_on_chroma(name):
    pipe = _color_pipe(name)
    x = _images(64, 3, 4, 4)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    assert_close(out.mean(dim=1), x.mean(dim=1))
    chroma_in = x - x.mean(dim=1, keepdim=True)
    chroma_out = out - out.mean(dim=1, keepdim=True)
    ratio = chroma_out.norm(dim=1) / chroma_in.norm(dim=1)  # [N, H, W]
    if name == "hue":  # a rotation keeps the distance from the gray axis
        assert_close(ratio, torch.ones_like(ratio))
        assert (chroma_out - chroma_in).abs().max() > 0.1
    else:  # saturation scales it by one factor per sample
        assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
        assert abs(float(torch.log2(ratio[:, 0, 0]).std()) - 1.0) < 0.25
    gray = _images(4, 1, 4, 4)
    assert torch.equal(pipe(gray, generator=_gen()), gray)


def test_gray_images_are_treated_as_rgb_gray():
    # brightness, contrast and luma flip on g equal the same transforms on (g, g, g).
    pipe = AugmentPipe(None, p=1.0, brightness=1.0, contrast=1.0, lumaflip=1.0)
    gray = _images(16, 1, 4, 4)
    out_gray = pipe.apply(gray, pipe.sample_params(16, 1, 4, 4, _gen(4)))
    out_rgb = pipe.apply(gray.repeat(1, 3, 1, 1), pipe.sample_params(16, 3, 4, 4, _gen(4)))
    assert_close(out_rgb, out_gray.repeat(1, 3, 1, 1))


# --- Filtering, noise, cutout ---------------------------------------------------------------


def test_filter_bank_partitions_the_spectrum():
    bank = filter_bank()
    impulse = torch.zeros(bank.shape[1], dtype=torch.float64)
    impulse[bank.shape[1] // 2] = 1
    assert_close(bank.sum(dim=0), impulse)
    n = bank.shape[1]
    freqs = torch.tensor([0.0, 0.06, 0.19, 0.37, 0.75, 1.0])  # fractions of Nyquist
    taps = torch.arange(n, dtype=torch.float64) - n // 2
    response = (bank[:, None, :] * torch.cos(math.pi * freqs[None, :, None] * taps)).sum(-1)
    # Each frequency well inside a band passes through that band only.
    expected_band = [0, 0, 1, 2, 3, 3]
    for j, band in enumerate(expected_band):
        assert abs(float(response[band, j]) - 1) < 0.03, (j, response[:, j])


def test_band_gains_scale_stripes_at_nyquist():
    stripes = (-1.0) ** torch.arange(12, dtype=torch.float64)  # Nyquist along x
    x = stripes.expand(2, 3, 12, 12).clone()
    gains = torch.tensor([[1.0, 1.0, 1.0, 3.0], [2.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    out = apply_band_gains(x, gains, torch.tensor([True, True]))
    # Rows are constant (band 0 along y), columns alternate (band 3 along x).
    torch.testing.assert_close(out[0], 3 * x[0], rtol=0, atol=0.03)
    torch.testing.assert_close(out[1], 2 * x[1], rtol=0, atol=0.03)
    same = apply_band_gains(x, torch.ones(2, 4, dtype=torch.float64), torch.tensor([True, True]))
    assert_close(same, x)


def test_noise_has_the_sampled_standard_deviation():
    pipe = AugmentPipe(None, p=1.0, noise=1.0, noise_std=0.5)
    x = _images(8, 3, 16, 16)
    params = _sample(pipe, x)
    out = pipe.apply(x, params, generator=_gen(9))
    std = (out - x).std(dim=(1, 2, 3))
    assert torch.allclose(std.double(), params.noise_sigma, rtol=0.12)


def test_cutout_zeroes_the_square_around_the_centre():
    pipe = AugmentPipe(None, p=1.0, cutout=1.0, cutout_size=0.4)
    x = _images(6, 2, 10, 8)
    params = _sample(pipe, x)
    out = pipe.apply(x, params)
    for n in range(6):
        cx, cy = params.cutout_center[n].tolist()
        for i in range(10):
            for j in range(8):
                cut = abs((j + 0.5) / 8 - cx) < 0.2 and abs((i + 0.5) / 10 - cy) < 0.2
                expected = torch.zeros(2) if cut else x[n, :, i, j]
                assert torch.equal(out[n, :, i, j], expected), (n, i, j)


# --- Gradients, determinism, state ----------------------------------------------------------


def test_gradients_first_and_second_order():
    pipe = AugmentPipe("bgcfn", p=1.0)
    x = _images(1, 3, 8, 8, dtype=torch.float64).requires_grad_()
    params = _sample(pipe, x, seed=2)
    assert params.geom_mask.all() and params.color_mask.all() and params.filter_mask.all()

    def fn(t):  # the noise is redrawn from the same seed at every call
        return pipe.apply(t, params, generator=_gen(5))

    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)
    # R1 differentiates D(augment(x)) with respect to x, then that gradient again.
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_deterministic_given_generator_or_global_seed():
    pipe = AugmentPipe("bgcfnc", p=0.8)
    x = _images(4, 3, 8, 8)
    assert torch.equal(pipe(x, generator=_gen(11)), pipe(x, generator=_gen(11)))
    assert not torch.equal(pipe(x, generator=_gen(11)), pipe(x, generator=_gen(12)))
    torch.manual_seed(5)
    first = pipe(x)
    torch.manual_seed(5)
    assert torch.equal(pipe(x), first)


def test_state_dict_round_trip_resumes_identically():
    pipe = AugmentPipe("bgc", p=0.25)
    pipe.p.fill_(0.4375)
    other = AugmentPipe("bgc")
    other.load_state_dict(pipe.state_dict())
    assert float(other.p) == 0.4375
    x = _images(4, 3, 8, 8)
    assert torch.equal(other(x, generator=_gen(2)), pipe(x, generator=_gen(2)))


def test_identity_params_change_nothing():
    pipe = AugmentPipe("bgcfnc", p=1.0)
    x = _images(3, 3, 8, 8)
    assert torch.equal(pipe.apply(x, AugmentParams.identity(3)), x)


# --- Errors ---------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="preset"):
        AugmentPipe("bgx")
    with pytest.raises(TypeError, match="unknown augmentation settings"):
        AugmentPipe("bgc", xflp=1)
    with pytest.raises(ValueError, match="scale_std"):
        AugmentPipe("bgc", scale_std=-1)
    with pytest.raises(ValueError, match="cutout_size"):
        AugmentPipe("bgc", cutout_size=0)
    with pytest.raises(ValueError, match="p must be >= 0"):
        AugmentPipe("bgc", p=-0.1)
    with pytest.raises(ValueError, match="impl must be one of"):
        AugmentPipe("bgc", impl="fast")
    pipe = AugmentPipe("bgc", p=1.0)
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        pipe(torch.zeros(3, 8, 8))
    with pytest.raises(TypeError, match="images must be float"):
        pipe(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        pipe(torch.zeros(1, 2, 8, 8))
    with pytest.raises(TypeError, match="generator"):
        pipe(torch.zeros(1, 3, 8, 8), generator=0)
    with pytest.raises(ValueError, match="batch of 2"):
        pipe.apply(torch.zeros(3, 3, 8, 8), AugmentParams.identity(2))
    # Geometry alone accepts any channel count.
    assert AugmentPipe("bg", p=1.0)(torch.zeros(2, 5, 8, 8)).shape == (2, 5, 8, 8)


@pytest.mark.cuda
def test_cuda_matches_cpu(monkeypatch):
    # The band filter is a cuDNN convolution: compare without TF32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    pipe = AugmentPipe("bgcfnc", p=0.9)
    x = _images(4, 3, 16, 16)
    cpu = pipe(x, generator=_gen(3))  # a CPU generator: the same draws for both devices
    with assert_backend_ran("upfirdn2d", "cuda"):  # these draws resample twice
        gpu = pipe.cuda()(x.cuda(), generator=_gen(3))
    assert gpu.device.type == "cuda"
    assert_close(gpu.cpu(), cpu)
