"""The activations of :func:`gankern.ops.bias_act` and their StyleGAN2 conventions.

Kept apart from ``bias_act.py`` so that the custom ops of the fast backends
(:mod:`gankern.ops._bias_act_op`) can look activations up without importing the public
function (which imports them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its reference formula and its StyleGAN2 conventions.

    ``ref`` says which saved tensor the derivative is cheapest to express in: ``"y"`` (the
    activation's output, for relu, lrelu, tanh, sigmoid, elu, selu, softplus) or ``"x"``
    (the input plus bias, for swish); ``""`` for linear. ``has_2nd_grad`` is False where
    the second derivative is zero almost everywhere. ``cuda_idx`` is the activation's id in
    the Triton and CUDA kernels.
    """

    name: str
    func: object
    def_alpha: float
    def_gain: float
    cuda_idx: int
    ref: str
    has_2nd_grad: bool


def _lrelu(x, alpha):
    return F.leaky_relu(x, alpha)


def _swish(x, alpha):
    return torch.sigmoid(x) * x


ACTIVATIONS: dict[str, ActivationSpec] = {
    spec.name: spec
    for spec in (
        ActivationSpec("linear", lambda x, alpha: x, 0.0, 1.0, 1, "", False),
        ActivationSpec("relu", lambda x, alpha: F.relu(x), 0.0, math.sqrt(2), 2, "y", False),
        ActivationSpec("lrelu", _lrelu, 0.2, math.sqrt(2), 3, "y", False),
        ActivationSpec("tanh", lambda x, alpha: torch.tanh(x), 0.0, 1.0, 4, "y", True),
        ActivationSpec("sigmoid", lambda x, alpha: torch.sigmoid(x), 0.0, 1.0, 5, "y", True),
        ActivationSpec("elu", lambda x, alpha: F.elu(x), 0.0, 1.0, 6, "y", True),
        ActivationSpec("selu", lambda x, alpha: F.selu(x), 0.0, 1.0, 7, "y", True),
        ActivationSpec("softplus", lambda x, alpha: F.softplus(x), 0.0, 1.0, 8, "y", True),
        ActivationSpec("swish", _swish, 0.0, math.sqrt(2), 9, "x", True),
    )
}
