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
