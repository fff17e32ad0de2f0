"""The cached per-weight preparation of the fused modulated convolution.

Against the uncached torch computation (its specification, written as plain torch ops and
differentiated by autograd) and against an independent prenormalization written here:
values, first and second order gradients for every combination of flip and prenorm; the
cache hits while the weight is unchanged and is invalidated by in-place updates (an
optimizer step); nothing of one call's autograd graph leaks into the next; entries go with
their weight.
"""

from __future__ import annotations

import gc
import itertools
import math

import pytest
import torch
from testutils import assert_close

from gankern.ops import modulated_conv2d_weight as mw
from gankern.ops.modulated_conv2d_weight import WeightSpec, prepared_weight

SPECS = [
    WeightSpec(torch.float64, flip, prenorm, packed)
    for flip, prenorm, packed in itertools.product([False, True], repeat=3)
]


def _written_out(weight, spec):
    """The preparation, independently: loops over output channels, explicit maxima."""
    rows = []
    for o in range(weight.shape[0]):
        w_o = weight[o]
        if spec.prenorm:
            fan_in = w_o.numel()
            w_o = w_o / (math.sqrt(fan_in) * w_o.abs().max())
        if spec.flip:
            w_o = w_o.flip([1, 2])
        rows.append(w_o)
    w = torch.stack(rows)
    return w, (w * w).sum(dim=[2, 3])


@pytest.mark.parametrize(
    "spec", SPECS, ids=lambda s: f"flip{s.flip:d}-prenorm{s.prenorm:d}-packed{s.packed:d}"
)
def test_values_layout_and_gradients_to_second_order(spec):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 3, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    prepared = prepared_weight(weight, spec)
    want_w, want_w2 = _written_out(weight.detach(), spec)
    assert_close(prepared.w, want_w)
    assert_close(prepared.w2, want_w2)
    assert_close(prepared.kernel, want_w)
    assert not prepared.kernel.requires_grad
    if spec.packed:  # taps, then input channels, then output channels innermost
        assert prepared.kernel.permute(2, 3, 1, 0).is_contiguous()
    else:
        assert prepared.kernel.is_contiguous()

    # First and second order gradients equal those of the written-out computation.
    gw, gw2 = torch.randn_like(want_w), torch.randn_like(want_w2)
    results = []
    for fn in (lambda t: prepared_weight(t, spec)[::2], lambda t: _written_out(t, spec)):
        w, w2 = fn(weight)
        (d,) = torch.autograd.grad((w * gw).sum() + (w2 * gw2).sum(), weight, create_graph=True)
        (dd,) = torch.autograd.grad((d * d.detach().sin()).sum(), weight)
        results.append((d, dd))
    for got, want in zip(*results, strict=True):
        assert_close(got, want)


def test_gradcheck_and_gradgradcheck_through_the_cache():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(3, 2, 2, 2, dtype=torch.float64, generator=g, requires_grad=True)
    spec = WeightSpec(torch.float64, True, True, False)

    def f(t):
        # gradcheck perturbs the weight through .data (no version bump): start afresh.
        mw.clear_cache()
        w, _, w2 = prepared_weight(t, spec)
        return w, w2

    assert torch.autograd.gradcheck(f, (weight,))
    assert torch.autograd.gradgradcheck(f, (weight,))


def test_cache_hits_until_the_weight_changes_in_place():
    weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
    spec = WeightSpec(torch.float16, True, False, True)
    first = prepared_weight(weight, spec)
    again = prepared_weight(weight, spec)
    assert again.kernel is first.kernel  # no new preparation
    other = prepared_weight(weight, spec._replace(packed=False))  # a second spec coexists
    assert prepared_weight(weight, spec).kernel is first.kernel
    assert prepared_weight(weight, spec._replace(packed=False)).kernel is other.kernel

    opt = torch.optim.SGD([weight], lr=0.5)
    prepared_weight(weight, spec).w2.sum().backward()
    opt.step()  # in place: the version counter moves
    after = prepared_weight(weight, spec)
    assert after.kernel is not first.kernel
    assert_close(after.kernel.float(), weight.detach().flip([2, 3]), torch.float16)


def test_no_graph_is_reused_across_calls():
    """Each call's gradients are those of that call (a cached grad_fn would mix them)."""
    weight = torch.randn(3, 2, 3, 3, requires_grad=True)
    spec = WeightSpec(torch.float32, False, True, False)
    for scale in (1.0, -2.0, 3.0):
        w, _, w2 = prepared_weight(weight, spec)
        (got,) = torch.autograd.grad(scale * (w.sum() + w2.sum()), weight)
        w_ref, w2_ref = _written_out(weight, spec)
        (want,) = torch.autograd.grad(scale * (w_ref.sum() + w2_ref.sum()), weight)
        assert_close(got, want)


def test_entries_go_with_their_weight():
    spec = WeightSpec(torch.float32, True, False, False)
    weight = torch.randn(2, 2, 3, 3)
    ident = id(weight)
    prepared_weight(weight, spec)
    assert ident in mw._CACHE
    del weight
    gc.collect()
    assert ident not in mw._CACHE


def test_a_fresh_tensor_at_a_recycled_address_is_not_served_stale_values():
    spec = WeightSpec(torch.float32, False, False, False)
    for _ in range(5):
        weight = torch.randn(2, 2, 1, 1)
        assert_close(prepared_weight(weight, spec).kernel, weight)
        del weight
