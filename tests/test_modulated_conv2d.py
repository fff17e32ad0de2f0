"""modulated_conv2d: the reference against an explicit formulation, its two formulations
against each other, gradcheck/gradgradcheck, float16 pre-normalisation, and the errors."""


import pytest
import torch
from modconv_testutils import explicit_modulated_conv2d, fir_filter, make_inputs, modconv_terms
from testutils import assert_close, rms, tolerance

from gankern.ops import BackendUnavailableError, modulated_conv2d, no_weight_gradients

# (k, up, down, flip_weight): the StyleGAN2 layers (3x3, 3x3 up with flip_weight=False,
# 1x1 ToRGB) and the discriminator's 3x3 / 1x1 downsampling convolutions.
GEOMETRIES = [
    (3, 1, 1, True),
    (3, 2, 1, False),
    (3, 1, 2, True),
    (1, 1, 1, True),
    (1, 2, 1, True),
    (1, 1, 2, True),
    (3, 1, 1, False),
    (3, 2, 1, True),
    (3, 2, 2, False),
]


def _call(x, w, s, nz, b, k, up, down, flip, impl="ref", **kw):
    return modulated_conv2d(
        x, w, s, noise=nz, up=up, down=down, padding=k // 2, resample_filter=fir_filter(),
        flip_weight=flip, bias=b, impl=impl, **kw,
    )


@pytest.mark.parametrize("k,up,down,flip", GEOMETRIES)
@pytest.mark.parametrize("fused", [True, False])
def test_ref_matches_explicit_formulation(k, up, down, flip, fused):
    x, w, s, nz, b = make_inputs(2, 3, 5, 6, k, up, down, dtype=torch.float64, requires_grad=False)
    for demodulate in (True, False):
        kw = dict(demodulate=demodulate, act="lrelu", clamp=1.5)
        got = _call(x, w, s, nz, b, k, up, down, flip, fused_modconv=fused, **kw)
        want = explicit_modulated_conv2d(
            x, w, s, nz, up, down, k // 2, fir_filter(), demodulate, flip, b, "lrelu", None, 1.5
        )
        assert_close(got, want, terms=modconv_terms(x, w, k, up, down)[0])


@pytest.mark.parametrize(
    "act", ["linear", "relu", "tanh", "sigmoid", "elu", "selu", "softplus", "swish"]
)
def test_ref_activations_match_explicit(act):
    x, w, s, nz, b = make_inputs(2, 3, 4, 5, 3, dtype=torch.float64, requires_grad=False)
    got = _call(x, w, s, nz, b, 3, 1, 1, True, act=act, gain=0.7)
    want = explicit_modulated_conv2d(x, w, s, nz, 1, 1, 1, None, True, True, b, act, 0.7, None)
    assert_close(got, want, terms=modconv_terms(x, w, 3, 1, 1)[0])


def test_stylegan2_semantics_without_bias_act():
    """act='linear', no bias: StyleGAN2's modulated_conv2d output, noise added last."""
    x, w, s, nz, _ = make_inputs(2, 3, 4, 5, 3, dtype=torch.float64, requires_grad=False)
    y = modulated_conv2d(x, w, s, noise=nz, padding=1, impl="ref")
    y0 = modulated_conv2d(x, w, s, padding=1, impl="ref")
    terms = modconv_terms(x, w, 3, 1, 1)[0]
    # y - y0 cancels the convolution: its rounding errors are at the scale of y, not of nz.
    torch.testing.assert_close(y - y0, nz.expand_as(y), rtol=0, atol=tolerance(
        torch.float64, terms=terms)["atol"] * rms(y0))
    # Demodulation makes the output invariant to the scale of the styles and the weight, up
    # to its 1e-8 under the square root: a relative change of at most 1e-8 / sum(w'^2) / 2.
    y1 = modulated_conv2d(x, w * 3, s * 5, padding=1, impl="ref")
    sums = (w[None] * s[:, None, :, None, None]).square().sum(dim=[2, 3, 4])
    epsilon_effect = 1e-8 / float(sums.min()) / 2
    tol = tolerance(torch.float64, terms=terms)
    torch.testing.assert_close(y1, y0, rtol=tol["rtol"] + epsilon_effect,
                               atol=tol["atol"] * rms(y0))


@pytest.mark.parametrize("k,up,down,flip", GEOMETRIES)
def test_ref_formulations_agree_forward_and_gradients(k, up, down, flip):
    x, w, s, nz, b = make_inputs(2, 3, 5, 6, k, up, down, dtype=torch.float64)
    results = []
    for fused in (True, False):
        y = _call(x, w, s, nz, b, k, up, down, flip, fused_modconv=fused, act="lrelu")
        grads = torch.autograd.grad(y, [x, w, s, nz, b], torch.ones_like(y) + y.detach())
        results.append((y, grads))
    (y0, g0), (y1, g1) = results
    y_terms, grad_terms = modconv_terms(x, w, k, up, down)
    assert_close(y1, y0, terms=y_terms)
    for a, e, terms in zip(g1, g0, grad_terms, strict=True):
        assert_close(a, e, terms=terms)


@pytest.mark.parametrize(
    "k,up,down,fused", [(3, 1, 1, True), (3, 2, 1, False), (3, 1, 2, True), (1, 1, 1, False)]
)
def test_ref_gradcheck_and_gradgradcheck(k, up, down, fused):
    x, w, s, nz, b = make_inputs(
        2, 2, 3, 3, k, up, down, noise="shared", dtype=torch.float64, style_scale=0.3
    )

    def fn(x, w, s, nz, b):
        return _call(x, w, s, nz, b, k, up, down, up == 1, fused_modconv=fused,
                     act="softplus", gain=0.9)

    inputs = (x, w, s, nz, b)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)
    assert torch.autograd.gradgradcheck(fn, inputs, fast_mode=True)


def test_ref_float16_prenormalisation_prevents_overflow():
    """Huge weights and styles overflow float16 unless pre-normalised (as StyleGAN2 does)."""
    x, w, s, nz, b = make_inputs(2, 8, 4, 6, 3, dtype=torch.float32, requires_grad=False)
    w, s = w * 300, s * 300  # |w * s| ~ 1e5: beyond float16's 65504
    want = _call(x.double(), w.double(), s.double(), nz.double(), b.double(), 3, 1, 1, True)
    for fused in (True, False):
        got = _call(x.half(), w, s, nz.half(), b.half(), 3, 1, 1, True, fused_modconv=fused)
        assert got.dtype == torch.float16
        assert torch.isfinite(got).all()
        assert_close(got, want, torch.float16)


def test_channels_last_and_noncontiguous_inputs_ref():
    x, w, s, nz, b = make_inputs(2, 3, 4, 6, 3, dtype=torch.float64, requires_grad=False)
    want = _call(x, w, s, nz, b, 3, 1, 1, True)
    got = _call(x.to(memory_format=torch.channels_last), w, s, nz, b, 3, 1, 1, True)
    assert_close(got, want)
    wide = torch.stack([x, x], dim=-1)[..., 0]  # a strided view equal to x
    assert_close(_call(wide, w, s, nz, b, 3, 1, 1, True), want)


def test_defaults_and_batch_one():
    x, w, s, _, b = make_inputs(1, 3, 2, 4, 3, dtype=torch.float64, requires_grad=False)
    y = modulated_conv2d(x, w, s, impl="ref")  # padding 0, linear, no resampling
    want = explicit_modulated_conv2d(x, w, s, padding=0)
    assert y.shape == (1, 2, 2, 2)
    assert_close(y, want)
    # gain defaults to the activation's (sqrt(2) for lrelu).
    y = modulated_conv2d(x, w, s, padding=1, bias=b, act="lrelu", impl="ref")
    y_gain = modulated_conv2d(x, w, s, padding=1, bias=b, act="lrelu", gain=2**0.5, impl="ref")
    assert_close(y, y_gain)


# ----------------------------------------------------------------------------------------
# Errors.


def _good():
    x = torch.randn(2, 3, 6, 6)
    return x, torch.randn(4, 3, 3, 3), torch.randn(2, 3)


@pytest.mark.parametrize(
    "change,exc,match",
    [
        (dict(x=torch.randn(3, 6, 6)), ValueError, "x must have 4 dimensions"),
        (dict(x=torch.randint(0, 3, (2, 3, 6, 6))), TypeError, "x must be float16"),
        (dict(weight=torch.randn(4, 5, 3, 3)), ValueError, "weight must have x.shape\\[1\\] = 3"),
        (dict(weight=torch.randn(4, 3, 3)), ValueError, "weight must have 4 dimensions"),
        (dict(weight=torch.randn(4, 3, 3, 3).double()), TypeError, "weight must be float32"),
        (dict(styles=torch.randn(3, 3)), ValueError, r"styles must have shape \[N, Cin\] = \[2, 3"),
        (dict(styles=torch.randn(2, 4)), ValueError, "styles must have shape"),
        (dict(styles=torch.randn(2, 3).half()), TypeError, "styles must be float32 or have x's"),
        (dict(styles=torch.randn(2, 3, device="meta")), ValueError, "styles must be on the same"),
        (dict(noise=torch.randn(2, 1, 5, 6)), ValueError, "noise must broadcast to the output"),
        (dict(noise=torch.randn(3, 1, 6, 6)), ValueError, "noise must broadcast"),
        (dict(noise=torch.randn(2, 1, 6, 6).double()), TypeError, "noise must be float32"),
        (dict(bias=torch.randn(3)), ValueError, "bias must have shape \\[4\\]"),
        (dict(bias=torch.randn(4, device="meta")), ValueError, "bias must be on the same device"),
        (dict(up=0), ValueError, "up must be >= 1"),
        (dict(down=1.5), TypeError, "down must be an integer"),
        (dict(up=True), TypeError, "up must be an integer"),
        (dict(act="gelu"), ValueError, "act must be one of"),
        (dict(clamp=-1.0), ValueError, "clamp must be >= 0"),
        (dict(gain="2"), TypeError, "gain must be a real number"),
        (dict(demodulate=1), TypeError, "demodulate must be a bool"),
        (dict(padding=[1, 2, 3]), TypeError, "padding must be an int"),
        (dict(resample_filter=torch.ones(2, 2, 2)), ValueError, "resample_filter must have 1 or 2"),
        (dict(resample_filter=torch.ones(4).double()), TypeError, "resample_filter must be float"),
        (dict(padding=-3), ValueError, "leave no output"),
        (dict(impl="fast"), ValueError, "impl must be one of"),
    ],
)
def test_errors(change, exc, match):
    x, w, s = _good()
    kw = dict(x=x, weight=w, styles=s, padding=1)
    kw.update(change)
    with pytest.raises(exc, match=match):
        modulated_conv2d(**kw)


def test_unavailable_backends_say_why():
    x, w, s = _good()
    with pytest.raises(BackendUnavailableError, match="cuda"):
        modulated_conv2d(x, w, s, impl="cuda")
    with pytest.raises(BackendUnavailableError, match="float64"):
        modulated_conv2d(x.double(), w.double(), s.double(), impl="triton")


@pytest.mark.parametrize("fused", [True, False])
def test_ref_keeps_style_gradients_inside_no_weight_gradients(fused):
    """Path length differentiates w.r.t. the styles inside the context: they must survive."""
    x, w, s, nz, b = make_inputs(2, 3, 4, 5, 3, dtype=torch.float64)
    y = _call(x, w, s, nz, b, 3, 1, 1, True, fused_modconv=fused, act="lrelu")
    want = torch.autograd.grad(y.square().sum(), [x, s], retain_graph=True)
    with no_weight_gradients():
        got = torch.autograd.grad(y.square().sum(), [x, s])
    for a, e in zip(got, want, strict=True):
        assert_close(a, e)


def test_demodulation_coefficients_of_a_zero_weight_stay_finite():
    # rsqrt(sum (w s)^2 + 1e-8): an all-zero output channel gets 1e4, not inf or NaN.
    from gankern.ops.modulated_conv2d_fused import demodulation_coefficients

    weight = torch.randn(3, 2, 3, 3)
    weight[1] = 0
    styles = torch.randn(4, 2)
    w2 = weight.square().sum([2, 3])  # the weight part, as the fused backends cache it
    d = demodulation_coefficients(w2, styles)
    expected = ((weight[None] * styles[:, None, :, None, None]).square().sum([2, 3, 4])
                + 1e-8).rsqrt()
    torch.testing.assert_close(d, expected)
    assert torch.all(d[:, 1] == torch.tensor(1e-8).rsqrt())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_reference_output_keeps_the_input_dtype_with_float32_companions(dtype):
    # weight, styles, noise and bias may be float32 whatever x's dtype: they are cast to it.
    x, weight, styles, noise, bias = make_inputs(2, 3, 4, 5, 3, requires_grad=False)
    y = modulated_conv2d(x.to(dtype), weight, styles, noise=noise, padding=1, bias=bias,
                         act="lrelu", impl="ref")
    assert y.dtype == dtype
    expected = modulated_conv2d(x, weight, styles, noise=noise, padding=1, bias=bias,
                                act="lrelu", impl="ref")
    torch.testing.assert_close(y.float(), expected, atol=0.1 if dtype == torch.bfloat16 else 1e-5,
                               rtol=0.05 if dtype == torch.bfloat16 else 1e-5)
