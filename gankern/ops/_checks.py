"""Argument validation shared by the ops.

Every check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong
value, rank, shape or device) with a message naming the argument, what was expected and
what was given. Checks run before any kernel launch, so bad input never reaches a kernel.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(
    name: str,
    t,
    *,
    ndim: int | Sequence[int] | None = None,
    floating: bool = True,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Check that ``t`` is a (floating point, non-empty) tensor of the given rank."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and t.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float16, bfloat16, float32 or float64, got {t.dtype}"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(t.shape)}")
    if not allow_empty and t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    return t


def check_same_device(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.device != ref.device:
        raise ValueError(
            f"{name} must be on the same device as {ref_name} ({ref.device}), got {t.device}"
        )


def check_same_dtype(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.dtype != ref.dtype:
        raise TypeError(
            f"{name} must have the same dtype as {ref_name} ({ref.dtype}), got {t.dtype}"
        )


def check_number(
    name: str,
    value,
    *,
    min_value: float | None = None,
    allow_none: bool = False,
) -> float | None:
    """Check that ``value`` is a finite real number (>= ``min_value`` if given)."""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number, got None")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return value


def check_int(name: str, value, *, min_value: int | None = None) -> int:
    """Check that ``value`` is an integer (not a bool or float), >= ``min_value`` if given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return value


# Below this many bytes a tensor is not worth comparing with the device's memory.
_CHECK_ABOVE_BYTES = 1 << 30


@functools.cache
def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device`` (a CUDA device's, or the machine's RAM for the CPU), or
    None when unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def check_fits_in_memory(what: str, shape, dtype: torch.dtype, device: torch.device) -> None:
    """A ValueError naming ``what`` when a tensor of ``shape`` would not fit in the device's
    memory at all (checked before asking the allocator for terabytes)."""
    if not all(isinstance(s, int) for s in shape):  # symbolic sizes while tracing
        return
    numel = math.prod(shape)
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    if nbytes < _CHECK_ABOVE_BYTES:
        return
    capacity = device_memory_bytes(torch.device(device))
    if capacity is not None and nbytes > capacity:
        raise ValueError(
            f"{what} would be a tensor of shape {list(shape)} ({nbytes / 2**30:,.1f} GiB), "
            f"more than the {capacity / 2**30:,.1f} GiB of {device}"
        )
