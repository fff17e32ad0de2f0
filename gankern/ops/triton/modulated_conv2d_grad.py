"""Fused first-order backward kernels of the modulated convolution's prologue and epilogue.

Used when the backward itself need not be differentiable (no ``create_graph``); the
differentiable path in :mod:`gankern.ops.modulated_conv2d_ops` computes the same with torch
ops. Each kernel reads its operands once and writes one full-size tensor, reducing the
small gradients (per channel, per sample) tile by tile into float32 partial sums that torch
adds up afterwards (deterministic, no atomics).

``epilogue_grad``: for ``y = clamp(act(z * post + noise + bias) * gain)`` and ``dy``::

    g = dy * gain * act'(a) * [|act(a) * gain| <= clamp]      (a = z * post + noise + bias)
    gz = g * post,  dpost = sum_hw g * z,  dbias = sum_{n,hw} g,  dnoise = g summed to its shape

``modulation_grad``: for ``x * pre`` and the gradient ``dxs`` of that product::

    dx = dxs * pre,  dpre = sum_hw dxs * x
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gankern.ops._layout import output_memory_format
from gankern.ops.triton._host import cdiv, next_power_of_2
from gankern.ops.triton.modulated_conv2d_act import SELU_ALPHA, SELU_SCALE, apply_activation


@triton.jit
def _tile_offsets(n, offs_c, offs_p, W, sn, sc, sh, sw, FLAT: tl.constexpr):
    """Offsets of the ``[pixels, channels]`` tile of sample ``n``, pixels ``offs_p = h W + w``.

    ``FLAT`` (``sh == W * sw``, as in NCHW and channels_last): the pixel offset is
    ``offs_p * sw``, no division, and a stride of 1 (channels or columns contiguous) lets
    the compiler turn the tile's rows or columns into 16-byte vector accesses.
    """
    if FLAT:
        pix = offs_p * sw
    else:
        pix = (offs_p // W) * sh + (offs_p % W) * sw
    return n * sn + offs_c[None, :] * sc + pix[:, None]


@triton.jit
def _act_derivative(a, alpha, ACT: tl.constexpr):
    """act'(a), with PyTorch's conventions at the kinks (the derivative from the left at 0)."""
    if ACT == 2:
        d = tl.where(a > 0, 1.0, 0.0)
    elif ACT == 3:
        d = tl.where(a > 0, 1.0, alpha)
    elif ACT == 4:
        t = 1.0 - 2.0 / (tl.exp(2.0 * tl.minimum(tl.maximum(a, -15.0), 15.0)) + 1.0)
        d = 1.0 - t * t
    elif ACT == 5:
        s = 1.0 / (1.0 + tl.exp(tl.minimum(-a, 80.0)))
        d = s * (1.0 - s)
    elif ACT == 6:
        d = tl.where(a > 0, 1.0, tl.exp(tl.minimum(a, 0.0)))
    elif ACT == 7:
        d = tl.where(a > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * tl.exp(tl.minimum(a, 0.0)))
    elif ACT == 8:
        s = 1.0 / (1.0 + tl.exp(tl.minimum(-a, 80.0)))
        d = tl.where(a > 20.0, 1.0, s)
    elif ACT == 9:
        s = 1.0 / (1.0 + tl.exp(tl.minimum(-a, 80.0)))
        d = s * (1.0 + a * (1.0 - s))
    else:
        d = tl.full(a.shape, 1.0, tl.float32)
    return d


@triton.jit
def _epilogue_grad_kernel(
    dy_ptr, z_ptr, post_ptr, noise_ptr, bias_ptr, gz_ptr, g_ptr,
    ppost_ptr, pbias_ptr, pnoise_ptr,
    N, O, W, HW,
    sdn, sdo, sdh, sdw,
    szn, szo, szh, szw,
    sqn, sqo,
    snn, sno, snh, snw,
    sgn, sgo, sgh, sgw,
    alpha, gain, clamp,
    HAS_POST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    NEED_POST: tl.constexpr,
    NEED_BIAS: tl.constexpr,
    NOISE_MODE: tl.constexpr,  # 0 none, 1 partial sums over channels, 2 store g
    ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    NONLINEAR: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_O: tl.constexpr,
    FLAT: tl.constexpr,
):
    pid_p = tl.program_id(0)
    pid_o = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    p_ok = offs_p < HW
    o_ok = offs_o < O
    mask = p_ok[:, None] & o_ok[None, :]

    dy_off = _tile_offsets(n, offs_o, offs_p, W, sdn, sdo, sdh, sdw, FLAT)
    dy = tl.load(dy_ptr + dy_off, mask=mask, other=0.0).to(tl.float32)
    g = dy * gain
    if NONLINEAR or NEED_POST:
        z_off = _tile_offsets(n, offs_o, offs_p, W, szn, szo, szh, szw, FLAT)
        z = tl.load(z_ptr + z_off, mask=mask, other=0.0).to(tl.float32)
    if HAS_POST:
        q = tl.load(post_ptr + n * sqn + offs_o * sqo, mask=o_ok, other=0.0)[None, :]
    if NONLINEAR:
        a = z
        if HAS_POST:
            a = a * q
        if HAS_NOISE:
            noise_off = _tile_offsets(n, offs_o, offs_p, W, snn, sno, snh, snw, FLAT)
            a += tl.load(noise_ptr + noise_off, mask=mask, other=0.0).to(tl.float32)
        if HAS_BIAS:
            a += tl.load(bias_ptr + offs_o, mask=o_ok, other=0.0).to(tl.float32)[None, :]
        g = g * _act_derivative(a, alpha, ACT)
        if HAS_CLAMP:
            u = apply_activation(a, alpha, ACT) * gain
            g = tl.where(tl.abs(u) <= clamp, g, 0.0)
    g = tl.where(mask, g, 0.0)
    gz = g
    if HAS_POST:
        gz = g * q
    out_off = _tile_offsets(n, offs_o, offs_p, W, sgn, sgo, sgh, sgw, FLAT)
    tl.store(gz_ptr + out_off, gz.to(gz_ptr.dtype.element_ty), mask=mask)
    # Partial sums: [pixel blocks, N, O] for post and bias, [channel blocks, N, HW] for noise.
    part_no = (pid_p * N + n) * O + offs_o
    if NEED_POST:
        tl.store(ppost_ptr + part_no, tl.sum(g * z, axis=0), mask=o_ok)
    if NEED_BIAS:
        tl.store(pbias_ptr + part_no, tl.sum(g, axis=0), mask=o_ok)
    if NOISE_MODE == 1:
        tl.store(pnoise_ptr + (pid_o * N + n) * HW + offs_p, tl.sum(g, axis=1), mask=p_ok)
    if NOISE_MODE == 2:
        tl.store(g_ptr + out_off, g, mask=mask)


# Tiles of up to 4096 elements. 8 warps (16 elements per thread): with 4, the float32
# epilogue gradient of swish with a clamp spills registers on sm_90.
_NUM_WARPS = 8


def _flat_pixels(*tensors) -> bool:
    """Whether every 4-D tensor addresses pixel ``h * W + w`` as ``(h * W + w) * stride(3)``."""
    return all(
        t is None or t.dim() != 4 or t.shape[2] == 1 or t.stride(2) == t.shape[3] * t.stride(3)
        for t in tensors
    )


def _blocks(hw: int, channels: int) -> tuple[int, int]:
    block_c = max(16, min(64, next_power_of_2(channels)))
    block_p = max(16, min(4096 // block_c, next_power_of_2(hw)))
    return block_p, block_c


def epilogue_grad_triton(dy, z, post, noise, bias, act_idx, alpha, gain, clamp, needs):
    """``(gz, dpost, dnoise, dbias)`` (float32 small gradients, None where not needed).

    ``needs`` flags ``(z, post, noise, bias)``; ``gz`` is always computed, in z's dtype.
    """
    _, need_post, need_noise, need_bias = needs
    n, o, h, w = z.shape
    hw = h * w
    nonlinear = act_idx != 1 or clamp >= 0
    gz = torch.empty(z.shape, dtype=z.dtype, device=z.device, memory_format=output_memory_format(z))
    block_p, block_o = _blocks(hw, o)
    grid = (cdiv(hw, block_p), cdiv(o, block_o), n)
    f32 = dict(dtype=torch.float32, device=z.device)
    ppost = torch.empty((grid[0], n, o), **f32) if need_post else gz
    pbias = torch.empty((grid[0], n, o), **f32) if need_bias else gz
    noise_mode, pnoise, g_full = 0, gz, gz
    if need_noise:
        if noise.shape[1] == 1:
            noise_mode, pnoise = 1, torch.empty((grid[1], n, hw), **f32)
        else:
            fmt = output_memory_format(z)
            noise_mode, g_full = 2, torch.empty(z.shape, **f32, memory_format=fmt)
    noise_e = noise.expand(n, o, h, w) if noise is not None else None
    _epilogue_grad_kernel[grid](
        dy, z, post if post is not None else z, noise_e if noise is not None else z,
        bias if bias is not None else z, gz, g_full, ppost, pbias, pnoise,
        n, o, w, hw,
        *dy.stride(), *z.stride(),
        *(post.stride() if post is not None else (0, 0)),
        *(noise_e.stride() if noise is not None else (0, 0, 0, 0)),
        *gz.stride(),
        float(alpha), float(gain), float(clamp),
        HAS_POST=post is not None,
        HAS_NOISE=noise is not None,
        HAS_BIAS=bias is not None,
        NEED_POST=need_post,
        NEED_BIAS=need_bias,
        NOISE_MODE=noise_mode,
        ACT=act_idx,
        HAS_CLAMP=clamp >= 0,
        NONLINEAR=nonlinear,
        BLOCK_P=block_p,
        BLOCK_O=block_o,
        FLAT=_flat_pixels(dy, z, gz, g_full, noise_e),
        num_warps=_NUM_WARPS,
    )
    dpost = ppost.sum(0) if need_post else None
    dbias = pbias.sum([0, 1]) if need_bias else None
    dnoise = None
    if noise_mode == 1:
        dnoise = pnoise.sum(0).reshape(n, 1, h, w).sum_to_size(noise.shape)
    elif noise_mode == 2:
        dnoise = g_full.sum_to_size(noise.shape)
    return gz, dpost, dnoise, dbias


@triton.jit
def _modulation_grad_kernel(
    dxs_ptr, x_ptr, pre_ptr, dx_ptr, pdpre_ptr,
    N, C, W, HW,
    sdn, sdc, sdh, sdw,
    sxn, sxc, sxh, sxw,
    spn, spc,
    son, soc, soh, sow,
    NEED_X: tl.constexpr,
    NEED_PRE: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
    FLAT: tl.constexpr,
):
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    n = tl.program_id(2).to(tl.int64)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    c_ok = offs_c < C
    mask = (offs_p < HW)[:, None] & c_ok[None, :]
    d_off = _tile_offsets(n, offs_c, offs_p, W, sdn, sdc, sdh, sdw, FLAT)
    d = tl.load(dxs_ptr + d_off, mask=mask, other=0.0).to(tl.float32)
    if NEED_X:
        s = tl.load(pre_ptr + n * spn + offs_c * spc, mask=c_ok, other=0.0)
        out_off = _tile_offsets(n, offs_c, offs_p, W, son, soc, soh, sow, FLAT)
        tl.store(dx_ptr + out_off, (d * s[None, :]).to(dx_ptr.dtype.element_ty), mask=mask)
    if NEED_PRE:
        x_off = _tile_offsets(n, offs_c, offs_p, W, sxn, sxc, sxh, sxw, FLAT)
        x = tl.load(x_ptr + x_off, mask=mask, other=0.0).to(tl.float32)
        tl.store(pdpre_ptr + (pid_p * N + n) * C + offs_c, tl.sum(d * x, axis=0), mask=c_ok)


def modulation_grad_triton(dxs, x, pre, need_x, need_pre):
    """``(dx, dpre)``: ``dxs * pre`` in x's dtype and layout, ``sum_hw dxs * x`` in float32."""
    n, c, h, w = x.shape
    hw = h * w
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))
    block_p, block_c = _blocks(hw, c)
    grid = (cdiv(hw, block_p), cdiv(c, block_c), n)
    pdpre = torch.empty((grid[0], n, c), dtype=torch.float32, device=x.device) if need_pre else dx
    _modulation_grad_kernel[grid](
        dxs, x, pre, dx, pdpre,
        n, c, w, hw,
        *dxs.stride(), *x.stride(), *pre.stride(), *dx.stride(),
        NEED_X=need_x,
        NEED_PRE=need_pre,
        BLOCK_P=block_p,
        BLOCK_C=block_c,
        FLAT=_flat_pixels(dxs, x, dx),
        num_warps=_NUM_WARPS,
    )
    return (dx if need_x else None), (pdpre.sum(0) if need_pre else None)
