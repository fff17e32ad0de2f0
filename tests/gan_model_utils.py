"""Helpers shared by the GAN model tests (ProGAN, StyleGAN v1, SAGAN, BigGAN)."""

from __future__ import annotations

import torch


def count_params(module: torch.nn.Module) -> int:
    """Number of parameter elements (spectrally normalized weights count once)."""
    return sum(p.numel() for p in module.parameters())


def assert_finite_nonzero_grads(module: torch.nn.Module, skip=()) -> None:
    """Every parameter of ``module`` (but the names in ``skip``) has a finite, non-zero
    gradient."""
    for name, p in module.named_parameters():
        if name in skip:
            continue
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has a zero gradient"
