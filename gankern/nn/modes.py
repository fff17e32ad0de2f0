"""Switching a module's training mode for a while."""

from __future__ import annotations

import contextlib

from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Put ``module`` in eval mode, then restore each submodule's own mode.

    Sampling from a network that is being trained must not change it: a training-mode
    mapping network updates its moving average of w, batch norm its running statistics.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
