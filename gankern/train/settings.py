"""The effective settings of a run: the options with every None resolved.

Options left at None take the network configuration's recommendation
(:class:`gankern.models.stylegan2_configs.TrainingHyperparams`); the result is printed at
the start of a run and saved in its checkpoints, so what a run did is never a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gankern.models.stylegan2_configs import StyleGAN2Config
from gankern.train.options import TrainingOptions, split_batch
from gankern.train.snapshot_metrics import check_metric_names

BUILTIN_DIGITS = "builtin:digits"
DEFAULT_DIGITS_METRICS = ("fid_digits",)


@dataclass(frozen=True)
class RunSettings:
    """Resolved hyperparameters (see :class:`TrainingOptions` for their meaning)."""

    batch: int
    batch_gpu: int
    rounds: int  # gradient accumulation rounds per process
    world_size: int
    glr: float
    dlr: float
    betas: tuple[float, float]
    gamma: float
    r1_interval: int
    pl_weight: float
    pl_interval: int
    pl_batch_shrink: int
    pl_decay: float
    style_mixing: float
    ema_kimg: float
    ema_rampup: float
    total_kimg: float
    precision: str
    metrics: tuple[str, ...]

    @property
    def num_slices(self) -> int:
        """Slices of ``batch_gpu`` images in one global batch (processes x rounds)."""
        return self.world_size * self.rounds

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["metrics"] = list(self.metrics)
        return d


def _default_batch_gpu(batch: int, world_size: int, recommended: int) -> int:
    per_process = batch // world_size
    if recommended < per_process and per_process % recommended == 0:
        return recommended
    return per_process


def resolve_settings(
    opts: TrainingOptions, config: StyleGAN2Config, world_size: int, precision: str
) -> RunSettings:
    """Fill the options' None fields from ``config``; checks the batch split."""
    hp = config.train
    batch = opts.batch if opts.batch is not None else hp.batch
    if batch % world_size:
        raise ValueError(f"batch ({batch}) must be divisible by the number of processes "
                         f"({world_size})")
    batch_gpu = opts.batch_gpu
    if batch_gpu is None:
        batch_gpu = _default_batch_gpu(batch, world_size, hp.batch_gpu)
    batch_gpu, rounds = split_batch(batch, batch_gpu, world_size)
    if opts.metrics is None:
        metrics = DEFAULT_DIGITS_METRICS if opts.data == BUILTIN_DIGITS else ()
    else:
        metrics = tuple(check_metric_names(opts.metrics))
    ema_kimg = opts.ema_kimg if opts.ema_kimg is not None else hp.ema_kimg
    ema_rampup = opts.ema_rampup if opts.ema_rampup is not None else (hp.ema_rampup or 0.0)
    return RunSettings(
        batch=batch,
        batch_gpu=batch_gpu,
        rounds=rounds,
        world_size=world_size,
        glr=opts.glr if opts.glr is not None else hp.lrate,
        dlr=opts.dlr if opts.dlr is not None else hp.lrate,
        betas=tuple(float(b) for b in opts.betas),
        gamma=opts.gamma if opts.gamma is not None else hp.gamma,
        r1_interval=opts.r1_interval,
        pl_weight=opts.pl_weight if opts.pl_weight is not None else hp.pl_weight,
        pl_interval=opts.pl_interval,
        pl_batch_shrink=opts.pl_batch_shrink,
        pl_decay=opts.pl_decay,
        style_mixing=opts.style_mixing if opts.style_mixing is not None else hp.style_mixing_prob,
        ema_kimg=ema_kimg,
        ema_rampup=ema_rampup,
        total_kimg=opts.kimg if opts.kimg is not None else float(hp.total_kimg),
        precision=precision,
        metrics=metrics,
    )
