"""The per-weight preparation of the fused modulated convolution, cached across calls.

Every call of a synthesis layer used to redo work that depends on its weight alone: the
float16 overflow guard (StyleGAN2's prenormalization of each output channel), the flip of
the kernel for transposed convolutions, the cast to the activations' dtype and the packing
the kernels read, and the weight part of the demodulation coefficients
``w2[o, i] = sum_k w[o, i, k]^2``. :func:`prepared_weight` computes them once per weight
*value* and returns the cached results while the weight is unchanged.

A cache entry is keyed by the weight tensor's identity, data pointer and ``_version`` (which
every in-place update, e.g. an optimizer step, increments), its shape, strides, dtype and
device, and the preparation asked for. An entry holds only detached tensors; gradients reach
the weight through :class:`_PreparedWeight`, an autograd function whose forward returns the
cached values and whose backward is written in torch ops on the saved weight, so the
gradients (of any order) are those of the uncached torch computation. An entry goes when
its weight is garbage collected, a stale one (weight modified) on the next lookup. Writes
that bypass the version counter (``weight.data.copy_(...)``) are not seen: call
:func:`clear_cache` after them. Under ``torch.compile`` the cache is bypassed (tensors there
have no storage to key on) and the same torch ops are traced.
"""

from __future__ import annotations

import math
import weakref
from typing import NamedTuple

import torch


class WeightSpec(NamedTuple):
    """What to prepare from a weight ``[O, C, kh, kw]``.

    ``dtype``: the kernels' operand dtype (x's); ``flip``: reverse both taps (transposed
    convolutions); ``prenorm``: StyleGAN2's float16 guard (scale output channel ``o`` by
    ``1 / (sqrt(C kh kw) max|w[o]|)``); ``packed``: the kernel copy stored taps-major,
    channels, then output channels innermost (the Triton kernels' coalesced layout), else
    contiguous ``[O, C, kh, kw]`` (cuDNN's).
    """

    dtype: torch.dtype
    flip: bool
    prenorm: bool
    packed: bool


class PreparedWeight(NamedTuple):
    """The results of :func:`prepared_weight`.

    ``w``: the prenormalized, flipped weight in the weight's dtype, ``[O, C, kh, kw]``
    (differentiable w.r.t. the weight: the convolution ops' autograd input);
    ``kernel``: the same values in ``spec.dtype`` and the kernels' layout (no autograd);
    ``w2``: ``sum_k w[o, i, k]^2`` in float32 (float64 for a float64 weight), ``[O, C]``
    (differentiable).
    """

    w: torch.Tensor
    kernel: torch.Tensor
    w2: torch.Tensor


def prenorm_scale(weight: torch.Tensor) -> torch.Tensor:
    """``1 / (sqrt(fan_in) * max|weight[o]|)`` per output channel, ``[O, 1, 1, 1]``.

    StyleGAN2's float16 guard, as :func:`gankern.ops.modulated_conv2d.prenormalize` applies
    it (the same torch ops, so the same gradients).
    """
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    tiny = torch.finfo(weight.dtype).tiny
    w_max = weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True).clamp(min=tiny)
    return 1 / math.sqrt(fan_in) / w_max


def prenormalize_styles(styles: torch.Tensor) -> torch.Tensor:
    """The styles' part of :func:`gankern.ops.modulated_conv2d.prenormalize`: each sample's
    styles scaled to a largest magnitude of 1."""
    s_max = styles.norm(float("inf"), dim=1, keepdim=True).clamp(min=torch.finfo(styles.dtype).tiny)
    return styles / s_max


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _prepare_torch(weight: torch.Tensor, spec: WeightSpec) -> PreparedWeight:
    """The preparation in differentiable torch ops (the specification of the cached one)."""
    w = weight * prenorm_scale(weight) if spec.prenorm else weight
    if spec.flip:
        w = w.flip([2, 3])
    w2 = _at_least_float32(w).square().sum(dim=[2, 3])
    kernel = w.detach().to(spec.dtype)
    if spec.packed:
        kernel = kernel.permute(2, 3, 1, 0).contiguous().permute(3, 2, 0, 1)
    else:
        kernel = kernel.contiguous()
    return PreparedWeight(w, kernel, w2)


def _prenorm_backward(weight: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The gradient w.r.t. ``weight`` of ``weight * prenorm_scale(weight)`` given ``g``.

    With ``m = max|w[o]|`` (clamped below at ``tiny``) and ``s = 1 / (sqrt(fan_in) m)``:
    ``dw = g s - (sum_o g w) s / m * dm/dw``, where ``dm/dw = sign(w) / count`` on the
    entries that attain the maximum (torch's infinity-norm gradient splits ties evenly) and
    0 where the clamp is active. Written in torch ops, so it differentiates once more.
    """
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    tiny = torch.finfo(weight.dtype).tiny
    dims = [1, 2, 3]
    norm = weight.norm(float("inf"), dim=dims, keepdim=True)
    m = norm.clamp(min=tiny)
    s = 1 / math.sqrt(fan_in) / m
    mask = (weight.abs() == norm) | weight.isnan()
    dm = weight.sgn() * mask / mask.sum(dim=dims, keepdim=True) * (norm >= tiny)
    return g * s - (g * weight).sum(dim=dims, keepdim=True) * (s / m) * dm


class _PreparedWeight(torch.autograd.Function):
    """``(w, w2)`` of :func:`_prepare_torch` from the cache, with the uncached gradients."""

    @staticmethod
    def forward(ctx, weight, spec, w, w2):
        ctx.spec = spec
        ctx.save_for_backward(weight)
        # Views: fresh tensors for autograd to attach to, sharing the cached storage.
        return w.view_as(w), w2.view_as(w2)

    @staticmethod
    def backward(ctx, g_w, g_w2):
        (weight,) = ctx.saved_tensors
        spec = ctx.spec
        w = weight * prenorm_scale(weight) if spec.prenorm else weight
        g = torch.zeros_like(weight) if g_w is None else g_w
        if spec.flip:
            g = g.flip([2, 3])
        if g_w2 is not None:
            # w2 = sum_k flip(w)^2 = sum_k w^2: the flip does not matter for its gradient.
            g = g + (2 * _at_least_float32(w) * g_w2[:, :, None, None]).to(g.dtype)
        if spec.prenorm:
            g = _prenorm_backward(weight, g)
        return g.to(weight.dtype), None, None, None


class _Entry(NamedTuple):
    ref: weakref.ref
    key: tuple
    prepared: PreparedWeight


# id(weight) -> entries (one per spec), dropped when their weight is garbage collected.
_CACHE: dict[int, list[_Entry]] = {}


def _key(weight: torch.Tensor, spec: WeightSpec) -> tuple:
    return (
        weight.data_ptr(), weight._version, tuple(weight.shape), weight.stride(),
        weight.dtype, weight.device, spec,
    )  # fmt: skip


def _forget(ident: int, ref: weakref.ref) -> None:
    entries = _CACHE.get(ident)
    if entries and entries[0].ref is ref:
        del _CACHE[ident]


def _lookup(weight: torch.Tensor, spec: WeightSpec) -> PreparedWeight:
    key = _key(weight, spec)
    ident = id(weight)
    entries = [e for e in _CACHE.get(ident, []) if e.ref() is weight]
    for entry in entries:
        if entry.key == key:
            return entry.prepared
    with torch.no_grad():
        prepared = _prepare_torch(weight.detach(), spec)
    # Keep the other specs' entries of the same weight value; drop stale ones.
    entries = [e for e in entries if e.key[:6] == key[:6]]
    ref = entries[0].ref if entries else weakref.ref(weight, lambda r: _forget(ident, r))
    entries.append(_Entry(ref, key, prepared))
    _CACHE[ident] = entries
    return prepared


def clear_cache() -> None:
    """Forget every prepared weight (they are recomputed on next use)."""
    _CACHE.clear()


def prepared_weight(weight: torch.Tensor, spec: WeightSpec) -> PreparedWeight:
    """The preparation of ``weight`` for ``spec``, from the cache when ``weight`` is unchanged.

    Gradients flow to ``weight`` through ``w`` and ``w2`` exactly as through
    :func:`_prepare_torch`'s torch ops, to any order.
    """
    if torch.compiler.is_compiling():
        return _prepare_torch(weight, spec)
    cached = _lookup(weight, spec)
    if not (torch.is_grad_enabled() and weight.requires_grad):
        return cached
    w, w2 = _PreparedWeight.apply(weight, spec, cached.w, cached.w2)
    return PreparedWeight(w, cached.kernel, w2)
