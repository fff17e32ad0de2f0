"""The Triton kernel of bias_act compiles for a real GPU (sm_90), here, without one.

The interpreter that runs the other Triton tests on the CPU accepts code the GPU compiler
rejects (for example: Triton turns an integer argument equal to 1 into a constant, whose
methods then differ; that broke the division parameters of the bias index once). So the
launches below are compiled offline for sm_90 with the launcher's own argument
specialization (see ``triton_offline_compile.py``) and must fit an H100 without spills.

They cover every mode (forward, gradient, second derivative), both saved-tensor paths (x for
swish, y for the others), every activation, the three dtypes, the 64-bit indexing (a meta
tensor of 2**31 elements) and the arguments equal to 1 (bias dimension of stride 1 and of
size 1, a single element).
"""

from __future__ import annotations

import pytest
import torch
from triton_offline_compile import compile_launches, seen, sm90_problems, summary

from gankern.ops import ACTIVATIONS

KERNEL = "_bias_act_kernel"


def _bias_act(shape, dtype, dim, act, clamp=None, order=0):
    """Forward, then ``order`` levels of gradients, through the public op."""
    from gankern.ops import bias_act

    x = torch.randn(shape, dtype=dtype, requires_grad=order > 0)
    b = torch.randn(shape[dim], dtype=dtype, requires_grad=order > 0)
    y = bias_act(x, b, dim=dim, act=act, clamp=clamp)
    if order > 0:
        (dx,) = torch.autograd.grad(y, [x], torch.ones_like(y), create_graph=order > 1)
        if order > 1:
            torch.autograd.grad(dx.square().sum(), [x, b])


def launch_bias_act():
    """The bias_act launches; run in the offline-compile process."""
    from gankern.ops.triton.bias_act import MODE_GRAD2, bias_act_elementwise

    # Every activation forward, bias along the last dimension (stride 1), float32.
    for act in ACTIVATIONS:
        _bias_act((5, 7, 6), torch.float32, 2, act, clamp=256.0)
    # Gradients read off x (swish) and off y (tanh), to second order.
    _bias_act((2, 6, 5, 7), torch.float16, 1, "swish", clamp=256.0, order=2)
    _bias_act((2, 1, 5, 7), torch.bfloat16, 1, "tanh", clamp=256.0, order=2)  # size 1
    _bias_act((2, 6, 5, 7), torch.bfloat16, 1, "lrelu", order=1)
    _bias_act((1, 1), torch.float16, 1, "softplus")  # a single element
    # 64-bit indices: 2**31 elements (a meta tensor, the kernel's own launcher).
    x = torch.empty((2, 8, 2**13, 2**14), device="meta")
    b = torch.empty(8, device="meta")
    bias_act_elementwise(x, b, x, None, x, MODE_GRAD2, 1, 9, 0.2, 1.0, -1.0)


@pytest.fixture(scope="module")
def variants():
    return compile_launches("test_bias_act_triton_sm90:launch_bias_act")


def test_triton_kernel_compiles_and_fits_sm90(variants):
    problems = [p for v in variants for p in sm90_problems(v)]
    assert not problems, "\n".join(problems) + "\n\nall variants:\n" + summary(variants)


def test_variants_cover_the_launch_space(variants):
    assert seen(variants, KERNEL, "out_ptr") == {"*fp32", "*fp16", "*bf16"}
    assert seen(variants, KERNEL, "MODE") == {0, 1, 2}
    assert seen(variants, KERNEL, "ACT") == {a.cuda_idx for a in ACTIVATIONS.values()}
    assert seen(variants, KERNEL, "LOAD_X") == {True, False}
    assert seen(variants, KERNEL, "LOAD_Y") == {True, False}
    assert seen(variants, KERNEL, "HAS_CLAMP") == {True, False}
    assert seen(variants, KERNEL, "INDEX_64") == {True, False}
    ones = [v.constants for v in variants if v.kernel == KERNEL]
    for name in ("dim_stride", "dim_size", "n"):
        assert any(name in c for c in ones), f"no variant with {name} == 1"
    # The regression: dividing by 1 gives magic 1, which must stay a runtime uint32 argument.
    for v in variants:
        if "dim_stride" in v.constants:
            assert v.types["stride_magic"] == "i32", v.label()
