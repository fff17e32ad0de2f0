"""The epilogue of the modulated-convolution kernels: activation, gain and clamp.

``ACT`` is the activation's ``cuda_idx`` from :data:`gankern.ops.bias_act.ACTIVATIONS`, a
compile-time constant, so each kernel is specialised for one activation. The activations are
bias_act's own (:func:`gankern.ops.triton.bias_act.activation`), so the fused layer and
``bias_act`` compute them alike. ``v`` is float32.
"""

from __future__ import annotations

import triton
import triton.language as tl

from gankern.ops.triton.bias_act import SELU_ALPHA, SELU_SCALE
from gankern.ops.triton.bias_act import activation as apply_activation

__all__ = ["SELU_ALPHA", "SELU_SCALE", "apply_activation", "finish_epilogue"]


@triton.jit
def finish_epilogue(v, alpha, gain, clamp, ACT: tl.constexpr, HAS_CLAMP: tl.constexpr):
    """``clamp(act(v) * gain, -clamp, clamp)``; NaN stays NaN, as in torch.clamp."""
    v = apply_activation(v, alpha, ACT) * gain
    if HAS_CLAMP:
        v = tl.where(v > clamp, clamp, tl.where(v < -clamp, -clamp, v))
    return v
