"""The CUDA kernels of upfirdn2d, run on the CPU by a host emulator, against the reference.

tests/cuda_emulation/upfirdn2d_emulator.cu includes csrc/kernels/upfirdn2d.cu and runs its
per-block code (staging into shared memory, then computing) and its kernel selection on the
host, thread by thread. This checks the kernels' indexing, tiling, padding and dtype handling
on machines without a GPU; the GPU tests in test_upfirdn2d.py check the real launches.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from testutils import assert_close

from gankern.ops._upfirdn2d_op import filter_size, output_memory_format, output_size
from gankern.ops.upfirdn2d import _check_args, setup_filter, upfirdn2d_ref

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = ROOT / "tests" / "cuda_emulation" / "upfirdn2d_emulator.cu"
DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}
PATHS = {0: "up2_filter4", 1: "down2_filter4", 2: "filter4", 3: "tiled_general", 4: "direct"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    lib = tmp_path_factory.mktemp("upfirdn2d_emulator") / "emulator.so"
    cmd = [nvcc, "-std=c++17", "-O2", "-shared", "-Xcompiler", "-fPIC",
           "-I", str(ROOT / "csrc"), "-x", "cu", str(EMULATOR), "-o", str(lib)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    fn = ctypes.CDLL(str(lib)).gankern_upfirdn2d_emulate
    i32, ptr = ctypes.c_int, ctypes.c_void_p
    fn.argtypes = (
        [ptr, ptr, ptr] + [i32] * 6 + [ptr, ptr] + [i32] * 10 + [ctypes.c_float, i32, ptr]
    )
    fn.restype = i32
    return fn


def _embedded(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a strided view inside NaN-filled storage: a read outside it would show."""
    n, c, h, w = x.shape
    fmt = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and c > 1 \
        else torch.contiguous_format
    big = torch.full((n, c + 2, h + 3, w + 5), float("nan"), dtype=x.dtype)
    big = big.contiguous(memory_format=fmt)
    view = big[:, 1 : c + 1, 1 : h + 1, 3 : w + 3]
    view.copy_(x)
    return view


def _emulate(fn, x, f, up, down, padding, flip_filter, gain):
    args = _check_args(x, f, up, down, padding, flip_filter, gain)
    fh, fw = filter_size(f)
    out_h, out_w = output_size(x.shape[2], x.shape[3], fh, fw, args.upx, args.upy, args.downx,
                               args.downy, args.padx0, args.padx1, args.pady0, args.pady1)
    y = torch.full((x.shape[0], x.shape[1], out_h, out_w), float("nan"), dtype=x.dtype)
    y = y.contiguous(memory_format=output_memory_format(x))
    taps = f.float().contiguous()
    sx = (ctypes.c_int64 * 4)(*x.stride())
    sy = (ctypes.c_int64 * 4)(*y.stride())
    vector_blocks = ctypes.c_int(0)
    path = fn(x.data_ptr(), taps.data_ptr(), y.data_ptr(), *x.shape, out_h, out_w, sx, sy,
              args.upx, args.upy, args.downx, args.downy, args.padx0, args.pady0, fh, fw,
              int(f.ndim == 1), int(flip_filter), args.gain, DTYPE_CODES[x.dtype],
              ctypes.byref(vector_blocks))
    _emulate.vector_blocks = vector_blocks.value  # blocks that staged with 16-byte vectors
    return y, PATHS[path], args


F4 = setup_filter([1, 3, 3, 1])

# (x shape, channels_last, up, down, padding, filter, flip, the kernel dispatch must choose)
CASES = [
    ((2, 3, 9, 70), False, 2, 1, [2, 1], F4, False, "up2_filter4"),
    ((1, 40, 9, 10), True, 2, 1, [2, 1], F4, True, "up2_filter4"),
    ((1, 2, 9, 11), False, 2, 1, [1, 2, 3, 1], torch.randn(4, 4), False, "up2_filter4"),
    ((1, 9, 5, 6), True, 2, 1, [-1, 0, 1, 0], F4, False, "up2_filter4"),
    ((2, 3, 37, 9), False, 1, 2, [1, 1], F4, False, "down2_filter4"),
    ((1, 40, 10, 19), True, 1, 2, [2, -1, 0, 1], F4, False, "down2_filter4"),
    ((1, 2, 35, 67), False, 1, 1, [2, 1, 1, 2], F4, True, "filter4"),
    ((1, 33, 7, 10), True, 1, 1, [-1, 2, 1, -1], torch.randn(4, 4), False, "filter4"),
    ((2, 3, 9, 7), False, 3, 2, [1, -2, 3, 0], torch.randn(3, 5), False, "tiled_general"),
    ((1, 9, 8, 9), True, [2, 3], [1, 2], [0, 1, 2, 3], torch.randn(5), True, "tiled_general"),
    ((1, 3, 12, 11), True, 2, 1, [-3, -2], torch.randn(4), False, "up2_filter4"),  # separable
    ((1, 2, 37, 70), False, 1, [4, 3], [30, 30, 40, 40], torch.randn(41, 37), False, "direct"),
    ((1, 8, 30, 30), True, 1, [4, 3], [20, 20, 30, 30], torch.randn(31, 27), True, "direct"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(CASES)])
def test_emulated_cuda_kernels_match_the_reference(emulator, case):
    shape, channels_last, up, down, padding, f, flip, expected_path = case
    x = torch.randn(shape)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        xd = _embedded(x.to(dtype))
        y, path, args = _emulate(emulator, xd, f, up, down, padding, flip, 1.5)
        assert path == expected_path
        assert not y.isnan().any(), "an output was not written, or read outside the input"
        assert_close(y, upfirdn2d_ref(xd.float(), f, args), dtype=dtype, terms=f.numel())


def _aligned_view(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` inside NaN-filled storage, 16-byte aligned for 16- and 32-bit elements: 8 extra
    elements before and after along the contiguous axis (columns, or channels)."""
    n, c, h, w = x.shape
    if channels_last:
        big = torch.full((n, c + 16, h, w), float("nan"), dtype=x.dtype)
        big = big.contiguous(memory_format=torch.channels_last)
        view = big[:, 8 : c + 8]
    else:
        big = torch.full((n, c, h, w + 16), float("nan"), dtype=x.dtype)
        view = big[:, :, :, 8 : w + 8]
    view.copy_(x)
    return view


# (x shape, channels_last, up, down, padding, the kernel dispatch must choose): every tile
# size of the fast paths; vectors inside the input, element-wise reads where a vector would
# cross its edge (or the last channel).
VECTOR_CASES = [
    ((1, 2, 40, 200), False, 2, 1, [2, 1], "up2_filter4"),  # 128 x 32 tiles
    ((1, 2, 72, 24), False, 2, 1, [2, 1], "up2_filter4"),  # 64 x 64 tiles
    ((1, 1, 96, 16), False, 2, 1, [2, 1], "up2_filter4"),  # 32 x 64 tiles
    ((1, 32, 40, 72), True, 1, 2, [1, 1], "down2_filter4"),  # 16 x 8 x 16 channels
    ((1, 2, 160, 136), False, 1, 2, [1, 1], "down2_filter4"),  # 32 x 32 tiles
    ((1, 16, 30, 40), True, 2, 1, [2, 1], "up2_filter4"),
    ((1, 16, 30, 40), True, 1, 1, [2, 1], "filter4"),
]


@pytest.mark.parametrize(
    "case", VECTOR_CASES, ids=[f"{c[-1]}-{i}" for i, c in enumerate(VECTOR_CASES)]
)
def test_interior_blocks_stage_with_vector_loads(emulator, case):
    """Aligned inputs stage with 16-byte vectors (element-wise where a vector would cross the
    input's edge) and compute the reference (a NaN read from outside the view would show)."""
    shape, channels_last, up, down, padding, expected_path = case
    x = torch.randn(shape)
    for dtype in (torch.float32, torch.float16):
        xd = _aligned_view(x.to(dtype), channels_last)
        y, path, args = _emulate(emulator, xd, F4, up, down, padding, False, 1.5)
        assert path == expected_path
        assert _emulate.vector_blocks > 0, "no block staged its window with vector loads"
        assert not y.isnan().any(), "an output was not written, or read outside the input"
        assert_close(y, upfirdn2d_ref(xd.float(), F4, args), dtype=dtype, terms=F4.numel())
    # Misaligned by one element: every block stages element by element, same result.
    xm = _embedded(x)
    y, _, args = _emulate(emulator, xm, F4, up, down, padding, False, 1.5)
    assert _emulate.vector_blocks == 0
    assert_close(y, upfirdn2d_ref(xm, F4, args), terms=F4.numel())
