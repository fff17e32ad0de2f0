"""Exponential moving average of the generator's weights (StyleGAN's ``G_ema``).

The half-life is given in images: after ``ema_kimg`` thousand images the old weights weigh
one half. With a ramp-up, the half-life is at most ``ema_rampup`` times the images seen so
far, so that the average does not drag the random initialization along at the start.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """The decay for one step of ``batch_size`` images after ``cur_nimg`` images.

    ``beta = 0.5 ** (batch_size / ema_nimg)`` with ``ema_nimg = ema_kimg * 1000``, reduced
    to ``cur_nimg * ema_rampup`` while that is smaller (no ramp-up when ``ema_rampup`` is
    None or 0).
    """
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """``ema_param = param + beta * (ema_param - param)``; buffers are copied from ``model``.

    Buffers (``w_avg``, constant noise) are not averaged: the EMA model uses the training
    model's current ones, as StyleGAN2 does.
    """
    ema_params = dict(ema.named_parameters())
    for name, p in model.named_parameters():
        ema_params[name].copy_(p.detach().lerp(ema_params[name], beta))
    copy_buffers(ema, model)


@torch.no_grad()
def copy_buffers(ema: nn.Module, model: nn.Module) -> None:
    """Copy ``model``'s buffers into ``ema`` (parameters untouched)."""
    ema_buffers = dict(ema.named_buffers())
    for name, b in model.named_buffers():
        ema_buffers[name].copy_(b)
