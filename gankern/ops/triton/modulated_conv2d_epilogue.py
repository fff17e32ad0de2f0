"""Triton kernel of the modulated convolution's epilogue on its own.

``y = clamp(act(z * post[n, o] + noise + bias[o]) * gain, -clamp, clamp)`` in one pass. The
upsampling path needs it separately: there the FIR filter runs between the convolution and
the epilogue. Elements are visited in the output's memory order (NCHW or channels_last),
and every operand is addressed through its strides (``noise`` broadcasts with stride 0).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from gankern.ops._layout import output_memory_format
from gankern.ops.triton._host import cdiv
from gankern.ops.triton.modulated_conv2d_act import finish_epilogue


@triton.jit
def _epilogue_kernel(
    z_ptr, post_ptr, noise_ptr, bias_ptr, y_ptr,
    TOTAL, O, H, W,
    szn, szo, szh, szw,
    sqn, sqo,
    snn, sno, snh, snw,
    syn, syo, syh, syw,
    alpha, gain, clamp,
    CHANNELS_LAST: tl.constexpr,
    HAS_POST: tl.constexpr,
    HAS_NOISE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    ACT: tl.constexpr,
    HAS_CLAMP: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < TOTAL
    if CHANNELS_LAST:
        o = offs % O
        rest = offs // O
        w = rest % W
        rest = rest // W
        h = rest % H
        n = rest // H
    else:
        w = offs % W
        rest = offs // W
        h = rest % H
        rest = rest // H
        o = rest % O
        n = rest // O
    v = tl.load(z_ptr + n * szn + o * szo + h * szh + w * szw, mask=mask, other=0.0).to(tl.float32)
    if HAS_POST:
        v = v * tl.load(post_ptr + n * sqn + o * sqo, mask=mask, other=0.0)
    if HAS_NOISE:
        v += tl.load(noise_ptr + n * snn + o * sno + h * snh + w * snw, mask=mask, other=0.0).to(
            tl.float32
        )
    if HAS_BIAS:
        v += tl.load(bias_ptr + o, mask=mask, other=0.0).to(tl.float32)
    v = finish_epilogue(v, alpha, gain, clamp, ACT, HAS_CLAMP)
    tl.store(y_ptr + n * syn + o * syo + h * syh + w * syw, v.to(y_ptr.dtype.element_ty), mask=mask)


def modconv_epilogue_triton(
    z: torch.Tensor,
    post: torch.Tensor | None,
    noise: torch.Tensor | None,
    bias: torch.Tensor | None,
    act_idx: int,
    alpha: float,
    gain: float,
    clamp: float,
) -> torch.Tensor:
    """Apply the epilogue to ``z [N, O, H, W]``; ``clamp < 0`` means no clamping."""
    n, o, h, w = z.shape
    fmt = output_memory_format(z)
    y = torch.empty(z.shape, dtype=z.dtype, device=z.device, memory_format=fmt)
    noise_e = noise.expand(n, o, h, w) if noise is not None else None
    block = 1024
    grid = (cdiv(z.numel(), block),)
    _epilogue_kernel[grid](
        z,
        post if post is not None else z,
        noise_e if noise_e is not None else z,
        bias if bias is not None else z,
        y,
        z.numel(), o, h, w,
        *z.stride(),
        *(post.stride() if post is not None else (0, 0)),
        *(noise_e.stride() if noise_e is not None else (0, 0, 0, 0)),
        *y.stride(),
        float(alpha), float(gain), float(clamp),
        CHANNELS_LAST=fmt == torch.channels_last,
        HAS_POST=post is not None,
        HAS_NOISE=noise is not None,
        HAS_BIAS=bias is not None,
        ACT=act_idx,
        HAS_CLAMP=clamp >= 0,
        BLOCK=block,
        num_warps=4,
    )
    return y
