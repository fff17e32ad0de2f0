"""Lazy regularization (StyleGAN2): apply a regularizer every ``interval`` steps only.

A regularizer computed every ``interval`` minibatches is multiplied by ``interval`` so that
its average strength is unchanged, and the optimizer that sees those extra steps (one
regularization step per ``interval`` main steps) gets a smaller learning rate and betas so
that its effective averaging horizon stays the same.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence


def _check_interval(interval) -> int | None:
    if interval is None:
        return None
    if isinstance(interval, bool) or not isinstance(interval, numbers.Integral):
        raise TypeError(f"interval must be a positive int or None, got {interval!r}")
    if interval < 1:
        raise ValueError(f"interval must be >= 1 (None: no lazy regularization), got {interval}")
    return int(interval)


def lazy_regularization(step: int, interval: int | None) -> tuple[bool, float]:
    """Whether to regularize at ``step``, and the factor to multiply the regularizer by.

    Args:
        step: the minibatch index, counted from 0 (StyleGAN2 regularizes when
            ``step % interval == 0``, so the first step is regularized).
        interval: regularize every ``interval`` steps; None or 1 regularizes every step.

    Returns:
        ``(due, factor)``: ``due`` is True when the regularizer runs at this step, and
        ``factor`` is ``interval`` (1 for None) when it does, 0 when it does not.

    Example:
        ``due, factor = lazy_regularization(step, 16)``; if due:
        ``(r1_penalty(D, reals) * (gamma / 2) * factor).backward()``.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an int, got {step!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    interval = _check_interval(interval)
    if interval is None:
        return True, 1.0
    due = step % interval == 0
    return due, float(interval) if due else 0.0


def lazy_adam_hyperparameters(
    lr: float, betas: Sequence[float], interval: int | None
) -> tuple[float, tuple[float, ...]]:
    """Adam's learning rate and betas adjusted for a regularizer applied every ``interval`` steps.

    With ``mb_ratio = interval / (interval + 1)``: ``lr * mb_ratio`` and
    ``beta ** mb_ratio`` for each beta (StyleGAN2). ``interval=None`` returns them unchanged.

    Args:
        lr: the learning rate (> 0).
        betas: Adam's ``(beta1, beta2)`` (each in [0, 1)).
        interval: the lazy regularization interval, or None.
    """
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Sequence) or not betas:
        raise TypeError(f"betas must be a sequence of numbers such as (0.0, 0.99), got {betas!r}")
    for beta in betas:
        if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
            raise ValueError(f"betas must be numbers in [0, 1), got {betas!r}")
    interval = _check_interval(interval)
    if interval is None:
        return float(lr), tuple(float(b) for b in betas)
    mb_ratio = interval / (interval + 1)
    return lr * mb_ratio, tuple(float(b) ** mb_ratio for b in betas)
