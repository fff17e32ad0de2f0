"""Argument checks shared by the StyleGAN2 layers (constructor arguments, forward modes).

Each raises ``TypeError`` or ``ValueError`` naming the argument, the expected and the given
value, like the op checks in :mod:`gankern.ops._checks`.
"""

from __future__ import annotations

import numbers

import torch

from gankern.ops import ACTIVATIONS
from gankern.ops._checks import check_number

NOISE_MODES = ("random", "const", "none")
ARCHITECTURES = ("orig", "skip", "resnet")
HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def check_activation(name: str, value) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_optional_clamp(name: str, value) -> float | None:
    """None (no clamping) or a positive number."""
    if value is None:
        return None
    value = check_number(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 or None, got {value}")
    return value


def check_filter_taps(value):
    """A non-empty list, tuple, array or tensor of FIR taps (1-D or 2-D)."""
    if isinstance(value, torch.Tensor):
        taps = value
    else:
        try:
            taps = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(
                f"resample_filter must be a sequence of numbers, got {value!r}"
            ) from exc
    if taps.ndim not in (1, 2) or taps.numel() == 0:
        raise ValueError(
            f"resample_filter must be a non-empty 1-D or 2-D filter, got shape {tuple(taps.shape)}"
        )
    return value


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_half_dtype(value) -> torch.dtype:
    """``"float16"``/``"bfloat16"`` (or the torch dtype) -> the torch dtype."""
    for name, dtype in HALF_DTYPES.items():
        if value == name or value is dtype:
            return dtype
    raise ValueError(f"half_dtype must be one of {tuple(HALF_DTYPES)}, got {value!r}")


def check_resolution(name: str, value) -> int:
    """A power of two >= 4."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 4 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= 4, got {value}")
    return int(value)
