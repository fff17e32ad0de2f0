"""upfirdn2d: the reference against scipy, the helpers, the Triton backend (interpreter on
CPU), the custom op's autograd to third order, opcheck, torch.compile, the error messages, and
GPU tests of the Triton and CUDA backends (marked ``cuda``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from testutils import assert_backend_ran, assert_close, requires_cuda, requires_triton_interpreter

from gankern.ops import (
    BackendUnavailableError,
    downsample2d,
    filter2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)
from gankern.ops._upfirdn2d_op import backward_padding, upfirdn2d_op

# ---------------------------------------------------------------------------------------------
# An independent implementation: numpy zero insertion and padding, scipy convolutions.


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _pad4(p):
    if isinstance(p, int):
        return p, p, p, p
    return (p[0], p[0], p[1], p[1]) if len(p) == 2 else tuple(p)


def _pad_axis(a: np.ndarray, p0: int, p1: int, axis: int) -> np.ndarray:
    """Zero-pad (positive) or crop (negative) one axis."""
    a = np.moveaxis(a, axis, -1)
    a = a[..., max(-p0, 0) : a.shape[-1] - max(-p1, 0)]
    a = np.pad(a, [(0, 0)] * (a.ndim - 1) + [(max(p0, 0), max(p1, 0))])
    return np.moveaxis(a, -1, axis)


def _upfirdn_axis(a, h, up, down, p0, p1, axis):
    """One axis with scipy.signal.upfirdn: ``y[o] = full[o * down + len(h) - 1 - p0]``.

    scipy's full convolution of the zero-inserted signal, ``full[k] = sum_m h[m] xu[k - m]``,
    holds every output of the convolution; padding only chooses which of them are kept
    (indices outside ``full`` see only zeros).
    """
    full = scipy.signal.upfirdn(h, a, up=up, down=1, axis=axis)
    n_in = a.shape[axis]
    out = (n_in * up + p0 + p1 - len(h)) // down + 1
    idx = np.arange(out) * down + len(h) - 1 - p0
    valid = (idx >= 0) & (idx < full.shape[axis])
    picked = np.take(full, np.clip(idx, 0, full.shape[axis] - 1), axis=axis)
    shape = [1] * a.ndim
    shape[axis] = out
    return picked * valid.reshape(shape)


def scipy_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1.0):
    """upfirdn2d written independently of gankern, in float64 numpy/scipy."""
    upx, upy = _pair(up)
    downx, downy = _pair(down)
    px0, px1, py0, py1 = _pad4(padding)
    a = x.detach().double().cpu().numpy()
    h = f.detach().double().cpu().numpy()
    if flip_filter:  # correlation = convolution with the flipped filter
        h = h[::-1, ::-1].copy() if h.ndim == 2 else h[::-1].copy()
    if h.ndim == 1:
        a = _upfirdn_axis(a, h, upx, downx, px0, px1, axis=3)
        a = _upfirdn_axis(a, h, upy, downy, py0, py1, axis=2)
        return torch.from_numpy(a * gain)
    n, c, H, W = a.shape
    xu = np.zeros((n, c, H * upy, W * upx))
    xu[:, :, ::upy, ::upx] = a
    xp = _pad_axis(_pad_axis(xu, px0, px1, 3), py0, py1, 2)
    out = np.stack(
        [
            np.stack([scipy.signal.convolve2d(xp[i, j], h, mode="valid") for j in range(c)])
            for i in range(n)
        ]
    )
    return torch.from_numpy(out[:, :, ::downy, ::downx] * gain)


# (x shape, up, down, padding, filter shape, flip_filter, gain): odd sizes, batch 1, per-axis
# factors 1..3, positive, negative and asymmetric padding, 1-D and 2-D filters.
CASES = [
    ((1, 1, 5, 5), 1, 1, 0, (1,), False, 1.0),
    ((2, 3, 7, 6), 1, 1, 1, (3, 3), False, 1.0),
    ((1, 2, 9, 7), 2, 1, [2, 1], (4, 4), False, 4.0),
    ((1, 2, 9, 7), 1, 2, [1, 1], (4, 4), True, 1.0),
    ((2, 1, 6, 8), 3, 1, [1, 2, 0, 3], (5, 3), False, 2.5),
    ((1, 3, 11, 10), 1, 3, [-1, 2, 3, -2], (3, 4), True, 0.5),
    ((1, 2, 8, 9), [2, 3], [1, 2], [0, 1, 2, 3], (5,), False, 1.0),
    ((1, 2, 7, 5), [1, 2], [3, 1], [3, 3, -1, 0], (6,), True, 1.7),
    ((2, 2, 6, 6), 2, 2, [-2, -1, 1, 2], (2, 5), False, 1.0),
    ((1, 1, 13, 4), 1, [1, 2], [2, -1, 0, 0], (1, 3), False, 1.0),
    ((1, 1, 4, 5), 3, 3, 3, (9,), False, 1.0),
]


def _case_inputs(case, dtype=torch.float64, device="cpu"):
    shape, up, down, padding, fshape, flip, gain = case
    x = torch.randn(shape, dtype=torch.float64).to(device=device, dtype=dtype)
    f = torch.randn(fshape, dtype=torch.float64)
    f = f / f.abs().sum()  # keeps values, and gradients of every order, near unit scale
    f = f.to(device=device, dtype=torch.float32 if dtype != torch.float64 else dtype)
    return x, f, dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)


@pytest.mark.parametrize("case", CASES)
def test_ref_matches_scipy(case):
    x, f, kw = _case_inputs(case)
    assert_close(upfirdn2d(x, f, impl="ref", **kw), scipy_upfirdn2d(x, f, **kw))


def test_ref_channels_last_and_strided_views():
    x, f, kw = _case_inputs(CASES[5])
    expected = scipy_upfirdn2d(x, f, **kw)
    assert_close(upfirdn2d(x.to(memory_format=torch.channels_last), f, impl="ref", **kw), expected)
    # A non-contiguous view: every other channel of a wider tensor, and a transposed layout.
    wide = torch.zeros(1, 6, 11, 10, dtype=torch.float64)
    wide[:, ::2] = x
    assert_close(upfirdn2d(wide[:, ::2], f, impl="ref", **kw), expected)
    t = x.transpose(2, 3).contiguous().transpose(2, 3)
    assert_close(upfirdn2d(t, f, impl="ref", **kw), expected)


def test_ref_gain_is_applied_once_for_separable_and_2d_filters():
    x = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    f1 = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64)
    f2 = torch.outer(f1, f1)
    a = upfirdn2d(x, f1, padding=1, gain=3.0, impl="ref")
    b = upfirdn2d(x, f2, padding=1, gain=3.0, impl="ref")
    assert_close(a, b)
    assert_close(a, 3.0 * upfirdn2d(x, f2, padding=1, impl="ref"))


def test_backward_padding_gives_the_adjoint():
    """<A x, y> == <x, A^T y>, with A^T the op with swapped factors, toggled flip and the
    backward padding: checked on the reference, independently of any autograd."""
    for case in CASES:
        x, f, kw = _case_inputs(case)
        upx, upy = _pair(kw["up"])
        downx, downy = _pair(kw["down"])
        px0, px1, py0, py1 = _pad4(kw["padding"])
        y = upfirdn2d(x, f, impl="ref", **kw)
        w = torch.randn_like(y)
        fh, fw = (f.shape[0], f.shape[0]) if f.ndim == 1 else tuple(f.shape)
        p = backward_padding(x.shape[2], x.shape[3], y.shape[2], y.shape[3], fh, fw,
                             upx, upy, downx, downy, px0, py0)
        xt = upfirdn2d(w, f, up=[downx, downy], down=[upx, upy], padding=list(p),
                       flip_filter=not kw["flip_filter"], gain=kw["gain"], impl="ref")
        assert xt.shape == x.shape
        torch.testing.assert_close((y * w).sum(), (x * xt).sum(), rtol=1e-10, atol=1e-10)


GRADCHECK_CASES = [
    ((1, 1, 5, 4), 2, 1, [2, 1], (4, 4), False, 2.0),
    ((1, 2, 4, 5), [2, 3], [1, 2], [0, 1, 2, -1], (5,), True, 1.0),
    ((1, 1, 6, 6), 2, 2, [-2, -1, 1, 2], (2, 3), False, 1.0),
]


@pytest.mark.parametrize("case", GRADCHECK_CASES)
def test_ref_gradcheck_and_gradgradcheck(case):
    x, f, kw = _case_inputs(case)
    x.requires_grad_(True)
    fn = lambda x: upfirdn2d(x, f, impl="ref", **kw)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    # fast_mode: checks the second-order Jacobian along random directions (full is ~100x slower).
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)


def test_ref_gradient_with_respect_to_the_filter():
    x, f, kw = _case_inputs(GRADCHECK_CASES[0])
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: upfirdn2d(x, f, impl="ref", **kw), (f,))


# ---------------------------------------------------------------------------------------------
# Helpers.


@pytest.mark.parametrize("taps", [[1], [1, 1], [1, 2, 1], [1, 3, 3, 1], [1, 4, 6, 4, 1]])
@pytest.mark.parametrize("separable", [False, True])
def test_helper_output_sizes(taps, separable):
    f = setup_filter(taps, separable=separable)
    x = torch.randn(1, 2, 8, 6)
    assert filter2d(x, f).shape == (1, 2, 8, 6)
    assert upsample2d(x, f).shape == (1, 2, 16, 12)
    assert upsample2d(x, f, up=[3, 2]).shape == (1, 2, 16, 18)
    assert downsample2d(x, f).shape == (1, 2, 4, 3)
    assert downsample2d(x, f, down=[2, 1]).shape == (1, 2, 8, 3)
    assert filter2d(x, f, padding=[1, 0, 0, 2]).shape == (1, 2, 10, 7)


def _filter2d_loops(x: np.ndarray, f: np.ndarray, padding=(0, 0, 0, 0)) -> np.ndarray:
    """filter2d written out: ``y[o] = sum_m f[m] x[o + s - m]`` per axis (a true convolution),
    zeros outside x, where f[0] multiplies the sample ``s`` ahead of the output: StyleGAN's
    placement puts the extra tap of an even filter before the centre, so a filter of n taps
    reads ``x[o - n // 2 ... o + (n - 1) // 2]`` and ``s = (n - 1) // 2``: 0 for 2 taps
    (``f0 x[o] + f1 x[o - 1]``), 1 for 4 taps (``f0 x[o + 1] + ... + f3 x[o - 2]``)."""
    shift = {1: 0, 2: 0, 3: 1, 4: 1}
    px0, px1, py0, py1 = padding
    n, c, h, w = x.shape
    fh, fw = f.shape
    y = np.zeros((n, c, h + py0 + py1, w + px0 + px1))
    for oy in range(y.shape[2]):
        for ox in range(y.shape[3]):
            for my in range(fh):
                for mx in range(fw):
                    iy, ix = oy - py0 + shift[fh] - my, ox - px0 + shift[fw] - mx
                    if 0 <= iy < h and 0 <= ix < w:
                        y[:, :, oy, ox] += f[my, mx] * x[:, :, iy, ix]
    return y


@pytest.mark.parametrize("fh, fw", [(2, 2), (4, 4), (2, 4), (4, 2), (1, 4), (3, 2)])
@pytest.mark.parametrize("padding", [0, [1, 0, 2, 1]])
def test_filter2d_places_even_filters_like_stylegan(fh, fw, padding):
    # Asymmetric taps and non-square filters: a one-pixel shift or swapped axes changes y.
    rng = np.random.default_rng(fh * 10 + fw)
    x = rng.standard_normal((1, 2, 5, 6))
    f = rng.uniform(0.5, 2.0, (fh, fw))
    got = filter2d(torch.from_numpy(x), torch.from_numpy(f), padding=padding, impl="ref")
    np.testing.assert_allclose(got.numpy(), _filter2d_loops(x, f, _pad4(padding)), atol=1e-12)
    if fh == fw:  # separable 1-D filters take the same placement
        taps = rng.uniform(0.5, 2.0, fw)
        got = filter2d(torch.from_numpy(x), torch.from_numpy(taps), padding=padding)
        expected = _filter2d_loops(x, np.outer(taps, taps), _pad4(padding))
        np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_setup_filter_makes_float32_from_any_input():
    identity = setup_filter(None, normalize=False)
    assert identity.dtype == torch.float32 and identity.tolist() == [[1.0]]
    f = setup_filter([1, 3, 3, 1])  # integer taps
    assert f.dtype == torch.float32
    assert_close(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    assert setup_filter(np.array([1.0, 2.0]), normalize=False).dtype == torch.float32
    # gain ** (ndim / 2): a separable filter (8 taps or more) applies sqrt(gain) per pass.
    assert_close(setup_filter([1] * 8, gain=9), torch.full((8,), 3 / 8))
    assert_close(setup_filter([1, 1], gain=9), torch.full((2, 2), 9 / 4))


@pytest.mark.parametrize("flip_filter, gain", [(False, 1), (True, 1), (False, 2.5), (True, 0.5)])
def test_helpers_pass_flip_filter_and_gain_on(flip_filter, gain):
    # An asymmetric 4-tap filter: flipping it changes the result. StyleGAN's padding for 4 taps
    # written out: up 2 pads [2, 1], down 2 pads [1, 1], filter2d pads [2, 1].
    x = torch.randn(1, 2, 6, 5, dtype=torch.float64)
    f = torch.tensor([1.0, 2.0, 4.0, 3.0], dtype=torch.float64)
    kw = dict(flip_filter=flip_filter, gain=gain, impl="ref")
    assert_close(upsample2d(x, f, **kw),
                 upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], flip_filter=flip_filter,
                           gain=4 * gain, impl="ref"))
    assert_close(downsample2d(x[:, :, :, :4], f, **kw),
                 upfirdn2d(x[:, :, :, :4], f, down=2, padding=[1, 1, 1, 1], **kw))
    assert_close(filter2d(x, f, **kw), upfirdn2d(x, f, padding=[2, 1, 2, 1], **kw))
    if not flip_filter:  # the default: no flip
        assert_close(upsample2d(x, f, gain=gain), upsample2d(x, f, **kw))
        assert_close(downsample2d(x, f, gain=gain), downsample2d(x, f, **kw))
    assert not torch.allclose(upsample2d(x, f, flip_filter=True), upsample2d(x, f))
    # impl is passed on too: the CUDA backend cannot take CPU tensors.
    for helper in (filter2d, upsample2d, downsample2d):
        with pytest.raises(BackendUnavailableError, match="impl='cuda' unavailable"):
            helper(x.float(), f.float(), impl="cuda")


def test_upsample2d_keeps_a_constant_and_box_filters_give_nearest_and_average():
    f = setup_filter([1, 3, 3, 1])
    y = upsample2d(torch.full((1, 1, 6, 6), 2.5), f)
    assert_close(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], 2.5))
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    box = setup_filter([1, 1]).double()
    assert_close(upsample2d(x, box), F.interpolate(x, scale_factor=2, mode="nearest"))
    assert_close(downsample2d(x[:, :, :4, :6], box), F.avg_pool2d(x[:, :, :4, :6], 2))
    delta = torch.zeros(3, 3, dtype=torch.float64)
    delta[1, 1] = 1
    assert_close(filter2d(x, delta), x)


def test_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    expected = torch.tensor([1.0, 3, 3, 1])
    assert_close(f, torch.outer(expected, expected) / 64)
    assert setup_filter(list(range(1, 9))).shape == (8,)  # 8 taps and more stay separable
    assert_close(setup_filter([1, 2], normalize=False, gain=4), torch.tensor([[4.0, 8], [8, 16]]))
    assert_close(setup_filter([1, 2], normalize=False, separable=True, gain=4),
                 torch.tensor([2.0, 4]))
    assert_close(setup_filter([[1, 2], [3, 4]], normalize=False, flip_filter=True),
                 torch.tensor([[4.0, 3], [2, 1]]))
    assert_close(setup_filter(None), torch.ones(1, 1))
    with pytest.raises(ValueError, match="f must have 0, 1 or 2 dimensions"):
        setup_filter(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="must not be empty"):
        setup_filter([])
    with pytest.raises(ValueError, match="sum to zero"):
        setup_filter([1, -1])


# ---------------------------------------------------------------------------------------------
# Triton in the interpreter (CPU, float32, small shapes) against the reference.

TRITON_CASES = [CASES[1], CASES[2], CASES[3], CASES[4], CASES[5], CASES[7], CASES[8]]


@requires_triton_interpreter
@pytest.mark.parametrize("case", TRITON_CASES)
def test_triton_forward(case):
    x, f, kw = _case_inputs(case, torch.float32)
    expected = upfirdn2d(x, f, impl="ref", **kw)
    y = upfirdn2d(x, f, impl="triton", **kw)
    assert y.is_contiguous()
    assert_close(y, expected)
    y = upfirdn2d(x.to(memory_format=torch.channels_last), f, impl="triton", **kw)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, expected)


@requires_triton_interpreter
def test_triton_multiple_tiles_strided_view_and_no_filter():
    # Wider than one tile along both axes (tiles of 64 columns and 16 rows for NCHW).
    x = torch.randn(1, 1, 20, 70)
    f = setup_filter([1, 3, 3, 1])
    assert_close(upfirdn2d(x, f, padding=[2, 1], impl="triton"),
                 upfirdn2d(x, f, padding=[2, 1], impl="ref"))
    # A non-contiguous view is read in place, and f=None is the identity filter.
    wide = torch.randn(2, 5, 9, 12)
    view = wide[:, 1::2, :, ::2]
    assert_close(upfirdn2d(view, None, up=2, padding=[0, -1, 1, 0], impl="triton"),
                 upfirdn2d(view, None, up=2, padding=[0, -1, 1, 0], impl="ref"))


def _grads_up_to_third_order(x, f, impl, kw):
    """y, then the gradients of three nested scalar functions, as R1-style code builds them."""
    x = x.detach().clone().requires_grad_(True)
    y = upfirdn2d(x, f, impl=impl, **kw)
    (g1,) = torch.autograd.grad(y.sin().sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad((g1 * g1).sum(), x, create_graph=True)
    (g3,) = torch.autograd.grad(g2.cos().sum(), x)
    return y, g1, g2, g3


@requires_triton_interpreter
@pytest.mark.parametrize("case", [CASES[2], CASES[7]])
def test_triton_gradients_to_third_order(case):
    x, f, kw = _case_inputs(case, torch.float32)
    kw["gain"] = 1.0
    got = _grads_up_to_third_order(x, f, "triton", kw)
    want = _grads_up_to_third_order(x, f, "ref", kw)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b)


@requires_triton_interpreter
def test_triton_backward_channels_last():
    x, f, kw = _case_inputs(CASES[3], torch.float32)
    x = x.to(memory_format=torch.channels_last).requires_grad_(True)
    y = upfirdn2d(x, f, impl="triton", **kw)
    w = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, w)
    xr = x.detach().clone().requires_grad_(True)
    (dx_ref,) = torch.autograd.grad(upfirdn2d(xr, f, impl="ref", **kw), xr, w)
    assert_close(dx, dx_ref)


@requires_triton_interpreter
def test_opcheck():
    x = torch.randn(1, 2, 5, 4).to(memory_format=torch.channels_last)
    f = setup_filter([1, 3, 3, 1])
    args = (x, f, 2, 1, 1, 2, 2, 1, 1, 2, False, 2.0, "triton")
    torch.library.opcheck(upfirdn2d_op, args)
    x1 = torch.randn(1, 1, 6, 5, requires_grad=True)
    args = (x1, torch.tensor([1.0, 2.0, 1.0]), 1, 1, 2, 1, 0, 1, -1, 2, True, 1.0, "triton")
    torch.library.opcheck(upfirdn2d_op, args)


@requires_triton_interpreter
def test_torch_compile_fullgraph():
    f = setup_filter([1, 3, 3, 1])

    def step(x):
        return downsample2d(upsample2d(x, f, impl="triton"), f, impl="triton").square().sum()

    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    compiled = torch.compile(step, fullgraph=True)
    loss = compiled(x)
    (dx,) = torch.autograd.grad(loss, x)
    xr = x.detach().clone().requires_grad_(True)
    ref = downsample2d(upsample2d(xr, f, impl="ref"), f, impl="ref").square().sum()
    (dx_ref,) = torch.autograd.grad(ref, xr)
    assert_close(loss, ref)
    assert_close(dx, dx_ref)


# ---------------------------------------------------------------------------------------------
# Errors.

X = torch.zeros(1, 1, 4, 4)
F4 = setup_filter([1, 3, 3, 1])


ERROR_CASES = [
    (dict(x=torch.zeros(1, 4, 4)), ValueError, r"x must have 4 dimensions, got shape \(1, 4, 4\)"),
    (dict(x=X.int()), TypeError, "x must be float16.*got torch.int32"),
    (dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor, got list"),
    (dict(x=torch.zeros(0, 1, 4, 4)), ValueError, "x must not be empty"),
    (dict(f=torch.ones(1, 2, 2)), ValueError, r"f must have 1 or 2 dimensions, got shape"),
    (dict(f=torch.ones(2, 2, device="meta")), ValueError,
     r"f must be on the same device as x \(cpu\), got meta"),
    (dict(f=torch.ones(2, 2).double()), TypeError, "f must be float32 or have x's dtype"),
    (dict(f=torch.ones(0)), ValueError, "f must not be empty"),
    (dict(up=1.5), TypeError, "up must be a positive int"),
    (dict(up=True), TypeError, "up must be a positive int"),
    (dict(up=0), ValueError, "up must be >= 1, got 0"),
    (dict(down=-2), ValueError, "down must be >= 1, got -2"),
    (dict(down=[1, 2, 3]), TypeError, r"down must be a positive int or a pair \[x, y\]"),
    (dict(down=[2, 0]), ValueError, r"down must be >= 1, got \[2, 0\]"),
    (dict(down=[2, 1.5]), TypeError, r"down must be a positive int or a pair \[x, y\]"),
    (dict(padding=[1, 2, 3]), TypeError, r"padding must be an int, \[x, y\] or \[x0, x1"),
    (dict(padding=[1.0, 2]), TypeError, "padding must contain ints"),
    (dict(padding=-3), ValueError, "leave no output for a 4x4 input"),
    (dict(padding=[0, 0, -5, 0]), ValueError, r"output would be -4x1"),
    (dict(flip_filter=1), TypeError, "flip_filter must be a bool, got 1"),
    (dict(gain=float("nan")), ValueError, "gain must be finite"),
    (dict(gain="2"), TypeError, "gain must be a real number, got str"),
    (dict(impl="fast"), ValueError, "impl must be one of"),
]


@pytest.mark.parametrize("kwargs, error, match", ERROR_CASES)
def test_errors(kwargs, error, match):
    args = dict(x=X, f=F4, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="ref")
    args.update(kwargs)
    # Messages naming the argument start with its name (anchored: another name fails).
    with pytest.raises(error, match=f"^{match}" if match.startswith(tuple(kwargs)) else match):
        upfirdn2d(**args)


def test_helper_errors_name_the_helpers_argument():
    with pytest.raises(ValueError, match="^down must be >= 1, got 0"):
        downsample2d(X, F4, down=0)
    with pytest.raises(ValueError, match=r"^up must be >= 1, got \[1, 0\]"):
        upsample2d(X, F4, up=[1, 0])


def test_unavailable_backends_raise_with_the_reason():
    with pytest.raises(BackendUnavailableError, match="impl='cuda' unavailable: inputs are on cpu"):
        upfirdn2d(X, F4, impl="cuda")
    with pytest.raises(BackendUnavailableError, match="supports float32.*got torch.float64"):
        upfirdn2d(X.double(), F4.double(), impl="triton")


def test_filter_requiring_grad_goes_to_the_reference():
    f = F4.clone().requires_grad_(True)
    with pytest.raises(BackendUnavailableError, match="f requires grad"):
        upfirdn2d(X, f, impl="triton")
    y = upfirdn2d(torch.randn(1, 1, 4, 4), f, padding=2)  # auto: the reference, f gets a grad
    y.sum().backward()
    assert f.grad is not None and f.grad.shape == f.shape


@requires_triton_interpreter
def test_op_refuses_a_gradient_for_the_filter():
    f = F4.clone().requires_grad_(True)
    y = upfirdn2d_op(torch.randn(1, 1, 4, 4), f, 1, 1, 1, 1, 2, 1, 2, 1, False, 1.0, "triton")
    with pytest.raises(RuntimeError, match="no gradient for the filter f"):
        y.sum().backward()


# ---------------------------------------------------------------------------------------------
# GPU: Triton and CUDA against the reference in every dtype and both layouts.

GPU_CASES = [
    ((2, 16, 33, 40), 2, 1, [2, 1], (4, 4), False, 1.0),  # upsample2d, the fast path
    ((1, 16, 19, 21), 2, 1, [1, 2, 3, 1], (4, 4), True, 1.0),  # odd padding and sizes
    ((2, 16, 34, 40), 1, 2, [1, 1], (4, 4), False, 1.0),  # downsample2d, the fast path
    ((2, 16, 33, 40), 1, 1, [2, 1], (4, 4), True, 1.0),  # filter2d, the fast path
    ((1, 9, 37, 29), [2, 3], [3, 1], [1, -2, 3, 0], (5, 3), False, 2.0),  # general, tiled
    ((1, 12, 31, 27), 1, 1, [5, 6], (12,), True, 1.0),  # separable 12 taps
    ((1, 3, 70, 70), 1, [4, 3], [30, 30, 40, 40], (41, 37), False, 1.0),  # direct path
]


def _gpu_backends():
    return [
        pytest.param("triton", marks=requires_cuda),
        pytest.param("cuda", marks=requires_cuda),
    ]


@pytest.mark.parametrize("backend", _gpu_backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", GPU_CASES)
def test_gpu_forward(backend, dtype, channels_last, case):
    x, f, kw = _case_inputs(case, dtype, "cuda")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = upfirdn2d(x, f, impl=backend, **kw)
    assert y.dtype == dtype
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last else
                           torch.contiguous_format)
    expected = upfirdn2d(x.float(), f, impl="ref", **kw)
    assert_close(y, expected, dtype=dtype, terms=f.numel())


@pytest.mark.parametrize("backend", _gpu_backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", [GPU_CASES[0], GPU_CASES[2], GPU_CASES[4]])
def test_gpu_gradients(backend, dtype, channels_last, case):
    x, f, kw = _case_inputs(case, dtype, "cuda")
    kw["gain"] = 1.0
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    got = _grads_up_to_third_order(x, f, backend, kw)[:3]
    want = _grads_up_to_third_order(x.float(), f, "ref", kw)[:3]
    # y, then gradients through one and two more filter passes (the adjoints).
    for order, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_close(a, b, dtype=dtype, terms=f.numel() ** (order + 1), msg=f"order {order}")


@requires_cuda
def test_gpu_auto_and_helpers_match_the_reference():
    x = torch.randn(1, 4, 8, 8, device="cuda")
    f = setup_filter([1, 3, 3, 1], device="cuda")
    for helper in (upsample2d, downsample2d, filter2d):
        with assert_backend_ran("upfirdn2d", "cuda"):
            y = helper(x, f)
        assert_close(y, helper(x, f, impl="ref"), terms=f.numel())


@requires_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_gpu_backends_run_on_the_inputs_device_not_the_current_one(backend):
    """Triton launches on the current device: the op must make the input's device current."""
    x = torch.randn(2, 8, 9, 11, device="cuda:1", requires_grad=True)
    f = setup_filter([1, 3, 3, 1], device="cuda:1")
    with torch.cuda.device(0):
        y = upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], impl=backend)
        (dx,) = torch.autograd.grad(y.square().sum(), [x])
    xr = x.detach().cpu().requires_grad_(True)
    yr = upfirdn2d(xr, f.cpu(), up=2, padding=[2, 1, 2, 1], impl="ref")
    (dxr,) = torch.autograd.grad(yr.square().sum(), [xr])
    assert y.device == torch.device("cuda", 1)
    assert_close(y.cpu(), yr)
    assert_close(dx.cpu(), dxr)


def test_launcher_integer_helpers_match_tritons():
    """The launchers' plain-Python cdiv / next_power_of_2 give Triton's own answers."""
    triton = pytest.importorskip("triton")
    from gankern.ops.triton._host import cdiv, next_power_of_2, prev_power_of_2

    for a in range(0, 130):
        assert next_power_of_2(a) == triton.next_power_of_2(a)
        for b in (1, 2, 3, 7, 16, 64):
            assert cdiv(a, b) == triton.cdiv(a, b)
    assert [prev_power_of_2(v) for v in (0, 1, 2, 3, 4, 63, 64, 65)] == [1, 1, 2, 2, 4, 32, 64, 64]
