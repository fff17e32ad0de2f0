"""Argument checks shared by the metric functions (messages name the argument, expected vs got)."""

from __future__ import annotations

import numbers

import numpy as np
import torch


def as_feature_matrix(
    name: str, features, dim: int | None = None, dtype: torch.dtype | None = torch.float64
) -> torch.Tensor:
    """``features`` as a finite CPU tensor of shape ``[num, dim]`` in ``dtype`` (None: keep
    the floating point dtype, to spare memory with large sets)."""
    if isinstance(features, torch.Tensor):
        t = features.detach().to("cpu")
    elif isinstance(features, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(features))
    else:
        raise TypeError(
            f"{name} must be a numpy array or torch tensor, got {type(features).__name__}"
        )
    if not t.dtype.is_floating_point:
        raise TypeError(f"{name} must hold floating point values, got {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape [num, dim], got {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"{name} must have {dim} feature columns to match the other set, got "
            f"{t.shape[1]} (features from different extractors?)"
        )
    if dtype is not None:
        t = t.to(dtype)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return t


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
