"""modulated_conv2d's Triton backend (in the interpreter on CPU) against the reference:
forward and every gradient, second order, opcheck, torch.compile, no_weight_gradients."""

import pytest
import torch
import torch.nn.functional as F
from modconv_testutils import fir_filter, make_inputs, modconv_terms
from testutils import TOLERANCES, assert_close, requires_triton_interpreter, rms

from gankern.ops import BackendUnavailableError, modulated_conv2d, no_weight_gradients
from gankern.ops._layout import output_memory_format
from gankern.ops.bias_act import ACTIVATIONS
from gankern.ops.modulated_conv2d_ops import (
    epilogue_backward,
    modulated_conv2d_conv,
    modulated_conv2d_epilogue,
    modulated_conv2d_epilogue_grad,
    modulated_conv2d_modulation_grad,
    modulated_conv2d_wgrad,
    modulated_input_grads,
)

pytestmark = requires_triton_interpreter


def _run(inputs, k, up, down, impl, *, flip=None, grads=True, **kw):
    """Output and the gradients of all inputs for a fixed random output gradient."""
    x, w, s, nz, b = inputs
    y = modulated_conv2d(
        x, w, s, noise=nz, up=up, down=down, padding=k // 2, resample_filter=fir_filter(),
        flip_weight=(up == 1) if flip is None else flip, bias=b, impl=impl, fused_modconv=False,
        **kw,
    )
    if not grads:
        return y, []
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(7))
    wrt = [t for t in inputs if t is not None]
    return y, torch.autograd.grad(y, wrt, dy)


def _compare(inputs, k, up, down, **kw):
    y, g = _run(inputs, k, up, down, "triton", **kw)
    y_ref, g_ref = _run(inputs, k, up, down, "ref", **kw)
    assert y.dtype == y_ref.dtype
    y_terms, grad_terms = modconv_terms(inputs[0], inputs[1], k, up, down)
    assert_close(y, y_ref, terms=y_terms)
    grad_terms = [terms for t, terms in zip(inputs, grad_terms, strict=True) if t is not None]
    for got, want, terms in zip(g, g_ref, grad_terms, strict=True):
        assert_close(got, want, terms=terms)
    return y


# (k, up, down, n, c, o, h): StyleGAN2's geometries, odd channel counts and sizes, batch 1.
CASES = [
    (3, 1, 1, 2, 3, 5, 6),
    (3, 2, 1, 2, 3, 5, 5),
    (3, 1, 2, 2, 5, 3, 6),
    (3, 1, 2, 1, 3, 4, 7),
    (1, 1, 1, 2, 5, 3, 5),
    (1, 2, 1, 1, 3, 3, 4),
    (1, 1, 2, 2, 3, 5, 6),
    (3, 2, 2, 2, 3, 3, 4),
    (3, 1, 1, 1, 17, 19, 3),
]


@pytest.mark.parametrize("k,up,down,n,c,o,h", CASES)
def test_forward_and_gradients_match_ref(k, up, down, n, c, o, h):
    inputs = make_inputs(n, c, o, h, k, up, down)
    _compare(inputs, k, up, down, act="lrelu", clamp=2.0)


@pytest.mark.parametrize(
    "k,up,down,demodulate,noise,bias,act",
    [
        (3, 1, 1, False, None, False, "linear"),  # ToRGB-like: no demodulation, no noise
        (1, 1, 1, False, None, True, "linear"),
        (3, 1, 1, True, "shared", True, "tanh"),
        (3, 2, 1, True, "shared", False, "swish"),
        (3, 1, 2, False, "per_sample", True, "softplus"),
        (3, 2, 1, False, None, False, "linear"),  # up path with an identity epilogue
    ],
)
def test_variants_match_ref(k, up, down, demodulate, noise, bias, act):
    inputs = make_inputs(2, 3, 4, 5, k, up, down, noise=noise, bias=bias)
    _compare(inputs, k, up, down, demodulate=demodulate, act=act, gain=0.8)


@pytest.mark.parametrize("k,up,down", [(3, 1, 1), (3, 2, 1), (3, 1, 2)])
def test_channels_last(k, up, down):
    inputs = make_inputs(2, 3, 4, 6, k, up, down, channels_last=True)
    y = _compare(inputs, k, up, down, act="lrelu")
    if up == 1:
        assert y.is_contiguous(memory_format=torch.channels_last)


def test_strided_channels_last_view_keeps_channels_last():
    """A cropped channels_last tensor is a strided view of neither format: the output still
    follows its channel-fastest order (as upfirdn2d's does), read in place."""
    x, w, s, _, b = make_inputs(2, 3, 4, 7, 3, noise=None)
    view = x.detach().to(memory_format=torch.channels_last)[:, :, 1:, 1:].requires_grad_(True)
    assert not view.is_contiguous() and not view.is_contiguous(memory_format=torch.channels_last)
    y = _compare([view, w, s, None, b], 3, 1, 1, act="lrelu")
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", ["relu", "lrelu"])
def test_nan_propagates_through_activation_and_clamp(act):
    """As in the reference (torch.relu, torch.clamp): a NaN input is not turned into 0 or a
    clamp bound."""
    x, w, s, nz, b = make_inputs(1, 3, 4, 6, 3, requires_grad=False)
    x[0, 1, 2, 3] = float("nan")
    kw = dict(noise=nz, bias=b, padding=1, act=act, clamp=0.5)
    y = modulated_conv2d(x, w, s, impl="triton", **kw)
    y_ref = modulated_conv2d(x, w, s, impl="ref", **kw)
    assert y_ref.isnan().any()
    torch.testing.assert_close(y, y_ref, equal_nan=True, **TOLERANCES[torch.float32])


def test_flip_weight_both_ways():
    inputs = make_inputs(2, 3, 4, 5, 3)
    for flip in (True, False):
        _compare(inputs, 3, 1, 1, flip=flip, act="relu")
    inputs = make_inputs(2, 3, 4, 5, 3, 2, 1)
    _compare(inputs, 3, 2, 1, flip=True, act="relu")


@pytest.mark.parametrize("k,up,down", [(3, 1, 1), (3, 2, 1), (3, 1, 2), (1, 1, 1)])
def test_second_order_matches_ref(k, up, down):
    """An R1-style penalty: differentiate the input gradient's norm w.r.t. everything."""
    inputs = make_inputs(2, 3, 4, 5, k, up, down, style_scale=0.5)
    results = []
    for impl in ("triton", "ref"):
        x, w, s, nz, b = inputs
        y = modulated_conv2d(
            x, w, s, noise=nz, up=up, down=down, padding=k // 2, resample_filter=fir_filter(),
            flip_weight=up == 1, bias=b, act="softplus", fused_modconv=False, impl=impl,
        )
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
        gx, gs = torch.autograd.grad(y, [x, s], dy, create_graph=True)
        penalty = gx.square().sum() + gs.square().sum()
        grads = torch.autograd.grad(penalty, [x, w, s, nz, b], allow_unused=True)
        zipped = zip(grads, inputs, strict=True)
        results.append([torch.zeros_like(t) if g is None else g for g, t in zipped])
    # Through gx and gs: the styles' gradient sums over every pixel, then the convolution.
    y_terms, grad_terms = modconv_terms(inputs[0], inputs[1], k, up, down)
    for got, want in zip(*results, strict=True):
        assert_close(got, want, terms=grad_terms[2] * y_terms)


@pytest.mark.parametrize("k,up,down", [(3, 1, 1), (3, 2, 1), (3, 1, 2)])
def test_float16_with_prenormalisation_matches_float64_ref(k, up, down):
    """float16 activations, float32 weight and styles (as StyleGAN2 keeps them), both so
    large that unnormalised modulated weights would overflow float16."""
    x, w, s, nz, b = make_inputs(2, 8, 4, 6, k, up, down, requires_grad=False)
    w, s = w * 300, s * 300
    results = []
    for dtype, impl in ((torch.float16, "triton"), (torch.float64, "ref")):
        inputs = [x.to(dtype), w.to(torch.float32 if dtype == torch.float16 else dtype),
                  s.to(torch.float32 if dtype == torch.float16 else dtype), nz.to(dtype),
                  b.to(dtype)]
        inputs = [t.requires_grad_() for t in inputs]
        y = modulated_conv2d(
            inputs[0], inputs[1], inputs[2], noise=inputs[3], up=up, down=down, padding=k // 2,
            resample_filter=fir_filter(), flip_weight=up == 1, bias=inputs[4], act="lrelu",
            impl=impl,
        )
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1)).to(y.dtype)
        results.append((y, *torch.autograd.grad(y, inputs, dy)))
    assert results[0][0].dtype == torch.float16
    for got, want in zip(*results, strict=True):
        assert torch.isfinite(got).all()
        assert_close(got, want, torch.float16)


def test_bfloat16_refused_by_the_interpreter():
    x, w, s, _, _ = make_inputs(1, 3, 2, 4, 3, requires_grad=False)
    with pytest.raises(BackendUnavailableError, match="bfloat16"):
        modulated_conv2d(x.bfloat16(), w, s, padding=1, impl="triton")


def test_images_beyond_32_bit_indexing_are_refused():
    """The kernels index within a sample with 32 bits: 2**31 elements per sample are refused
    (an expanded view: the check reads shapes, nothing that large is allocated)."""
    w = torch.randn(4, 512, 3, 3)
    s = torch.randn(1, 512)
    big = torch.randn(1, 1, 1, 1).expand(1, 512, 2048, 2048)  # 2**31 elements
    with pytest.raises(BackendUnavailableError, match="index with 32 bits"):
        modulated_conv2d(big, w, s, padding=1, impl="triton")
    many = torch.randn(1, 1, 1, 1).expand(2**17, 512, 64, 64)  # upsampled: > 2**31 pixels
    with pytest.raises(BackendUnavailableError, match="index with 32 bits"):
        modulated_conv2d(many, w, s.expand(2**17, 512), up=2, padding=1,
                         resample_filter=fir_filter(), flip_weight=False, impl="triton")


def test_no_weight_gradients_skips_only_the_weight():
    inputs = make_inputs(2, 3, 4, 5, 3)
    x, w, s, nz, b = inputs
    y_args = dict(noise=nz, padding=1, bias=b, act="lrelu", impl="triton")
    y = modulated_conv2d(x, w, s, **y_args)
    gx, gw_direct = torch.autograd.grad(y.sum(), [x, w], retain_graph=True)
    with no_weight_gradients():
        gx_inside, gs_inside = torch.autograd.grad(y.sum(), [x, s], retain_graph=True)
        # The weight still gets the (cheap) demodulation part of its gradient, not the
        # convolution's, so it differs from the full gradient.
        (gw_inside,) = torch.autograd.grad(y.sum(), [w])
    assert_close(gx_inside, gx)
    gs_ref = torch.autograd.grad(modulated_conv2d(x, w, s, **{**y_args, "impl": "ref"}).sum(), s)[0]
    assert_close(gs_inside, gs_ref)
    assert not torch.allclose(gw_inside, gw_direct)
    # Written out: the shared weight's convolution is constant (detached), the demodulation
    # coefficients rsqrt(sum_i,k (w s)^2 + 1e-8) still depend on the weight.
    xd, wd, sd, nzd, bd = (t.detach().double() for t in inputs)
    wd.requires_grad_(True)
    conv = F.conv2d(xd * sd[:, :, None, None], wd.detach(), padding=1)
    dcoefs = ((wd[None] * sd[:, None, :, None, None]).square().sum([2, 3, 4]) + 1e-8).rsqrt()
    z = conv * dcoefs[:, :, None, None] + nzd + bd[None, :, None, None]
    (gw_expected,) = torch.autograd.grad((F.leaky_relu(z, 0.2) * 2**0.5).sum(), wd)
    assert_close(gw_inside, gw_expected, torch.float32)


def test_inference_saves_nothing_and_matches():
    inputs = make_inputs(2, 3, 4, 5, 3, requires_grad=False)
    with torch.no_grad():
        y, _ = _run(inputs, 3, 1, 1, "triton", grads=False, act="lrelu", clamp=1.0)
        y_ref, _ = _run(inputs, 3, 1, 1, "ref", grads=False, act="lrelu", clamp=1.0)
    assert_close(y, y_ref)


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_fused_first_order_epilogue_grad_matches_differentiable_path(act):
    """The fused backward kernel against the torch-op backward used under create_graph."""
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 3, 4, generator=g) * 2
    post = torch.rand(2, 5, generator=g) + 0.5
    bias = torch.randn(5, generator=g)
    dy = torch.randn(2, 5, 3, 4, generator=g)
    clamp = 1.5 if act in ("linear", "lrelu", "swish") else -1.0
    for noise in (torch.randn(2, 1, 3, 4, generator=g), torch.randn(1, 5, 1, 4, generator=g)):
        for layout in (torch.contiguous_format, torch.channels_last):
            zl, dyl = z.contiguous(memory_format=layout), dy.contiguous(memory_format=layout)
            got = modulated_conv2d_epilogue_grad(
                dyl, zl, post, noise, bias, act, 0.2, 1.3, clamp, True, True, True
            )
            want = epilogue_backward(
                dyl, zl, post, noise, bias, act, 0.2, 1.3, clamp, (True, True, True, True)
            )
            # Rounding errors live at the scale of the gradients before act' shrinks them
            # (1 - tanh(a)**2 cancels); the outputs sum z.numel() / numel values each.
            linear = epilogue_backward(
                dyl, zl, post, noise, bias, "linear", 0.2, 1.3, -1.0, (True, True, True, True)
            )
            for a, e, lin in zip(got, want, linear, strict=True):
                assert_close(a, e, terms=z.numel() // e.numel(), scale=rms(lin))


def test_fused_modulation_grad_matches_differentiable_path():
    g = torch.Generator().manual_seed(4)
    dxs, x = torch.randn(2, 5, 3, 4, generator=g), torch.randn(2, 5, 3, 4, generator=g)
    pre = torch.randn(2, 5, generator=g)
    got = modulated_conv2d_modulation_grad(dxs, x.to(memory_format=torch.channels_last), pre,
                                           True, True)
    want = modulated_input_grads(dxs, x, pre, True, True)
    assert got[0].is_contiguous(memory_format=torch.channels_last)
    for a, e in zip(got, want, strict=True):
        assert_close(a, e)


def _layout_cases():
    """Activations for each way the kernels read them: channels_last with 16-byte vectors
    (C a multiple of 16), NCHW (pixels fastest), and strided views (element gathers)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 32, 6, 7, generator=g)
    return {
        "channels_last": x.to(memory_format=torch.channels_last),
        "nchw": x,
        "channels_last_cropped": x.to(memory_format=torch.channels_last)[:, :, 1:, 1:],
        "gather": x.transpose(2, 3),  # neither channels nor columns contiguous
        "gather_odd_channels": torch.randn(2, 5, 6, 7, generator=g)[:, :, :, ::2],
    }


@pytest.mark.parametrize(
    "case", ["channels_last", "channels_last_cropped", "nchw", "gather", "gather_odd_channels"]
)
@pytest.mark.parametrize("up,stride", [(1, 1), (2, 1), (1, 2)])
def test_activation_layouts_of_convolution_and_weight_gradient(case, up, stride):
    """Each activation layout of the convolution kernel (and the vectorized and gathered
    loads of the weight gradient) against torch's convolution and its autograd."""
    from gankern.ops.modulated_conv2d_cuda import conv_torch
    from gankern.ops.triton.modulated_conv2d_conv import (
        A_CHANNELS_LAST,
        A_GATHER,
        A_PIXELS_FASTEST,
        activation_layout,
        modconv_conv_triton,
    )
    from gankern.ops.triton.modulated_conv2d_wgrad import modconv_wgrad_triton

    x = _layout_cases()[case]
    expected = A_GATHER
    if case.startswith("channels_last"):
        expected = A_CHANNELS_LAST
    elif case == "nchw":
        expected = A_PIXELS_FASTEST
    assert activation_layout(x, 16) == expected
    g = torch.Generator().manual_seed(8)
    c = x.shape[1]
    w = torch.randn(16, c, 3, 3, generator=g)
    pre = torch.rand(2, c, generator=g) + 0.5
    h, wd = x.shape[2:]
    out_h, out_w = (h * up + 2 - 3) // stride + 1, (wd * up + 2 - 3) // stride + 1
    y, _ = modconv_conv_triton(x, w, None, pre, None, None, None, up, stride, 1, 1, out_h,
                               out_w, 1, 0.0, 1.0, -1.0, False)
    xs = (x * pre[:, :, None, None]).double().requires_grad_(True)
    w64 = w.double().requires_grad_(True)
    want = conv_torch(xs, w64, up, stride, 1, 1, out_h, out_w)
    assert_close(y, want)
    gz = torch.randn(want.shape, generator=g).contiguous(memory_format=output_memory_format(x))
    dw = modconv_wgrad_triton(gz, x, pre, up, stride, 1, 1, 3, 3)
    (dw_want,) = torch.autograd.grad(want, w64, gz.double())
    assert_close(dw, dw_want)


def test_opcheck_custom_ops():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, generator=g, requires_grad=True)
    pre = torch.randn(2, 3, generator=g, requires_grad=True)
    post = torch.rand(2, 4, generator=g, requires_grad=True)
    noise = torch.randn(2, 1, 5, 5, generator=g, requires_grad=True)
    bias = torch.randn(4, generator=g, requires_grad=True)
    conv_args = (x, w, None, pre, post, noise, bias, 1, 1, 1, 1, 5, 5, "lrelu", 0.2, 1.4, 3.0,
                 True, "triton")
    torch.library.opcheck(modulated_conv2d_conv, conv_args)
    wk = w.detach().permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)  # prepared, packed
    up_args = (x, w, wk, pre, None, None, None, 2, 1, 2, 2, 10, 10, "linear", 0.0, 1.0, -1.0,
               False, "triton")
    torch.library.opcheck(modulated_conv2d_conv, up_args)
    z = torch.randn(2, 4, 5, 5, generator=g, requires_grad=True)
    torch.library.opcheck(
        modulated_conv2d_epilogue, (z, post, noise, bias, "swish", 0.0, 1.4, -1.0, "triton")
    )
    gz = torch.randn(2, 4, 3, 3, generator=g, requires_grad=True)
    torch.library.opcheck(modulated_conv2d_wgrad, (gz, x, pre, 1, 2, 0, 0, 3, 3, "triton"))
    dy = torch.randn(2, 4, 5, 5, generator=g)
    torch.library.opcheck(
        modulated_conv2d_epilogue_grad,
        (dy, z.detach(), post.detach(), noise.detach(), bias.detach(), "lrelu", 0.2, 1.4, 3.0,
         True, True, True),
    )
    torch.library.opcheck(
        modulated_conv2d_modulation_grad, (x.detach(), x.detach(), pre.detach(), True, True)
    )


@pytest.mark.slow
def test_torch_compile_fullgraph_forward_and_backward():
    """Dynamo traces the op without graph breaks; AOTAutograd traces its backward (the fused
    backward kernels are custom ops too). aot_eager keeps the test fast on a CPU."""
    inputs = make_inputs(2, 3, 4, 5, 3)

    def layer(x, w, s, nz, b):
        return modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu", clamp=1.0,
                                impl="triton")

    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    y, y_eager = compiled(*inputs), layer(*inputs)
    assert_close(y, y_eager)
    grads = torch.autograd.grad(y.square().sum(), inputs)
    grads_eager = torch.autograd.grad(y_eager.square().sum(), inputs)
    for got, want in zip(grads, grads_eager, strict=True):
        assert_close(got, want)
