"""Helpers shared by the bias_act tests: reference derivatives and inputs away from the clamp."""

from __future__ import annotations

import torch

from gankern.ops.bias_act import _check_args, bias_act_ref


def reference_all_orders(x, b, dy, d_dx, dim, act, alpha=None, gain=None, clamp=None):
    """``(y, dx, d_x, args)`` of the reference in float64, from autograd (so that only the
    result under test carries float32 rounding errors).

    ``dx = d<y, dy>/dx`` is the first derivative applied to ``dy``; ``d_x = d<dx, d_dx>/dx``
    the second (what the backward of the first derivative returns for x).
    """
    x64 = x.detach().double().requires_grad_(True)
    b64 = None if b is None else b.detach().double()
    args = _check_args(x64, b64, dim, act, alpha, gain, clamp)
    y = bias_act_ref(x64, b64, args)
    (dx,) = torch.autograd.grad(y, x64, dy.double(), create_graph=True)
    if dx.requires_grad:
        (d_x,) = torch.autograd.grad(dx, x64, d_dx.double())
    else:  # the piecewise-linear activations: no second derivative
        d_x = torch.zeros_like(x64)
    return y.detach(), dx.detach(), d_x, args


def away_from_clamp(x, b, dim, act, alpha=None, gain=None, clamp=None):
    """``x`` with new random values where the output lands within 1% of ``clamp``.

    In half precision an output that rounds onto the clamp is indistinguishable from a clamped
    one (the fast backends read the clamp mask off the saved output, as StyleGAN2-ADA does),
    so the gradient there is ambiguous by one rounding step. Tests keep clear of that band.
    """
    if clamp is None:
        return x
    b32 = None if b is None else b.float()
    for _ in range(20):
        x32 = x.float()
        args = _check_args(x32, b32, dim, act, alpha, gain, None)
        near = (bias_act_ref(x32, b32, args).abs() - clamp).abs() < 0.01 * clamp
        if not near.any():
            return x
        x = torch.where(near, torch.randn_like(x), x)
    raise AssertionError("could not draw inputs away from the clamp")
