"""Fused bias + activation + gain + clamp.

``bias_act(x, b)`` computes ``clamp(act(x + b) * gain, -clamp, clamp)`` in one pass, with
the argument names, defaults and activation gains of StyleGAN2-ADA's ``bias_act`` so that
swapping the import is enough.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gankern.ops import _bias_act_op
from gankern.ops._activations import ACTIVATIONS, ActivationSpec
from gankern.ops._backend import cuda_unavailable_reason, select_impl, triton_unavailable_reason
from gankern.ops._checks import (
    check_int,
    check_number,
    check_same_device,
    check_same_dtype,
    check_tensor,
)

__all__ = ["ACTIVATIONS", "ActivationSpec", "BiasActArgs", "bias_act", "bias_act_ref"]


class BiasActArgs(NamedTuple):
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
    if x.ndim == 0:
        raise ValueError(
            "b needs x to have the dimension it runs along (dim), but x is 0-d (a scalar); "
            "pass x.reshape(1) with a bias of length 1"
        )
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"dim must be in [{-x.ndim}, {x.ndim - 1}] for x of shape {tuple(x.shape)}, got {dim}"
        )
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


def _args_reason(args: BiasActArgs) -> str | None:
    """Why the fast backends cannot take these arguments (None if they can)."""
    if args.act == "lrelu" and args.alpha < 0:
        # The derivative is read off the saved output, whose sign no longer tells the side of
        # zero the input was on when alpha < 0.
        return f"lrelu with a negative alpha ({args.alpha}) is supported by the reference only"
    return None


def _tensors(x: torch.Tensor, b: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    return (x,) if b is None else (x, b)


def _triton_reason(x, b, args: BiasActArgs) -> str | None:
    return triton_unavailable_reason(*_tensors(x, b)) or _args_reason(args)


def _cuda_reason(x, b, args: BiasActArgs) -> str | None:
    return _args_reason(args) or cuda_unavailable_reason(*_tensors(x, b))


def _run_fast(backend: str):
    def run(x: torch.Tensor, b: torch.Tensor | None, args: BiasActArgs) -> torch.Tensor:
        return _bias_act_op.bias_act_op(
            x, b, args.dim, args.act, args.alpha, args.gain, args.clamp, backend
        )

    return run


# The fast backends: name -> (reason(x, b, args), run(x, b, args)), see
# gankern.ops._backend.FastBackends. Both run the custom ops of gankern.ops._bias_act_op,
# which pick the Triton or the CUDA kernel.
FAST_BACKENDS: dict = {
    "cuda": (_cuda_reason, _run_fast("cuda")),
    "triton": (_triton_reason, _run_fast("triton")),
}


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
            float16, bfloat16, float32 (and float64 on ``impl="ref"``); a 0-d tensor only
            without ``b``.
        b: bias, a 1-D tensor of length ``x.shape[dim]`` with x's dtype and device, or None.
        dim: the dimension of ``x`` that ``b`` runs along (default 1, the channels).
        act: one of ``linear, relu, lrelu, tanh, sigmoid, elu, selu, softplus, swish``.
        alpha: the activation's shape parameter; only lrelu uses it (default 0.2).
        gain: output scale; default sqrt(2) for relu, lrelu and swish, 1 for the others.
        clamp: clamp the output to ``[-clamp, clamp]``; None for no clamping.
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"`` (see :mod:`gankern.ops`).

    Returns:
        A tensor with the shape, dtype and memory format of ``x``.

    Gradients of first and second order are supported on every backend (the reference to
    any order). The fast backends (``"triton"``, ``"cuda"``) take float16, bfloat16 and
    float32, compute in float32, and keep any dense layout (NCHW, channels_last, ...)
    without copying; a non-dense view is made dense first. They decline lrelu with a
    negative ``alpha`` (``"auto"`` then uses the reference).
    """
    if isinstance(x, torch.Tensor) and x.ndim == 0 and b is None:
        # Elementwise on a scalar: dim names no dimension then, so run it on one element.
        return bias_act(x.reshape(1), None, 0, act, alpha, gain, clamp, impl).reshape(())
    args = _check_args(x, b, dim, act, alpha, gain, clamp)
    backend = select_impl("bias_act", impl, FAST_BACKENDS, (x, b, args), x.device)
    if backend == "ref":
        return bias_act_ref(x, b, args)
    return FAST_BACKENDS[backend][1](x, b, args)
