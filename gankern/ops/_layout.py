"""Memory-layout helpers for the fast backends.

The elementwise kernels walk a tensor's storage as a flat array, which is exact whenever the
tensor is *dense*: non-overlapping and covering its storage span without holes, in any
dimension order (NCHW, channels_last, any permutation). A dimension's index is then
``(offset // stride[dim]) % shape[dim]``.
"""

from __future__ import annotations

import torch


def is_dense(t: torch.Tensor) -> bool:
    """True when ``t`` is non-overlapping and dense, in any dimension order.

    Dimensions of size 1 are ignored (their stride is arbitrary).
    """
    # The common layouts first: one C++ call each, instead of sorting the strides.
    if t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last)):
        return True
    dims = sorted((t.stride(i), t.shape[i]) for i in range(t.ndim) if t.shape[i] != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def same_layout(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when ``a`` and ``b`` have one shape and the same strides (size-1 dims ignored)."""
    if a.shape != b.shape:
        return False
    if a.stride() == b.stride():
        return True
    return all(a.stride(i) == b.stride(i) for i in range(a.ndim) if a.shape[i] != 1)


def dense(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when dense, else a dense copy in the layout ``torch.empty_like`` picks.

    ``torch.empty_like(dense(t))`` and ``torch.empty_like(t)`` have the same strides, which
    is what lets a fake (meta) kernel predict an output's layout without copying.
    """
    if is_dense(t):
        return t
    return torch.empty_like(t).copy_(t)


def like(t: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
    """``t`` itself when it has the strides of the dense tensor ``layout``, else a copy that has."""
    if same_layout(t, layout):
        return t
    return torch.empty_like(layout, dtype=t.dtype).copy_(t)


def output_memory_format(x: torch.Tensor) -> torch.memory_format:
    """The memory format of the 4-D outputs made from ``x``: channels_last in, channels_last out.

    A strided view (neither format) follows the order of its channel and column strides.
    Shared by every op with image outputs (upfirdn2d, modulated_conv2d), whose fake kernels
    call it too, so that compiled graphs predict the layouts the kernels produce.
    """
    if x.is_contiguous():
        return torch.contiguous_format
    if x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.channels_last if x.stride(1) < x.stride(3) else torch.contiguous_format


def span(t: torch.Tensor, start_dim: int = 0) -> int:
    """Elements from the first to the last of ``t`` (of one ``t[i, ...]`` with ``start_dim=1``),
    by its strides, plus one: what a kernel's offsets into ``t`` must be able to address."""
    shape, strides = t.shape[start_dim:], t.stride()[start_dim:]
    return 1 + sum((size - 1) * abs(step) for size, step in zip(shape, strides, strict=True))
