"""GPU paths no other test reaches (``-m cuda``; collected but skipped without a GPU).

* The ``cuda`` backend's custom ops: ``opcheck`` on CUDA tensors, and each op compiled with
  ``torch.compile(fullgraph=True)`` on ``impl="auto"`` (which must choose ``cuda``).
* The ToRGB layer (``demodulate=False``, no noise) and the fused path's trivial branch (no
  demodulation, noise, bias or activation: the convolution's output is the result).
* Second order of modulated_conv2d in float16 and bfloat16, on every backend.
* The Triton convolution's TF32 dot, against the float32 reference at TF32's tolerance.

Every comparison takes its tolerance from testutils' table (TF32 off unless a test turns it
on: conftest) and every ``auto`` call asserts the backend that ran.
"""

from __future__ import annotations

import pytest
import torch
from modconv_testutils import fir_filter, gpu_case, gpu_compare, make_inputs, modconv_terms
from testutils import assert_backend_ran, assert_close, requires_cuda, tf32_mode

from gankern.ops import bias_act, modulated_conv2d, setup_filter, upfirdn2d
from gankern.ops._bias_act_op import bias_act_grad2_op, bias_act_grad_op, bias_act_op
from gankern.ops._upfirdn2d_op import upfirdn2d_op
from gankern.ops.modulated_conv2d_ops import (
    modulated_conv2d_conv,
    modulated_conv2d_epilogue,
    modulated_conv2d_wgrad,
)

pytestmark = requires_cuda


def _randn(*shape, grad=False, **kw):
    return torch.randn(*shape, device="cuda", **kw).requires_grad_(grad)


# ---------------------------------------------------------------------------------------
# The cuda backend's custom ops: opcheck and torch.compile.


@pytest.mark.parametrize("act, clamp", [("swish", -1.0), ("tanh", 0.8), ("lrelu", 256.0)])
def test_cuda_bias_act_ops_opcheck(act, clamp):
    x = _randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    b, dy = _randn(3), _randn(2, 3, 4, 5)
    args = (1, act, 0.2, 1.4, clamp, "cuda")
    y = bias_act_op(x, b, *args)
    torch.library.opcheck(bias_act_op, (x.detach().requires_grad_(), b, *args))
    torch.library.opcheck(
        bias_act_grad_op, (dy.detach().requires_grad_(), x.detach().requires_grad_(), b, y, *args)
    )
    torch.library.opcheck(bias_act_grad2_op, (torch.randn_like(dy), dy, x, b, y, *args))


def test_cuda_upfirdn2d_op_opcheck():
    f = setup_filter([1, 3, 3, 1], device="cuda")
    x = _randn(1, 2, 5, 4, grad=True)
    torch.library.opcheck(upfirdn2d_op, (x, f, 2, 2, 1, 1, 2, 1, 2, 1, False, 4.0, "cuda"))
    xc = _randn(1, 2, 6, 6).to(memory_format=torch.channels_last).requires_grad_()
    torch.library.opcheck(upfirdn2d_op, (xc, f, 1, 1, 2, 2, 1, 1, 1, 1, True, 1.0, "cuda"))


def test_cuda_modulated_conv2d_ops_opcheck():
    x, w = _randn(2, 3, 5, 5, grad=True), _randn(4, 3, 3, 3, grad=True)
    pre, post = _randn(2, 3, grad=True), (torch.rand(2, 4, device="cuda") + 0.5).requires_grad_()
    noise, bias = _randn(2, 1, 5, 5, grad=True), _randn(4, grad=True)
    torch.library.opcheck(
        modulated_conv2d_conv,
        (x, w, pre, post, noise, bias, 1, 1, 1, 1, 5, 5, "lrelu", 0.2, 1.4, 3.0, True, "cuda"),
    )
    torch.library.opcheck(  # the up path's convolution, and the trivial (linear) epilogue
        modulated_conv2d_conv,
        (x, w, pre, None, None, None, 2, 1, 2, 2, 10, 10, "linear", 0.0, 1.0, -1.0, False, "cuda"),
    )
    z = _randn(2, 4, 5, 5, grad=True)
    torch.library.opcheck(
        modulated_conv2d_epilogue, (z, post, noise, bias, "swish", 0.0, 1.4, -1.0, "cuda")
    )
    torch.library.opcheck(
        modulated_conv2d_wgrad, (_randn(2, 4, 3, 3), x, pre, 1, 2, 0, 0, 3, 3, "cuda")
    )


def _compiled_matches_eager(op_name, fn, inputs, terms):
    """``fn`` compiled (fullgraph, inductor) equals eager, forward and backward, and the
    dispatch chose the cuda backend while tracing."""
    torch._dynamo.reset()
    with assert_backend_ran(op_name, "cuda"):
        compiled = torch.compile(fn, fullgraph=True)
        y = compiled(*inputs)
    y_eager = fn(*inputs)
    assert_close(y, y_eager, terms=terms)
    grads = torch.autograd.grad(y.square().sum(), inputs)
    grads_eager = torch.autograd.grad(y_eager.square().sum(), inputs)
    for got, want in zip(grads, grads_eager, strict=True):
        assert_close(got, want, terms=terms * y.numel() // max(got.numel(), 1))


def test_cuda_bias_act_compiles_fullgraph():
    x, b = _randn(4, 8, 9, 11, grad=True), _randn(8, grad=True)
    _compiled_matches_eager("bias_act", lambda x, b: bias_act(x, b, act="lrelu", clamp=1.5),
                            [x, b], terms=1)


def test_cuda_upfirdn2d_compiles_fullgraph():
    f = setup_filter([1, 3, 3, 1], device="cuda")
    x = _randn(2, 4, 9, 11, grad=True)
    _compiled_matches_eager("upfirdn2d", lambda x: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]),
                            [x], terms=f.numel())


@pytest.mark.parametrize("up", [1, 2])
def test_cuda_modulated_conv2d_compiles_fullgraph(up):
    inputs = [t for t in gpu_case(3, up, 1, torch.float32) if t is not None]
    f = fir_filter().cuda()

    def layer(x, w, s, nz, b):
        return modulated_conv2d(x, w, s, noise=nz, up=up, padding=1, resample_filter=f,
                                flip_weight=up == 1, bias=b, act="lrelu", clamp=256.0)

    terms = modconv_terms(inputs[0], inputs[1], 3, up, 1)[0]
    _compiled_matches_eager("modulated_conv2d", layer, inputs, terms=terms)


# ---------------------------------------------------------------------------------------
# ToRGB and the trivial branch.


@pytest.mark.parametrize("impl", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "k, up, bias, clamp",
    [
        (1, 1, False, None),  # trivial: the convolution's output is the result
        (1, 1, True, 256.0),  # ToRGB as StyleGAN2 runs it: bias and conv_clamp in the epilogue
        (3, 2, False, None),  # the up path's trivial branch: no epilogue after the filter
        (1, 2, True, None),  # 1x1 upsampling: convolution before the filter, then the epilogue
    ],
)
def test_gpu_torgb_and_trivial_branch(impl, dtype, k, up, bias, clamp):
    x, w, s, _, b = make_inputs(4, 16, 3, 8, k, up, noise=None, bias=bias)
    inputs = [None if t is None else t.detach().cuda().requires_grad_() for t in (x, w, s, None, b)]
    inputs[0] = inputs[0].detach().to(dtype).requires_grad_()
    if inputs[4] is not None:
        inputs[4] = inputs[4].detach().to(dtype).requires_grad_()
    gpu_compare(impl, inputs, k, up, 1, dtype, act="linear", demodulate=False, clamp=clamp)


# ---------------------------------------------------------------------------------------
# Second order in half precision, every backend.


@pytest.mark.parametrize("impl", ["ref", "cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("up", [1, 2])
def test_gpu_half_second_order_matches_float32_reference(impl, dtype, up):
    """R1 / path length in half precision: d/d(x, w, s) of |dy/dx|^2 + |dy/ds|^2 against the
    float32 reference on the same values. A smooth activation: see testutils on kinks."""
    inputs = gpu_case(3, up, 1, dtype)[:3]
    kw = dict(up=up, padding=1, resample_filter=fir_filter().cuda(), flip_weight=up == 1,
              act="swish")
    results = []
    for backend, cast in ((impl, inputs), ("ref", [t.detach().float().requires_grad_()
                                                   for t in inputs])):
        x, w, s = cast
        y = modulated_conv2d(x, w, s, impl=backend, fused_modconv=False, **kw)
        assert y.dtype == x.dtype
        dy = torch.randn(y.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(5))
        gx, gs = torch.autograd.grad(y, [x, s], dy.to(y.dtype), create_graph=True)
        penalty = gx.float().square().sum() + gs.float().square().sum()
        results.append((gx, gs, *torch.autograd.grad(penalty, [x, w, s])))
    x, w = inputs[0], inputs[1]
    y_terms, grad_terms = modconv_terms(x, w, 3, up, 1)
    # First order: dx, ds; second order: through both, summed over every pixel and channel.
    second = grad_terms[2] * y_terms
    terms = [grad_terms[0], grad_terms[2], second, second, second]
    names = ["dx", "dstyles", "d2/dx", "d2/dweight", "d2/dstyles"]
    for name, got, want, t in zip(names, *results, terms, strict=True):
        assert_close(got, want, dtype, terms=t, msg=f"{impl} {name}")


# ---------------------------------------------------------------------------------------
# TF32.


@pytest.mark.parametrize("impl", ["cuda", "triton"])
@pytest.mark.parametrize("k, up, down", [(3, 1, 1), (3, 2, 1), (3, 1, 2), (1, 1, 1)])
def test_gpu_float32_with_tf32_matches_reference_at_tf32_tolerance(impl, k, up, down):
    """With TF32 allowed for convolutions, every backend's float32 convolution may use it:
    compared with the exact float32 reference at TF32's tolerance."""
    inputs = gpu_case(k, up, down, torch.float32)
    gpu_compare(impl, inputs, k, up, down, torch.float32, act="swish", tf32=True)


def test_gpu_triton_dot_really_runs_in_tf32():
    """The switch reaches the kernel: Triton's float32 results with TF32 on differ from those
    with it off by far more than float32's tolerance (and agree at TF32's)."""
    x, w, s, _, _ = gpu_case(3, 1, 1, torch.float32)
    outs = []
    for enabled in (False, True):
        with tf32_mode(enabled):
            outs.append(modulated_conv2d(x, w, s, padding=1, impl="triton"))
    ieee, tf32 = outs
    terms = modconv_terms(x, w, 3)[0]
    assert_close(tf32, ieee, tf32=True, terms=terms)
    with pytest.raises(AssertionError):
        assert_close(tf32, ieee, terms=terms)
