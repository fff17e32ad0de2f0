"""The effective settings of a run: the options with every None resolved.

Options left at None take the recommendation of the model family's configuration
(:class:`gankern.train.family.Hyperparameters`); the result is printed at the start of a
run and saved in its checkpoints, so what a run did is never a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gankern.train.family import Hyperparameters
from gankern.train.options import KNOBS, TrainingOptions, split_batch
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
    optimizer: str = "adam"
    eps: float = 1e-8
    loss: str = "nonsaturating"
    d_reg: str = "none"
    n_critic: int = 1
    clip: float | None = None
    lr_schedule: str = "constant"
    lr_decay_start: float = 0.0
    ema_start_kimg: float = 0.0

    @property
    def num_slices(self) -> int:
        """Slices of ``batch_gpu`` images in one global batch (processes x rounds)."""
        return self.world_size * self.rounds

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["metrics"] = list(self.metrics)
        return d


def _default_batch_gpu(batch: int, world_size: int, recommended: int | None) -> int:
    per_process = batch // world_size
    if recommended and recommended < per_process and per_process % recommended == 0:
        return recommended
    return per_process


def check_knobs(opts: TrainingOptions, knobs, model: str) -> None:
    """A hyperparameter option the model does not use is an error, not a silent no-op."""
    ignored = [k for k in KNOBS if getattr(opts, k) is not None and k not in knobs]
    if ignored:
        raise ValueError(
            f"option(s) {', '.join(ignored)} do not apply to model {model!r} (it uses: "
            f"{', '.join(k for k in KNOBS if k in knobs) or 'none of them'})"
        )


def resolve_settings(
    opts: TrainingOptions, hp: Hyperparameters, world_size: int, precision: str
) -> RunSettings:
    """Fill the options' None fields from the recommended hyperparameters ``hp``; checks
    the batch split."""
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

    def pick(name: str):
        value = getattr(opts, name)
        return value if value is not None else getattr(hp, name)

    ema_rampup = pick("ema_rampup")
    return RunSettings(
        batch=batch,
        batch_gpu=batch_gpu,
        rounds=rounds,
        world_size=world_size,
        glr=pick("glr"),
        dlr=pick("dlr"),
        betas=tuple(float(b) for b in pick("betas")),
        gamma=pick("gamma"),
        r1_interval=pick("r1_interval"),
        pl_weight=pick("pl_weight"),
        pl_interval=pick("pl_interval"),
        pl_batch_shrink=pick("pl_batch_shrink"),
        pl_decay=pick("pl_decay"),
        style_mixing=pick("style_mixing"),
        ema_kimg=pick("ema_kimg"),
        ema_rampup=ema_rampup if ema_rampup is not None else 0.0,
        total_kimg=opts.kimg if opts.kimg is not None else float(hp.total_kimg),
        precision=precision,
        metrics=metrics,
        optimizer=pick("optimizer"),
        eps=hp.eps,
        loss=pick("loss"),
        d_reg=pick("d_reg"),
        n_critic=pick("n_critic"),
        clip=pick("clip"),
        lr_schedule=pick("lr_schedule"),
        lr_decay_start=pick("lr_decay_start"),
        ema_start_kimg=pick("ema_start_kimg"),
    )
