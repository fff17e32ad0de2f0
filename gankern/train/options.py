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

AUG_MODES = ("ada", "diffaugment", "noaug")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cuda", "cpu")
ON_BAD_FILE = ("raise", "skip")


@dataclass
class TrainingOptions:
    """Everything that defines a training run (saved in every checkpoint)."""

    # --- Data ---------------------------------------------------------------------------
    data: str = "builtin:digits"
    """Training images: a folder or .zip of PNG/JPEG (see ``gankern dataset``), or a built-in
    dataset (``builtin:digits``: scikit-learn's handwritten digits, no download)."""
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

    # --- Networks -----------------------------------------------------------------------
    cfg: str | None = None
    """Named network configuration (``gankern.models.stylegan2_configs``): architecture,
    widths and the recommended hyperparameters used for the None fields below (None:
    ``digits`` on the built-in digits, StyleGAN2-ADA's ``auto`` otherwise)."""
    impl: str = "auto"
    """Backend of the fused ops: auto, cuda, triton or ref."""
    precision: str = "auto"
    """fp32: no reduced precision. fp16: the configuration's fp16 layers (StyleGAN2-ADA's
    highest resolutions, with conv clamping). bf16: forward passes under bfloat16 autocast
    (no fp16 layers). auto: fp16 on CUDA, fp32 on the CPU."""
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

    # --- Optimization -------------------------------------------------------------------
    glr: float | None = None
    """Generator learning rate (None: the configuration's)."""
    dlr: float | None = None
    """Discriminator learning rate (None: the configuration's)."""
    betas: tuple[float, float] = (0.0, 0.99)
    """Adam betas before the lazy-regularization adjustment."""
    gamma: float | None = None
    """R1 regularization weight (None: the configuration's)."""
    r1_interval: int = 16
    """Lazy R1: regularize D every this many steps (0: every step, in the main pass)."""
    pl_weight: float | None = None
    """Path length regularization weight (None: the configuration's; 0 disables it)."""
    pl_interval: int = 4
    """Lazy path length: regularize G every this many steps (0: every step)."""
    pl_batch_shrink: int = 2
    """The path length penalty uses ``batch_gpu / pl_batch_shrink`` samples per slice."""
    pl_decay: float = 0.01
    """Decay of the path length running mean."""
    style_mixing: float | None = None
    """Probability that a generated image mixes two latents (None: the configuration's)."""
    ema_kimg: float | None = None
    """Half-life of the generator's moving average in thousands of images (None: the
    configuration's, or batch * 10 / 32 as StyleGAN2-ADA)."""
    ema_rampup: float | None = None
    """EMA ramp-up: the half-life is at most this fraction of the images seen so far
    (None: the configuration's; 0 disables the ramp-up)."""

    # --- Augmentation -------------------------------------------------------------------
    aug: str | None = None
    """Discriminator augmentation: "ada" (adaptive, StyleGAN2-ADA), "diffaugment"
    (DiffAugment's fixed policy) or "noaug" (None: "ada", except "noaug" on the built-in
    digits, where D does not overfit within the default run and ADA would only cost time)."""
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
    """A checkpoint, or a run directory (its newest snapshot), to continue from."""
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
        if "betas" in d:
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
    if not isinstance(o.data, str) or not o.data:
        raise TypeError(f"data must be a path or builtin:NAME, got {o.data!r}")
    for name in ("cond", "mirror", "channels_last", "tf32", "tensorboard"):
        if not isinstance(getattr(o, name), bool):
            raise TypeError(f"{name} must be a bool, got {getattr(o, name)!r}")
    _check_int("resolution", o.resolution, 4, allow_none=True)
    _check_int("max_images", o.max_images, 1, allow_none=True)
    _check_choice("on_bad_file", o.on_bad_file, ON_BAD_FILE)
    _check_int("num_workers", o.num_workers, 0, allow_none=True)
    if o.cfg is not None and not isinstance(o.cfg, str):
        raise TypeError(f"cfg must be a configuration name, got {o.cfg!r}")
    _check_choice("impl", o.impl, ("auto", "cuda", "triton", "ref"))
    _check_choice("precision", o.precision, PRECISIONS)
    _check_int("batch", o.batch, 1, allow_none=True)
    _check_int("batch_gpu", o.batch_gpu, 1, allow_none=True)
    _check_float("glr", o.glr, 0, allow_none=True, strict_min=True)
    _check_float("dlr", o.dlr, 0, allow_none=True, strict_min=True)
    if not isinstance(o.betas, (tuple, list)) or len(o.betas) != 2:
        raise TypeError(f"betas must be a pair of numbers, got {o.betas!r}")
    for b in o.betas:
        _check_float("betas", b, 0, 0.9999999)
    _check_float("gamma", o.gamma, 0, allow_none=True)
    _check_int("r1_interval", o.r1_interval, 0)
    _check_float("pl_weight", o.pl_weight, 0, allow_none=True)
    _check_int("pl_interval", o.pl_interval, 0)
    _check_int("pl_batch_shrink", o.pl_batch_shrink, 1)
    _check_float("pl_decay", o.pl_decay, 0, 1, strict_min=True)
    _check_float("style_mixing", o.style_mixing, 0, 1, allow_none=True)
    _check_float("ema_kimg", o.ema_kimg, 0, allow_none=True)
    _check_float("ema_rampup", o.ema_rampup, 0, allow_none=True)
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


def augmentation_mode(o: TrainingOptions) -> str:
    """``o.aug``, or its default: ``noaug`` on the built-in digits, ``ada`` otherwise."""
    if o.aug is not None:
        return o.aug
    return "noaug" if o.data == "builtin:digits" else "ada"


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
