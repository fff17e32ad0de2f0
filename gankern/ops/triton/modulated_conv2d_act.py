"""Activation functions for the epilogues of the modulated-convolution kernels.

``ACT`` is the activation's ``cuda_idx`` from :data:`gankern.ops.bias_act.ACTIVATIONS`
(1 linear, 2 relu, 3 lrelu, 4 tanh, 5 sigmoid, 6 elu, 7 selu, 8 softplus, 9 swish), a
compile-time constant, so each kernel is specialised for one activation. ``v`` is float32.
"""

from __future__ import annotations

import triton
import triton.language as tl

# tl.constexpr: a @triton.jit function may read no other kind of global on a GPU (the
# interpreter accepts plain floats, the compiler raises NameError).
SELU_ALPHA = tl.constexpr(1.6732632423543772)
SELU_SCALE = tl.constexpr(1.0507009873554805)


@triton.jit
def apply_activation(v, alpha, ACT: tl.constexpr):
    """``act(v)`` with StyleGAN2-ADA's definitions (lrelu slope ``alpha``)."""
    if ACT == 2:
        v = tl.maximum(v, 0.0)
    elif ACT == 3:
        v = tl.where(v >= 0, v, v * alpha)
    elif ACT == 4:
        # tanh(v) = 1 - 2 / (exp(2v) + 1); |v| <= 15 already gives +-1 in float32.
        v = 1.0 - 2.0 / (tl.exp(2.0 * tl.minimum(tl.maximum(v, -15.0), 15.0)) + 1.0)
    elif ACT == 5:
        # Exponents are bounded so that no branch overflows (tl.where evaluates both).
        v = 1.0 / (1.0 + tl.exp(tl.minimum(-v, 80.0)))
    elif ACT == 6:
        v = tl.where(v >= 0, v, tl.exp(tl.minimum(v, 0.0)) - 1.0)
    elif ACT == 7:
        v = SELU_SCALE * tl.where(v >= 0, v, SELU_ALPHA * (tl.exp(tl.minimum(v, 0.0)) - 1.0))
    elif ACT == 8:
        # torch's softplus: the identity above 20, log(1 + exp(v)) below.
        v = tl.where(v > 20.0, v, tl.log(1.0 + tl.exp(tl.minimum(v, 20.0))))
    elif ACT == 9:
        v = v / (1.0 + tl.exp(tl.minimum(-v, 80.0)))
    return v


@triton.jit
def finish_epilogue(v, alpha, gain, clamp, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr):
    """``clamp(act(v) * gain, -clamp, clamp)``."""
    v = apply_activation(v, alpha, ACT) * gain
    if HAS_CLAMP:
        v = tl.minimum(tl.maximum(v, -clamp), clamp)
    return v
