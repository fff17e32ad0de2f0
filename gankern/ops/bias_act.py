"""Fused bias + activation + gain + clamp.

``bias_act(x, b)`` computes ``clamp(act(x + b) * gain, -clamp, clamp)`` in one pass, with
the argument names, defaults and activation gains of StyleGAN2-ADA's ``bias_act`` so that
swapping the import is enough.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gankern.ops._backend import select_impl
from gankern.ops._checks import (
    check_int,
    check_number,
    check_same_device,
    check_same_dtype,
    check_tensor,
)


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its reference formula and its StyleGAN2 conventions.

    ``ref`` says which saved tensor the derivative is cheapest to express in: ``"y"`` (the
    activation's output, for relu, lrelu, tanh, sigmoid, elu, selu, softplus) or ``"x"``
    (the input plus bias, for swish); ``""`` for linear. ``has_2nd_grad`` is False where
    the second derivative is zero almost everywhere.
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


@dataclass(frozen=True)
class BiasActArgs:
    """Validated, defaulted arguments of one ``bias_act`` call (clamp < 0 means none)."""

    dim: int
    act: str
    alpha: float
    gain: float
    clamp: float


def _check_args(x, b, dim, act, alpha, gain, clamp) -> BiasActArgs:
    check_tensor("x", x)
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    spec = ACTIVATIONS[act]
    dim = check_int("dim", dim)
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim must be in [{-x.ndim}, {x.ndim - 1}] for x of shape {tuple(x.shape)}, got {dim}")
    dim %= x.ndim
    if b is not None:
        check_tensor("b", b, ndim=1)
        check_same_device("b", b, "x", x)
        check_same_dtype("b", b, "x", x)
        if b.shape[0] != x.shape[dim]:
            raise ValueError(
                f"b must have length x.shape[{dim}] = {x.shape[dim]}, got shape {tuple(b.shape)}"
            )
    alpha = check_number("alpha", alpha, allow_none=True)
    gain = check_number("gain", gain, allow_none=True)
    clamp = check_number("clamp", clamp, min_value=0.0, allow_none=True)
    return BiasActArgs(
        dim=dim,
        act=act,
        alpha=spec.def_alpha if alpha is None else alpha,
        gain=spec.def_gain if gain is None else gain,
        clamp=-1.0 if clamp is None else clamp,
    )


def bias_act_ref(x: torch.Tensor, b: torch.Tensor | None, args: BiasActArgs) -> torch.Tensor:
    """The reference: plain PyTorch ops in the input's dtype, differentiable to any order."""
    if b is not None:
        x = x + b.reshape([-1 if i == args.dim else 1 for i in range(x.ndim)])
    x = ACTIVATIONS[args.act].func(x, args.alpha)
    if args.gain != 1:
        x = x * args.gain
    if args.clamp >= 0:
        x = x.clamp(-args.clamp, args.clamp)
    return x


# Fast backends register themselves here: name -> (unavailable_reason(x, b, args), run(x, b, args)).
FAST_BACKENDS: dict = {}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Add a bias, apply an activation, scale by a gain and clamp, in one pass.

    Computes ``y = clamp(act(x + b) * gain, -clamp, clamp)``.

    Args:
        x: input tensor of any rank and layout (NCHW, channels_last, non-contiguous views),
            float16, bfloat16, float32 (and float64 on ``impl="ref"``).
        b: bias, a 1-D tensor of length ``x.shape[dim]`` with x's dtype and device, or None.
        dim: the dimension of ``x`` that ``b`` runs along (default 1, the channels).
        act: one of ``linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish``.
        alpha: the activation's shape parameter; only lrelu uses it (default 0.2).
        gain: output scale; default sqrt(2) for relu, lrelu and swish, 1 for the others.
        clamp: clamp the output to ``[-clamp, clamp]``; None for no clamping.
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"`` (see :mod:`gankern.ops`).

    Returns:
        A tensor with the shape, dtype and memory format of ``x``.

    Gradients of first and second order are supported on every backend.
    """
    args = _check_args(x, b, dim, act, alpha, gain, clamp)
    tensors = (x,) if b is None else (x, b)
    checks = {
        name: (lambda check=check: check(*tensors, args))
        for name, (check, _) in FAST_BACKENDS.items()
    }
    backend = select_impl("bias_act", impl, checks, x.device)
    if backend == "ref":
        return bias_act_ref(x, b, args)
    return FAST_BACKENDS[backend][1](x, b, args)
