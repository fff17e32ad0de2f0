"""Shared test helpers: the tolerance table, TF32 control, backend assertions and markers.

Tolerances
----------
Every comparison against a reference goes through :func:`assert_close`, which allows, for
each element::

    |actual - expected| <= rtol * |expected| + atol * rms(expected)

with ``rtol`` and ``atol`` from :func:`tolerance`, derived here from the arithmetic rather
than from what made a test pass. The model: the code under test reads inputs stored in a
format F (the dtype; its float32 arithmetic may run in TF32), computes in float32 (float64
for float64), may round a few intermediates to F, and rounds its output to F; the reference
runs in float32 or float64 on the same (exactly upcast) inputs. ``u`` is F's unit roundoff,
``2**-p`` for ``p`` significand bits (:data:`UNIT_ROUNDOFF`).

* Rounding. Each rounding to F (the output, intermediates stored in F between kernels, a
  transcendental function good to about an ulp) adds a relative error of up to ``u`` of the
  rounded value, uniformly spread (standard deviation ``u / sqrt(3)``). A fused op rounds
  at most :data:`ROUNDED_INTERMEDIATES` = 8 values on one path (e.g. modulated_conv2d's
  upsampling path: the convolution's output, the filtered image, the saved pre-activation,
  the output, and as many again in its gradient). Their sum has a standard deviation of
  ``u sqrt(8 / 3)``; six of those (see below) exceed the worst case ``8 u``, so the
  allowance is ``8 u``. An intermediate has about the scale of the result, so this error
  appears both relative to the element (``rtol``) and relative to the RMS of the result
  (in ``atol``: an element near zero still carries the errors of its non-zero
  intermediates). TF32 belongs here too: rounding each operand of a K-term dot product to
  TF32 gives each product an error of about ``2u`` with random sign, ``2u sqrt(K)`` times
  the products' scale, which is ``2u`` times the sum's scale.
* Accumulation. A sum of ``terms`` values in the accumulation format (``u_acc``: float32,
  or float64) carries a rounding error whose standard deviation grows as
  ``u_acc * sqrt(terms)`` relative to the sum's scale (the probabilistic bound of Higham
  and Mary, SIAM J. Sci. Comput. 2019); ``terms`` is the reduction length behind the
  compared tensor (a bias gradient sums N*H*W values, a convolution Cin*kh*kw).
* The largest of up to 10**7 roughly normal errors stays within :data:`MAX_DEVIATIONS` = 6
  standard deviations (``sqrt(2 ln 1e7) = 5.7``). So ``rtol = 8 u`` and
  ``atol = 8 u + 6 u_acc sqrt(terms)``, the latter relative to the RMS of the expected
  tensor, not its largest element, so that a small output is judged at its own scale and
  ``rtol`` is not made moot by a large ``atol``.

This gives float64 ``rtol`` 8.9e-16, float32 4.8e-7, TF32 and float16 3.9e-3, bfloat16
3.1e-2 (:data:`TOLERANCES`).

The model assumes a well-conditioned function of the inputs. Gradients through a kink
(lrelu, relu, a clamp) are not: where the pre-activation is within rounding of the kink,
the two sides may take different branches, an O(1) error in that element. Tests compare such
gradients in float32 without TF32 (pre-activations agree to ~1e-7), keep inputs away from
the clamp, or use a smooth activation at lower precision.

Floats: float64 ``u = 2**-53``, float32 ``2**-24``, TF32 ``2**-11`` (10 stored significand
bits, like float16), float16 ``2**-11``, bfloat16 ``2**-8``.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings

import pytest
import torch

# Unit roundoff 2**-p (p significand bits, the implicit one included) of each format.
UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    "tf32": 2.0**-11,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}
# The most intermediates any backend rounds to the storage format on one path (see above).
ROUNDED_INTERMEDIATES = 8
# Standard deviations that cover the largest error among up to 10**7 elements (see above).
MAX_DEVIATIONS = 6.0


def tolerance(dtype: torch.dtype, *, terms: int = 1, tf32: bool = False) -> dict[str, float]:
    """``{"rtol", "atol"}`` for comparing a result stored in ``dtype`` against a reference.

    Args:
        dtype: the storage format of the result under test.
        terms: the reduction length behind each compared element (1 for elementwise ops).
        tf32: the result's float32 products ran in TF32 (only meaningful for float32).

    ``atol`` is relative to the RMS of the expected tensor (see the module docstring).
    """
    if dtype not in UNIT_ROUNDOFF:
        raise ValueError(f"no tolerance for dtype {dtype}")
    if not isinstance(terms, int) or terms < 1:
        raise ValueError(f"terms must be a positive int, got {terms!r}")
    fmt = "tf32" if (tf32 and dtype == torch.float32) else dtype
    u = UNIT_ROUNDOFF[fmt]
    u_acc = UNIT_ROUNDOFF[torch.float64 if dtype == torch.float64 else torch.float32]
    # The roundings' allowance: six standard deviations of their sum, at most all of them.
    rounding = u * min(ROUNDED_INTERMEDIATES, MAX_DEVIATIONS * math.sqrt(ROUNDED_INTERMEDIATES / 3))
    return {"rtol": rounding, "atol": rounding + MAX_DEVIATIONS * u_acc * math.sqrt(terms)}


# The table for elementwise results, one row per dtype (and TF32), for reading and reports.
TOLERANCES = {dtype: tolerance(dtype) for dtype in UNIT_ROUNDOFF if dtype != "tf32"}
TOLERANCES["tf32"] = tolerance(torch.float32, tf32=True)


def rms(t: torch.Tensor) -> float:
    """Root mean square of ``t`` (float64), 0 for an empty tensor."""
    if t.numel() == 0:
        return 0.0
    return float(t.detach().double().square().mean().sqrt())


def assert_close(
    actual: torch.Tensor,
    expected: torch.Tensor,
    dtype: torch.dtype | None = None,
    *,
    terms: int = 1,
    tf32: bool = False,
    scale: float | None = None,
    msg: str = "",
):
    """Compare with :func:`tolerance` of ``dtype`` (default: ``actual``'s dtype).

    Allowed per element: ``rtol * |expected| + atol * scale``. ``scale`` is the RMS of the
    expected tensor unless given: give the scale of the values it was computed from when
    the result is much smaller than they are (a derivative below 1 that shrinks a gradient
    computed with cancellation, e.g. ``1 - tanh(a)**2``), since rounding errors live at
    that scale. An all-zero expected tensor is judged at unit scale; a NaN never passes.
    ``terms`` and ``tf32`` as in :func:`tolerance`.
    """
    tol = tolerance(dtype or actual.dtype, terms=terms, tf32=tf32)
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    got, want = actual.detach().double().cpu(), expected.detach().double().cpu()
    if scale is None:
        scale = rms(torch.nan_to_num(want, nan=0.0, posinf=0.0, neginf=0.0)) or 1.0
    torch.testing.assert_close(
        got, want, rtol=tol["rtol"], atol=tol["atol"] * scale,
        msg=lambda text: f"{msg + ': ' if msg else ''}{text}\n(tolerance {tol}, rms {scale:.3g})",
    )


def widest_fan_in(*nets: torch.nn.Module) -> int:
    """The largest ``Cin * kh * kw`` (or ``in_features``) of the networks' weights: the
    longest sum behind an activation, the ``terms`` for comparing whole networks."""
    return max(p[0].numel() for net in nets for p in net.parameters() if p.ndim >= 2)


def network_terms(*nets: torch.nn.Module) -> int:
    """``terms`` for comparing deep networks computed two ways (for example against a
    functional rewrite with another order of operations), where rounding errors of every
    layer reach the output: the classical worst-case bound of a sum of ``n`` terms is
    ``n * u`` (not ``sqrt(n) * u``), and the layers' errors add up, so the equivalent
    ``sqrt(terms)`` is the sum of the fan-ins of every weight. Normalization layers can
    amplify an error again; this is why whole networks get this bound and single layers
    :func:`widest_fan_in`'s."""
    total = sum(p[0].numel() for net in nets for p in net.parameters() if p.ndim >= 2)
    return total**2


@contextlib.contextmanager
def tf32_mode(enabled: bool):
    """Set PyTorch's TF32 switches for convolutions and matmuls to ``enabled``, then restore.

    GPU tests run inside this, so that what they compare does not depend on the defaults
    (cuDNN convolutions allow TF32 by default, matmuls do not), and take their tolerance
    with ``tf32=enabled``.
    """
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = enabled
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def assert_backend_ran(op: str, backend: str):
    """Fail unless every call of ``op`` inside the block ran ``backend`` and no op fell back.

    For ``impl="auto"`` tests on a GPU: without it a fallback to the reference only warns,
    and the test would compare the reference with itself. Uses the dispatch's own record
    (:func:`gankern.ops._backend.record_backends`) and turns gankern's fallback warnings
    (given once per process, so also reset here) into failures.
    """
    from gankern.ops import _backend

    saved_warned = set(_backend._warned)
    _backend._warned.clear()
    try:
        with warnings.catch_warnings(record=True) as caught, _backend.record_backends() as ran:
            warnings.simplefilter("always")
            yield ran
    finally:
        _backend._warned.clear()
        _backend._warned.update(saved_warned)
    fallbacks = [str(w.message) for w in caught if "impl='auto' fell back" in str(w.message)]
    assert not fallbacks, f"gankern fell back: {fallbacks}"
    calls = [chosen for name, chosen in ran if name == op]
    assert calls, f"{op} was not called (recorded: {ran})"
    assert set(calls) == {backend}, f"{op} ran {calls}, expected {backend!r} (recorded: {ran})"


requires_cuda = pytest.mark.cuda
requires_triton_interpreter = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET") != "1",
    reason="CPU tests of Triton kernels need TRITON_INTERPRET=1 (set by conftest without a GPU)",
)
