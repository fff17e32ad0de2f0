"""Triton kernel of ``upfirdn2d``: direct computation, no zero-inserted intermediate.

Along one axis (the other is alike), with ``F`` the correlation filter (``f`` flipped unless
``flip_filter``), the op computes ``y[o] = gain * sum_t F[t] * xu[o * down + t - pad0]`` where
``xu`` is the zero-inserted input (``xu[k] = x[k / up]`` when ``up`` divides ``k``). Only the
taps with ``o * down + t - pad0`` divisible by ``up`` contribute, and which ones they are (the
tap phase) depends only on the residue ``r = o mod up``. So each program splits its output
tile by residue; within one residue ``(ry, rx)`` the contributing taps are scalars, loaded once
per program, and the input index of tap ``j`` of output ``o = q * up + r`` is
``q * down + base_r + j``. Every output gathers its ``ceil(fh / up) * ceil(fw / up)`` taps
straight from the input (masked at the borders, which implements padding and cropping).

Tiles are ``[BLOCK_C, BLOCK_QH * up_y, BLOCK_QW * up_x]`` (channels, rows, columns) and
addresses are computed from the strides, so NCHW, channels_last and strided views are read
and written in place. A separable (1-D) filter is applied as the outer product of its taps in
the same single pass: for the filter sizes GANs use, the extra multiply-adds are cheaper than
the second full read and write of a two-pass scheme, since the op is bound by memory traffic.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from gankern.ops._layout import span
from gankern.ops.triton._host import cdiv, next_power_of_2, prev_power_of_2


@triton.jit
def _upfirdn2d_kernel(
    x_ptr,
    f_ptr,
    y_ptr,
    C,
    in_h,
    in_w,
    out_h,
    out_w,
    sxn,
    sxc,
    sxh,
    sxw,
    syn,
    syc,
    syh,
    syw,
    pad_x0_div,
    pad_x0_mod,
    pad_y0_div,
    pad_y0_mod,
    gain,
    n_tiles_w,
    n_tiles_h,
    n_cblocks,
    UPX: tl.constexpr,
    UPY: tl.constexpr,
    DOWNX: tl.constexpr,
    DOWNY: tl.constexpr,
    FW: tl.constexpr,
    FH: tl.constexpr,
    TAPS_X: tl.constexpr,  # taps per output along x: ceil(FW / UPX), every UPX-th one
    TAPS_Y: tl.constexpr,
    SEPARABLE: tl.constexpr,
    FLIP: tl.constexpr,
    INT64: tl.constexpr,
    BLOCK_C: tl.constexpr,
    BLOCK_QH: tl.constexpr,
    BLOCK_QW: tl.constexpr,
    JOIN_X: tl.constexpr,  # UPX == 2 with columns contiguous: store both residues together
    STATIC_ROWS: tl.constexpr,  # unroll the rows of taps too (few taps)
):
    # One program: one tile of output positions for one sample and a block of channels.
    pid = tl.program_id(0)
    tile_w = pid % n_tiles_w
    pid = pid // n_tiles_w
    tile_h = pid % n_tiles_h
    pid = pid // n_tiles_h
    cblock = pid % n_cblocks
    n = pid // n_cblocks

    c = cblock * BLOCK_C + tl.arange(0, BLOCK_C)[:, None, None]
    qy = tile_h * BLOCK_QH + tl.arange(0, BLOCK_QH)[None, :, None]
    qx = tile_w * BLOCK_QW + tl.arange(0, BLOCK_QW)[None, None, :]
    c_ok = c < C
    if INT64:
        n = n.to(tl.int64)
        c = c.to(tl.int64)
        qy = qy.to(tl.int64)
        qx = qx.to(tl.int64)
    x_base = x_ptr + n * sxn + c * sxc
    y_base = y_ptr + n * syn + c * syc

    for ry in tl.static_range(UPY):
        # First contributing tap of rows o = q * UPY + ry and the input row it reads.
        # pad0 = pad0_div * up + pad0_mod with 0 <= pad0_mod < up keeps every division and
        # modulo below on non-negative numbers.
        t0y = (pad_y0_mod + UPY - (ry * DOWNY) % UPY) % UPY
        base_y = (ry * DOWNY + t0y - pad_y0_mod) // UPY - pad_y0_div
        oy = qy * UPY + ry
        if JOIN_X:
            # Both column residues, interleaved: the tile's output columns are contiguous,
            # so stores are whole runs instead of every other element.
            a0 = _residue(
                x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, t0y, base_y, pad_x0_div,
                pad_x0_mod, 0, UPX, UPY, DOWNX, DOWNY, FW, FH, TAPS_X, TAPS_Y, SEPARABLE, FLIP,
                STATIC_ROWS, BLOCK_C, BLOCK_QH, BLOCK_QW,
            )  # fmt: skip
            a1 = _residue(
                x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, t0y, base_y, pad_x0_div,
                pad_x0_mod, 1, UPX, UPY, DOWNX, DOWNY, FW, FH, TAPS_X, TAPS_Y, SEPARABLE, FLIP,
                STATIC_ROWS, BLOCK_C, BLOCK_QH, BLOCK_QW,
            )  # fmt: skip
            acc = tl.reshape(tl.join(a0, a1), [BLOCK_C, BLOCK_QH, 2 * BLOCK_QW])
            ox = tile_w * (2 * BLOCK_QW) + tl.arange(0, 2 * BLOCK_QW)[None, None, :]
            if INT64:
                ox = ox.to(tl.int64)
            out_ok = c_ok & (oy < out_h) & (ox < out_w)
            out = (acc * gain).to(y_ptr.dtype.element_ty)
            tl.store(y_base + oy * syh + ox * syw, out, mask=out_ok)
        else:
            for rx in tl.static_range(UPX):
                acc = _residue(
                    x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, t0y, base_y,
                    pad_x0_div, pad_x0_mod, rx, UPX, UPY, DOWNX, DOWNY, FW, FH, TAPS_X, TAPS_Y,
                    SEPARABLE, FLIP, STATIC_ROWS, BLOCK_C, BLOCK_QH, BLOCK_QW,
                )  # fmt: skip
                ox = qx * UPX + rx
                out_ok = c_ok & (oy < out_h) & (ox < out_w)
                out = (acc * gain).to(y_ptr.dtype.element_ty)
                tl.store(y_base + oy * syh + ox * syw, out, mask=out_ok)


@triton.jit
def _tap(f_ptr, ty, tx, FW: tl.constexpr, FH: tl.constexpr, SEPARABLE: tl.constexpr,
         FLIP: tl.constexpr):  # fmt: skip
    """Correlation tap (ty, tx): the filter flipped unless FLIP, 0 beyond its size."""
    if FLIP:
        fy = ty
        fx = tx
    else:
        fy = FH - 1 - ty
        fx = FW - 1 - tx
    tap_ok = (ty < FH) & (tx < FW)
    if SEPARABLE:
        w = tl.load(f_ptr + fy, mask=tap_ok, other=0.0).to(tl.float32)
        w = w * tl.load(f_ptr + fx, mask=tap_ok, other=0.0).to(tl.float32)
    else:
        w = tl.load(f_ptr + fy * FW + fx, mask=tap_ok, other=0.0).to(tl.float32)
    return w


@triton.jit
def _tap_row(acc, x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, jy, t0y, base_y, t0x,
             base_x, UPX: tl.constexpr, UPY: tl.constexpr, DOWNX: tl.constexpr,
             DOWNY: tl.constexpr, FW: tl.constexpr, FH: tl.constexpr, TAPS_X: tl.constexpr,
             SEPARABLE: tl.constexpr, FLIP: tl.constexpr):  # fmt: skip
    """``acc`` plus the taps of row ``jy`` of one residue's contributing taps."""
    ty = t0y + jy * UPY
    iy = qy * DOWNY + base_y + jy
    row_ok = c_ok & (iy >= 0) & (iy < in_h)
    for jx in tl.static_range(TAPS_X):
        tx = t0x + jx * UPX
        ix = qx * DOWNX + base_x + jx
        w = _tap(f_ptr, ty, tx, FW, FH, SEPARABLE, FLIP)
        ok = row_ok & ((ix >= 0) & (ix < in_w))  # [C, H, 1] & [1, 1, W]
        v = tl.load(x_base + iy * sxh + ix * sxw, mask=ok, other=0.0)
        acc += v.to(tl.float32) * w
    return acc


@triton.jit
def _residue(x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, t0y, base_y, pad_x0_div,
             pad_x0_mod, rx: tl.constexpr, UPX: tl.constexpr, UPY: tl.constexpr,
             DOWNX: tl.constexpr, DOWNY: tl.constexpr, FW: tl.constexpr, FH: tl.constexpr,
             TAPS_X: tl.constexpr, TAPS_Y: tl.constexpr, SEPARABLE: tl.constexpr,
             FLIP: tl.constexpr, STATIC_ROWS: tl.constexpr, BLOCK_C: tl.constexpr,
             BLOCK_QH: tl.constexpr, BLOCK_QW: tl.constexpr):  # fmt: skip
    """The unscaled outputs of column residue ``rx`` (columns ``qx * UPX + rx``)."""
    t0x = (pad_x0_mod + UPX - (rx * DOWNX) % UPX) % UPX
    base_x = (rx * DOWNX + t0x - pad_x0_mod) // UPX - pad_x0_div
    acc = tl.zeros([BLOCK_C, BLOCK_QH, BLOCK_QW], dtype=tl.float32)
    if STATIC_ROWS:
        # Few taps (StyleGAN2's 4x4 filter: 2x2 per residue when resampling by 2): all
        # unrolled, so the tap loads are straight-line code the compiler hoists ahead of
        # the input loads.
        for jy in tl.static_range(TAPS_Y):
            acc = _tap_row(
                acc, x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, jy, t0y, base_y, t0x,
                base_x, UPX, UPY, DOWNX, DOWNY, FW, FH, TAPS_X, SEPARABLE, FLIP,
            )  # fmt: skip
    else:
        # Rows of taps in a loop, columns unrolled: unrolling all TAPS_Y * TAPS_X taps of
        # large filters spills registers on sm_90 (kilobytes for 12-tap filters, and even 4x4
        # half downsampling), and takes seconds to compile.
        for jy in range(TAPS_Y):
            acc = _tap_row(
                acc, x_base, f_ptr, qy, qx, c_ok, in_h, in_w, sxh, sxw, jy, t0y, base_y, t0x,
                base_x, UPX, UPY, DOWNX, DOWNY, FW, FH, TAPS_X, SEPARABLE, FLIP,
            )  # fmt: skip
    return acc


def _block_sizes(
    c: int, out_h: int, out_w: int, upx: int, upy: int, channels_fastest: bool
) -> tuple[int, int, int]:
    """Tile shape ``(BLOCK_C, BLOCK_QH, BLOCK_QW)``: about 1-2k outputs per program.

    NCHW-like inputs tile one channel's plane (columns are contiguous); channels-last ones
    tile a block of channels (contiguous) times a few pixels.
    """
    q_h = cdiv(out_h, upy)
    q_w = cdiv(out_w, upx)
    if channels_fastest:
        block_c = min(next_power_of_2(c), 32)
        block_qw = min(next_power_of_2(q_w), prev_power_of_2(64 // (block_c * upx) or 1))
        per_row = block_c * block_qw * upx * upy
        block_qh = min(next_power_of_2(q_h), prev_power_of_2(256 // per_row or 1))
    else:
        block_c = 1
        block_qw = min(next_power_of_2(q_w), prev_power_of_2(64 // upx or 1))
        block_qh = min(next_power_of_2(q_h), prev_power_of_2(16 // upy or 1))
    return block_c, block_qh, block_qw


def upfirdn2d_triton(
    x: torch.Tensor,
    f: torch.Tensor,
    y: torch.Tensor,
    up_x: int,
    up_y: int,
    down_x: int,
    down_y: int,
    pad_x0: int,
    pad_y0: int,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """Write ``upfirdn2d(x, f, ...)`` into the preallocated ``y`` and return it.

    ``x`` and ``y`` are ``[N, C, H, W]`` tensors of any strides (``y``'s size sets the output
    window, so the trailing paddings are implied); ``f`` is a 1-D (separable) or 2-D filter.
    The caller has validated every argument; this only launches the kernel.
    """
    n, c, in_h, in_w = x.shape
    out_h, out_w = y.shape[2], y.shape[3]
    f = f.contiguous()
    separable = f.ndim == 1
    fh = f.shape[0]
    fw = f.shape[0] if separable else f.shape[1]
    channels_fastest = x.stride(1) < x.stride(3)
    block_c, block_qh, block_qw = _block_sizes(c, out_h, out_w, up_x, up_y, channels_fastest)
    if os.environ.get("TRITON_INTERPRET", "0") == "1":
        # The interpreter runs one program at a time in numpy: fewer, wider programs (the
        # kernel is the same for any block shape, it reads addresses from the strides).
        block_c = max(block_c, min(next_power_of_2(c), 16))
    n_tiles_w = cdiv(cdiv(out_w, up_x), block_qw)
    n_tiles_h = cdiv(cdiv(out_h, up_y), block_qh)
    n_cblocks = cdiv(c, block_c)
    # Offsets are int32 unless a tensor spans more elements than that can address.
    use_int64 = max(span(x), span(y)) >= 2**31
    grid = (n_tiles_w * n_tiles_h * n_cblocks * n,)
    # 8 warps for tiles of 512 outputs or more: with 4, ptxas spills registers on sm_90
    # (12-tap filters, and 4x4 ones in half precision).
    tile = block_c * block_qh * block_qw * up_x * up_y
    _upfirdn2d_kernel[grid](
        x,
        f,
        y,
        c,
        in_h,
        in_w,
        out_h,
        out_w,
        *x.stride(),
        *y.stride(),
        pad_x0 // up_x,
        pad_x0 % up_x,
        pad_y0 // up_y,
        pad_y0 % up_y,
        float(gain),
        n_tiles_w,
        n_tiles_h,
        n_cblocks,
        UPX=up_x,
        UPY=up_y,
        DOWNX=down_x,
        DOWNY=down_y,
        FW=fw,
        FH=fh,
        TAPS_X=cdiv(fw, up_x),
        TAPS_Y=cdiv(fh, up_y),
        SEPARABLE=separable,
        FLIP=flip_filter,
        INT64=use_int64,
        BLOCK_C=block_c,
        BLOCK_QH=block_qh,
        BLOCK_QW=block_qw,
        JOIN_X=up_x == 2 and not channels_fastest,
        STATIC_ROWS=cdiv(fh, up_y) * cdiv(fw, up_x) <= 4,
        num_warps=8 if tile >= 512 else 4,
    )
    return y
