"""Shared test helpers: the tolerance table and markers."""

from __future__ import annotations

import os

import pytest
import torch

# One table of tolerances per dtype, used by every comparison against a reference.
# atol is relative to the largest magnitude of the expected tensor (at least 1), so that
# sums of many terms (bias gradients, filter taps) are judged at the scale of their terms.
TOLERANCES = {
    torch.float64: {"rtol": 1e-7, "atol": 1e-9},
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float16: {"rtol": 4e-3, "atol": 4e-3},
    torch.bfloat16: {"rtol": 3e-2, "atol": 3e-2},
}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype | None = None):
    """Compare with the tolerance of ``dtype`` (default: the dtype of ``actual``)."""
    tol = TOLERANCES[dtype or actual.dtype]
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    expected = expected.detach().double()
    scale = max(1.0, float(expected.abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(
        actual.detach().double(), expected, rtol=tol["rtol"], atol=tol["atol"] * scale
    )


requires_cuda = pytest.mark.cuda
requires_triton_interpreter = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1",
    reason="CPU tests of Triton kernels need TRITON_INTERPRET=1 (set by conftest without a GPU)",
)
