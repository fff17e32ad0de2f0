"""conv2d_resample against a plain composition: zero insertion, pad, FIR, conv, FIR, subsample."""

import contextlib
import itertools

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_backend_ran, assert_close, requires_cuda, requires_triton_interpreter

from gankern.ops import (
    conv2d_resample,
    downsample2d,
    no_weight_gradients,
    setup_filter,
    upsample2d,
)


def _fir_valid(x, f2, flip_filter):
    """Per-channel 'valid' 2-D FIR as an explicit sum over taps (convolution unless flipped)."""
    if not flip_filter:
        f2 = f2.flip([0, 1])
    fh, fw = f2.shape
    h, w = x.shape[2] - fh + 1, x.shape[3] - fw + 1
    out = torch.zeros(x.shape[0], x.shape[1], h, w, dtype=x.dtype)
    for i in range(fh):
        for j in range(fw):
            out = out + f2[i, j] * x[:, :, i : i + h, j : j + w]
    return out


def _pad_or_crop(x, x0, x1, y0, y1):
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]


def reference(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """The definition, one step at a time, with StyleGAN2's filter-centring pads."""
    if f is None:
        f2 = torch.ones(1, 1, dtype=x.dtype)
    else:
        f2 = (torch.outer(f, f) if f.ndim == 1 else f).to(x.dtype)
    fh, fw = f2.shape
    x0, x1, y0, y1 = [padding] * 4 if isinstance(padding, int) else padding
    if up > 1:
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
        zeros = torch.zeros(x.shape[0], x.shape[1], x.shape[2] * up, x.shape[3] * up, dtype=x.dtype)
        zeros[:, :, ::up, ::up] = x
        x = zeros
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    x = _pad_or_crop(x, x0, x1, y0, y1)
    if up > 1:
        x = _fir_valid(x, f2 * up**2, flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = _fir_valid(x, f2, flip_filter)[:, :, ::down, ::down]
    return x


@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_matches_reference(up, down):
    filters = [torch.randn(4, 3, dtype=torch.float64), setup_filter([1, 3, 3, 1]).double(), None]
    kernels = [(1, 1), (3, 3), (3, 2)]
    paddings = [0, 1, [1, 0, 2, -1]]
    for f, (kh, kw), groups, flip_weight, flip_filter, padding in itertools.product(
        filters, kernels, [1, 2], [True, False], [True, False], paddings
    ):
        x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
        w = torch.randn(6, 4 // groups, kh, kw, dtype=torch.float64)
        args = (x, w, f, up, down, padding, groups, flip_weight, flip_filter)
        assert_close(conv2d_resample(*args, impl="ref"), reference(*args))


def test_separable_filter_and_float32_channels_last():
    x = torch.randn(1, 3, 9, 8).to(memory_format=torch.channels_last)
    w = torch.randn(5, 3, 3, 3)
    f = setup_filter([1, 2, 5, 6, 6, 5, 2, 1], separable=True)
    for up, down in [(2, 1), (1, 2), (2, 2)]:
        out = conv2d_resample(x, w, f, up=up, down=down, padding=1)
        assert_close(out, reference(x.contiguous(), w, f, up, down, 1, 1, True, False))


def test_interior_equals_upsample_conv_downsample():
    """Away from the borders, the fused op is upsample2d -> conv2d -> downsample2d."""
    x = torch.randn(2, 4, 10, 10, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    up = conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)
    assert up.shape == (2, 3, 20, 20)
    composed = F.conv2d(upsample2d(x, f), w.flip([2, 3]), padding=1)
    assert_close(up[:, :, 3:-3, 3:-3], composed[:, :, 3:-3, 3:-3])
    down = conv2d_resample(x, w, f, down=2, padding=1)
    assert down.shape == (2, 3, 5, 5)
    composed = downsample2d(F.conv2d(x, w, padding=1), f)
    assert_close(down[:, :, 1:-1, 1:-1], composed[:, :, 1:-1, 1:-1])


def test_gradcheck_and_gradgradcheck_float64():
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    for up, down in [(2, 1), (1, 2)]:

        def fn(x, w, up=up, down=down):
            return conv2d_resample(x, w, f, up=up, down=down, padding=1, groups=2, impl="ref")

        assert torch.autograd.gradcheck(fn, (x, w))
        assert torch.autograd.gradgradcheck(fn, (x, w))


def test_penalty_gradients_under_no_weight_gradients():
    """The R1-style penalty's weight gradients equal those of plain autograd on the reference."""
    f = setup_filter([1, 3, 3, 1]).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    w1 = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(2, 4, 3, 3, dtype=torch.float64, requires_grad=True)

    def penalty(net, skip):
        xr = x.clone().requires_grad_()
        out = net(xr).sum()
        with no_weight_gradients(skip):  # the inner backward only
            (grad,) = torch.autograd.grad(out, xr, create_graph=True)
        value = grad.square().sum()
        return value, torch.autograd.grad(value, (w1, w2))

    def fused(xr):
        h = torch.tanh(conv2d_resample(xr, w1, f, up=2, padding=1, flip_weight=False))
        return conv2d_resample(h, w2, f, down=2, padding=1)

    def plain(xr):
        h = torch.tanh(reference(xr, w1, f, 2, 1, 1, 1, False, False))
        return reference(h, w2, f, 1, 2, 1, 1, True, False)

    value, grads = penalty(fused, True)
    value_ref, grads_ref = penalty(plain, False)
    # Sums over the upsampled pixels, the filter's 16 taps and the second layer's fan-in.
    terms = 2 * 12 * 12 * 16 * (2 * 3 * 3)
    assert_close(value, value_ref, terms=terms)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref, terms=terms)


@requires_triton_interpreter
def test_impl_is_passed_to_upfirdn2d_triton():
    """impl="triton" runs the filtering in the Triton interpreter; gradients to 2nd order."""
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    for up, down in [(2, 1), (1, 2)]:
        outs = []
        for impl in ("triton", "ref"):
            y = conv2d_resample(x, w, f, up=up, down=down, padding=1, impl=impl)
            gx, gw = torch.autograd.grad(y.square().sum(), (x, w), create_graph=True)
            (ggw,) = torch.autograd.grad(gx.square().sum(), w)
            outs.append((y, gx, gw, ggw))
        for a, b in zip(*outs, strict=True):
            assert_close(a, b)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("up, down", [(1, 1), (2, 1), (1, 2)])
def test_cuda_dtypes(dtype, up, down):
    f = setup_filter([1, 3, 3, 1], device="cuda")
    x = torch.randn(2, 8, 16, 16, device="cuda")
    w = torch.randn(4, 8, 3, 3, device="cuda") / 8
    expected = reference(x.double().cpu(), w.double().cpu(), f.double().cpu(), up, down, 1, 1,
                         up == 1, False)
    terms = 8 * 3 * 3 * (16 if up > 1 or down > 1 else 1)  # Cin * taps, times the filter's
    for impl in ("auto", "ref"):
        with contextlib.ExitStack() as stack:
            if impl == "auto" and (up > 1 or down > 1):
                stack.enter_context(assert_backend_ran("upfirdn2d", "cuda"))
            out = conv2d_resample(x.to(dtype), w.to(dtype), f, up=up, down=down, padding=1,
                                  flip_weight=(up == 1), impl=impl)
        assert out.dtype == dtype and out.device.type == "cuda"
        assert_close(out.cpu(), expected, dtype, terms=terms)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(x=torch.randn(4, 5, 5)), ValueError, "x must have 4 dimensions"),
        (dict(w=torch.randn(3, 4, 3)), ValueError, "w must have 4 dimensions"),
        (dict(w=torch.randn(3, 2, 3, 3)), ValueError, "x must have w.shape.1. \\* groups = 2"),
        (dict(w=torch.randn(3, 2, 3, 3), groups=2), ValueError, "divisible by groups=2"),
        (dict(w=torch.randn(3, 4, 3, 3).double()), TypeError, "w must have the same dtype"),
        (dict(up=0), ValueError, "up must be >= 1"),
        (dict(down=1.5), TypeError, "down must be an int"),
        (dict(padding=[1, 2, 3]), TypeError, "padding must be"),
        (dict(flip_weight=1), TypeError, "flip_weight must be a bool"),
        (dict(f=torch.ones(2, 2, 2)), ValueError, "f must have 1 or 2 dimensions"),
        (dict(padding=-4), ValueError, "leave no output"),
        (dict(impl="fast"), ValueError, "impl must be one of"),
    ],
)
def test_errors(kwargs, error, match):
    args = dict(x=torch.randn(2, 4, 5, 5), w=torch.randn(3, 4, 3, 3), f=setup_filter([1, 3, 3, 1]))
    args.update(kwargs)
    if "up" not in kwargs and "down" not in kwargs:
        args["down"] = 2
    with pytest.raises(error, match=match):
        conv2d_resample(**args)
