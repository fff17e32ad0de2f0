"""The CUDA kernel of bias_act (csrc/kernels/bias_act.cu), run on the CPU by its host emulator.

tests/cuda_emulation/bias_act_emulator.cu compiles the kernel source with nvcc as host code
and runs the per-thread function of every thread of the grid; the results are compared with
the reference's values and autograd derivatives, computed in float32 from the same inputs.
This checks the kernel's arithmetic, its vectorized and scalar paths, the bias indexing for
any dense layout and the grid-stride loops without a GPU. Skipped if nvcc is not on PATH.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from bias_act_testutils import away_from_clamp, reference_all_orders
from testutils import assert_close, rms

from gankern.ops._activations import ACTIVATIONS

REPO = Path(__file__).resolve().parent.parent
EMULATOR = REPO / "tests" / "cuda_emulation" / "bias_act_emulator.cu"
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
FORWARD, GRAD, GRAD2 = 0, 1, 2


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    lib = tmp_path_factory.mktemp("bias_act_emulator") / "libbias_act_emulator.so"
    cmd = [
        nvcc, "-shared", "-Xcompiler", "-fPIC", "-std=c++17", "-O0",
        "-I", str(REPO / "csrc"), str(EMULATOR), "-o", str(lib),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"building the emulator failed:\n{result.stderr}"
    library = ctypes.CDLL(str(lib))
    library.gankern_bias_act_emulate.restype = ctypes.c_int
    library.gankern_bias_act_emulate.argtypes = (
        [ctypes.c_int] + [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
        + [ctypes.c_float] * 3 + [ctypes.c_int64, ctypes.c_int]
    )  # fmt: skip
    library.gankern_bias_act_vectorized.restype = ctypes.c_int
    library.gankern_bias_act_vectorized.argtypes = [ctypes.c_void_p] * 5
    return library


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def emulate(lib, mode, src, b, x, y, dy, dim, act, alpha, gain, clamp, threads=0, wide=False):
    """What ``launch_bias_act`` computes, as the bindings would call it (same-layout tensors)."""
    out = torch.empty_like(src)
    size = src.shape[dim]
    stride = src.stride(dim) if size > 1 else 1
    err = lib.gankern_bias_act_emulate(
        DTYPE_CODES[src.dtype], out.data_ptr(), src.data_ptr(),
        _ptr(b), _ptr(x), _ptr(y), _ptr(dy), src.numel(), stride, size, mode,
        ACTIVATIONS[act].cuda_idx, alpha, gain, clamp, threads, int(wide),
    )  # fmt: skip
    assert err == 0, f"emulated launch returned cudaError {err}"
    return out


def check_all_modes(lib, x, b, dim, act, clamp=None, gain=None, threads=0, wide=False):
    spec = ACTIVATIONS[act]
    x = away_from_clamp(x, b, dim, act, gain=gain, clamp=clamp)
    dy = torch.randn_like(x)
    d_dx = torch.randn_like(x)
    clamp_value = -1.0 if clamp is None else clamp
    y_ref, dx_ref, d_x_ref, args = reference_all_orders(x, b, dy, d_dx, dim, act, None, gain, clamp)
    common = dict(dim=dim, act=act, alpha=args.alpha, gain=args.gain, clamp=clamp_value)
    y = emulate(lib, FORWARD, x, b, None, None, None, threads=threads, wide=wide, **common)
    assert_close(y, y_ref, dtype=x.dtype)
    # The saved tensors, as bias_act saves them: x for swish, else the output y.
    x_saved = x if spec.ref == "x" else None
    y_saved = y if spec.ref == "y" or clamp is not None else None
    # The derivatives are read off the saved (rounded) output with cancelling formulas such
    # as 1 - y**2: their rounding errors live at the scale of the incoming gradients, not of
    # the (possibly much smaller) result (see testutils.assert_close's scale).
    dy64, d_dx64 = dy.double() * args.gain, d_dx.double()
    dx = emulate(lib, GRAD, dy, b, x_saved, y_saved, None, threads=threads, wide=wide, **common)
    assert_close(dx, dx_ref, dtype=x.dtype, scale=max(rms(dx_ref), rms(dy64)))
    d_x = emulate(lib, GRAD2, d_dx, b, x_saved, y_saved, dy, threads=threads, wide=wide, **common)
    assert_close(d_x, d_x_ref, dtype=x.dtype, scale=max(rms(d_x_ref), rms(d_dx64 * dy64)))


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_all_modes_match_reference(emulator, act, channels_last):
    x = torch.randn(2, 6, 3, 5) * 2
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    b = torch.randn(6)
    check_all_modes(emulator, x, b, 1, act)
    check_all_modes(emulator, x, b, 1, act, clamp=0.6, gain=1.3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("act", ["lrelu", "tanh", "swish"])
def test_half_precision(emulator, dtype, act):
    x = (torch.randn(3, 8, 4, 4) * 2).to(dtype)
    b = torch.randn(8).to(dtype)
    # 0.45 rounds down in both dtypes: a clamped y (0.4497..) is below the clamp, and the
    # kernel must still see it as clamped (it compares with the clamp rounded to the dtype).
    assert float(torch.tensor(0.45, dtype=dtype)) < 0.45
    check_all_modes(emulator, x, b, 1, act, clamp=0.45)


@pytest.mark.parametrize("wide", [False, True], ids=["index32", "index64"])
def test_grid_stride_loops_tails_and_index_width(emulator, wide):
    # 3 threads walk 4 * 7 * 5 * 3 = 420 elements: every loop runs many times, the scalar tail
    # takes 420 % 4 elements, and the 64-bit path must agree with the 32-bit one.
    x = torch.randn(4, 7, 5, 3)
    b = torch.randn(5)
    check_all_modes(emulator, x, b, 2, "swish", clamp=0.9, threads=3, wide=wide)
    check_all_modes(emulator, x, b, 2, "elu", threads=3, wide=wide)


def test_misaligned_pointers_take_the_scalar_path(emulator):
    storage = torch.randn(2 * 5 * 9 + 1)
    x = storage[1:].view(2, 5, 9)  # dense, but 4 bytes past a 16-byte boundary
    assert emulator.gankern_bias_act_vectorized(x.data_ptr(), x.data_ptr(), None, None, None) == 0
    aligned = torch.randn(2, 5, 9)
    assert (
        emulator.gankern_bias_act_vectorized(
            aligned.data_ptr(), aligned.data_ptr(), None, None, None
        )
        == 1
    )
    check_all_modes(emulator, x, torch.randn(5), 1, "sigmoid", clamp=0.5)


@pytest.mark.parametrize("dim", [0, 2, 3])
def test_other_dims_and_layouts(emulator, dim):
    x = torch.randn(3, 4, 5, 6).permute(0, 2, 3, 1)  # dense, dimension order N, H, W, C
    b = torch.randn(x.shape[dim])
    check_all_modes(emulator, x, b, dim, "softplus")
    check_all_modes(emulator, x, None, dim, "selu", clamp=0.8)


def test_bad_parameters_are_refused(emulator):
    x = torch.randn(4, 3)
    out = torch.empty_like(x)

    def call(mode=0, act=1, n=12, dy=None):
        return emulator.gankern_bias_act_emulate(
            0, out.data_ptr(), x.data_ptr(), None, None, None, _ptr(dy), n, 1, 3, mode, act,
            0.2, 1.0, -1.0, 0, 0,
        )  # fmt: skip

    invalid = 1  # cudaErrorInvalidValue
    assert call() == 0
    assert call(mode=3) == invalid
    assert call(act=0) == invalid
    assert call(act=10) == invalid
    assert call(n=0) == invalid
    assert call(mode=2) == invalid  # grad2 without dy
    assert call(mode=2, dy=x) == 0


@pytest.mark.parametrize("act", ["relu", "lrelu", "elu", "selu"])
def test_kinks_take_torchs_one_sided_derivatives(emulator, act):
    # At z = 0 exactly (zero inputs, no bias) the derivatives must pick the side torch picks.
    x = torch.tensor([[-1.5, -0.25, 0.0, 0.0, 0.5, 2.0, 0.0, -0.0]]).repeat(3, 1)
    check_all_modes(emulator, x, None, 1, act)


# ---------------------------------------------------------------------------------------
# The first derivative with the bias gradient's partial sums (launch_bias_act_grad_db).


def emulate_grad_db(lib, dy, b, x, y, dim, act, alpha, gain, clamp):
    """``(dx, db, vectorized)`` as the binding and gankern.ops._bias_act_op compute them."""
    from gankern.ops._bias_act_op import db_geometry, reduce_db_partials

    geometry = db_geometry(dy, dim)
    rows, cols, channels, channel_is_col = geometry
    out = torch.full_like(dy, float("nan"))
    vec = ctypes.c_int(0)
    common = (_ptr(b), _ptr(x), _ptr(y))
    groups = lib.gankern_bias_act_grad_db_plan(
        DTYPE_CODES[dy.dtype], out.data_ptr(), dy.data_ptr(), *common, rows, cols, channels,
        int(channel_is_col), ACTIVATIONS[act].cuda_idx, ctypes.byref(vec),
    )  # fmt: skip
    assert groups > 0
    part = torch.full((groups, cols) if channel_is_col else (rows, groups), float("nan"))
    err = lib.gankern_bias_act_grad_db_emulate(
        DTYPE_CODES[dy.dtype], out.data_ptr(), dy.data_ptr(), *common, part.data_ptr(), rows,
        cols, channels, int(channel_is_col), ACTIVATIONS[act].cuda_idx, alpha, gain, clamp,
    )  # fmt: skip
    assert err == 0, f"emulated launch returned cudaError {err}"
    assert not part.isnan().any(), "a partial sum was not written, or read unwritten shared memory"
    return out, reduce_db_partials(part, geometry, dy.dtype), bool(vec.value)


@pytest.fixture(scope="module")
def grad_db_lib(emulator):
    emulator.gankern_bias_act_grad_db_plan.restype = ctypes.c_int64
    emulator.gankern_bias_act_grad_db_plan.argtypes = (
        [ctypes.c_int] + [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
        + [ctypes.c_void_p]
    )  # fmt: skip
    emulator.gankern_bias_act_grad_db_emulate.restype = ctypes.c_int
    emulator.gankern_bias_act_grad_db_emulate.argtypes = (
        [ctypes.c_int] + [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
        + [ctypes.c_float] * 3
    )  # fmt: skip
    return emulator


# (x, dim, 16-byte path expected for float32): NCHW planes (channel per row) long and short,
# channels_last and a last-dimension bias (channel per column), one channel, a column count
# that is no multiple of the pack, a misaligned view.
_STORAGE = torch.randn(4 * 6 * 12 * 10 + 1)
GRAD_DB_CASES = {
    "nchw": (torch.randn(3, 8, 12, 12), 1, True),
    "nchw_short_planes": (torch.randn(5, 6, 2, 2), 1, True),
    "channels_last": (torch.randn(3, 8, 5, 7).to(memory_format=torch.channels_last), 1, True),
    "last_dim": (torch.randn(300, 12), 1, True),
    "one_channel": (torch.randn(2, 1, 9, 13), 1, False),
    "odd_columns": (torch.randn(40, 7, 3, 3), 1, False),
    "many_channels_odd": (torch.randn(9, 37), 1, False),
    "misaligned_dy": (torch.randn(4, 6, 12, 10), 1, False),
}


@pytest.mark.parametrize("case", list(GRAD_DB_CASES))
@pytest.mark.parametrize("act", ["tanh", "swish"])
def test_grad_db_matches_grad_and_sums(grad_db_lib, case, act):
    x, dim, vectorized = GRAD_DB_CASES[case]
    b = torch.randn(x.shape[dim])
    clamp = 0.9
    x = away_from_clamp(x, b, dim, act, gain=1.3, clamp=clamp)
    dy = torch.randn_like(x)
    if case == "misaligned_dy":  # dense, but 4 bytes past a 16-byte boundary
        dy = _STORAGE[1:].view(dy.shape).copy_(dy)
    y = emulate(grad_db_lib, FORWARD, x, b, None, None, None, dim, act, 0.2, 1.3, clamp)
    saved = (x, None) if act == "swish" else (None, y)
    want = emulate(grad_db_lib, GRAD, dy, b, *saved, None, dim, act, 0.2, 1.3, clamp)
    dx, db, vec = emulate_grad_db(grad_db_lib, dy, b, *saved, dim, act, 0.2, 1.3, clamp)
    assert vec == vectorized
    torch.testing.assert_close(dx, want, rtol=0, atol=0)
    assert_close(db, want.double().sum([i for i in range(x.ndim) if i != dim]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_grad_db_half_precision_sums_before_rounding(grad_db_lib, dtype):
    x = (torch.randn(4, 16, 6, 8) * 2).to(dtype)
    dy = torch.randn_like(x)
    for layout in (torch.contiguous_format, torch.channels_last):
        xl, dyl = x.contiguous(memory_format=layout), dy.contiguous(memory_format=layout)
        b = torch.randn(16).to(dtype)
        y = emulate(grad_db_lib, FORWARD, xl, b, None, None, None, 1, "lrelu", 0.2, 1.4, -1.0)
        dx, db, vec = emulate_grad_db(grad_db_lib, dyl, None, None, y, 1, "lrelu", 0.2, 1.4, -1.0)
        assert vec
        g = dyl.double() * 1.4 * torch.where(y.double() > 0, 1.0, 0.2)
        assert_close(dx, g, dtype)
        assert_close(db, g.sum([0, 2, 3]), dtype)


def test_grad_db_refuses_bad_geometry(grad_db_lib):
    x = torch.randn(4, 6)
    vec = ctypes.c_int(0)

    def plan(rows, cols, channels, col, act=1, xs=None, b=None):
        return grad_db_lib.gankern_bias_act_grad_db_plan(
            0, x.data_ptr(), x.data_ptr(), _ptr(b), _ptr(xs), None, rows, cols, channels, col,
            act, ctypes.byref(vec),
        )  # fmt: skip

    assert plan(4, 6, 6, 1) > 0
    assert plan(4, 6, 4, 1) == 0  # a column per channel, but 6 columns for 4 channels
    assert plan(4, 6, 3, 0) == 0  # 4 rows are no whole number of 3 channel planes
    assert plan(4, 6, 6, 1, act=ACTIVATIONS["swish"].cuda_idx) == 0  # swish without x, b
    assert plan(4, 6, 6, 1, act=ACTIVATIONS["swish"].cuda_idx, xs=x, b=x[0]) > 0
