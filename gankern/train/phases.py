"""The phases of a training step and how one phase is executed.

A step runs up to four phases, as StyleGAN2: ``Gmain`` (G's loss), ``Greg`` (path length,
every ``pl_interval`` steps), ``Dmain`` (D's loss), ``Dreg`` (R1, every ``r1_interval``
steps). With an interval of 0 the regularizer joins the main phase (``Gboth``/``Dboth``).
A lazy regularizer is multiplied by its interval, and its network's Adam gets
``lr * r`` and ``beta ** r`` with ``r = interval / (interval + 1)``.

One phase = one optimizer step over the global batch, split into *slices* of ``batch_gpu``
images: process ``p`` of ``P`` computes slices ``p, p + P, p + 2P, ...`` (one per
accumulation round), each with the global RNG seeded for that slice. Every term is
normalized by the size of the *global* batch, so the gradients summed over rounds and
processes are those of one process computing the whole batch. A phase whose loss or
gradients are not finite is skipped: no optimizer step, buffers (``w_avg``) restored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankern.train.distributed import DistributedContext
from gankern.train.lazy_regularization import lazy_adam_hyperparameters
from gankern.train.loss import StyleGAN2Loss
from gankern.train.rng import seed_global_rngs
from gankern.train.settings import RunSettings

# Tag of the stream that seeds the global RNG for each slice (see gankern.train.rng).
SLICE_STREAM = 3


@dataclass
class Phase:
    """One phase: which network it trains, with which optimizer, how often, and what."""

    name: str
    module: nn.Module
    opt: torch.optim.Optimizer
    interval: int  # runs when step % interval == 0
    main: bool  # the main loss
    reg: bool  # the regularizer
    reg_gain: float  # multiplier of the regularizer (its lazy interval, or 1)
    consecutive_skips: int = 0

    @property
    def trains_generator(self) -> bool:
        return self.name.startswith("G")


def _phases_for(prefix, module, lr, betas, interval, active):
    """The phases and optimizer of one network (main + lazy reg, or both together)."""
    if active and interval > 0:
        lr, betas = lazy_adam_hyperparameters(lr, betas, interval)
        opt = torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=1e-8)
        return opt, [
            Phase(f"{prefix}main", module, opt, 1, main=True, reg=False, reg_gain=0.0),
            Phase(f"{prefix}reg", module, opt, interval, main=False, reg=True,
                  reg_gain=float(interval)),
        ]
    opt = torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(betas), eps=1e-8)
    return opt, [Phase(f"{prefix}both", module, opt, 1, main=True, reg=active, reg_gain=1.0)]


def make_phases(G: nn.Module, D: nn.Module, s: RunSettings):
    """``(G_opt, D_opt, phases)`` in execution order (G phases, then D phases)."""
    G_opt, G_phases = _phases_for("G", G, s.glr, s.betas, s.pl_interval, s.pl_weight > 0)
    D_opt, D_phases = _phases_for("D", D, s.dlr, s.betas, s.r1_interval, s.gamma > 0)
    return G_opt, D_opt, G_phases + D_phases


@dataclass
class PhaseResult:
    """What the loop needs from a phase after it ran."""

    finite: bool
    real_logits: torch.Tensor | None  # this process's D(real) logits (for ADA), if computed
    stats: list[tuple[str, torch.Tensor]]  # per-slice statistics (to log if finite)


def _reduce_and_check(module: nn.Module, extras: torch.Tensor, ctx: DistributedContext):
    """Sum gradients and ``extras`` over processes; True if all are finite.

    Parameters without a gradient stay without one (every process runs the same graph,
    so they are the same on every process).
    """
    params = [p for p in module.parameters() if p.grad is not None]
    flat = torch.cat([p.grad.reshape(-1).float() for p in params] + [extras.reshape(-1)])
    ctx.all_reduce_(flat)
    finite = bool(torch.isfinite(flat).all())
    if ctx.world_size > 1:
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n
    extras.copy_(flat[-extras.numel() :])
    return finite


def run_phase(
    phase: Phase,
    phase_index: int,
    *,
    step: int,
    seed: int,
    loss: StyleGAN2Loss,
    settings: RunSettings,
    ctx: DistributedContext,
    real: list[torch.Tensor],
    real_c: list[torch.Tensor],
    gen_z: torch.Tensor,
    gen_c: torch.Tensor,
    guarded: list[nn.Module],
) -> PhaseResult:
    """Accumulate the phase's gradients over this process's slices, then step or skip.

    Args:
        real, real_c: this process's real images and labels, one tensor per round.
        gen_z, gen_c: latents and labels of the whole global batch (slice ``s`` is rows
            ``s::num_slices``).
        guarded: modules whose buffers are restored if the phase is skipped.
    """
    s = settings
    module = phase.module
    device = gen_z.device
    saved_buffers = [b.detach().clone() for m in guarded for b in m.buffers()]
    module.requires_grad_(True)
    phase.opt.zero_grad(set_to_none=True)

    # extras: [sum of objectives, sum of path lengths], summed over processes with the grads.
    extras = torch.zeros([2], device=device)
    pl_per_slice = max(s.batch_gpu // s.pl_batch_shrink, 1)
    logits_out, stats = [], []

    def keep(slice_stats: dict) -> None:
        stats.extend((name, values.detach()) for name, values in slice_stats.items())

    for round_idx in range(s.rounds):
        slice_idx = ctx.rank + ctx.world_size * round_idx
        seed_global_rngs(seed, SLICE_STREAM, step, phase_index, slice_idx)
        z = gen_z[slice_idx :: s.num_slices]
        c = gen_c[slice_idx :: s.num_slices]
        terms = []
        if phase.trains_generator:
            if phase.main:
                g_loss, g_stats = loss.generator_main(z, c)
                terms.append(g_loss.sum() / s.batch)
                keep(g_stats)
            if phase.reg:
                penalty, lengths, pl_stats = loss.generator_path_length(
                    z[:pl_per_slice], c[:pl_per_slice]
                )
                terms.append(penalty.sum() * (phase.reg_gain / (pl_per_slice * s.num_slices)))
                extras[1] += lengths.sum()
                keep(pl_stats)
        else:
            if phase.main:
                d_loss, r1, logits, d_stats = loss.discriminator_main(
                    real[round_idx], real_c[round_idx], z, c, with_r1=phase.reg
                )
                terms.append(d_loss.sum() / s.batch)
                if r1 is not None:
                    terms.append(r1.sum() * (phase.reg_gain / s.batch))
                logits_out.append(logits)
            else:
                r1, _, d_stats = loss.discriminator_r1(real[round_idx], real_c[round_idx])
                terms.append(r1.sum() * (phase.reg_gain / s.batch))
            keep(d_stats)
        objective = torch.stack(terms).sum()
        objective.backward()
        extras[0] += objective.detach()

    finite = _reduce_and_check(module, extras, ctx)
    if finite:
        phase.opt.step()
        if phase.trains_generator and phase.reg:
            loss.update_pl_mean(extras[1] / (pl_per_slice * s.num_slices))
        phase.consecutive_skips = 0
    else:
        phase.opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            restored = [b for m in guarded for b in m.buffers()]
            for b, saved in zip(restored, saved_buffers, strict=True):
                b.copy_(saved)
        phase.consecutive_skips += 1
    module.requires_grad_(False)
    real_logits = torch.cat(logits_out) if logits_out else None
    return PhaseResult(finite=finite, real_logits=real_logits, stats=stats)
