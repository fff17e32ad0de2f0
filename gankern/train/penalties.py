"""Gradient penalties: R1, R2, WGAN-GP and StyleGAN2's path-length regularizer.

Each works on any callable network (an ``nn.Module``, or a function wrapping one, e.g. with
augmentation in front of the discriminator) and returns a differentiable value whose
gradients with respect to the network's parameters are those of plain autograd.

Conventions (StyleGAN2): the caller applies the loss weights and the lazy-regularization
factor, e.g. ``loss_Dr1 = r1_penalty(D, reals, c) * (gamma / 2) * interval`` (see
:mod:`gankern.train.lazy_regularization`).

The gradients with respect to the *inputs* are taken with ``create_graph=True`` inside
:func:`gankern.ops.no_weight_gradients` (``skip_weight_gradients=True``, the default), so
gankern's convolutions skip the unused weight gradients of that inner backward (weights
computed from the differentiated input, such as per-sample modulated weights built from
``ws``, keep theirs). ``skip_weight_gradients=False`` runs it outside the context, for
networks with their own weight-gradient switches that must not be triggered.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from gankern.ops._checks import check_number
from gankern.ops.conv2d import no_weight_gradients

REDUCTIONS = ("mean", "sum", "none")
NORMS = ("l2", "l1", "linf")


def squared_norm_per_sample(t: torch.Tensor) -> torch.Tensor:
    """``[N, ...] -> [N]``: the sum of squares of each sample, in float32 or wider.

    One batched dot product (``bmm`` of ``[N, 1, D]`` by ``[N, D, 1]``): a single reduction
    that does not materialize ``t ** 2``; differentiable to any order (and 0 gradient-safe,
    unlike ``vector_norm(t) ** 2``).
    """
    flat = t.reshape(t.shape[0], 1, -1)
    if flat.dtype in (torch.float16, torch.bfloat16):
        flat = flat.float()
    return torch.bmm(flat, flat.transpose(1, 2)).reshape(t.shape[0])


def _check_callable(name: str, net) -> None:
    if not callable(net) or isinstance(net, torch.Tensor):
        raise TypeError(f"{name} must be an nn.Module or a callable, got {type(net).__name__}")


def _check_input(name: str, t) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {t.dtype}")
    if t.ndim < 2 or t.numel() == 0:
        raise ValueError(f"{name} must be a non-empty batch [N, ...], got shape {tuple(t.shape)}")


def _check_generator(generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def _check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def _check_reduction(reduction) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def input_gradients(
    outputs: torch.Tensor, inputs: torch.Tensor, *, skip_weight_gradients: bool = True
) -> torch.Tensor:
    """The gradient of ``outputs.sum()`` with respect to ``inputs``, as a differentiable tensor.

    Args:
        outputs: the network's per-sample outputs ``[N]`` or ``[N, ...]`` (e.g. logits).
        inputs: the tensor the outputs were computed from; it must require gradients.
        skip_weight_gradients: run the backward inside :func:`no_weight_gradients`.

    Because samples do not interact in the network, this is each sample's own gradient.
    """
    if not isinstance(outputs, torch.Tensor):
        raise TypeError(
            f"the network's output must be a torch.Tensor, got {type(outputs).__name__}"
        )
    if outputs.ndim < 1 or outputs.shape[0] != inputs.shape[0]:
        raise ValueError(
            f"the network's output must be per sample, [N] or [N, ...] with N = {inputs.shape[0]}, "
            f"got shape {tuple(outputs.shape)}"
        )
    if not outputs.requires_grad:
        raise ValueError(
            "the network's output does not depend on its input through autograd (was it run "
            "under torch.no_grad(), or does it detach its input?)"
        )
    with no_weight_gradients(skip_weight_gradients):
        (grad,) = torch.autograd.grad(
            outputs.sum(), inputs, create_graph=True, allow_unused=True
        )
    if grad is None:
        raise ValueError("the network's output does not depend on its input")
    return grad


def _gradient_penalty_on(net, x, name, d_args, d_kwargs, reduction, return_logits, skip):
    _check_callable("discriminator", net)
    _check_input(name, x)
    _check_reduction(reduction)
    _check_flag("return_logits", return_logits)
    _check_flag("skip_weight_gradients", skip)
    x = x.detach().requires_grad_(True)
    logits = net(x, *d_args, **d_kwargs)
    grad = input_gradients(logits, x, skip_weight_gradients=skip)
    penalty = _reduce(squared_norm_per_sample(grad), reduction)
    return (penalty, logits) if return_logits else penalty


def r1_penalty(
    discriminator: Callable[..., torch.Tensor],
    reals: torch.Tensor,
    *d_args,
    reduction: str = "mean",
    return_logits: bool = False,
    skip_weight_gradients: bool = True,
    **d_kwargs,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """R1: the squared norm of the discriminator's gradient on real samples.

    ``||grad_x D(x)||^2`` per sample (Mescheder et al. 2018), without the ``gamma / 2``
    factor: StyleGAN2 uses ``loss_Dr1 = r1_penalty(D, reals, c) * (gamma / 2)``, times the
    interval under lazy regularization.

    Args:
        discriminator: an ``nn.Module`` or callable, ``discriminator(x, *d_args, **d_kwargs)``
            returning per-sample logits ``[N]`` or ``[N, ...]`` (summed over the extra dims).
        reals: real samples ``[N, ...]``; detached and set to require gradients internally,
            so any tensor will do.
        *d_args, **d_kwargs: further arguments of the discriminator (e.g. conditioning).
        reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` (``[N]``).
        return_logits: also return the logits, to reuse them in the main loss.
        skip_weight_gradients: skip the unused weight gradients of the inner backward (see
            the module docstring).

    Returns:
        The penalty (a differentiable scalar, or ``[N]``), and the logits if asked.
    """
    return _gradient_penalty_on(
        discriminator, reals, "reals", d_args, d_kwargs, reduction, return_logits,
        skip_weight_gradients,
    )


def r2_penalty(
    discriminator: Callable[..., torch.Tensor],
    fakes: torch.Tensor,
    *d_args,
    reduction: str = "mean",
    return_logits: bool = False,
    skip_weight_gradients: bool = True,
    **d_kwargs,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """R2: :func:`r1_penalty` on generated samples.

    ``fakes`` are detached, so the penalty trains the discriminator only. Arguments and
    return value as for :func:`r1_penalty`.
    """
    return _gradient_penalty_on(
        discriminator, fakes, "fakes", d_args, d_kwargs, reduction, return_logits,
        skip_weight_gradients,
    )


def _gradient_norm(grad: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "l2":
        # clamp: a zero gradient gets a zero (not NaN) derivative through the square root
        return squared_norm_per_sample(grad).clamp_min(torch.finfo(torch.float32).tiny).sqrt()
    flat = grad.reshape(grad.shape[0], -1)
    return torch.linalg.vector_norm(flat, ord=1 if norm == "l1" else math.inf, dim=1)


def wgan_gp_penalty(
    discriminator: Callable[..., torch.Tensor],
    reals: torch.Tensor,
    fakes: torch.Tensor,
    *d_args,
    target: float = 1.0,
    norm: str = "l2",
    generator: torch.Generator | None = None,
    reduction: str = "mean",
    skip_weight_gradients: bool = True,
    **d_kwargs,
) -> torch.Tensor:
    """WGAN-GP: ``(||grad D(x_hat)|| - target) ** 2`` on random interpolates.

    ``x_hat = eps * reals + (1 - eps) * fakes`` with one ``eps ~ U[0, 1)`` per sample
    (Gulrajani et al. 2017). The caller applies the weight (10 in the paper).

    Args:
        discriminator: as for :func:`r1_penalty`.
        reals, fakes: samples of the same shape ``[N, ...]``, dtype and device (detached).
        *d_args, **d_kwargs: further arguments of the discriminator.
        target: the gradient norm aimed at (1 in the paper; ProGAN uses 750 with a
            matching weight), any finite number >= 0.
        norm: ``"l2"`` (default), ``"l1"`` or ``"linf"``, over all of a sample's elements.
        generator: the ``torch.Generator`` drawing ``eps`` (default: the global one).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``[N]``).
        skip_weight_gradients: as for :func:`r1_penalty`.
    """
    _check_callable("discriminator", discriminator)
    _check_input("reals", reals)
    _check_input("fakes", fakes)
    if fakes.shape != reals.shape or fakes.dtype != reals.dtype or fakes.device != reals.device:
        raise ValueError(
            f"fakes must match reals in shape, dtype and device ({tuple(reals.shape)}, "
            f"{reals.dtype}, {reals.device}), "
            f"got {tuple(fakes.shape)}, {fakes.dtype}, {fakes.device}"
        )
    target = check_number("target", target, min_value=0)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    _check_generator(generator)
    _check_reduction(reduction)
    _check_flag("skip_weight_gradients", skip_weight_gradients)
    eps_shape = (reals.shape[0],) + (1,) * (reals.ndim - 1)
    eps = torch.rand(eps_shape, generator=generator, device=reals.device, dtype=reals.dtype)
    x_hat = torch.lerp(fakes.detach(), reals.detach(), eps).requires_grad_(True)
    logits = discriminator(x_hat, *d_args, **d_kwargs)
    grad = input_gradients(logits, x_hat, skip_weight_gradients=skip_weight_gradients)
    return _reduce((_gradient_norm(grad, norm) - target).square(), reduction)


class PathLengthPenalty(nn.Module):
    """StyleGAN2's path-length regularizer, holding the running mean of the path lengths.

    For images ``G(ws)`` and Gaussian noise ``y`` scaled by ``1 / sqrt(H * W)``, the path
    length of each sample is ``sqrt(mean over the ws entries of sum over the w dims of
    (d (G(ws) * y).sum() / d ws) ** 2)``. The running mean moves towards the batch mean
    by ``decay`` per call (its value, with the batch mean's gradient, is used, as in
    StyleGAN2), and the penalty is ``weight * (length - mean) ** 2``.

    The mean is a buffer (``pl_mean``), so it goes into ``state_dict()`` and checkpoints.
    Under DDP each rank keeps its own mean, as StyleGAN2 does.

    Args:
        decay: how fast the running mean follows the batch mean (StyleGAN2: 0.01).
        weight: loss weight (StyleGAN2: 2). Multiply by the interval for lazy
            regularization (StyleGAN2 also halves the batch, ``pl_batch_shrink=2``).
    """

    def __init__(self, decay: float = 0.01, weight: float = 2.0):
        super().__init__()
        self.decay = check_number("decay", decay, min_value=0)
        if self.decay > 1:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.weight = check_number("weight", weight)
        self.register_buffer("pl_mean", torch.zeros([], dtype=torch.float32))

    def extra_repr(self) -> str:
        return f"decay={self.decay}, weight={self.weight}"

    def path_lengths(
        self,
        images: torch.Tensor,
        ws: torch.Tensor,
        generator: torch.Generator | None = None,
        skip_weight_gradients: bool = True,
    ) -> torch.Tensor:
        """The per-sample path lengths ``[N]`` (differentiable) of ``images`` made from ``ws``."""
        _check_input("images", images)
        _check_input("ws", ws)
        if ws.shape[0] != images.shape[0]:
            raise ValueError(
                f"ws must have the batch size of images ({images.shape[0]}), "
                f"got shape {tuple(ws.shape)}"
            )
        _check_generator(generator)
        _check_flag("skip_weight_gradients", skip_weight_gradients)
        if not ws.requires_grad:
            raise ValueError("ws must require gradients and images must be computed from it")
        pixels = math.prod(images.shape[2:])
        noise = torch.randn(
            images.shape, generator=generator, device=images.device, dtype=images.dtype
        ) / math.sqrt(pixels)
        grad = input_gradients(
            (images * noise).flatten(1).sum(1), ws, skip_weight_gradients=skip_weight_gradients
        )
        # mean over the ws entries of the sum over w_dim = total sum of squares / num_ws
        num_ws = math.prod(ws.shape[1:-1])
        squared = squared_norm_per_sample(grad) / num_ws
        return squared.clamp_min(torch.finfo(torch.float32).tiny).sqrt()  # no NaN at 0

    def forward(
        self,
        images: torch.Tensor,
        ws: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        reduction: str = "mean",
        skip_weight_gradients: bool = True,
    ) -> torch.Tensor:
        """The weighted penalty, updating the running mean.

        Args:
            images: generated images ``[N, C, H, W]`` (or ``[N, C, ...]``) computed from ``ws``.
            ws: the latents they were computed from, ``[N, num_ws, w_dim]`` or ``[N, w_dim]``,
                requiring gradients (an intermediate such as the mapping's output is fine).
            generator: the ``torch.Generator`` drawing the image-space noise.
            reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``[N]``).
            skip_weight_gradients: as for :func:`r1_penalty`; pass False if the generator's
                weights are computed from ``ws`` (per-sample modulated weights).
        """
        _check_reduction(reduction)
        lengths = self.path_lengths(images, ws, generator, skip_weight_gradients)
        mean = self.pl_mean.to(lengths).lerp(lengths.mean(), self.decay)
        with torch.no_grad():
            self.pl_mean.copy_(mean.detach())
        return _reduce((lengths - mean).square() * self.weight, reduction)

    def from_generator(
        self,
        synthesis: Callable[..., torch.Tensor],
        ws: torch.Tensor,
        *g_args,
        generator: torch.Generator | None = None,
        reduction: str = "mean",
        skip_weight_gradients: bool = True,
        **g_kwargs,
    ) -> torch.Tensor:
        """:meth:`forward` on the images of ``synthesis(ws, *g_args, **g_kwargs)``.

        ``ws`` is used as is when it requires gradients (then the penalty also trains what
        produced it, e.g. the mapping network); otherwise a detached copy requiring gradients
        is used. The other keyword arguments are those of :meth:`forward`.
        """
        _check_callable("synthesis", synthesis)
        _check_input("ws", ws)
        if not ws.requires_grad:
            ws = ws.detach().requires_grad_(True)
        images = synthesis(ws, *g_args, **g_kwargs)
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"synthesis must return a tensor, got {type(images).__name__}")
        return self(
            images, ws, generator=generator, reduction=reduction,
            skip_weight_gradients=skip_weight_gradients,
        )
