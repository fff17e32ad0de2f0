"""The phases of a training step and how one phase is executed, for every model family.

Each player (an optimizer and the networks it trains: ``G``, ``D``) has a main phase and,
if it has a regularizer, a regularization phase: ``Gmain`` (G's loss), ``Greg``
(StyleGAN2's path length, every ``pl_interval`` steps), ``Dmain`` (D's loss), ``Dreg``
(R1 / R2 / gradient penalty, every ``r1_interval`` steps). With an interval of 0 the
regularizer joins the main phase (``Gboth``/``Dboth``). A lazy regularizer is multiplied
by its interval, and its network's Adam gets ``lr * r`` and ``beta ** r`` with
``r = interval / (interval + 1)`` (StyleGAN2).

Every step trains D on a new batch of reals; G's phases run every ``n_critic``-th step
(D steps per G step, WGAN). The family says whether G's phases come first in a step
(StyleGAN2) or after D's (the classic order, and the only sensible one with
``n_critic > 1``: G follows the ``n_critic``-th D update).

One phase = one optimizer step over the global batch, split into *slices* of ``batch_gpu``
images: process ``p`` of ``P`` computes slices ``p, p + P, p + 2P, ...`` (one per
accumulation round), each with the global RNG seeded for that slice. Every term is
normalized by the size of the *global* batch, so the gradients summed over rounds and
processes are those of one process computing the whole batch. A phase whose loss or
gradients are not finite is skipped: no optimizer step, buffers (``w_avg``, batch-norm
statistics) restored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from gankern.train.distributed import DistributedContext
from gankern.train.family import GANFamily, Phase, PhaseInputs
from gankern.train.lazy_regularization import lazy_adam_hyperparameters
from gankern.train.precision import LossScaler
from gankern.train.rng import seed_global_rngs
from gankern.train.settings import RunSettings

# Tag of the stream that seeds the global RNG for each slice (see gankern.train.rng).
SLICE_STREAM = 3

__all__ = ["Phase", "PhaseResult", "lr_factor", "make_phases", "run_phase"]


def _player_parameters(networks: Mapping[str, nn.Module], names) -> list[nn.Parameter]:
    params = []
    for name in names:
        params.extend(networks[name].parameters())
    return params


def _make_optimizer(kind: str, params, lr: float, betas, eps: float) -> torch.optim.Optimizer:
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=float(betas[1]), eps=eps)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(betas[0]))
    raise ValueError(f"optimizer must be adam, rmsprop or sgd, got {kind!r}")


def _player_phases(player, params, kind, lr, betas, eps, interval, active, g_every, g_offset):
    """The optimizer and phases of one player (main + lazy reg, or both together)."""
    if active and interval > 0:
        if kind == "adam":
            lr, betas = lazy_adam_hyperparameters(lr, betas, interval)
        else:  # only the learning rate is rescaled for RMSprop and SGD
            lr = lr * interval / (interval + 1)
        opt = _make_optimizer(kind, params, lr, betas, eps)
        return opt, [
            Phase(f"{player}main", player, opt, g_every, main=True, reg=False, reg_gain=0.0,
                  offset=g_offset, base_lr=lr),
            Phase(f"{player}reg", player, opt, interval, main=False, reg=True,
                  reg_gain=float(interval), base_lr=lr),
        ]
    opt = _make_optimizer(kind, params, lr, betas, eps)
    return opt, [Phase(f"{player}both", player, opt, g_every, main=True, reg=active,
                       reg_gain=1.0, offset=g_offset, base_lr=lr)]


def make_phases(networks: Mapping[str, nn.Module], s: RunSettings, family: GANFamily):
    """``(optimizers, phases)``: ``{"G_opt": ..., "D_opt": ...}`` and the phases in
    execution order (see the module docstring)."""
    n = s.n_critic
    g_first = family.phase_order == "GD"
    g_offset = 0 if g_first else n - 1
    optimizers, by_player = {}, {}
    for player, names in family.players.items():
        params = _player_parameters(networks, names)
        if player.startswith("G"):
            opt, phases = _player_phases(player, params, s.optimizer, s.glr, s.betas, s.eps,
                                         s.pl_interval, family.has_generator_regularizer(),
                                         n, g_offset)
        else:
            opt, phases = _player_phases(player, params, s.optimizer, s.dlr, s.betas, s.eps,
                                         s.r1_interval, family.has_discriminator_regularizer(),
                                         1, 0)
        optimizers[f"{player}_opt"] = opt
        by_player[player] = phases
    g_phases = [p for k, v in by_player.items() if k.startswith("G") for p in v]
    d_phases = [p for k, v in by_player.items() if not k.startswith("G") for p in v]
    return optimizers, (g_phases + d_phases if g_first else d_phases + g_phases)


def lr_factor(s: RunSettings, nimg: int) -> float:
    """The learning-rate schedule's factor after ``nimg`` images (1 when constant)."""
    if s.lr_schedule == "constant":
        return 1.0
    progress = nimg / max(s.total_kimg * 1000.0, 1e-9)
    if progress <= s.lr_decay_start:
        return 1.0
    return max(0.0, (1.0 - progress) / (1.0 - s.lr_decay_start))


@dataclass
class PhaseResult:
    """What the loop needs from a phase after it ran."""

    finite: bool
    real_logits: torch.Tensor | None  # this process's D(real) logits (for ADA), if computed
    stats: list[tuple[str, torch.Tensor]]  # per-slice statistics (to log if finite)


def _reduce_and_check(params, extras: torch.Tensor, ctx: DistributedContext,
                      scale: float | None) -> bool:
    """Sum gradients and ``extras`` over processes (unscaling the gradients by ``scale``);
    True if all are finite.

    Parameters without a gradient stay without one (every process runs the same graph,
    so they are the same on every process).
    """
    params = [p for p in params if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1).float() for p in params] + [extras.reshape(-1)])
    ctx.all_reduce_(flat)
    n_grads = flat.numel() - extras.numel()
    if scale is not None:
        flat[:n_grads] /= scale
    finite = bool(torch.isfinite(flat).all())
    if ctx.world_size > 1 or scale is not None:
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
    extras.copy_(flat[n_grads:])
    return finite


def _modules_of(phase: Phase, family: GANFamily) -> list[nn.Module]:
    return [family.networks[name] for name in family.players[phase.player]]


def run_phase(
    phase: Phase,
    phase_index: int,
    *,
    step: int,
    seed: int,
    family: GANFamily,
    settings: RunSettings,
    ctx: DistributedContext,
    real: list[tuple[torch.Tensor, ...]],
    gen_z: torch.Tensor,
    gen_c: torch.Tensor,
    guarded: list[nn.Module],
    nimg: int = 0,
    scaler: LossScaler | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> PhaseResult:
    """Accumulate the phase's gradients over this process's slices, then step or skip.

    Args:
        real: this process's real data, one tuple of tensors per round.
        gen_z, gen_c: latents and labels of the whole global batch (slice ``s`` is rows
            ``s::num_slices``).
        guarded: modules whose buffers are restored if the phase is skipped.
        nimg: images seen before this step (the learning-rate schedule).
        scaler: dynamic loss scaling (float16 autocast), or None.
        autocast_dtype: run the family's computation under autocast in this dtype, or None.
    """
    s = settings
    modules = _modules_of(phase, family)
    device = gen_z.device
    saved_buffers = [b.detach().clone() for m in guarded for b in m.buffers()]
    for module in modules:
        module.requires_grad_(True)
    phase.opt.zero_grad(set_to_none=True)

    extra_names: list[str] | None = None
    extras_sum: torch.Tensor | None = None  # [objective, *family extras], summed
    logits_out, stats = [], []
    autocast = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
                else contextlib.nullcontext())
    for round_idx in range(s.rounds):
        slice_idx = ctx.rank + ctx.world_size * round_idx
        seed_global_rngs(seed, SLICE_STREAM, step, phase_index, slice_idx)
        inputs = PhaseInputs(
            real=real[round_idx], z=gen_z[slice_idx :: s.num_slices],
            c=gen_c[slice_idx :: s.num_slices], batch=s.batch, num_slices=s.num_slices,
            step=step,
        )  # fmt: skip
        with autocast:
            out = family.compute(phase, inputs)
        stats.extend((name, values.detach()) for name, values in out.stats.items())
        if out.real_logits is not None:
            logits_out.append(out.real_logits.detach())
        objective = torch.stack([t.float() for t in out.terms]).sum()
        (objective * scaler.scale if scaler is not None else objective).backward()
        if extra_names is None:
            extra_names = sorted(out.extras)
            extras_sum = torch.zeros([1 + len(extra_names)], device=device)
        extras_sum[0] += objective.detach()
        for i, name in enumerate(extra_names):
            extras_sum[1 + i] += out.extras[name].detach()

    params = [p for m in modules for p in m.parameters()]
    finite = _reduce_and_check(params, extras_sum, ctx,
                               scaler.scale if scaler is not None else None)
    if finite:
        factor = lr_factor(s, nimg)
        if s.lr_schedule != "constant":
            for group in phase.opt.param_groups:
                group["lr"] = phase.base_lr * factor
        phase.opt.step()
        family.after_step(phase, {name: extras_sum[1 + i] for i, name in enumerate(extra_names)})
        phase.consecutive_skips = 0
    else:
        phase.opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            restored = [b for m in guarded for b in m.buffers()]
            for b, saved in zip(restored, saved_buffers, strict=True):
                b.copy_(saved)
        phase.consecutive_skips += 1
    if scaler is not None:
        scaler.update(finite)
    for module in modules:
        module.requires_grad_(False)
    real_logits = torch.cat(logits_out) if logits_out else None
    return PhaseResult(finite=finite, real_logits=real_logits, stats=stats)
