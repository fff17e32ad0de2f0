"""Every op refuses companion tensors on another device than its input, on any machine: a
``meta`` tensor stands in for the other device (the GPU-only test in test_bias_act.py checks
the same with CUDA and CPU tensors)."""

from __future__ import annotations

import pytest
import torch

from gankern.ops import (
    bias_act,
    conv2d,
    conv2d_resample,
    conv_transpose2d,
    modulated_conv2d,
    setup_filter,
    upfirdn2d,
)

X = torch.randn(2, 3, 8, 8)
W = torch.randn(4, 3, 3, 3)
STYLES = torch.randn(2, 3)
FILTER = setup_filter([1, 3, 3, 1])


def _meta(t: torch.Tensor) -> torch.Tensor:
    return t.to("meta")


CASES = {
    "bias_act b": (lambda: bias_act(X, _meta(torch.zeros(3))), "b", "x"),
    "upfirdn2d f": (lambda: upfirdn2d(X, _meta(FILTER), up=2), "f", "x"),
    "conv2d weight": (lambda: conv2d(X, _meta(W)), "weight", "input"),
    "conv2d bias": (lambda: conv2d(X, W, _meta(torch.zeros(4))), "bias", "input"),
    "conv_transpose2d weight": (
        lambda: conv_transpose2d(X, _meta(W.transpose(0, 1))), "weight", "input"),
    "conv2d_resample w": (lambda: conv2d_resample(X, _meta(W), padding=1), "w", "x"),
    "conv2d_resample f": (
        lambda: conv2d_resample(X, W, _meta(FILTER), up=2, padding=1), "f", "x"),
    "modulated_conv2d weight": (
        lambda: modulated_conv2d(X, _meta(W), STYLES, padding=1), "weight", "x"),
    "modulated_conv2d styles": (
        lambda: modulated_conv2d(X, W, _meta(STYLES), padding=1), "styles", "x"),
    "modulated_conv2d noise": (
        lambda: modulated_conv2d(X, W, STYLES, noise=_meta(torch.zeros(2, 1, 8, 8)), padding=1),
        "noise", "x"),
    "modulated_conv2d bias": (
        lambda: modulated_conv2d(X, W, STYLES, padding=1, bias=_meta(torch.zeros(4))),
        "bias", "x"),
    "modulated_conv2d resample_filter": (
        lambda: modulated_conv2d(X, W, STYLES, up=2, padding=1, flip_weight=False,
                                 resample_filter=_meta(FILTER)), "resample_filter", "x"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_companion_on_another_device_raises(case):
    call, name, ref = CASES[case]
    message = f"{name} must be on the same device as {ref} \\(cpu\\), got meta"
    with pytest.raises(ValueError, match=message):
        call()
