"""Triton weight gradient of the modulated convolution (implicit GEMM, split over K).

For the convolution of :mod:`gankern.ops.triton.modulated_conv2d_conv` (input ``x``,
modulation ``pre``, zero insertion ``U``, stride ``S``, padding ``PY, PX``) and the gradient
``g [N, O, OH, OW]`` of its output ``z``::

    dw[o, c, ky, kx] = sum_{n, oy, ox} g[n, o, oy, ox] * pre[n, c]
                                       * xu[n, c, oy*S + ky - PY, ox*S + kx - PX]

Per tap this is a GEMM ``[O, K] x [K, C]`` whose reduction runs over ``K = N * OH * OW``
output pixels. For ``U > 1`` only the pixels with ``oy + ky - PY`` divisible by ``U`` meet a
non-zero input, so the reduction enumerates just those (a ``1 / U**2`` share of them). The
long reduction is split into ``SPLIT`` chunks (one program each, written to a float32 buffer
and summed afterwards: deterministic, no atomics) so that small ``O x C`` problems such as
ToRGB still fill the GPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gankern.ops._backend import triton_interpreter_enabled
from gankern.ops.triton._host import cdiv
from gankern.ops.triton.modulated_conv2d_conv import _clip_pow2, dot_precision


@triton.jit
def _modconv_wgrad_kernel(
    g_ptr, x_ptr, pre_ptr, dw_ptr,
    N, C, H, W, O, OH, OW, KW, PAD_Y, PAD_X, SPLIT, K_PER_SPLIT,
    sgn, sgo, sgh, sgw,
    sxn, sxc, sxh, sxw,
    spn, spc,
    sds, sdo, sdc, sdh, sdw,
    UP: tl.constexpr,
    STRIDE: tl.constexpr,
    HAS_PRE: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    TAPS: tl.constexpr,
    G_VEC: tl.constexpr,  # g's output channels contiguous, O % BLOCK_M == 0, pixel strides % 8
    X_VEC: tl.constexpr,  # x's input channels contiguous, C % BLOCK_N == 0, pixel strides % 8
):
    # One axis of programs, taps fastest, then channel tiles: the programs that read the
    # same g tile and overlapping (shifted) x tiles run side by side, so each input comes
    # from DRAM about once and the other taps' reads hit L2.
    pid = tl.program_id(0)
    tap = pid % TAPS
    rest = pid // TAPS
    num_c = tl.cdiv(C, BLOCK_N)
    pid_c = rest % num_c
    rest = rest // num_c
    num_o = tl.cdiv(O, BLOCK_M)
    pid_o = rest % num_o
    split = rest // num_o
    ky = tap // KW
    kx = tap % KW

    # The output pixels that meet a real (not inserted) input pixel through this tap.
    oy0 = ((PAD_Y - ky) % UP + UP) % UP
    ox0 = ((PAD_X - kx) % UP + UP) % UP
    ph = (OH - oy0 + UP - 1) // UP
    pw = (OW - ox0 + UP - 1) // UP
    phw = tl.maximum(ph * pw, 1)
    pw_safe = tl.maximum(pw, 1)
    k_start = split * K_PER_SPLIT
    k_end = tl.minimum(k_start + K_PER_SPLIT, N * ph * pw)

    offs_o = tl.max_contiguous(
        tl.multiple_of(pid_o * BLOCK_M + tl.arange(0, BLOCK_M), BLOCK_M), BLOCK_M
    )
    offs_c = tl.max_contiguous(
        tl.multiple_of(pid_c * BLOCK_N + tl.arange(0, BLOCK_N), BLOCK_N), BLOCK_N
    )
    o_ok = offs_o < O
    c_ok = offs_c < C
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        k_ok = kk < k_end
        n = tl.where(k_ok, kk // phw, 0)
        rem = kk - n * phw
        oy = (rem // pw_safe) * UP + oy0
        ox = (rem % pw_safe) * UP + ox0
        iy_num = oy * STRIDE + ky - PAD_Y
        ix_num = ox * STRIDE + kx - PAD_X
        iy = iy_num // UP
        ix = ix_num // UP
        x_ok = k_ok & (iy_num >= 0) & (iy < H) & (ix_num >= 0) & (ix < W)
        g_off = tl.where(k_ok, n.to(tl.int64) * sgn + oy * sgh + ox * sgw, 0)
        if G_VEC:  # 16-byte vectors of output channels, no channel mask
            g_off = tl.multiple_of(g_off, 8)
            a = tl.load(g_ptr + offs_o[:, None] + g_off[None, :], mask=k_ok[None, :], other=0.0)
        else:
            a = tl.load(
                g_ptr + offs_o[:, None] * sgo + g_off[None, :],
                mask=o_ok[:, None] & k_ok[None, :],
                other=0.0,
            )
        x_off = tl.where(x_ok, n.to(tl.int64) * sxn + iy * sxh + ix * sxw, 0)
        if X_VEC:  # 16-byte vectors of input channels, no channel mask
            x_off = tl.multiple_of(x_off, 8)
            b = tl.load(x_ptr + x_off[:, None] + offs_c[None, :], mask=x_ok[:, None], other=0.0)
        else:
            b = tl.load(
                x_ptr + x_off[:, None] + offs_c[None, :] * sxc,
                mask=x_ok[:, None] & c_ok[None, :],
                other=0.0,
            )
        if HAS_PRE:
            s = tl.load(
                pre_ptr + n[:, None] * spn + offs_c[None, :] * spc,
                mask=k_ok[:, None] & c_ok[None, :],
                other=0.0,
            )
            b = (b.to(tl.float32) * s).to(x_ptr.dtype.element_ty)
        acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)

    dw_off = split * sds + offs_o[:, None] * sdo + offs_c[None, :] * sdc + ky * sdh + kx * sdw
    tl.store(dw_ptr + dw_off, acc, mask=o_ok[:, None] & c_ok[None, :])


def modconv_wgrad_triton(
    g: torch.Tensor,
    x: torch.Tensor,
    pre: torch.Tensor | None,
    up: int,
    stride: int,
    pad_y: int,
    pad_x: int,
    kh: int,
    kw: int,
) -> torch.Tensor:
    """Weight gradient ``[O, C, kh, kw]`` in float32 (see the module docstring).

    ``g`` and ``x`` share a dtype; ``up > 1`` requires ``stride == 1``.
    """
    n, c, h, w = x.shape
    _, o, out_h, out_w = g.shape
    k_max = n * (-(-out_h // up)) * (-(-out_w // up))
    if triton_interpreter_enabled():
        block_m, block_n, block_k = _clip_pow2(o, 16, 64), _clip_pow2(c, 16, 64), 32
        split, num_warps, num_stages = 1, 4, 1
    else:
        if x.dtype == torch.float32 and dot_precision(x.dtype) == "ieee":
            # Full float32 products on the FMA units: 128-wide tiles spill on sm_90 (see
            # tests/test_triton_sm90_compile.py, which compiles these configurations).
            # 8 warps whatever the tile: with 4, even 32 x 16 tiles spill.
            block_m, block_n, block_k = _clip_pow2(o, 16, 64), _clip_pow2(c, 16, 64), 16
            num_warps = 8
        else:
            # Tensor cores; half-precision tiles 128 x 128 x 64 spill on sm_90.
            block_m, block_n, block_k = _clip_pow2(o, 16, 128), _clip_pow2(c, 16, 128), 32
            num_warps = 8 if block_m * block_n >= 64 * 64 else 4
        tiles = cdiv(o, block_m) * cdiv(c, block_n) * kh * kw
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count
        # Enough programs for ~4 waves, but keep every chunk at least 8 K-steps long.
        split = max(1, min(cdiv(4 * sms, tiles), cdiv(k_max, 8 * block_k)))
        num_stages = 3
    k_per_split = cdiv(cdiv(k_max, split), block_k) * block_k
    dw = torch.empty((split, o, c, kh, kw), dtype=torch.float32, device=x.device)
    grid = (cdiv(o, block_m) * cdiv(c, block_n) * kh * kw * split,)
    _modconv_wgrad_kernel[grid](
        g, x, pre if pre is not None else x, dw,
        n, c, h, w, o, out_h, out_w, kw, pad_y, pad_x, split, k_per_split,
        *g.stride(),
        *x.stride(),
        *(pre.stride() if pre is not None else (0, 0)),
        *dw.stride(),
        UP=up,
        STRIDE=stride,
        HAS_PRE=pre is not None,
        DOT_PRECISION=dot_precision(x.dtype),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        TAPS=kh * kw,
        G_VEC=_channels_vectorizable(g, block_m),
        X_VEC=_channels_vectorizable(x, block_n),
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return dw[0] if split == 1 else dw.sum(0)


def _channels_vectorizable(t: torch.Tensor, block: int) -> bool:
    """Channels contiguous, a whole number of ``block``-channel tiles, pixel strides that
    keep every pixel's channels 16-byte aligned (in elements: multiples of 8)."""
    if t.stride(1) != 1 or t.shape[1] % block:
        return False
    return all(t.stride(d) % 8 == 0 or t.shape[d] == 1 for d in (0, 2, 3))
