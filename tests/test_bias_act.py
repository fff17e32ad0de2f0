"""Tests of gankern.ops.bias_act: the reference against elementwise formulas written here in
numpy, gradcheck/gradgradcheck of the reference, the Triton backend (in the interpreter on the
CPU) against the reference to second order, the custom ops (opcheck, torch.compile), every
error message, and (``-m cuda``) both fast backends on a GPU in every dtype and layout.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from bias_act_testutils import away_from_clamp
from testutils import assert_close, requires_cuda, requires_triton_interpreter, rms

from gankern.ops import ACTIVATIONS, BackendUnavailableError, bias_act
from gankern.ops._bias_act_op import (
    bias_act_grad2_op,
    bias_act_grad_db_op,
    bias_act_grad_op,
    bias_act_op,
)

ACTS = sorted(ACTIVATIONS)

# ---------------------------------------------------------------------------------------
# The specification, written independently: numpy, float64.

# SELU's constants (Klambauer et al., 2017).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
# StyleGAN2-ADA's defaults: gain sqrt(2) for relu, lrelu and swish; lrelu slope 0.2.
DEFAULT_GAIN = {"relu": math.sqrt(2), "lrelu": math.sqrt(2), "swish": math.sqrt(2)}
DEFAULT_ALPHA = 0.2


def numpy_activation(act: str, z: np.ndarray, alpha: float) -> np.ndarray:
    if act == "linear":
        return z
    if act == "relu":
        return np.where(z > 0, z, 0.0)
    if act == "lrelu":
        return np.where(z > 0, z, alpha * z)
    if act == "tanh":
        return np.tanh(z)
    if act == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if act == "elu":
        return np.where(z > 0, z, np.expm1(z))
    if act == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(z))
    if act == "softplus":
        return np.logaddexp(0.0, z)
    if act == "swish":
        return z / (1.0 + np.exp(-z))
    raise AssertionError(act)


def numpy_bias_act(x, b, dim, act, alpha=None, gain=None, clamp=None) -> np.ndarray:
    z = x.detach().double().numpy()
    if b is not None:
        shape = [1] * z.ndim
        shape[dim] = -1
        z = z + b.detach().double().numpy().reshape(shape)
    alpha = DEFAULT_ALPHA if alpha is None else alpha
    gain = DEFAULT_GAIN.get(act, 1.0) if gain is None else gain
    y = numpy_activation(act, z, alpha) * gain
    return y if clamp is None else np.clip(y, -clamp, clamp)


def _layout_cases():
    """(name, x, dim): odd sizes, batch 1, dim != 1, channels_last, non-contiguous views."""
    base = torch.randn(2, 6, 5, 7, dtype=torch.float64) * 2
    return [
        ("nchw", base, 1),
        ("batch1", torch.randn(1, 3, 4, 5, dtype=torch.float64), 1),
        ("channels_last", base.to(memory_format=torch.channels_last), 1),
        ("strided_view", base[:, ::2, 1:, ::3], 1),
        ("transposed", base.transpose(1, 3), 1),
        ("dim2", base, 2),
        ("dim_last", torch.randn(3, 4, 9, dtype=torch.float64), -1),
        ("dim0", torch.randn(5, 3, dtype=torch.float64), 0),
        ("vector", torch.randn(7, dtype=torch.float64), 0),
        ("fc", torch.randn(4, 11, dtype=torch.float64), 1),
    ]


@pytest.mark.parametrize("act", ACTS)
def test_reference_matches_numpy_formulas(act):
    for name, x, dim in _layout_cases():
        b = torch.randn(x.shape[dim], dtype=torch.float64)
        for bias, kwargs in [
            (b, {}),
            (None, {}),
            (b, {"clamp": 0.7, "gain": 1.7}),
            (b, {"alpha": 0.05, "gain": -0.5}),
        ]:
            y = bias_act(x, bias, dim=dim, act=act, impl="ref", **kwargs)
            expected = numpy_bias_act(x, bias, dim % x.ndim, act, **kwargs)
            assert y.shape == x.shape, name
            assert_close(y, torch.from_numpy(expected))
    y = bias_act(_layout_cases()[2][1], None, act=act, impl="ref")
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("clamp", [None, 0.5], ids=["no_clamp", "clamp"])
def test_reference_gradcheck_and_gradgradcheck(act, clamp):
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def f(x, b):
        return bias_act(x, b, act=act, clamp=clamp, impl="ref")

    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))


# ---------------------------------------------------------------------------------------
# The fast backends against the reference, to second order.


def all_orders(impl, x, b, w, dim=1, **kwargs):
    """Output, first derivatives and second derivatives of ``R = |dx|^2 + |db|^2``.

    ``dx, db`` are the gradients of ``sum(y * w)``, as R1 regularization differentiates the
    gradient once more; R is differentiated wrt x, b and w. Missing gradients are zeros.
    """
    x = x.detach().requires_grad_(True)
    b = b.detach().requires_grad_(True)
    w = w.detach().requires_grad_(True)
    y = bias_act(x, b, dim=dim, impl=impl, **kwargs)
    dx, db = torch.autograd.grad((y * w).sum(), [x, b], create_graph=True)
    penalty = dx.float().square().sum() + db.float().square().sum()
    second = torch.autograd.grad(penalty, [x, b, w], allow_unused=True)
    second = [
        torch.zeros_like(t) if g is None else g for g, t in zip(second, [x, b, w], strict=True)
    ]
    return [y, dx, db, *second]


def check_against_reference(impl, x, b, dim=1, tolerance_dtype=None, **kwargs):
    x = away_from_clamp(
        x, b, dim, kwargs["act"], gain=kwargs.get("gain"), clamp=kwargs.get("clamp")
    )
    w = torch.randn(x.shape, dtype=x.dtype, device=x.device)  # contiguous even if x is not
    fast = all_orders(impl, x, b, w, dim, **kwargs)
    ref = all_orders("ref", x.float(), b.float(), w.float(), dim, **kwargs)
    names = ["y", "dx", "db", "d2/dx", "d2/db", "d2/dw"]
    # db sums this many values per channel, and every second derivative depends on db.
    per_channel = x.numel() // max(x.shape[dim], 1)
    scales = _uncancelled_scales(ref, w, dim, kwargs["act"], kwargs.get("gain"), per_channel)
    for name, got, want, scale in zip(names, fast, ref, scales, strict=True):
        terms = 1 if name in ("y", "dx") else per_channel
        try:
            assert_close(got, want, dtype=tolerance_dtype or x.dtype, terms=terms,
                         scale=max(rms(want), scale) or None)
        except AssertionError as exc:
            raise AssertionError(f"{impl} {kwargs}: {name} differs from the reference") from exc
    return fast[0]


def _uncancelled_scales(ref, w, dim, act, gain, per_channel):
    """The scale of each compared tensor with act' and act'' bounded by 1 (0 for y).

    The fast backends read the derivatives off the saved, rounded output with cancelling
    formulas (``1 - y**2``, ``s (1 - s)``): their rounding errors are at the scale of the
    products those derivatives multiply, which a saturated activation can make much
    larger than the result (see testutils.assert_close's scale). Sums over a channel's
    ``per_channel`` values grow that scale by their square root (random signs).
    """
    gain = ACTIVATIONS[act].def_gain if gain is None else gain
    shape = [-1 if i == dim % w.ndim else 1 for i in range(w.ndim)]
    wg = w.double() * gain
    dx_db = ref[1].double() + ref[2].double().reshape(shape)
    d2x = rms(2 * dx_db * wg)
    return [0.0, rms(wg), per_channel**0.5 * rms(wg), d2x, per_channel**0.5 * d2x,
            rms(2 * dx_db * gain)]


@requires_triton_interpreter
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_triton_matches_reference_to_second_order(act, channels_last):
    x = torch.randn(2, 5, 3, 7) * 2
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    b = torch.randn(5)
    for kwargs in ({}, {"clamp": 0.6, "gain": 1.3}):
        y = check_against_reference("triton", x, b, act=act, **kwargs)
        assert y.stride() == x.stride()


@requires_triton_interpreter
def test_triton_other_dims_views_and_several_programs():
    base = torch.randn(3, 7, 11, 13)  # 3003 elements: several programs of 1024
    cases = [
        (base, 1),
        (base, 3),
        (base.permute(0, 2, 3, 1), -1),  # dense, dimension order N, H, W, C
        (base[:, 1::2, :, ::2], 1),  # not dense: made dense first
        (torch.randn(6, 9), 1),
        (torch.randn(4, 5, 8), 0),
    ]
    for x, dim in cases:
        b = torch.randn(x.shape[dim])
        for act in ("swish", "tanh"):  # derivatives from x + b, and from the saved y
            check_against_reference("triton", x, b, dim=dim, act=act, clamp=0.9)
    y = bias_act(base, None, act="lrelu", impl="triton")
    assert_close(y, bias_act(base, None, act="lrelu", impl="ref"))


@requires_triton_interpreter
def test_triton_64_bit_indexing_agrees_with_32_bit():
    from gankern.ops.triton.bias_act import bias_act_elementwise

    x = torch.randn(2, 3, 5, 7).to(memory_format=torch.channels_last)
    b = torch.randn(3)
    dy = torch.randn_like(x)
    for act in ("softplus", "swish"):
        idx = ACTIVATIONS[act].cuda_idx
        saved = {"x": x} if act == "swish" else {"y": bias_act(x, b, act=act, impl="ref")}
        xs, ys = saved.get("x"), saved.get("y")
        for mode, src, dys in ((0, x, None), (1, dy, None), (2, dy, dy)):
            outs = [
                bias_act_elementwise(
                    src, b, xs, ys, dys, mode, 1, idx, 0.2, 1.0, 0.8, force_index_64=wide
                )
                for wide in (False, True)
            ]
            torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


@requires_triton_interpreter
@pytest.mark.parametrize("programs", [1024, 3], ids=["one_tile_each", "several_tiles_each"])
def test_triton_gradient_kernel_sums_db_for_every_geometry(programs):
    """The fused MODE_GRAD kernel: dx and db (its partial sums reduced) against torch sums.

    Geometries: NCHW planes (channel per row), channels_last and a last-dimension bias
    (channel per column), one channel, planes shorter than a tile; with ``programs=3``
    every program walks several tiles, and the 64-bit offsets must agree with 32-bit ones.
    """
    from gankern.ops._bias_act_op import db_geometry, reduce_db_partials
    from gankern.ops.triton.bias_act import bias_act_elementwise, bias_act_grad_db

    base = torch.randn(3, 7, 11, 13)
    cases = [
        (base, 1),
        (base.to(memory_format=torch.channels_last), 1),
        (base, 3),
        (torch.randn(2, 1, 40, 60), 1),
        (torch.randn(37, 5, 2, 3), 1),
        (torch.randn(300, 10), 1),
    ]
    for x, dim in cases:
        b = torch.randn(x.shape[dim])
        dy = torch.randn_like(x)
        for act in ("swish", "tanh"):
            idx = ACTIVATIONS[act].cuda_idx
            y = bias_act(x, b, dim=dim, act=act, clamp=0.9, impl="ref")
            xs, ys = (x, None) if act == "swish" else (None, y)
            want = bias_act_elementwise(dy, b, xs, ys, None, 1, dim, idx, 0.2, 1.3, 0.9)
            geometry = db_geometry(x, dim)
            outs = []
            for wide in (False, True):
                dx, part = bias_act_grad_db(
                    dy, b, xs, ys, geometry, idx, 0.2, 1.3, 0.9, programs=programs,
                    force_index_64=wide,
                )  # fmt: skip
                torch.testing.assert_close(dx, want, rtol=0, atol=0)
                assert dx.stride() == x.stride()
                db = reduce_db_partials(part, geometry, x.dtype)
                sums = want.double().sum([i for i in range(x.ndim) if i != dim])
                assert_close(db, sums)
                outs.append(db)
            torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_fast_division_matches_integer_division():
    from gankern.ops.triton.bias_act import fast_div_params

    rng = np.random.default_rng(0)
    divisors = [1, 2, 3, 7, 255, 256, 1000, 65537, 2**30, 2**31 - 1]
    divisors += [int(d) for d in rng.integers(1, 2**31, 200)]
    for d in divisors:
        magic, shift = fast_div_params(d)
        n = rng.integers(0, 2**31, 500, dtype=np.uint64)
        n = np.concatenate([n, np.array([0, d - 1, d, d + 1, 2**31 - 1], dtype=np.uint64)])
        n %= np.uint64(2**31)
        q = (((n * np.uint64(magic)) >> np.uint64(32)) + n) >> np.uint64(shift)
        np.testing.assert_array_equal(q, n // np.uint64(d), err_msg=f"divisor {d}")
    with pytest.raises(ValueError, match="divisor"):
        fast_div_params(0)


# ---------------------------------------------------------------------------------------
# The custom ops: opcheck and torch.compile.


@requires_triton_interpreter
@pytest.mark.parametrize(
    "act, clamp, channels_last, with_bias",
    [("swish", -1.0, False, True), ("tanh", 0.8, True, True), ("linear", 0.5, False, False)],
)
def test_opcheck(act, clamp, channels_last, with_bias):
    x = torch.randn(2, 3, 4, 5)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    b = torch.randn(3) if with_bias else None
    args = (1, act, 0.2, 1.4, clamp, "triton")
    y = bias_act_op(x, b, *args)
    dy = torch.randn(2, 3, 4, 5)
    torch.library.opcheck(bias_act_op, (x.detach().requires_grad_(), b, *args))
    torch.library.opcheck(
        bias_act_grad_op, (dy.detach().requires_grad_(), x.detach().requires_grad_(), b, y, *args)
    )
    torch.library.opcheck(
        bias_act_grad_db_op,
        (dy.detach().requires_grad_(), x.detach().requires_grad_(), b, y, *args),
    )
    # The second derivative is the last one: no autograd formula, so inputs without grad.
    torch.library.opcheck(bias_act_grad2_op, (torch.randn_like(dy), dy, x, b, y, *args))


@requires_triton_interpreter
def test_torch_compile_fullgraph_forward_and_backward():
    def loss(x, b):
        return bias_act(x, b, act="lrelu", clamp=1.5, impl="triton").square().sum()

    x = torch.randn(2, 3, 4, 5, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    compiled = torch.compile(loss, fullgraph=True, backend="inductor")
    got = compiled(x, b)
    got_grads = torch.autograd.grad(got, [x, b])

    def reference(x, b):
        return bias_act(x, b, act="lrelu", clamp=1.5, impl="ref").square().sum()

    want = reference(x, b)
    want_grads = torch.autograd.grad(want, [x, b])
    assert_close(got, want)
    for g, r in zip(got_grads, want_grads, strict=True):
        assert_close(g, r)


# ---------------------------------------------------------------------------------------
# Errors.


def test_bad_x_raises():
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        bias_act([1.0, 2.0])
    with pytest.raises(
        TypeError, match="x must be float16, bfloat16, float32 or float64, got torch.int64"
    ):
        bias_act(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"x must not be empty, got shape \(2, 0, 3\)"):
        bias_act(torch.ones(2, 0, 3), dim=0)
    with pytest.raises(ValueError, match=r"x is 0-d \(a scalar\)"):  # no dim to add b along
        bias_act(torch.tensor(1.0), torch.zeros(1))


def test_bad_b_raises():
    x = torch.randn(2, 3, 4)
    with pytest.raises(TypeError, match="b must be a torch.Tensor, got ndarray"):
        bias_act(x, np.zeros(3))
    with pytest.raises(ValueError, match=r"b must have 1 dimensions, got shape \(1, 3\)"):
        bias_act(x, torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"b must have length x.shape\[1\] = 3, got shape \(4,\)"):
        bias_act(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"b must have length x.shape\[2\] = 4, got shape \(3,\)"):
        bias_act(x, torch.zeros(3), dim=-1)
    with pytest.raises(
        TypeError, match="b must have the same dtype as x .torch.float32., got torch.float64"
    ):
        bias_act(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(
        TypeError, match="b must be float16, bfloat16, float32 or float64, got torch.int32"
    ):
        bias_act(x, torch.zeros(3, dtype=torch.int32))


def test_bad_act_dim_and_numbers_raise():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="act must be one of .*got 'gelu'"):
        bias_act(x, act="gelu")
    with pytest.raises(ValueError, match="act must be one of .*got None"):
        bias_act(x, act=None)
    with pytest.raises(
        ValueError, match=r"dim must be in \[-2, 1\] for x of shape \(2, 3\), got 2"
    ):
        bias_act(x, dim=2)
    with pytest.raises(TypeError, match="dim must be an integer, got 1.0"):
        bias_act(x, dim=1.0)
    with pytest.raises(TypeError, match="dim must be an integer, got True"):
        bias_act(x, dim=True)
    with pytest.raises(ValueError, match="clamp must be >= 0.0, got -1.0"):
        bias_act(x, clamp=-1)
    with pytest.raises(ValueError, match="gain must be finite, got nan"):
        bias_act(x, gain=float("nan"))
    with pytest.raises(ValueError, match="gain must be finite, got inf"):
        bias_act(x, gain=math.inf)
    with pytest.raises(ValueError, match="alpha must be finite, got -inf"):
        bias_act(x, act="lrelu", alpha=-math.inf)
    with pytest.raises(TypeError, match="gain must be a real number, got str"):
        bias_act(x, gain="2")
    with pytest.raises(ValueError, match="clamp must be finite, got inf"):
        bias_act(x, clamp=math.inf)


def test_bad_or_unavailable_impl_raises(monkeypatch):
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="impl must be one of .*got 'fast'"):
        bias_act(x, impl="fast")
    with pytest.raises(BackendUnavailableError, match="impl='cuda' unavailable: inputs are on cpu"):
        bias_act(x, impl="cuda")
    with pytest.raises(BackendUnavailableError, match="impl='triton' unavailable: .*float64"):
        bias_act(x.double(), impl="triton")
    with pytest.raises(BackendUnavailableError, match="negative alpha"):
        bias_act(x, act="lrelu", alpha=-0.1, impl="triton")
    monkeypatch.setenv("GANKERN_IMPL", "fastest")
    with pytest.raises(ValueError, match="GANKERN_IMPL must be one of .*got 'fastest'"):
        bias_act(x)


def test_auto_fallback_warns_once_and_points_at_the_caller(monkeypatch):
    from gankern.ops import _backend

    monkeypatch.setattr(_backend, "_warned", set())
    registry = {
        "cuda": (lambda *inputs: "no extension", None),
        "triton": (lambda *inputs: f"not for {inputs[0]}", None),
    }
    cuda = torch.device("cuda")  # a device object only: select_impl reads its type
    with pytest.warns(RuntimeWarning) as record:
        for _ in range(3):
            assert _backend.select_impl("op", "auto", registry, ("x",), cuda) == "ref"
    assert len(record) == 1
    assert str(record[0].message) == (
        "gankern.ops.op: impl='auto' fell back to 'ref' (cuda: no extension; triton: not for x)"
    )
    assert record[0].filename == __file__


def test_auto_keeps_cpu_inputs_on_the_reference_silently():
    x = torch.randn(2, 3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = bias_act(x, torch.ones(3, dtype=torch.float64), act="relu")
    assert_close(y, torch.from_numpy(numpy_bias_act(x, torch.ones(3), 1, "relu")))


@requires_triton_interpreter
def test_custom_op_and_kernel_reject_bad_calls():
    from gankern.ops.triton.bias_act import bias_act_elementwise

    x = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="backend must be one of .*got 'bogus'"):
        bias_act_op(x, None, 1, "relu", 0.0, 1.0, -1.0, "bogus")
    with pytest.raises(ValueError, match="act must be one of .*got 'gelu'"):
        bias_act_op(x, None, 1, "gelu", 0.0, 1.0, -1.0, "triton")
    with pytest.raises(ValueError, match="y .the saved output. is required"):
        bias_act_grad_op(x, x, None, None, 1, "tanh", 0.0, 1.0, -1.0, "triton")
    with pytest.raises(ValueError, match="x must have src's dtype, shape and strides"):
        bias_act_elementwise(x, None, x.transpose(0, 2).contiguous().transpose(0, 2), None, None,
                             1, 1, 9, 0.0, 1.0, -1.0)  # fmt: skip
    with pytest.raises(ValueError, match="src must be dense"):
        bias_act_elementwise(x[:, ::2], None, None, None, None, 0, 1, 1, 0.0, 1.0, -1.0)
    with pytest.raises(ValueError, match="b must be a contiguous vector of length 3"):
        bias_act_elementwise(x, torch.ones(4), None, None, None, 0, 1, 1, 0.0, 1.0, -1.0)


@requires_cuda
def test_device_mismatch_raises():
    x = torch.randn(2, 3, device="cuda")
    with pytest.raises(ValueError, match="b must be on the same device as x .cuda:0., got cpu"):
        bias_act(x, torch.zeros(3))


# ---------------------------------------------------------------------------------------
# GPU: both fast backends, every dtype and layout, to second order.


@requires_cuda
@pytest.mark.parametrize("impl", ["triton", "cuda"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_gpu_backends_match_reference(impl, dtype, channels_last):
    x = (torch.randn(4, 24, 9, 13, device="cuda") * 2).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    b = torch.randn(24, device="cuda").to(dtype)
    for act in ACTS:
        for kwargs in ({}, {"clamp": 0.45, "gain": 1.3}):
            y = check_against_reference(impl, x, b, act=act, **kwargs)
            assert y.dtype == dtype and y.stride() == x.stride()


@requires_cuda
@pytest.mark.parametrize("impl", ["triton", "cuda"])
def test_gpu_backends_odd_sizes_misaligned_views_and_large_tensors(impl):
    storage = torch.randn(3 * 5 * 7 * 11 + 1, device="cuda")
    misaligned = storage[1:].view(3, 5, 7, 11)  # dense, 4 bytes past an aligned address
    big = torch.randn(8, 64, 33, 65, device="cuda")  # ~1.1M elements, many blocks
    cases = [
        (misaligned, 1),
        (misaligned, 3),
        (big.to(memory_format=torch.channels_last), 1),
        (big[:, ::3], 1),
        (torch.randn(1, 1, 1, 1, device="cuda"), 1),
        (torch.randn(513, 7, device="cuda", dtype=torch.float16), 0),
    ]
    for x, dim in cases:
        b = torch.randn(x.shape[dim], device="cuda", dtype=x.dtype)
        for act in ("swish", "selu"):
            check_against_reference(impl, x, b, dim=dim, act=act, clamp=2.0)


# ---------------------------------------------------------------------------------------
# Several GPUs: Triton launches on the current device, so the ops must make the inputs'
# device current (a device-1 tensor launched on device 0 is an illegal memory access).

requires_two_gpus = pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="needs two CUDA GPUs"
)


def test_on_device_of_makes_the_inputs_device_current(monkeypatch):
    from types import SimpleNamespace

    from gankern.ops._device import on_device_of

    entered = []

    class RecordingDevice:  # stands in for torch.cuda.device: records the switch
        def __init__(self, device):
            self.device = device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", RecordingDevice)
    with on_device_of(SimpleNamespace(device=torch.device("cuda", 1))):
        pass
    assert entered == [torch.device("cuda", 1)]
    for t in (SimpleNamespace(device=torch.device("cuda", 0)), torch.zeros(1)):
        with on_device_of(t):  # already current, or not a CUDA tensor: nothing to switch
            pass
    assert entered == [torch.device("cuda", 1)]


@requires_cuda
@requires_two_gpus
@pytest.mark.parametrize("impl", ["triton", "cuda"])
def test_gpu_backends_run_on_the_inputs_device_not_the_current_one(impl):
    x = torch.randn(4, 8, 5, 7, device="cuda:1", requires_grad=True)
    b = torch.randn(8, device="cuda:1", requires_grad=True)
    with torch.cuda.device(0):
        y = bias_act(x, b, act="swish", clamp=2.0, impl=impl)
        dx, db = torch.autograd.grad(y.square().sum(), [x, b])
    xr, br = x.detach().cpu().requires_grad_(True), b.detach().cpu().requires_grad_(True)
    yr = bias_act(xr, br, act="swish", clamp=2.0, impl="ref")
    dxr, dbr = torch.autograd.grad(yr.square().sum(), [xr, br])
    assert y.device == torch.device("cuda", 1)
    for got, want in ((y, yr), (dx, dxr), (db, dbr)):
        assert_close(got.cpu(), want)


def test_clamp_zero_clamps_everything():
    # clamp >= 0 clamps to [-clamp, clamp], 0 included (all zeros); None is off.
    x = torch.randn(3, 4, dtype=torch.float64) * 5
    assert torch.all(bias_act(x, act="linear", clamp=0, impl="ref") == 0)
    assert_close(bias_act(x, act="linear", clamp=None, impl="ref"), x)
