"""A StyleGAN2 training run without its data loader, stepped one training step at a time.

What the training-throughput benchmark (:mod:`benchmarks.bench_training`) runs. The setup
and the step are those of :func:`gankern.train.loop.training_loop`, built from the
trainer's own pieces (``resolve_config``, ``resolve_settings``, ``build_networks``,
``build_augmentation``, ``StyleGAN2Loss``, ``make_phases``, ``phase_inputs``, ``run_phase``,
``update_ema``) in the loop's order, so a step costs what a step of ``gankern train``
costs: G main every step, path length every ``pl_interval`` steps, D main every step, lazy
R1 every ``r1_interval`` steps, the EMA update, ADA's bookkeeping. Left out is what is not
a training step: the data loader (the caller hands in real images already on the device),
the tick statistics' reduction, progress lines, snapshots and metrics.

``tests/test_benchmarks_training.py`` checks that a few steps here leave the networks
bit-identical to :func:`~gankern.train.loop.training_loop` run on the same images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from gankern.train.distributed import DistributedContext
from gankern.train.ema import ema_beta, update_ema
from gankern.train.loop import INIT_STREAM, build_augmentation, phase_inputs
from gankern.train.loss import StyleGAN2Loss
from gankern.train.networks import build_networks, resolve_config, resolve_precision
from gankern.train.options import TrainingOptions, check_options
from gankern.train.phases import Phase, make_phases, run_phase
from gankern.train.rng import seed_global_rngs
from gankern.train.settings import RunSettings, resolve_settings
from gankern.train.training_log import TickStats


@dataclass
class TrainingRun:
    """The networks, optimizers and counters of one single-process training run."""

    opts: TrainingOptions
    settings: RunSettings
    precision: str  # fp32, fp16 or bf16 (resolved)
    device: torch.device
    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    loss: StyleGAN2Loss
    phases: list[Phase]
    augment_pipe: nn.Module | None
    ada: object | None  # gankern.train.augment.AdaController when aug="ada"
    ctx: DistributedContext
    stats: TickStats
    nimg: int = 0
    step_index: int = 0
    skipped_phases: int = 0  # phases skipped for a non-finite loss or gradient
    phase_counts: dict[str, int] = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.settings.batch

    @property
    def regularization_cycle(self) -> int:
        """Steps after which the phase pattern repeats (16 for lazy R1 16, path length 4)."""
        return math.lcm(*(phase.interval for phase in self.phases))

    def step(self, images: torch.Tensor) -> None:
        """One training step on ``images``: ``[batch, C, H, W]`` floats in [-1, 1] on the
        device (the loop's real images after its uint8 -> float conversion)."""
        s = self.settings
        expected = (s.batch, self.G.img_channels, self.G.img_resolution, self.G.img_resolution)
        if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images must have shape {expected}, got {got}")
        labels = torch.zeros([s.batch, self.G.c_dim], device=images.device)
        real = [images[r :: s.rounds] for r in range(s.rounds)]
        real_c = [labels[r :: s.rounds] for r in range(s.rounds)]
        for phase_index, phase in enumerate(self.phases):
            if self.step_index % phase.interval != 0:
                continue
            gen_z, gen_c = phase_inputs(self.opts.seed, self.step_index, phase_index, s.batch,
                                        self.G.z_dim, None, self.G.c_dim, self.device)
            result = run_phase(
                phase, phase_index, step=self.step_index, seed=self.opts.seed, loss=self.loss,
                settings=s, ctx=self.ctx, real=real, real_c=real_c, gen_z=gen_z, gen_c=gen_c,
                guarded=[self.G, self.D],
            )  # fmt: skip
            self.phase_counts[phase.name] = self.phase_counts.get(phase.name, 0) + 1
            if result.finite:
                for name, values in result.stats:
                    self.stats.add(name, values)
                if self.ada is not None and result.real_logits is not None:
                    self.ada.accumulate(result.real_logits)
            else:
                self.skipped_phases += 1
        update_ema(self.G_ema, self.G,
                   ema_beta(s.batch, self.nimg, s.ema_kimg, s.ema_rampup))
        self.nimg += s.batch
        self.step_index += 1
        if self.ada is not None and self.step_index % self.opts.ada_interval == 0:
            self.ada.update(s.batch * self.opts.ada_interval)


def build_training_run(
    opts: TrainingOptions,
    resolution: int,
    img_channels: int = 3,
    device: torch.device | str = "cpu",
    ada_p: float | None = None,
) -> TrainingRun:
    """Networks, loss, optimizers and phases for ``opts``, as the training loop sets them up.

    Args:
        opts: the training options (``cfg``, ``impl``, ``precision``, ``batch``,
            ``batch_gpu``, ``aug``, ``channels_last``, ``extra``, ...); ``opts.data`` and the
            options about snapshots, logs and length are not used.
        resolution, img_channels: the images the run trains on (what the dataset would
            tell the loop).
        device: where to train.
        ada_p: with ``aug="ada"``, the augmentation probability to start from (None: the
            pipeline's own start, 0); ADA still adjusts it as the run goes.
    """
    check_options(opts)
    device = torch.device(device)
    if ada_p is not None and opts.aug != "ada":
        raise ValueError(f"ada_p is only used with aug='ada', got aug={opts.aug!r}")
    if ada_p is not None and not (isinstance(ada_p, (int, float)) and 0 <= ada_p <= 1):
        raise ValueError(f"ada_p must be a number in [0, 1], got {ada_p!r}")
    ctx = DistributedContext(device=device)
    precision = resolve_precision(opts.precision, device)
    config = resolve_config(opts, resolution, img_channels, 0, ctx.world_size, device)
    settings = resolve_settings(opts, config, ctx.world_size, precision)
    seed_global_rngs(opts.seed, INIT_STREAM)  # initialization, as in the loop
    G, D = build_networks(config, precision, opts.impl, device, opts.channels_last)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G.requires_grad_(False)
    D.requires_grad_(False)
    augment_fn, augment_pipe, ada = build_augmentation(opts, device)
    if augment_pipe is not None and ada_p is not None:
        augment_pipe.p.fill_(float(ada_p))
    loss = StyleGAN2Loss(
        G, D, r1_gamma=settings.gamma, pl_weight=settings.pl_weight, pl_decay=settings.pl_decay,
        style_mixing_prob=settings.style_mixing, augment=augment_fn,
        channels_last=opts.channels_last,
    )  # fmt: skip
    _, _, phases = make_phases(G, D, settings)
    return TrainingRun(
        opts=opts, settings=settings, precision=precision, device=device, G=G, D=D,
        G_ema=G_ema, loss=loss, phases=phases, augment_pipe=augment_pipe, ada=ada, ctx=ctx,
        stats=TickStats(device),
    )  # fmt: skip
