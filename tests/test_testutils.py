"""The test helpers themselves: the tolerance table, the backend assertion, the TF32 rule.

The GPU tests lean on these and are skipped here, so their non-GPU logic is checked on the
CPU: the table accepts what its precision model predicts and rejects an error one format
coarser; the backend assertion catches a fallback; the TF32 switch that the GPU tests set is
the one every backend's float32 convolution follows.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from testutils import (
    TOLERANCES,
    UNIT_ROUNDOFF,
    assert_backend_ran,
    assert_close,
    tf32_mode,
    tolerance,
)

from gankern.ops import _backend, bias_act


def _signal(n=100_000, seed=0):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_a_rounding_passes_and_twice_the_allowed_roundings_fail(dtype):
    """One rounding to ``dtype`` passes its row; a relative error of 16 u (twice the eight
    roundings the table allows) fails it."""
    x = _signal()
    assert_close(x.to(dtype), x, dtype)
    sign = torch.sign(_signal(seed=1))
    with pytest.raises(AssertionError):
        assert_close(x * (1 + 16 * UNIT_ROUNDOFF[dtype] * sign), x, dtype)
    if dtype == torch.float32:  # a float16 rounding is far outside float32's row
        with pytest.raises(AssertionError):
            assert_close(x.half().float(), x, dtype)


def test_float32_sums_pass_with_their_reduction_length_only():
    """A float32 sum of K terms carries ~u sqrt(K) of the result: within ``terms=K``, and
    (for large K) outside the elementwise row."""
    k = 16384
    terms = torch.randn(256, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    exact = terms.sum(1)
    # Naive sequential float32 accumulation (as a simple kernel does), not pairwise.
    acc = torch.zeros(256, dtype=torch.float32)
    for chunk in terms.float().split(1, dim=1):
        acc += chunk[:, 0]
    assert_close(acc, exact, torch.float32, terms=k)
    with pytest.raises(AssertionError):
        assert_close(acc, exact, torch.float32)


def test_tolerance_is_relative_to_the_rms_of_the_expected_tensor():
    """A tensor of small values is judged at its own scale (the old max(1, max|e|) scaling
    allowed these 1e-3 relative errors)."""
    small = _signal() * 1e-3
    with pytest.raises(AssertionError):
        assert_close((small * (1 + 1e-3)).float(), small, torch.float32)
    # ...and an error of float32's precision at that scale passes.
    assert_close(small.float(), small, torch.float32)


def test_tolerance_table_follows_its_formula():
    for dtype, u in UNIT_ROUNDOFF.items():
        if dtype == "tf32":
            continue
        tol = tolerance(dtype)
        assert tol["rtol"] == pytest.approx(8 * u)
        assert TOLERANCES[dtype] == tol
        # Longer reductions only loosen the absolute part, by sqrt(terms) of the
        # accumulation format's roundoff (float32 for the half formats).
        u_acc = 2.0**-53 if dtype == torch.float64 else 2.0**-24
        grown = tolerance(dtype, terms=10_000)["atol"] - tol["atol"]
        assert grown == pytest.approx(6 * u_acc * (100 - 1))
    assert tolerance(torch.float32, tf32=True) == TOLERANCES["tf32"] == tolerance(torch.float16)
    assert tolerance(torch.float16, tf32=True) == tolerance(torch.float16)  # float32 only
    with pytest.raises(ValueError, match="no tolerance for dtype torch.int32"):
        tolerance(torch.int32)
    with pytest.raises(ValueError, match="terms must be a positive int"):
        tolerance(torch.float32, terms=0)


def test_assert_close_rejects_nan_and_shape_mismatch():
    x = torch.ones(4)
    with pytest.raises(AssertionError):
        assert_close(torch.tensor([1.0, float("nan"), 1.0, 1.0]), x)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.ones(3), x)
    assert_close(torch.zeros(3), torch.zeros(3))  # all zero: judged at unit scale


def test_assert_backend_ran_checks_the_recorded_choice():
    x, b = torch.randn(2, 3), torch.randn(3)
    with assert_backend_ran("bias_act", "ref") as ran:  # CPU inputs: the reference
        bias_act(x, b, act="relu")
    assert ran == [("bias_act", "ref")]
    with pytest.raises(AssertionError, match=r"bias_act ran \['ref'\], expected 'cuda'"):
        with assert_backend_ran("bias_act", "cuda"):
            bias_act(x, b)
    with pytest.raises(AssertionError, match="bias_act was not called"):
        with assert_backend_ran("bias_act", "ref"):
            pass


def test_assert_backend_ran_fails_on_a_fallback_even_if_warned_before():
    """A fallback warns once per process; the assertion must see it anyway."""
    registry = {"cuda": (lambda *inputs: "no extension", None), "triton": (lambda *i: None, None)}
    cuda = torch.device("cuda")  # a device object only: select_impl reads its type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _backend.select_impl("op", "auto", registry, (), cuda)  # the once-only warning, spent
    with pytest.raises(AssertionError, match="gankern fell back.*cuda: no extension"):
        with assert_backend_ran("op", "triton"):
            assert _backend.select_impl("op", "auto", registry, (), cuda) == "triton"
    assert ("op", "cuda: no extension") in _backend._warned  # state restored


@pytest.mark.parametrize("enabled", [False, True])
def test_tf32_mode_sets_the_switch_every_backend_follows(enabled):
    """tf32_mode sets PyTorch's switches; the Triton convolution's dot precision follows the
    cuDNN convolution switch (the reference's rule), not the matmul one."""
    pytest.importorskip("triton")
    from gankern.ops.triton.modulated_conv2d_conv import dot_precision

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with tf32_mode(enabled):
        assert _backend.conv_allows_tf32() is enabled
        assert dot_precision(torch.float32) == ("tf32" if enabled else "ieee")
        assert dot_precision(torch.float16) == "ieee"
        # The matmul switch alone does not change a convolution.
        torch.backends.cuda.matmul.allow_tf32 = not enabled
        assert dot_precision(torch.float32) == ("tf32" if enabled else "ieee")
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def test_conv_tf32_follows_the_newer_precision_api():
    """torch.backends.cudnn.conv.fp32_precision (torch >= 2.9) decides, with inheritance."""
    cudnn = torch.backends.cudnn
    if not hasattr(getattr(cudnn, "conv", None), "fp32_precision"):
        pytest.skip("this torch has no fp32_precision API")
    saved = (cudnn.conv.fp32_precision, cudnn.fp32_precision, torch.backends.fp32_precision)
    try:
        cudnn.conv.fp32_precision = "ieee"
        assert _backend.conv_allows_tf32() is False
        cudnn.conv.fp32_precision = "tf32"
        assert _backend.conv_allows_tf32() is True
        cudnn.conv.fp32_precision = "none"  # inherits from cuDNN's, then the global setting
        cudnn.fp32_precision = "tf32"
        assert _backend.conv_allows_tf32() is True
        cudnn.fp32_precision = "none"
        torch.backends.fp32_precision = "ieee"
        assert _backend.conv_allows_tf32() is False
    finally:
        cudnn.conv.fp32_precision, cudnn.fp32_precision, torch.backends.fp32_precision = saved
