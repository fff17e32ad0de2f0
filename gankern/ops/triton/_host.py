"""Integer helpers for the launchers' host code (grids, block sizes).

``triton.cdiv`` and ``triton.next_power_of_2`` are ``@triton.constexpr_function``s: called
from Python they go through Triton's wrapper, about 2.5 us a call, and a launcher makes a
dozen such calls. These are the same functions in plain Python (~0.05 us).
"""

from __future__ import annotations


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers (``b > 0``), as ``triton.cdiv``."""
    return -(-a // b)


def next_power_of_2(n: int) -> int:
    """The smallest power of 2 >= ``n`` for ``n >= 1``, as ``triton.next_power_of_2``."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


def prev_power_of_2(n: int) -> int:
    """The largest power of 2 <= ``n`` (1 for ``n < 2``)."""
    return 1 << (max(1, n).bit_length() - 1)
