"""Triton kernel of :func:`gankern.ops.bias_act`: one elementwise kernel, three modes.

* ``MODE_FORWARD``: ``out = clamp(act(src + b) * gain)``;
* ``MODE_GRAD``: ``out = src * gain * act'(x + b)`` (``src`` is ``dy``), zero where the forward
  output was clamped;
* ``MODE_GRAD2``: ``out = src * dy * gain * act''(x + b)`` (``src`` is the gradient of the
  first derivative), zero where clamped.

The derivatives are taken from the saved output ``y`` (divided by ``gain``) for the
activations whose ``ActivationSpec.ref`` is ``"y"``, and from ``x + b`` for swish.

Layout: every tensor of a launch has one shape and the same strides, and that layout is
dense (NCHW, channels_last or any other dimension order). The kernel walks the storage as
a flat array and computes the index along ``dim`` (the bias index) from the stride and size
of ``dim``, so no layout is copied. Callers make non-dense views dense first
(:mod:`gankern.ops._bias_act_op` does). Half-precision inputs are computed in float32 and
stored in their own dtype.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from gankern.ops._layout import is_dense, same_layout
from gankern.ops.triton._host import cdiv, next_power_of_2

MODE_FORWARD = 0
MODE_GRAD = 1
MODE_GRAD2 = 2

# Activation ids: ActivationSpec.cuda_idx (shared with the CUDA kernel).
LINEAR = tl.constexpr(1)
RELU = tl.constexpr(2)
LRELU = tl.constexpr(3)
TANH = tl.constexpr(4)
SIGMOID = tl.constexpr(5)
ELU = tl.constexpr(6)
SELU = tl.constexpr(7)
SOFTPLUS = tl.constexpr(8)
SWISH = tl.constexpr(9)

# torch.nn.functional.selu's constants.
SELU_ALPHA = tl.constexpr(1.6732632423543772848170429916717)
SELU_SCALE = tl.constexpr(1.0507009873554804934193349852946)
# torch.nn.functional.softplus returns x itself above this threshold.
SOFTPLUS_THRESHOLD = tl.constexpr(20.0)


@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + tl.exp(-z))


@triton.jit
def _tanh(z):
    # From exp of a non-positive argument: no overflow whatever z is.
    e = tl.exp(-2.0 * tl.abs(z))
    t = (1.0 - e) / (1.0 + e)
    return tl.where(z < 0, -t, t)


@triton.jit
def activation(z, alpha, ACT: tl.constexpr):
    """f(z), float32, for the activation id ``ACT`` (also the modulated convolution's).

    NaN propagates (the comparisons that pick a branch are false for NaN), and no branch
    overflows into a NaN (``tl.where`` evaluates both: an infinite exp is discarded whole).
    """
    if ACT == RELU:
        f = tl.where(z < 0, 0.0, z)
    elif ACT == LRELU:
        f = tl.where(z < 0, z * alpha, z)
    elif ACT == TANH:
        f = _tanh(z)
    elif ACT == SIGMOID:
        f = _sigmoid(z)
    elif ACT == ELU:
        f = tl.where(z > 0, z, tl.exp(z) - 1.0)
    elif ACT == SELU:
        f = tl.where(z > 0, SELU_SCALE * z, (SELU_SCALE * SELU_ALPHA) * (tl.exp(z) - 1.0))
    elif ACT == SOFTPLUS:
        f = tl.where(z > SOFTPLUS_THRESHOLD, z, tl.log(1.0 + tl.exp(z)))
    elif ACT == SWISH:
        f = z * _sigmoid(z)
    else:
        f = z
    return f


@triton.jit
def _softplus_grad(yy):
    # f'(z) = sigmoid(z) = 1 - exp(-f(z)); a series where that subtraction cancels.
    return tl.where(yy < 1e-3, yy * (1.0 - 0.5 * yy), 1.0 - tl.exp(-yy))


@triton.jit
def _grad(z, yy, alpha, ACT: tl.constexpr):
    """f'(z), from yy = f(z) or (swish) from z."""
    if ACT == RELU:
        d = tl.where(yy > 0, 1.0, 0.0)
    elif ACT == LRELU:
        d = tl.where(yy > 0, 1.0, alpha)
    elif ACT == TANH:
        d = 1.0 - yy * yy
    elif ACT == SIGMOID:
        d = yy * (1.0 - yy)
    elif ACT == ELU:
        d = tl.where(yy > 0, 1.0, yy + 1.0)
    elif ACT == SELU:
        d = tl.where(yy > 0, SELU_SCALE, yy + SELU_SCALE * SELU_ALPHA)
    elif ACT == SOFTPLUS:
        d = _softplus_grad(yy)
    elif ACT == SWISH:
        s = _sigmoid(z)
        d = s * (1.0 + z * (1.0 - s))
    else:
        d = 1.0
    return d


@triton.jit
def _grad2(z, yy, ACT: tl.constexpr):
    """f''(z), from yy = f(z) or (swish) from z; zero for the piecewise-linear activations.

    At the kink of elu and selu (z = 0) the right-hand value 0, as torch's double backward.
    """
    if ACT == TANH:
        d = -2.0 * yy * (1.0 - yy * yy)
    elif ACT == SIGMOID:
        d = yy * (1.0 - yy) * (1.0 - 2.0 * yy)
    elif ACT == ELU:
        d = tl.where(yy < 0, yy + 1.0, 0.0)
    elif ACT == SELU:
        d = tl.where(yy < 0, yy + SELU_SCALE * SELU_ALPHA, 0.0)
    elif ACT == SOFTPLUS:
        g = _softplus_grad(yy)
        d = g * (1.0 - g)
    elif ACT == SWISH:
        s = _sigmoid(z)
        d = s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s))
    else:
        d = 0.0
    return d


@triton.jit
def _fast_div(n, magic, shift):
    """n // d for 0 <= n < 2**31, with (magic, shift) from :func:`fast_div_params` of d."""
    return (tl.umulhi(n, magic) + n) >> shift


# Triton turns integer arguments equal to 1 into constants; the division parameters must stay
# uint32-convertible values (magic is 1 when dividing by 1).
@triton.jit(do_not_specialize=["stride_magic", "stride_shift", "size_magic", "size_shift"])
def _bias_act_kernel(
    out_ptr, src_ptr, b_ptr, x_ptr, y_ptr, dy_ptr,
    n, dim_stride, dim_size,
    stride_magic, stride_shift, size_magic, size_shift,
    alpha, gain, inv_gain, clamp, clamp_stored,
    MODE: tl.constexpr, ACT: tl.constexpr, HAS_BIAS: tl.constexpr,
    LOAD_X: tl.constexpr, LOAD_Y: tl.constexpr, HAS_CLAMP: tl.constexpr,
    INDEX_64: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    if INDEX_64:
        offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        offs = pid * BLOCK + tl.arange(0, BLOCK)
    # Whole blocks without masks, so that every access is a 16-byte vector whatever n is;
    # only the last block masks (a mask that is not constant over 8 elements splits them).
    if (pid + 1) * BLOCK <= n:
        _bias_act_block(
            out_ptr, src_ptr, b_ptr, x_ptr, y_ptr, dy_ptr, offs, n, dim_stride, dim_size,
            stride_magic, stride_shift, size_magic, size_shift,
            alpha, gain, inv_gain, clamp, clamp_stored,
            MODE, ACT, HAS_BIAS, LOAD_X, LOAD_Y, HAS_CLAMP, INDEX_64, False,
        )  # fmt: skip
    else:
        _bias_act_block(
            out_ptr, src_ptr, b_ptr, x_ptr, y_ptr, dy_ptr, offs, n, dim_stride, dim_size,
            stride_magic, stride_shift, size_magic, size_shift,
            alpha, gain, inv_gain, clamp, clamp_stored,
            MODE, ACT, HAS_BIAS, LOAD_X, LOAD_Y, HAS_CLAMP, INDEX_64, True,
        )  # fmt: skip


@triton.jit
def _load(ptr, mask, MASKED: tl.constexpr):
    if MASKED:
        v = tl.load(ptr, mask=mask, other=0)
    else:
        v = tl.load(ptr)
    return v.to(tl.float32)


@triton.jit
def _bias_act_block(
    out_ptr, src_ptr, b_ptr, x_ptr, y_ptr, dy_ptr, offs, n, dim_stride, dim_size,
    stride_magic, stride_shift, size_magic, size_shift,
    alpha, gain, inv_gain, clamp, clamp_stored,
    MODE: tl.constexpr, ACT: tl.constexpr, HAS_BIAS: tl.constexpr,
    LOAD_X: tl.constexpr, LOAD_Y: tl.constexpr, HAS_CLAMP: tl.constexpr,
    INDEX_64: tl.constexpr, MASKED: tl.constexpr,
):  # fmt: skip
    """One block of :func:`_bias_act_kernel`: elements ``offs`` (masked by ``offs < n``
    only when ``MASKED``)."""
    mask = offs < n
    src = _load(src_ptr + offs, mask, MASKED)

    # The bias index: the position along `dim` of each element of the flat storage.
    bias = 0.0
    if HAS_BIAS:
        if INDEX_64:
            c = (offs // dim_stride) % dim_size
        else:
            u = offs.to(tl.uint32)
            q = _fast_div(u, stride_magic.to(tl.uint32), stride_shift.to(tl.uint32))
            c = q - _fast_div(q, size_magic.to(tl.uint32), size_shift.to(tl.uint32)) * dim_size
        bias = _load(b_ptr + c, mask, MASKED)

    z = 0.0
    yy = 0.0
    y_raw = 0.0
    if LOAD_X:
        z = _load(x_ptr + offs, mask, MASKED) + bias
    if LOAD_Y:
        y_raw = _load(y_ptr + offs, mask, MASKED)
        yy = y_raw * inv_gain

    if MODE == 0:
        out = activation(src + bias, alpha, ACT) * gain
        if HAS_CLAMP:
            # Comparisons (not min/max) so that NaN stays NaN, as in torch.clamp.
            out = tl.where(out > clamp, clamp, tl.where(out < -clamp, -clamp, out))
    else:
        if MODE == 1:
            out = src * gain * _grad(z, yy, alpha, ACT)
        else:
            dy = _load(dy_ptr + offs, mask, MASKED)
            out = src * dy * gain * _grad2(z, yy, ACT)
        if HAS_CLAMP:
            out = _unclamped(out, z, y_raw, alpha, gain, clamp, clamp_stored, ACT, LOAD_X)
    if MASKED:
        tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=mask)
    else:
        tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty))


@triton.jit
def _unclamped(out, z, y_raw, alpha, gain, clamp, clamp_stored, ACT: tl.constexpr,
               LOAD_X: tl.constexpr):  # fmt: skip
    """``out`` where the forward did not clamp, else 0.

    The mask is recomputed from ``z = x + b`` for swish (exact, as torch.clamp: the bounds
    pass), otherwise read off the saved output ``y_raw``.
    """
    if LOAD_X:
        v = activation(z, alpha, ACT) * gain
        keep = (v >= -clamp) & (v <= clamp)
    else:
        keep = tl.abs(y_raw) < clamp_stored
    return tl.where(keep, out, 0.0)


@triton.jit
def _bias_act_grad_db_kernel(
    out_ptr, src_ptr, b_ptr, x_ptr, y_ptr, part_ptr,
    rows, cols, channels, groups, tiles_per_prog,
    alpha, gain, inv_gain, clamp, clamp_stored,
    ACT: tl.constexpr, LOAD_X: tl.constexpr, LOAD_Y: tl.constexpr, HAS_CLAMP: tl.constexpr,
    CHANNEL_IS_COL: tl.constexpr, INDEX_64: tl.constexpr,
    BLOCK_R: tl.constexpr, BLOCK_K: tl.constexpr,
):  # fmt: skip
    """MODE_GRAD with the bias gradient's partial sums, over the storage as a matrix.

    The dense storage is ``[rows, cols]`` row-major. ``CHANNEL_IS_COL``: the bias dimension
    is the innermost (``cols`` channels, e.g. channels_last); each program walks
    ``tiles_per_prog`` row tiles of one column block and writes ``part[pid_r, col]``.
    Otherwise every row is one channel plane (``row % channels`` is the channel, e.g. NCHW
    with ``cols = H * W``); each program walks ``tiles_per_prog`` column tiles of one row
    block and writes ``part[row, pid_k]``. The partial sums are of the float32 gradient,
    before its rounding to the output dtype, and are added up in a fixed order afterwards.
    """
    # One axis of programs (the blocks can outnumber a grid's y limit): group fastest.
    pid = tl.program_id(0)
    pid_a = pid % groups
    pid_b = pid // groups
    if CHANNEL_IS_COL:
        offs_k = pid_b * BLOCK_K + tl.arange(0, BLOCK_K)
        acc = tl.zeros([BLOCK_K], dtype=tl.float32)
    else:
        offs_r = pid_b * BLOCK_R + tl.arange(0, BLOCK_R)
        acc = tl.zeros([BLOCK_R], dtype=tl.float32)
    for t in range(tiles_per_prog):
        tile = pid_a * tiles_per_prog + t
        if CHANNEL_IS_COL:
            offs_r = tile * BLOCK_R + tl.arange(0, BLOCK_R)
        else:
            offs_k = tile * BLOCK_K + tl.arange(0, BLOCK_K)
        mask = (offs_r < rows)[:, None] & (offs_k < cols)[None, :]
        if INDEX_64:
            offs = offs_r.to(tl.int64)[:, None] * cols + offs_k[None, :]
        else:
            offs = offs_r[:, None] * cols + offs_k[None, :]
        src = tl.load(src_ptr + offs, mask=mask, other=0).to(tl.float32)
        z = 0.0
        yy = 0.0
        y_raw = 0.0
        if LOAD_X:
            if CHANNEL_IS_COL:
                c = offs_k[None, :]
            else:
                c = (offs_r % channels)[:, None]
            bias = tl.load(b_ptr + c, mask=mask, other=0).to(tl.float32)
            z = tl.load(x_ptr + offs, mask=mask, other=0).to(tl.float32) + bias
        if LOAD_Y:
            y_raw = tl.load(y_ptr + offs, mask=mask, other=0).to(tl.float32)
            yy = y_raw * inv_gain
        g = src * gain * _grad(z, yy, alpha, ACT)
        if HAS_CLAMP:
            g = _unclamped(g, z, y_raw, alpha, gain, clamp, clamp_stored, ACT, LOAD_X)
        tl.store(out_ptr + offs, g.to(out_ptr.dtype.element_ty), mask=mask)
        g = tl.where(mask, g, 0.0)
        if CHANNEL_IS_COL:
            acc += tl.sum(g, axis=0)
        else:
            acc += tl.sum(g, axis=1)
    if CHANNEL_IS_COL:
        tl.store(part_ptr + pid_a * cols + offs_k, acc, mask=offs_k < cols)
    else:
        tl.store(part_ptr + offs_r * groups + pid_a, acc, mask=offs_r < rows)


def fast_div_params(d: int) -> tuple[int, int]:
    """``(magic, shift)`` with ``n // d == (umulhi(n, magic) + n) >> shift`` for n < 2**31.

    The round-up multiply-shift division by an invariant integer (Granlund & Montgomery):
    ``shift = ceil(log2(d))`` and ``magic = floor(2**32 * (2**shift - d) / d) + 1``.
    """
    if not 1 <= d < 2**31:
        raise ValueError(f"divisor must be in [1, 2**31), got {d}")
    shift = (d - 1).bit_length()
    magic = ((1 << 32) * ((1 << shift) - d)) // d + 1
    return magic, shift


@functools.lru_cache(maxsize=64)
def _as_stored(value: float, dtype: torch.dtype) -> float:
    """``value`` rounded to ``dtype``, as a tensor of that dtype holds it (cached: StyleGAN2
    calls every layer with the same clamp, and making a tensor costs microseconds)."""
    return float(torch.tensor(value, dtype=dtype))


def launch_config(t: torch.Tensor) -> tuple[int, int]:
    """``(BLOCK, num_warps)``: 8 elements per thread (2 or 1 16-byte accesses per tensor).

    Not tuned on a GPU yet. 16 halves per thread (2048 with 4 warps) spill registers on
    sm_90 in the second derivative of swish (tests/test_bias_act_triton_sm90.py).
    """
    return (1024, 4) if t.element_size() >= 4 else (2048, 8)


def bias_act_elementwise(
    src: torch.Tensor,
    b: torch.Tensor | None,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    dy: torch.Tensor | None,
    mode: int,
    dim: int,
    act_id: int,
    alpha: float,
    gain: float,
    clamp: float,
    *,
    force_index_64: bool = False,
) -> torch.Tensor:
    """Run one mode of the kernel and return its output (a new tensor laid out like ``src``).

    ``src`` is x (forward), dy (grad) or the gradient of the first derivative (grad2); ``x``
    and ``y`` are the saved input and output the derivative is read from (None when the
    activation does not need them); ``dy`` is the first-order gradient (grad2 only). All
    tensors must share ``src``'s dtype, device, shape and strides, and ``src`` must be dense:
    the caller arranges it, this only checks. ``b`` is a contiguous vector of length
    ``src.shape[dim]``. ``clamp < 0`` means no clamping. The kernel indexes with 32 bits (and
    divides by multiply-shift) below 2**31 elements, with 64 bits above; ``force_index_64``
    takes the 64-bit path whatever the size (for tests).
    """
    if mode not in (MODE_FORWARD, MODE_GRAD, MODE_GRAD2):
        raise ValueError(f"mode must be 0, 1 or 2, got {mode}")
    if not is_dense(src):
        raise ValueError(
            f"src must be dense (non-overlapping, no holes), got strides {src.stride()}"
        )
    for name, t in (("x", x), ("y", y), ("dy", dy)):
        if t is not None and not (same_layout(t, src) and t.dtype == src.dtype):
            raise ValueError(
                f"{name} must have src's dtype, shape and strides ({src.dtype}, "
                f"{tuple(src.shape)}, {src.stride()}), "
                f"got {t.dtype}, {tuple(t.shape)}, {t.stride()}"
            )
    if mode == MODE_GRAD2 and dy is None:
        raise ValueError("dy is required in MODE_GRAD2")
    if b is not None and (b.ndim != 1 or b.shape[0] != src.shape[dim] or not b.is_contiguous()):
        raise ValueError(
            f"b must be a contiguous vector of length {src.shape[dim]}, got shape "
            f"{tuple(b.shape)} and strides {b.stride()}"
        )

    out = torch.empty_like(src)
    n = src.numel()
    block, num_warps = launch_config(src)
    dim_size = src.shape[dim]
    dim_stride = src.stride(dim) if dim_size > 1 else 1
    index_64 = force_index_64 or n + block >= 2**31
    stride_magic, stride_shift = fast_div_params(dim_stride) if not index_64 else (0, 0)
    size_magic, size_shift = fast_div_params(dim_size) if not index_64 else (0, 0)
    has_clamp = clamp >= 0
    load_x = x is not None and mode != MODE_FORWARD
    load_y = y is not None and mode != MODE_FORWARD
    # The bias only enters through x + b: the forward, and derivatives read off x (swish).
    has_bias = b is not None and (mode == MODE_FORWARD or load_x)
    # The clamp as the saved output holds it (rounded to its dtype): a clamped y equals it.
    clamp_stored = _as_stored(clamp, src.dtype) if has_clamp else 0.0
    _bias_act_kernel[(cdiv(n, block),)](
        out, src,
        src if b is None else b, src if x is None else x,
        src if y is None else y, src if dy is None else dy,
        n, dim_stride, dim_size,
        stride_magic, stride_shift, size_magic, size_shift,
        float(alpha), float(gain), (1.0 / gain) if gain != 0 else 0.0,
        float(clamp), clamp_stored,
        MODE=mode, ACT=act_id, HAS_BIAS=has_bias, LOAD_X=load_x, LOAD_Y=load_y,
        HAS_CLAMP=has_clamp, INDEX_64=index_64, BLOCK=block,
        num_warps=num_warps,
    )  # fmt: skip
    return out


def bias_act_grad_db(
    src: torch.Tensor,
    b: torch.Tensor | None,
    x: torch.Tensor | None,
    y: torch.Tensor | None,
    geometry: tuple[int, int, int, bool],
    act_id: int,
    alpha: float,
    gain: float,
    clamp: float,
    *,
    programs: int = 1024,
    force_index_64: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MODE_GRAD and the bias gradient's float32 partial sums in one pass.

    Returns ``(dx, part)``: ``dx`` as :func:`bias_act_elementwise` in MODE_GRAD computes it,
    and the partial sums that :func:`gankern.ops._bias_act_op.reduce_db_partials` adds up to
    ``db``. ``geometry`` is ``(rows, cols, channels, channel_is_col)`` from
    :func:`gankern.ops._bias_act_op.db_geometry`. ``b`` is read only for swish (``x + b``);
    the other tensors follow :func:`bias_act_elementwise`'s rules. ``programs`` is about
    how many programs share the work (~8 per SM of an H100 by default; each walks several
    tiles when there are more); ``force_index_64`` takes the 64-bit path (for tests).
    """
    if not is_dense(src):
        raise ValueError(
            f"src must be dense (non-overlapping, no holes), got strides {src.stride()}"
        )
    for name, t in (("x", x), ("y", y)):
        if t is not None and not (same_layout(t, src) and t.dtype == src.dtype):
            raise ValueError(
                f"{name} must have src's dtype, shape and strides ({src.dtype}, "
                f"{tuple(src.shape)}, {src.stride()}), got {t.dtype}, {tuple(t.shape)}, "
                f"{t.stride()}"
            )
    rows, cols, channels, channel_is_col = geometry
    if rows * cols != src.numel():
        raise ValueError(f"geometry {geometry} does not cover src's {src.numel()} elements")
    out = torch.empty_like(src)
    block, num_warps = launch_config(src)
    block_k = min(next_power_of_2(cols), 256 if channel_is_col else block)
    # No more rows than there are (a single plane would otherwise mask most of its tile).
    block_r = max(2, min(block // block_k, next_power_of_2(rows)))
    if channel_is_col:
        tiles, blocks = cdiv(rows, block_r), cdiv(cols, block_k)
    else:
        tiles, blocks = cdiv(cols, block_k), cdiv(rows, block_r)
    groups = max(1, min(tiles, cdiv(programs, blocks)))
    tiles_per_prog = cdiv(tiles, groups)
    groups = cdiv(tiles, tiles_per_prog)
    part_shape = (groups, cols) if channel_is_col else (rows, groups)
    part = torch.empty(part_shape, dtype=torch.float32, device=src.device)
    has_clamp = clamp >= 0
    load_x = x is not None
    if load_x and b is None:
        raise ValueError("b is required with x (the derivative is read off x + b)")
    _bias_act_grad_db_kernel[(groups * blocks,)](
        out, src, src if b is None else b, src if x is None else x, src if y is None else y,
        part, rows, cols, channels, groups, tiles_per_prog,
        float(alpha), float(gain), (1.0 / gain) if gain != 0 else 0.0,
        float(clamp), _as_stored(clamp, src.dtype) if has_clamp else 0.0,
        ACT=act_id, LOAD_X=load_x, LOAD_Y=y is not None, HAS_CLAMP=has_clamp,
        CHANNEL_IS_COL=channel_is_col,
        INDEX_64=force_index_64 or src.numel() + block >= 2**31,
        BLOCK_R=block_r, BLOCK_K=block_k,
        num_warps=num_warps,
    )  # fmt: skip
    return out, part
