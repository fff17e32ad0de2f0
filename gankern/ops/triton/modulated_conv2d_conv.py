"""Triton implicit-GEMM convolution with a modulation prologue and a fused epilogue.

One kernel computes, for ``x [N, C, H, W]`` and ``w [O, C, KH, KW]``::

    z[n, o, oy, ox] = sum_{c, ky, kx} w[o, c, ky, kx] * pre[n, c]
                                      * xu[n, c, oy*S + ky - PY, ox*S + kx - PX]
    y = clamp(act(z * post[n, o] + noise[n, o, oy, ox] + bias[o]) * gain, -clamp, clamp)

where ``xu`` is ``x`` with ``U - 1`` zeros inserted after every pixel (``U`` = ``up``, the
transposed-convolution case) and ``S`` the stride; ``pre``, ``post``, ``noise``, ``bias`` are
optional. The GEMM is ``M = N * OH * OW`` output pixels by ``O`` output channels, reducing
over ``K = C * KH * KW``; the A tile (pixels x channels) is gathered from ``x`` through its
strides (NCHW and channels_last alike, no copies) and scaled by ``pre`` in registers before
``tl.dot`` (fp16/bf16 operands on tensor cores, float32 accumulation).

Zero insertion is never materialised: output pixel ``oy`` only meets taps with
``oy*S + ky - PY`` divisible by ``U``, and for ``U > 1`` (where ``S == 1``) which taps those
are depends only on ``oy mod U``. So the grid's third axis runs over the ``U * U`` output
phases, each program takes pixels of one phase, and its tap loops start at the phase's
first tap and step by ``U``: no multiply-add is spent on an inserted zero.

The same kernel computes the input gradient of such a convolution (``U`` and ``S`` swapped,
the kernel flipped and transposed), which is how the backward reuses it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gankern.ops._backend import conv_allows_tf32, triton_interpreter_enabled
from gankern.ops._layout import output_memory_format
from gankern.ops.triton._host import cdiv, next_power_of_2
from gankern.ops.triton.modulated_conv2d_act import finish_epilogue

# How the activation tile [pixels, channels] is read (A_LAYOUT):
A_GATHER = 0  # any strides: one element per address, channels fastest across lanes
A_CHANNELS_LAST = 1  # channels contiguous, C a multiple of BLOCK_K, pixel strides of 8
#   elements: each pixel's BLOCK_K channels are 16-byte vectors, which the pipeliner turns
#   into asynchronous copies (cp.async) into shared memory
A_PIXELS_FASTEST = 2  # columns contiguous (NCHW): lanes run along pixels, so a warp reads
#   neighbouring pixels of one channel (coalesced) instead of channels H * W apart


@triton.jit
def _load_a(x_ptr, row_off, row_ok, cc, c_ok, sxc, A_LAYOUT: tl.constexpr):
    """The activation tile ``x[row_off + cc * sxc]`` (zero where masked), ``[M, K]``.

    Alignment hints (``tl.multiple_of``) must be given by the caller: they attach to the
    operation that made a value, and a function's argument has none here.
    """
    if A_LAYOUT == 1:
        # No channel mask (C is a multiple of BLOCK_K) and aligned rows: 16-byte vectors.
        a = tl.load(x_ptr + row_off[:, None] + cc[None, :], mask=row_ok[:, None], other=0.0)
    elif A_LAYOUT == 2:
        at = tl.load(
            x_ptr + row_off[None, :] + cc[:, None] * sxc, mask=c_ok[:, None] & row_ok[None, :],
            other=0.0,
        )  # fmt: skip
        a = tl.trans(at)
    else:
        a = tl.load(
            x_ptr + row_off[:, None] + cc[None, :] * sxc, mask=row_ok[:, None] & c_ok[None, :],
            other=0.0,
        )  # fmt: skip
    return a


@triton.jit
def _modconv_kernel(
    x_ptr, w_ptr, pre_ptr, post_ptr, noise_ptr, bias_ptr, y_ptr, z_ptr,
    N, C, H, W, O, OH, OW, KH, KW, PAD_Y, PAD_X,
    sxn, sxc, sxh, sxw,
    swo, swc, swh, sww,
    spn, spc,
    sqn, sqo,
    snn, sno, snh, snw,
    syn, syo, syh, syw,
    szn, szo, szh, szw,
    alpha, gain, clamp,
    UP: tl.constexpr,
    STRIDE: tl.constexpr,
    HAS_PRE: tl.constexpr,
    HAS_POST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SAVE_Z: tl.constexpr,
    ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    A_LAYOUT: tl.constexpr,
    NOISE_PER_PIXEL: tl.constexpr,
):
    # Output-channel tiles fastest: the programs that share an activation tile run together,
    # so it is read from DRAM once and from L2 by the other O / BLOCK_N tiles.
    num_n = tl.cdiv(O, BLOCK_N)
    pid_n = tl.program_id(0) % num_n
    pid_m = tl.program_id(0) // num_n
    phase = tl.program_id(1)
    py = phase // UP
    px = phase % UP

    # Output pixels of this phase: oy = qy * UP + py, ox = qx * UP + px.
    ph = (OH - py + UP - 1) // UP
    pw = (OW - px + UP - 1) // UP
    phw = tl.maximum(ph * pw, 1)
    pw_safe = tl.maximum(pw, 1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    m_mask = offs_m < N * ph * pw
    n_idx = offs_m // phw
    rem = offs_m - n_idx * phw
    oy = (rem // pw_safe) * UP + py
    ox = (rem % pw_safe) * UP + px
    n_idx = tl.where(m_mask, n_idx, 0)
    x_base = n_idx.to(tl.int64) * sxn

    offs_o = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    o_mask = offs_o < O
    offs_k = tl.arange(0, BLOCK_K)

    # First tap of this phase (the ones in between meet inserted zeros).
    ky0 = ((PAD_Y - py * STRIDE) % UP + UP) % UP
    kx0 = ((PAD_X - px * STRIDE) % UP + UP) % UP

    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for ky in range(ky0, KH, UP):
        iy_num = oy * STRIDE + ky - PAD_Y
        iy = iy_num // UP  # exact: the phase makes iy_num divisible by UP
        y_ok = (iy_num >= 0) & (iy < H)
        for kx in range(kx0, KW, UP):
            ix_num = ox * STRIDE + kx - PAD_X
            ix = ix_num // UP
            row_ok = m_mask & y_ok & (ix_num >= 0) & (ix < W)
            row_off = x_base + tl.where(row_ok, iy * sxh + ix * sxw, 0)
            if A_LAYOUT == 1:
                row_off = tl.multiple_of(row_off, 8)  # pixel strides are multiples of 8
            w_tap = w_ptr + ky * swh + kx * sww
            for c0 in range(0, C, BLOCK_K):
                # c0 is a multiple of BLOCK_K: tell the compiler (it cannot see it through the
                # loop), so that contiguous channels become vector loads.
                cc = tl.max_contiguous(tl.multiple_of(c0 + offs_k, BLOCK_K), BLOCK_K)
                c_ok = cc < C
                a = _load_a(x_ptr, row_off, row_ok, cc, c_ok, sxc, A_LAYOUT)
                if HAS_PRE:
                    # The modulation: scale input channel c of sample n by pre[n, c].
                    s = tl.load(
                        pre_ptr + n_idx[:, None] * spn + cc[None, :] * spc,
                        mask=m_mask[:, None] & c_ok[None, :],
                        other=0.0,
                    )
                    a = (a.to(tl.float32) * s).to(x_ptr.dtype.element_ty)
                b = tl.load(
                    w_tap + cc[:, None] * swc + offs_o[None, :] * swo,
                    mask=c_ok[:, None] & o_mask[None, :],
                    other=0.0,
                )
                acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)

    out_mask = m_mask[:, None] & o_mask[None, :]
    if SAVE_Z:
        z_off = n_idx[:, None].to(tl.int64) * szn + offs_o[None, :] * szo
        z_off += (oy * szh + ox * szw)[:, None]
        tl.store(z_ptr + z_off, acc.to(z_ptr.dtype.element_ty), mask=out_mask)
    v = acc
    if HAS_POST:
        post_off = n_idx[:, None] * sqn + offs_o[None, :] * sqo
        v = v * tl.load(post_ptr + post_off, mask=out_mask, other=0.0)
    if HAS_NOISE:
        pix_off = n_idx.to(tl.int64) * snn + oy * snh + ox * snw
        if NOISE_PER_PIXEL:  # one value per pixel (StyleGAN2's [N, 1, H, W] noise)
            v += tl.load(noise_ptr + pix_off, mask=m_mask, other=0.0).to(tl.float32)[:, None]
        else:
            noise_off = pix_off[:, None] + offs_o[None, :] * sno
            v += tl.load(noise_ptr + noise_off, mask=out_mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(bias_ptr + offs_o, mask=o_mask, other=0.0).to(tl.float32)[None, :]
    v = finish_epilogue(v, alpha, gain, clamp, ACT, HAS_CLAMP)
    y_off = n_idx[:, None].to(tl.int64) * syn + offs_o[None, :] * syo
    y_off += (oy * syh + ox * syw)[:, None]
    tl.store(y_ptr + y_off, v.to(y_ptr.dtype.element_ty), mask=out_mask)


def _clip_pow2(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, next_power_of_2(v)))


_SMS = 132  # an H100 SXM's multiprocessors: fewer 128-row tiles than this leave SMs idle


def activation_layout(x: torch.Tensor, block_k: int) -> int:
    """How the kernel reads ``x``'s tiles (``A_LAYOUT``, see :func:`_load_a`)."""
    if x.stride(1) == 1 and x.shape[1] % block_k == 0:
        if all(x.stride(d) % 8 == 0 or x.shape[d] == 1 for d in (0, 2, 3)):
            return A_CHANNELS_LAST
    if x.stride(3) == 1 and x.shape[3] > 1:
        return A_PIXELS_FASTEST
    return A_GATHER


def conv_config(
    dtype: torch.dtype, m: int, o: int, c: int, a_layout: int
) -> tuple[int, int, int, int, int]:
    """``(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages)`` of the convolution kernel for
    ``m`` output pixels (of one phase), ``o`` output and ``c`` input channels, activations
    read as ``a_layout``."""
    if triton_interpreter_enabled():
        return _clip_pow2(m, 16, 64), _clip_pow2(o, 16, 64), _clip_pow2(c, 16, 32), 4, 1
    if dtype == torch.float32 and dot_precision(dtype) == "ieee":
        # Full float32 products run on the FMA units, which hold whole operand tiles in
        # registers: larger tiles or pipelining spill on sm_90 (see
        # tests/test_triton_sm90_compile.py, which compiles these configurations offline).
        return 32, _clip_pow2(o, 16, 32), 16, 4, 1
    if a_layout != A_CHANNELS_LAST:
        # Element-wise gathers of the activations hold their indices in registers: larger
        # tiles spill on sm_90.
        return 64, _clip_pow2(o, 16, 64), _clip_pow2(c, 16, 32), 8, 3
    # Tensor cores (float16, bfloat16, TF32) on channels_last activations (asynchronous
    # 16-byte copies): 128 pixels by up to 128 output channels for two warpgroups (wgmma,
    # 64 rows each) where the layer has enough tiles to fill the GPU.
    block_n = _clip_pow2(o, 16, 128)
    block_m = 128 if cdiv(m, 128) * cdiv(o, block_n) >= _SMS else 64
    block_k = _clip_pow2(c, 16, 64 if dtype != torch.float32 else 32)
    return block_m, block_n, block_k, 8, 3


def dot_precision(dtype: torch.dtype) -> str:
    """Float32 operands: TF32 where PyTorch allows it for cuDNN convolutions (this is one),
    else IEEE products; see :func:`gankern.ops._backend.conv_allows_tf32`."""
    if dtype == torch.float32 and conv_allows_tf32():
        return "tf32"
    return "ieee"


def packed_weight(w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``w`` cast to ``dtype`` and stored taps-major, channels, then outputs contiguous.

    The returned tensor is a view with ``w``'s logical shape ``[O, C, KH, KW]``; in memory
    the output channel is innermost, so the kernel's weight tiles are coalesced loads.
    """
    return w.to(dtype).permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)


def modconv_conv_triton(
    x: torch.Tensor,
    w: torch.Tensor,
    wk: torch.Tensor | None,
    pre: torch.Tensor | None,
    post: torch.Tensor | None,
    noise: torch.Tensor | None,
    bias: torch.Tensor | None,
    up: int,
    stride: int,
    pad_y: int,
    pad_x: int,
    out_h: int,
    out_w: int,
    act_idx: int,
    alpha: float,
    gain: float,
    clamp: float,
    save_z: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the kernel; returns ``(y, z)`` (``z`` empty unless ``save_z``).

    ``noise`` must broadcast to ``[N, O, out_h, out_w]``; ``clamp < 0`` means no clamping.
    ``up > 1`` requires ``stride == 1``. ``wk``: ``w`` already packed in x's dtype, or None.
    """
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    fmt = output_memory_format(x)
    y = torch.empty((n, o, out_h, out_w), dtype=x.dtype, device=x.device, memory_format=fmt)
    z = torch.empty_like(y) if save_z else y.new_empty(0)
    if wk is None:
        wk = packed_weight(w, x.dtype)
    dummy = y  # stands in for absent optional tensors (never read)
    noise_e = noise.expand(n, o, out_h, out_w) if noise is not None else None
    z_strides = z.stride() if save_z else (0, 0, 0, 0)

    m_max = n * (-(-out_h // up)) * (-(-out_w // up))
    a_layout = activation_layout(x, _clip_pow2(c, 16, 32))
    block_m, block_n, block_k, num_warps, num_stages = conv_config(x.dtype, m_max, o, c, a_layout)
    while a_layout == A_CHANNELS_LAST and c % block_k:
        block_k //= 2  # steps of whole channel vectors (C is a multiple of 16 or 32 here)
    grid = (cdiv(m_max, block_m) * cdiv(o, block_n), up * up)
    _modconv_kernel[grid](
        x, wk,
        pre if pre is not None else dummy,
        post if post is not None else dummy,
        noise_e if noise_e is not None else dummy,
        bias if bias is not None else dummy,
        y, z if save_z else dummy,
        n, c, h, wd, o, out_h, out_w, kh, kw, pad_y, pad_x,
        *x.stride(),
        *wk.stride(),
        *(pre.stride() if pre is not None else (0, 0)),
        *(post.stride() if post is not None else (0, 0)),
        *(noise_e.stride() if noise_e is not None else (0, 0, 0, 0)),
        *y.stride(),
        *z_strides,
        float(alpha), float(gain), float(clamp),
        UP=up,
        STRIDE=stride,
        HAS_PRE=pre is not None,
        HAS_POST=post is not None,
        HAS_NOISE=noise is not None,
        HAS_BIAS=bias is not None,
        SAVE_Z=save_z,
        ACT=act_idx,
        HAS_CLAMP=clamp >= 0,
        DOT_PRECISION=dot_precision(x.dtype),
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        A_LAYOUT=a_layout,
        NOISE_PER_PIXEL=noise_e is not None and noise_e.stride(1) == 0,
        num_warps=num_warps,
        num_stages=num_stages,
    )
    return y, z
