"""Training throughput of any model family: s/kimg, images/s and peak memory, gankern vs ``ref``.

    python -m benchmarks.bench_training                       # StyleGAN2 at 64, 256, 1024 px
    python -m benchmarks.bench_training --resolutions 256     # one resolution (one command)
    python -m benchmarks.bench_training --model dcgan         # another model at its standard
                                                              # configuration and resolution
    python -m benchmarks.bench_training --quick               # tiny CPU check of the benchmark

``--model NAME`` (default ``stylegan2``) measures a family of ``gankern train --model``: by
default at the resolutions and configurations of its published models
(:attr:`gankern.train.family.GANFamily.standard_configs`), with its recommended batch;
``--quick`` takes its ``digits`` configuration at 16 px. StyleGAN2's defaults follow.

Per resolution, one configuration: StyleGAN2-ADA's ``auto`` config at 64 and 256 px (at
256 px: channel base 16384, mapping depth 2, batch 16) and the StyleGAN2 config-f
(``stylegan2``: batch 32, 4 images per pass) at 1024 px; ``--cfg`` picks another. Every
provider trains the same model from the same initialization: ``gankern_auto`` with the
fused ops (``impl="auto"``), ``ref`` on the pure-PyTorch reference (``impl="ref"``), one
after the other in the same run. Precision is the trainer's: ``auto`` is fp16 on CUDA
(the configuration's ``num_fp16_res=4`` highest resolutions in float16 with
``conv_clamp=256``), fp32 on the CPU; TF32 is off unless ``--tf32``, as in the trainer.

A step is :class:`benchmarks.training_run.TrainingRun`'s, i.e. the training loop's: G main
and D main every step, path length every 4 steps, lazy R1 every 16, the EMA update, ADA's
bookkeeping with ``--aug ada``. The data are random images made once on the device (a few
batches, used in turn), so data loading is not measured. After ``--warmup-steps`` steps
(the first runs every phase: extension builds, cuDNN autotuning), whole cycles of 16 steps
are timed, each between two device synchronizations, until ``--budget-s`` seconds have
passed (at least ``--min-cycles``, at most ``--max-cycles``). A row's ``median_ms``,
``p20_ms`` and ``p80_ms`` are over the cycles, per step; ``reps`` is the number of cycles;
``peak_mem_mb`` the most GPU memory allocated during the timed cycles (weights, optimizer
states and EMA included, as ``torch.cuda.max_memory_allocated`` reports during training).

Rows go to ``benchmarks/results/<device>/train_stylegan2.{jsonl,csv}`` with the harness's
schema (op ``train_stylegan2``, mode ``train_step``, shape ``batch x C x H x W``, the
configuration in ``params``); the table with s/kimg, images/s, peak memory, the published
figures and issue 4's target is printed and written to ``benchmarks/results/training.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.environment import Environment, collect_environment, timestamp  # noqa: E402
from benchmarks.harness import Baselines, classify_failure, measure_baselines  # noqa: E402
from benchmarks.report import write_markdown  # noqa: E402
from benchmarks.results import DEFAULT_RESULTS_DIR, ROW_KEYS, append_rows  # noqa: E402
from benchmarks.timing import QUICK_TIMING, MiB, TimingSettings  # noqa: E402
from benchmarks.training_run import TrainingRun, bench_data, build_training_run  # noqa: E402
from benchmarks.training_table import (  # noqa: E402
    op_name,
    training_table,
    write_training_markdown,
)
from gankern.ops._backend import triton_interpreter_enabled  # noqa: E402
from gankern.train.families import family_names, get_family  # noqa: E402
from gankern.train.options import AUG_MODES, TrainingOptions  # noqa: E402
from gankern.train.precision import resolve_precision  # noqa: E402
from gankern.train.settings import resolve_settings  # noqa: E402

DEFAULT_MODEL = "stylegan2"

MODE = "train_step"
# The configuration each resolution is measured with (issue 4); other resolutions: auto.
DEFAULT_CONFIGS = {64: "auto", 256: "auto", 1024: "stylegan2"}
DEFAULT_RESOLUTIONS = (64, 256, 1024)
# provider name -> (kind, impl)
PROVIDERS = {
    "gankern_auto": ("gankern", "auto"),
    "gankern_cuda": ("gankern", "cuda"),
    "gankern_triton": ("gankern", "triton"),
    "ref": ("ref", "ref"),
}
DEFAULT_PROVIDERS = ("gankern_auto", "ref")
PRECISION_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
IMAGE_POOL = 4  # distinct batches of random images used in turn

# --quick: a StyleGAN2 small enough for a CPU (the auto config's structure, few channels).
QUICK_RESOLUTION = 16
QUICK_BATCH = 4
QUICK_NETWORKS = {
    "G": {"channel_base": 128, "channel_max": 16, "z_dim": 16, "w_dim": 16},
    "D": {"channel_base": 128, "channel_max": 16},
}


@dataclass(frozen=True)
class MeasureSettings:
    """How many steps to warm up and how long to time."""

    warmup_steps: int = 4
    min_cycles: int = 2
    max_cycles: int = 10
    budget_s: float = 60.0  # per provider and resolution, after the warm-up


QUICK_MEASURE = MeasureSettings(warmup_steps=1, min_cycles=1, max_cycles=1, budget_s=0.0)


@dataclass
class Measurement:
    """Per-step times (ms) of each timed cycle, and what else the timed steps showed."""

    step_ms: list[float]
    steps: int
    peak_mem_mb: float | None
    skipped_phases: int


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_images(run: TrainingRun, count: int = IMAGE_POOL, seed: int = 0):
    """``count`` batches of uniform random images in [-1, 1] on the run's device (for paired
    and unpaired data, ``count`` pairs of batches)."""
    data, batch = run.data, run.batch
    gen = torch.Generator(device=run.device).manual_seed(seed)

    def random_batch(channels):
        shape = (batch, channels, data.resolution, data.resolution)
        x = torch.rand(shape, device=run.device, generator=gen) * 2 - 1
        if run.opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    if data.kind == "images":
        return [random_batch(data.channels) for _ in range(count)]
    return [(random_batch(data.channels), random_batch(data.channels_b)) for _ in range(count)]


def measure_run(run, images: Sequence[torch.Tensor], settings: MeasureSettings) -> Measurement:
    """Warm up, then time whole regularization cycles of ``run.step`` (see the module doc).

    ``run`` needs ``step(images)``, ``regularization_cycle``, ``device`` and
    ``skipped_phases``; ``images`` are used in turn.
    """
    cycle = run.regularization_cycle
    device = run.device
    index = 0  # which batch of ``images`` the next step uses
    for _ in range(settings.warmup_steps):
        run.step(images[index % len(images)])
        index += 1
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    skipped_before = run.skipped_phases
    step_ms: list[float] = []
    start = time.perf_counter()
    while len(step_ms) < settings.max_cycles:
        if len(step_ms) >= settings.min_cycles and time.perf_counter() - start >= settings.budget_s:
            break
        t0 = time.perf_counter()
        for _ in range(cycle):
            run.step(images[index % len(images)])
            index += 1
        synchronize(device)
        step_ms.append((time.perf_counter() - t0) * 1e3 / cycle)
    peak = torch.cuda.max_memory_allocated(device) / MiB if device.type == "cuda" else None
    return Measurement(step_ms=step_ms, steps=len(step_ms) * cycle, peak_mem_mb=peak,
                       skipped_phases=run.skipped_phases - skipped_before)


def bench_options(args, cfg: str, impl: str) -> TrainingOptions:
    """The training options one provider runs with."""
    model = getattr(args, "model", DEFAULT_MODEL)
    kwargs = dict(
        model=model, data="synthetic", cfg=cfg, impl=impl, precision=args.precision,
        channels_last=args.channels_last, tf32=args.tf32, batch=args.batch,
        batch_gpu=args.batch_gpu, aug=args.aug, metrics=[], seed=args.seed,
        device=args.device_obj.type, tensorboard=False,
    )  # fmt: skip
    if args.quick:
        if model == DEFAULT_MODEL:
            kwargs["extra"] = {k: dict(v) for k, v in QUICK_NETWORKS.items()}
        kwargs["batch"] = args.batch or QUICK_BATCH
    return TrainingOptions(**kwargs)


def row_params(opts: TrainingOptions, resolution: int, device: torch.device,
               ada_p: float | None) -> dict:
    """The configuration of a row (what makes rows comparable), JSON-able.

    Resolved as the trainer resolves it (batch, batch_gpu, precision from the named
    configuration where the options leave them at None), without building the networks.
    """
    precision = resolve_precision(opts.precision, device)
    family = get_family(opts.model)(opts)
    data = bench_data(opts, resolution)  # as build_training_run describes the data
    config = family.network_config(opts.cfg, data, 1, precision, opts.extra)
    s = resolve_settings(opts, config.recommended, 1, precision)
    params = {
        "cfg": opts.cfg, "resolution": resolution, "batch": s.batch, "batch_gpu": s.batch_gpu,
        "precision": precision, "aug": opts.aug, "tf32": opts.tf32,
    }  # fmt: skip
    if opts.model == DEFAULT_MODEL:
        params.update(r1_interval=s.r1_interval, pl_interval=s.pl_interval)
    else:
        params.update(model=opts.model, n_critic=s.n_critic)
    if opts.aug == "ada":
        params["ada_p"] = 0.0 if ada_p is None else float(ada_p)
    if opts.extra:
        params["extra"] = opts.extra
    return params


def _base_row(env: Environment, baselines: Baselines, run_id: str,
              model: str = DEFAULT_MODEL) -> dict:
    row = {key: None for key in ROW_KEYS}
    row.update(
        op=op_name(model), mode=MODE, device=env.device, torch_version=env.torch_version,
        triton_version=env.triton_version, cuda_version=env.cuda_version,
        gankern_commit=env.gankern_commit, copy_bw_gbps=baselines.copy_bw_gbps,
        matmul_tflops=baselines.matmul_tflops, matmul_dtype=baselines.matmul_dtype,
        run_id=run_id,
    )  # fmt: skip
    return row


def _precheck(impl: str, device: torch.device) -> str | None:
    if impl == "triton" and device.type == "cpu" and triton_interpreter_enabled():
        return "TRITON_INTERPRET=1: the Triton interpreter is a correctness tool, not benchmarked"
    return None


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def bench_provider(args, provider: str, resolution: int, cfg: str, base: dict) -> dict:
    """Build, warm up and time one provider at one resolution; return its row."""
    kind, impl = PROVIDERS[provider]
    device = args.device_obj
    opts = bench_options(args, cfg, impl)
    row = dict(base)
    row.update(
        case=cfg, provider=provider, provider_kind=kind,
        dtype=PRECISION_DTYPES[resolve_precision(opts.precision, device)],
        layout="channels_last" if opts.channels_last else "nchw",
    )  # fmt: skip
    run = None
    try:
        params = row_params(opts, resolution, device, args.ada_p)
        row["shape"] = f"{params['batch']}x3x{resolution}x{resolution}"
        row["params"] = json.dumps(params, sort_keys=True, separators=(",", ":"))
        skip = _precheck(impl, device)
        if skip is not None:
            row.update(status="skipped", reason=skip)
        else:
            run = build_training_run(opts, resolution, 3, device, ada_p=args.ada_p)
            images = synthetic_images(run, seed=args.seed)
            measured = measure_run(run, images, args.measure)
            p20, median, p80 = np.percentile(np.asarray(measured.step_ms), [20, 50, 80])
            row.update(
                status="ok", median_ms=float(median), p20_ms=float(p20), p80_ms=float(p80),
                reps=len(measured.step_ms), copies=len(images),
                peak_mem_mb=measured.peak_mem_mb,
            )  # fmt: skip
            if measured.skipped_phases:
                row["reason"] = (f"{measured.skipped_phases} phases skipped for non-finite "
                                 f"losses or gradients in {measured.steps} timed steps")
    except Exception as exc:
        row["status"], row["reason"] = classify_failure(exc, kind, MODE)
        if row["shape"] is None:  # the configuration itself failed
            row["shape"] = f"0x3x{resolution}x{resolution}"
            row["params"] = json.dumps({"cfg": cfg, "resolution": resolution})
    finally:
        del run
        _release(device)
    row["timestamp"] = timestamp()
    return row


@contextlib.contextmanager
def trainer_backend_flags(tf32: bool, device: torch.device):
    """TF32 and cuDNN autotuning set as the training loop sets them; restored afterwards."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved


@contextlib.contextmanager
def _quick_threads(quick: bool):
    """--quick runs single-threaded: tiny CPU convolutions are faster without thread
    hand-offs, and the check should not compete for a shared machine's cores."""
    before = torch.get_num_threads()
    if quick:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _resolution(text: str) -> int:
    """A resolution: a multiple of 8 (the models' own checks say which they accept: powers of
    two for StyleGAN2, SRGAN's 96 px crops)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a multiple of 8, got {text!r}") from None
    if value < 8 or value % 8:
        raise argparse.ArgumentTypeError(f"expected a multiple of 8, got {value}")
    return value


def _int_at_least(minimum: int, wanted: str):
    """An argparse type: an integer >= ``minimum``; ``wanted`` describes it in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_training",
        description="Training throughput (s/kimg, images/s, peak memory) of a model family: "
        "gankern's fused ops against the reference, same model, same run.",
    )
    parser.add_argument("--model", choices=family_names(), default=DEFAULT_MODEL,
                        help="the model family (default stylegan2)")
    parser.add_argument("--resolutions", nargs="+", type=_resolution, default=None,
                        help="image resolutions (default: the model's standard ones, for "
                        "StyleGAN2 64 256 1024; --quick: 16)")
    parser.add_argument("--cfg", default=None,
                        help="network configuration for every resolution (default: the "
                        "model's standard one at each resolution: for StyleGAN2 auto at 64 "
                        "and 256 px, stylegan2 (config-f) at 1024 px; --quick: digits)")
    parser.add_argument("--providers", nargs="+", choices=sorted(PROVIDERS),
                        default=list(DEFAULT_PROVIDERS), help="default: gankern_auto ref")
    parser.add_argument("--precision", choices=("auto", *PRECISION_DTYPES), default="auto",
                        help="as the trainer: auto = fp16 layers on CUDA, fp32 on the CPU")
    parser.add_argument("--channels-last", action="store_true",
                        help="networks and images in channels_last")
    parser.add_argument("--aug", choices=AUG_MODES, default="noaug",
                        help="discriminator augmentation (default noaug)")
    parser.add_argument("--ada-p", type=_non_negative_float, default=None,
                        help="with --aug ada: the augmentation probability to start from "
                        "(default 0, as a fresh run; ADA adjusts it during the run)")
    parser.add_argument("--batch", type=_positive_int, default=None,
                        help="total batch (default: the configuration's)")
    parser.add_argument("--batch-gpu", type=_positive_int, default=None,
                        help="images per pass (default: the configuration's)")
    parser.add_argument("--tf32", action="store_true", help="allow TF32 (the trainer's --tf32)")
    parser.add_argument("--warmup-steps", type=_non_negative_int, default=None,
                        help=f"untimed steps first (default {MeasureSettings().warmup_steps})")
    parser.add_argument("--min-cycles", type=_positive_int, default=None,
                        help="fewest timed 16-step cycles "
                        f"(default {MeasureSettings().min_cycles})")
    parser.add_argument("--max-cycles", type=_positive_int, default=None,
                        help=f"most timed cycles (default {MeasureSettings().max_cycles})")
    parser.add_argument("--budget-s", type=_non_negative_float, default=None,
                        help="time cycles until this many seconds have passed, per provider "
                        f"and resolution (default {MeasureSettings().budget_s:g})")
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--device", default=None,
                        help="cuda, cuda:1, cpu (default: cuda if available; --quick: cpu)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny networks at 16 px, batch 4, one timed cycle: a check that "
                        "the benchmark runs, not a measurement worth keeping")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                        help="results folder (default: benchmarks/results)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; append no rows and regenerate no tables")
    return parser


def _measure_settings(args) -> MeasureSettings:
    base = QUICK_MEASURE if args.quick else MeasureSettings()
    settings = MeasureSettings(
        warmup_steps=base.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        min_cycles=base.min_cycles if args.min_cycles is None else args.min_cycles,
        max_cycles=base.max_cycles if args.max_cycles is None else args.max_cycles,
        budget_s=base.budget_s if args.budget_s is None else args.budget_s,
    )
    if settings.max_cycles < settings.min_cycles:
        raise ValueError(f"--max-cycles ({settings.max_cycles}) must be >= --min-cycles "
                         f"({settings.min_cycles})")
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ada_p is not None and args.aug != "ada":
        parser.error(f"--ada-p needs --aug ada, got --aug {args.aug}")
    if args.ada_p is not None and args.ada_p > 1:
        parser.error(f"--ada-p must be in [0, 1], got {args.ada_p}")
    try:
        args.measure = _measure_settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    default_device = "cuda" if torch.cuda.is_available() and not args.quick else "cpu"
    device = torch.device(args.device or default_device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: no CUDA device is available")
    args.device_obj = device
    family = get_family(args.model)
    standard = DEFAULT_CONFIGS if args.model == DEFAULT_MODEL else dict(family.standard_configs)
    resolutions = args.resolutions or ([QUICK_RESOLUTION] if args.quick else list(standard))
    if args.quick and args.model != DEFAULT_MODEL:
        standard = {QUICK_RESOLUTION: "digits"}

    env = collect_environment(device)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    print(f"device: {env.device}; torch {env.torch_version}, triton {env.triton_version}, "
          f"CUDA {env.cuda_version}, gankern {env.gankern_commit}", flush=True)
    baselines = measure_baselines(device, args.quick,
                                  QUICK_TIMING if args.quick else TimingSettings())
    base = _base_row(env, baselines, run_id, args.model)
    op = op_name(args.model)
    rows = []
    with trainer_backend_flags(args.tf32, device), _quick_threads(args.quick):
        for resolution in resolutions:
            cfg = args.cfg or standard.get(resolution) or family.default_config_name("")
            for provider in args.providers:
                print(f"{op} {cfg} {resolution}px {provider} ...", flush=True)
                row = bench_provider(args, provider, resolution, cfg, base)
                rows.append(row)
                if not args.no_write:
                    append_rows(args.out, env.device_slug, op, [row])
                if row["status"] == "ok":
                    print(f"  {row['median_ms']:.1f} ms/step over {row['reps']} cycles, "
                          f"{row['median_ms'] / int(row['shape'].split('x')[0]):.3g} s/kimg",
                          flush=True)
                else:
                    print(f"  {row['status']}: {row['reason']}", flush=True)
    print("\n" + "\n".join(training_table(rows)), flush=True)
    if not args.no_write:
        print(f"\nrows appended under {args.out / env.device_slug}; tables regenerated: "
              f"{write_training_markdown(args.out)}, {write_markdown(args.out)}")
    errors = sum(row["status"] == "error" for row in rows)
    if errors:
        print(f"\n{errors} measurement(s) failed with an error (see the notes above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
