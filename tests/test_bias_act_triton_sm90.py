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


def _bias_act(shape, dtype, dim, act, clamp=None, order=0, bias_grad=True):
    """Forward, then ``order`` levels of gradients, through the public op."""
    from gankern.ops import bias_act

    x = torch.randn(shape, dtype=dtype, requires_grad=order > 0)
    b = torch.randn(shape[dim], dtype=dtype, requires_grad=order > 0 and bias_grad)
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
    # A bias without gradient: the plain first derivative (with one, the kernel that also
    # sums the bias gradient runs instead).
    _bias_act((2, 6, 5, 7), torch.float16, 1, "elu", order=1, bias_grad=False)
    _bias_act((1, 1), torch.float16, 1, "softplus")  # a single element
    # Sizes of whole 16-byte vectors (the common case), for the vector-width checks: NCHW
    # (bias gradient per plane) and channels_last (per column), half and single precision.
    _bias_act((2, 64, 8, 8), torch.float16, 1, "lrelu", clamp=256.0, order=1)
    _bias_act((2, 64, 8, 8), torch.float32, 1, "swish", order=1)
    _bias_act((2, 8, 8, 64), torch.bfloat16, 3, "lrelu", order=1)
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


def _streams(v) -> int:
    """Tensors a _bias_act_kernel variant streams in: src, then x, y and dy where read."""
    c = v.constexprs
    return 1 + int(c["LOAD_X"]) + int(c["LOAD_Y"]) + int(c["MODE"] == 2)


def test_interior_accesses_are_16_byte_vectors(variants):
    """Every streamed tensor is read, and the output written, in 16-byte vectors: the
    elementwise kernel's whole blocks (only the last block masks), and the gradient kernel
    with the bias-gradient sums when its rows are whole vectors (columns a multiple of 16)."""
    problems, checked = [], 0
    for v in variants:
        ops = v.extra["ops"]
        if v.kernel == KERNEL:
            want = _streams(v)
        elif v.kernel == "_bias_act_grad_db_kernel" and "cols" in v.divisible:
            want = 1 + int(v.constexprs["LOAD_X"]) + int(v.constexprs["LOAD_Y"])
        else:
            continue
        checked += 1
        if ops["ld_global_v4"] < want or ops["st_global_v4"] < 1:
            problems.append(
                f"{v.label()}: {ops['ld_global_v4']} 16-byte vector loads for {want} streamed "
                f"inputs and {ops['st_global_v4']} 16-byte stores (the interior path lost its "
                f"vector accesses; ops {ops})"
            )
    assert checked, "no variant was checked"
    assert not problems, "\n".join(problems)
