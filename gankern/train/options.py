"""The training options: one dataclass, every field documented where it is declared.

Fields left at None take the value recommended by the network configuration (``--cfg``)
or a formula given below; :func:`check_options` validates everything before a run starts,
so a bad option is a clear error, not a failure an hour into training.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from gankern.train.objective_names import ADVERSARIAL_LOSSES, D_REGULARIZERS

AUG_MODES = ("ada", "diffaugment", "noaug")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cuda", "cpu")
ON_BAD_FILE = ("raise", "skip")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
LR_SCHEDULES = ("constant", "linear")
# The hyperparameters a model family may use (None: its configuration's recommendation);
# a family lists the ones it uses in GANFamily.knobs.
KNOBS = (
    "optimizer", "glr", "dlr", "betas", "n_critic", "lr_schedule", "lr_decay_start", "loss",
    "d_reg", "gamma", "r1_interval", "clip", "pl_weight", "pl_interval", "pl_batch_shrink",
    "pl_decay", "style_mixing", "ema_kimg", "ema_rampup", "ema_start_kimg",
)  # fmt: skip

# Options that do not change what a run computes: changing them on resume keeps the
# trajectory, and they do not tell runs apart (``--resume auto``).
RESUME_SAFE = (
    "kimg", "kimg_per_tick", "snap", "metrics", "keep_snapshots", "outdir", "run_dir",
    "resume", "num_workers", "tensorboard", "max_nonfinite_steps", "device", "gpus", "impl",
)  # fmt: skip


@dataclass
class TrainingOptions:
    """Everything that defines a training run (saved in every checkpoint)."""

    # --- Data ---------------------------------------------------------------------------
    data: str | None = None
    """Training data: a folder or .zip of PNG/JPEG (see ``gankern dataset``), or a built-in
    dataset (``builtin:digits``: scikit-learn's handwritten digits, no download). None: the
    model family's built-in dataset (the digits for the image models)."""
    resolution: int | None = None
    """Image size of a built-in dataset (None: its default, 32 for the digits); for folders
    and zips, a check that the images have this size."""
    cond: bool = False
    """Train a conditional model on the dataset's labels (dataset.json / digit classes)."""
    mirror: bool = False
    """Add x-flipped copies of the images (doubles the dataset)."""
    max_images: int | None = None
    """Use a random subset of at most this many images (None: all)."""
    on_bad_file: str = "raise"
    """Unreadable image files: "raise" (error naming the file) or "skip" (skip and count)."""
    num_workers: int | None = None
    """Data loading worker processes (None: 0 for in-memory data, else a few)."""

    # --- Model --------------------------------------------------------------------------
    model: str = "stylegan2"
    """The model family (``gankern train --model NAME``; see :mod:`gankern.train.families`)."""
    model_options: dict = field(default_factory=dict)
    """The family's own options (``{"lambda_cycle": 10}``; ``--model NAME --help`` lists
    them, with the paper's values as defaults)."""

    init: str | None = None
    """Start a new run from published weights (fine-tuning): for StyleGAN2 an official
    StyleGAN2-ADA / StyleGAN3-stylegan2 ``.pkl``, a rosinality ``.pt`` or a gankern
    checkpoint. The networks get that file's architecture (its resolution, channels and
    labels must fit the data) and weights; ``cfg`` still gives the hyperparameters. Ignored
    when resuming (the checkpoint holds the weights)."""

    # --- Networks -----------------------------------------------------------------------
    cfg: str | None = None
    """Named network configuration of the model family: architecture, widths and the
    recommended hyperparameters used for the None fields below (None: the family's default
    for the data, e.g. ``digits`` on the built-in digits and StyleGAN2-ADA's ``auto``
    otherwise for StyleGAN2)."""
    impl: str = "auto"
    """Backend of the fused ops: auto, cuda, triton or ref."""
    precision: str = "auto"
    """fp32: no reduced precision. fp16: half precision where the model has it (StyleGAN2:
    the configuration's fp16 layers with conv clamping; other models: float16 autocast with
    dynamic loss scaling). bf16: the same in bfloat16 (also on CPUs). auto: fp16 on CUDA,
    fp32 on the CPU."""
    channels_last: bool = False
    """Keep activations and weights in channels_last memory format."""
    tf32: bool = False
    """Allow TF32 in matmuls and convolutions on Ampere+ GPUs (set explicitly either way)."""

    # --- Batch --------------------------------------------------------------------------
    batch: int | None = None
    """Total batch size over all processes (None: the configuration's)."""
    batch_gpu: int | None = None
    """Images per process per forward pass; ``batch / (processes * batch_gpu)`` rounds of
    gradient accumulation make up one step (None: batch / processes, no accumulation)."""

    # --- Optimization (None: the configuration's recommendation) ------------------------
    optimizer: str | None = None
    """adam, rmsprop or sgd (the same kind for G and D)."""
    glr: float | None = None
    """Generator learning rate."""
    dlr: float | None = None
    """Discriminator learning rate (a different one from G's: two time-scale updates)."""
    betas: tuple[float, float] | None = None
    """Adam betas (before the lazy-regularization adjustment); RMSprop uses the second as
    its smoothing constant alpha, SGD the first as its momentum."""
    n_critic: int | None = None
    """Discriminator steps per generator step: each step trains D on a new batch of reals,
    and G every ``n_critic``-th step."""
    lr_schedule: str | None = None
    """constant, or linear: the learning rates fall linearly to 0 at the end of training,
    from ``lr_decay_start`` (a fraction of the training length) on."""
    lr_decay_start: float | None = None
    """Where the linear decay begins, as a fraction of the training length in [0, 1)."""

    # --- Objective (None: the configuration's recommendation) ---------------------------
    loss: str | None = None
    """Adversarial loss: minimax, nonsaturating, wasserstein, lsgan or hinge
    (see :mod:`gankern.train.losses`)."""
    d_reg: str | None = None
    """Discriminator regularizer: none, r1 (``gamma / 2 * |grad D(real)|^2``), r2 (the same
    on generated images) or gp (WGAN-GP, ``gamma * (|grad D(x_hat)| - 1)^2``)."""
    gamma: float | None = None
    """Weight of the discriminator regularizer (R1 gamma, or WGAN-GP's lambda)."""
    r1_interval: int | None = None
    """Lazy regularization of D (named for StyleGAN2's lazy R1, applies to every ``d_reg``):
    every this many steps, with the regularizer multiplied by the interval (0: every step,
    in the main pass)."""
    clip: float | None = None
    """WGAN weight clipping: after each D step every D parameter is clamped to
    [-clip, clip] (None: no clipping)."""
    pl_weight: float | None = None
    """Path length regularization weight (style-based generators; 0 disables it)."""
    pl_interval: int | None = None
    """Lazy path length: regularize G every this many steps (0: every step)."""
    pl_batch_shrink: int | None = None
    """The path length penalty uses ``batch_gpu / pl_batch_shrink`` samples per slice."""
    pl_decay: float | None = None
    """Decay of the path length running mean."""
    style_mixing: float | None = None
    """Probability that a generated image mixes two latents (style-based generators)."""
    ema_kimg: float | None = None
    """Half-life of the generator's moving average in thousands of images (0: no moving
    average; sampling uses G itself)."""
    ema_rampup: float | None = None
    """EMA ramp-up: the half-life is at most this fraction of the images seen so far
    (0 disables the ramp-up)."""
    ema_start_kimg: float | None = None
    """The moving average copies G until this many thousand images (BigGAN's EMA start)."""

    # --- Augmentation -------------------------------------------------------------------
    aug: str | None = None
    """Discriminator augmentation: "ada" (adaptive, StyleGAN2-ADA), "diffaugment"
    (DiffAugment's fixed policy) or "noaug" (None: "ada", except "noaug" on the built-in
    digits, where D does not overfit within the default run and ADA would only cost time,
    and for the image-to-image models, whose papers train without augmentation)."""
    augpipe: str = "bgc"
    """ADA pipeline preset (blit, geom, color, bg, bgc, bgcf, bgcfn, bgcfnc)."""
    ada_target: float = 0.6
    """ADA target for E[sign(D(real))]."""
    ada_interval: int = 4
    """ADA adjusts the probability every this many steps."""
    ada_kimg: float = 500.0
    """ADA speed: the probability can go from 0 to 1 in this many thousand images."""
    diffaugment: str = "color,translation,cutout"
    """DiffAugment policy (with ``aug="diffaugment"``)."""

    # --- Length, snapshots, metrics -----------------------------------------------------
    kimg: float | None = None
    """Training length in thousands of images (None: the configuration's)."""
    kimg_per_tick: float = 1.0
    """Progress lines and log records every this many thousand images."""
    snap: int = 5
    """Snapshot (checkpoint, sample grid, plot, metrics) every this many ticks."""
    metrics: list[str] | None = None
    """Metrics computed at snapshots (None: the built-in digits metric when training on the
    built-in digits, none otherwise; [] disables metrics)."""
    keep_snapshots: int = 0
    """Keep only the newest this many checkpoints (0: keep all)."""

    # --- Run ----------------------------------------------------------------------------
    seed: int = 0
    """Seed of everything random (initialization, data order, latents, noise, augmentation)."""
    outdir: str = "training-runs"
    """Parent directory of the run directories."""
    run_dir: str | None = None
    """Exact run directory (None: a new numbered directory under ``outdir``)."""
    resume: str | None = None
    """A checkpoint, or a run directory (its newest snapshot), to continue from; ``"auto"``:
    the newest good snapshot of the newest run in ``outdir`` with the same options, or a
    new run if there is none (a requeued job continues where it stopped)."""
    device: str = "auto"
    """auto (CUDA if available), cuda or cpu."""
    gpus: int = 1
    """Processes to spawn (one per GPU, or CPU processes with gloo). Under torchrun, the
    number of processes comes from torchrun instead."""
    max_nonfinite_steps: int = 20
    """Stop when this many consecutive optimizer steps of one phase had a non-finite loss or
    gradient (each such step is skipped and counted)."""
    tensorboard: bool = True
    """Write TensorBoard event files next to stats.jsonl."""
    extra: dict = field(default_factory=dict)
    """Configuration overrides passed to the network constructors (advanced)."""

    def to_dict(self) -> dict:
        """JSON-able dict of the options."""
        d = dataclasses.asdict(self)
        if self.betas is not None:
            d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainingOptions:
        """Inverse of :meth:`to_dict` (unknown keys are an error: a newer checkpoint)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown training options {unknown} (checkpoint from a newer gankern?)"
            )
        d = dict(d)
        if d.get("betas") is not None:
            d["betas"] = tuple(d["betas"])
        return cls(**d)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _check_int(name, value, min_value, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")


def _check_float(name, value, min_value=None, max_value=None, allow_none=False, strict_min=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if min_value is not None and (value <= min_value if strict_min else value < min_value):
        rel = ">" if strict_min else ">="
        raise ValueError(f"{name} must be {rel} {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")


def check_options(o: TrainingOptions) -> None:
    """Validate every field; raises TypeError/ValueError naming the option."""
    if o.data is not None and (not isinstance(o.data, str) or not o.data):
        raise TypeError(f"data must be a path or builtin:NAME, got {o.data!r}")
    for name in ("cond", "mirror", "channels_last", "tf32", "tensorboard"):
        if not isinstance(getattr(o, name), bool):
            raise TypeError(f"{name} must be a bool, got {getattr(o, name)!r}")
    _check_int("resolution", o.resolution, 4, allow_none=True)
    _check_int("max_images", o.max_images, 1, allow_none=True)
    _check_choice("on_bad_file", o.on_bad_file, ON_BAD_FILE)
    _check_int("num_workers", o.num_workers, 0, allow_none=True)
    if o.init is not None and (not isinstance(o.init, str) or not o.init):
        raise TypeError(f"init must be a path to a weights file, got {o.init!r}")
    if o.cfg is not None and not isinstance(o.cfg, str):
        raise TypeError(f"cfg must be a configuration name, got {o.cfg!r}")
    _check_choice("impl", o.impl, ("auto", "cuda", "triton", "ref"))
    _check_choice("precision", o.precision, PRECISIONS)
    _check_int("batch", o.batch, 1, allow_none=True)
    _check_int("batch_gpu", o.batch_gpu, 1, allow_none=True)
    if not isinstance(o.model, str) or not o.model:
        raise TypeError(f"model must be a model family name, got {o.model!r}")
    if not isinstance(o.model_options, dict):
        raise TypeError(f"model_options must be a dict, got {type(o.model_options).__name__}")
    if o.optimizer is not None:
        _check_choice("optimizer", o.optimizer, OPTIMIZERS)
    _check_float("glr", o.glr, 0, allow_none=True, strict_min=True)
    _check_float("dlr", o.dlr, 0, allow_none=True, strict_min=True)
    if o.betas is not None:
        if not isinstance(o.betas, (tuple, list)) or len(o.betas) != 2:
            raise TypeError(f"betas must be a pair of numbers, got {o.betas!r}")
        for b in o.betas:
            _check_float("betas", b, 0, 0.9999999)
    _check_int("n_critic", o.n_critic, 1, allow_none=True)
    if o.lr_schedule is not None:
        _check_choice("lr_schedule", o.lr_schedule, LR_SCHEDULES)
    _check_float("lr_decay_start", o.lr_decay_start, 0, 0.9999999, allow_none=True)
    if o.loss is not None:
        _check_choice("loss", o.loss, ADVERSARIAL_LOSSES)
    if o.d_reg is not None:
        _check_choice("d_reg", o.d_reg, D_REGULARIZERS)
    _check_float("gamma", o.gamma, 0, allow_none=True)
    _check_int("r1_interval", o.r1_interval, 0, allow_none=True)
    _check_float("clip", o.clip, 0, allow_none=True, strict_min=True)
    _check_float("pl_weight", o.pl_weight, 0, allow_none=True)
    _check_int("pl_interval", o.pl_interval, 0, allow_none=True)
    _check_int("pl_batch_shrink", o.pl_batch_shrink, 1, allow_none=True)
    _check_float("pl_decay", o.pl_decay, 0, 1, strict_min=True, allow_none=True)
    _check_float("style_mixing", o.style_mixing, 0, 1, allow_none=True)
    _check_float("ema_kimg", o.ema_kimg, 0, allow_none=True)
    _check_float("ema_rampup", o.ema_rampup, 0, allow_none=True)
    _check_float("ema_start_kimg", o.ema_start_kimg, 0, allow_none=True)
    if o.aug is not None:
        _check_choice("aug", o.aug, AUG_MODES)
    _check_float("ada_target", o.ada_target, 0, 1, strict_min=True)
    _check_int("ada_interval", o.ada_interval, 1)
    _check_float("ada_kimg", o.ada_kimg, 0, strict_min=True)
    _check_float("kimg", o.kimg, 0, strict_min=True, allow_none=True)
    _check_float("kimg_per_tick", o.kimg_per_tick, 0, strict_min=True)
    _check_int("snap", o.snap, 1)
    if o.metrics is not None and (
        not isinstance(o.metrics, (list, tuple)) or not all(isinstance(m, str) for m in o.metrics)
    ):
        raise TypeError(f"metrics must be a list of metric names, got {o.metrics!r}")
    _check_int("keep_snapshots", o.keep_snapshots, 0)
    _check_int("seed", o.seed, 0)
    _check_choice("device", o.device, DEVICES)
    _check_int("gpus", o.gpus, 1)
    _check_int("max_nonfinite_steps", o.max_nonfinite_steps, 1)
    if not isinstance(o.extra, dict):
        raise TypeError(f"extra must be a dict, got {type(o.extra).__name__}")


def augmentation_mode(o: TrainingOptions, default: str | None = None) -> str:
    """``o.aug``, or its default: the model family's ``default`` if it has one, else
    ``noaug`` on the built-in datasets and ``ada`` otherwise."""
    if o.aug is not None:
        return o.aug
    if default is not None:
        return default
    return "noaug" if o.data is None or o.data.startswith("builtin:") else "ada"


def split_batch(batch: int, batch_gpu: int | None, world_size: int) -> tuple[int, int]:
    """``(batch_gpu, rounds)``: images per forward pass and accumulation rounds per process.

    ``batch`` must be a multiple of ``world_size * batch_gpu``.
    """
    if batch % world_size:
        raise ValueError(
            f"batch ({batch}) must be divisible by the number of processes ({world_size})"
        )
    per_process = batch // world_size
    if batch_gpu is None:
        batch_gpu = per_process
    if batch_gpu > per_process or per_process % batch_gpu:
        raise ValueError(
            f"batch_gpu ({batch_gpu}) must divide batch / processes ({batch} / {world_size} = "
            f"{per_process})"
        )
    return batch_gpu, per_process // batch_gpu
