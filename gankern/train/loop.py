"""The training loop of every model family: :func:`training_loop`, to be read top to bottom.

Setup (data, the model family's networks and objective, augmentation, optimizers, resume;
see :mod:`gankern.train.run`), then steps until the requested number of images: each step
runs the phases of :mod:`gankern.train.phases`, updates the EMA generator and ADA's
probability; every ``kimg_per_tick`` thousand images a tick logs statistics, and every
``snap`` ticks a snapshot writes a checkpoint, a sample grid, metrics and a plot
(:mod:`gankern.train.snapshots`). The loop names no architecture: ``opts.model`` picks the
family (:mod:`gankern.train.families`).

Failure and stopping: everything that can be checked is checked before the run directory
exists (:mod:`gankern.train.start`); a start that fails before its first checkpoint removes
the run directory it created; a write that fails later (a full disk) stops with the path and
the last good snapshot; SIGTERM/SIGINT stop after the current step with a final snapshot
(:mod:`gankern.train.preemption`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gankern.data import infinite_loader
from gankern.train.distributed import DistributedContext, init_distributed
from gankern.train.init_weights import copy_init_weights
from gankern.train.options import TrainingOptions, augmentation_mode, check_options
from gankern.train.preemption import StopRequest, TrainingInterrupted
from gankern.train.run import (
    INIT_STREAM,
    LATENT_STREAM,
    NonFiniteTrainingError,
    TrainingRun,
    build_augmentation,
    build_training_run,
    phase_inputs,
)
from gankern.train.snapshots import RunWriteError, SnapshotWriter, prepare_run_dir
from gankern.train.start import plan_run
from gankern.train.training_log import RunLogger, WarningLog, progress_line
from gankern.train.training_state import restore_state

__all__ = [
    "INIT_STREAM",
    "LATENT_STREAM",
    "NonFiniteTrainingError",
    "build_augmentation",
    "phase_inputs",
    "training_loop",
]


def training_loop(
    opts: TrainingOptions,
    ctx: DistributedContext | None = None,
    setup_hook: Callable | None = None,
    print_fn: Callable = print,
    check_data: bool = True,
) -> Path:
    """Train (or continue training) a model as ``opts`` says; returns the run directory.

    Args:
        opts: the options (see :class:`TrainingOptions`).
        ctx: this process's place in a process group (default: from the environment, which
            describes a single process unless launched by torchrun or ``--gpus``).
        setup_hook: called as ``setup_hook(G, D)`` once the networks exist (and before a
            checkpoint is restored into them), e.g. to instrument them.
        print_fn: where progress lines go (rank 0 only).
        check_data: decode every training image before starting (a launcher that already
            checked them passes False to its workers).

    Raises:
        NonFiniteTrainingError: ``max_nonfinite_steps`` consecutive skipped steps in a phase.
        TrainingInterrupted: SIGTERM or SIGINT stopped the run (after a final snapshot).
        ValueError, TypeError, OSError: a bad option, bad data or a failed write, naming it.
    """
    check_options(opts)
    ctx = ctx or init_distributed(opts.device)
    device = ctx.device
    torch.backends.cuda.matmul.allow_tf32 = opts.tf32
    torch.backends.cudnn.allow_tf32 = opts.tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    start_time = time.time()
    warning_log = WarningLog()

    with warning_log:
        # --- Everything checked before anything is written (gankern.train.start) ---------
        def early_print(text: str, **kwargs) -> None:  # printed, and kept for log.txt
            if ctx.is_main:
                print_fn(text, **kwargs)
                warning_log.add(text)

        plan = plan_run(opts, ctx.world_size, device, check_data=check_data,
                        is_main=ctx.is_main, print_fn=early_print)
        opts, dataset, data = plan.opts, plan.dataset, plan.data
        resume_path, resumed = plan.resume_path, plan.resumed

        # --- The model family: networks, objective, augmentation, optimizers, phases -----
        run = build_training_run(opts, data, ctx, plan.labels, setup_hook, family=plan.family)
        settings, counters = run.settings, run.counters
        components = run.components()

        # --- Counters, restored state (or the published weights of --init) ----------------
        if resumed is not None:
            tensors, meta = resumed
            try:
                restore_state(components, tensors, meta)
            except ValueError as exc:
                raise ValueError(f"cannot resume from {resume_path}: {exc}"
                                 f"{_resume_context(meta, opts, data, run)}") from exc
            counters.update(meta["counters"])
            for phase in run.phases:
                phase.consecutive_skips = meta.get("consecutive_skips", {}).get(phase.name, 0)
        else:
            fresh = copy_init_weights(run.networks, plan.init) if plan.init else []
            for module in run.networks.values():
                ctx.broadcast_module_(module)
        elapsed_before = counters["elapsed_sec"]
        run.family.on_step(counters["nimg"])

        # --- Run directory, logs, snapshots -----------------------------------------------
        run_dir, created = prepare_run_dir(opts, dataset, settings, ctx, resume_path,
                                           run.config.name, print_fn=early_print)
        snapshots = logger = None
        try:
            logger = RunLogger(run_dir, enabled=ctx.is_main, tensorboard=opts.tensorboard,
                               print_fn=print_fn)
            warning_log.attach(logger)
            logger.truncate_after(counters["nimg"])
            metadata = {
                "options": opts.to_dict(),
                "settings": settings.to_dict(),
                "networks": run.config.metadata(run.precision, opts.model),
                "dataset": {"name": data.name, "size": data.num_images, "c_dim": data.c_dim,
                            "resolution": data.resolution, "channels": data.channels,
                            "kind": data.kind, "channels_b": data.channels_b},
            }  # fmt: skip
            snapshots = SnapshotWriter(run_dir, opts, settings, dataset, run.family, ctx, logger)
            sizes = ", ".join(
                f"{name} {sum(p.numel() for p in run.networks[name].parameters()):,}"
                for names in run.family.players.values() for name in names)
            logger.print(f"Run directory: {run_dir}")
            logger.print(f"Model {opts.model}, config {run.config.name}: {sizes} parameters")
            logger.print(f"Device: {device} x {ctx.world_size}, precision "
                         f"{_precision_text(run)}")
            logger.print("Settings: " + ", ".join(f"{k}={v}"
                                                  for k, v in settings.to_dict().items()))
            for note in run.family.notes():
                logger.print(note)
            if resumed is not None:
                moved = "" if resume_path.parent == run_dir else f" into {run_dir}"
                logger.print(f"Resumed from {resume_path} at {counters['nimg'] / 1000:.3f} "
                             f"kimg{moved}")
            else:
                if plan.init is not None:
                    kept = f" ({', '.join(fresh)} freshly initialized)" if fresh else ""
                    logger.print(f"Initialized from {plan.init.path}{kept}")
                snapshots.samples_and_metrics(run.G_ema, counters["nimg"], record=None)
                snapshots.checkpoint(components, dict(metadata, counters=counters,
                                                      consecutive_skips={}))
            _train(run, opts, ctx, dataset, components, metadata, snapshots, logger,
                   start_time, elapsed_before)
        except BaseException as exc:
            _stop(exc, run_dir, created, snapshots, logger, ctx)
            raise
    logger.print(f"Done: {counters['nimg'] / 1000:.3f} kimg, run directory {run_dir}")
    logger.close()
    return run_dir


def _train(run: TrainingRun, opts, ctx, dataset, components, metadata, snapshots, logger,
           start_time, elapsed_before) -> None:
    """The steps, ticks and snapshots until the requested number of images."""
    settings, counters, device = run.settings, run.counters, ctx.device
    total_nimg = int(round(settings.total_kimg * 1000))
    tick_nimg = opts.kimg_per_tick * 1000
    loader = infinite_loader(
        dataset, settings.batch // ctx.world_size, rank=ctx.rank, world_size=ctx.world_size,
        seed=opts.seed, start=counters["step"] * settings.batch, num_workers=opts.num_workers,
    )  # fmt: skip
    tick_start_time = time.time()
    tick_skipped = 0

    def on_skip(phase) -> None:
        nonlocal tick_skipped
        tick_skipped += 1
        logger.print(f"Skipped a {phase.name} step at {counters['nimg'] / 1000:.3f} kimg:"
                     " non-finite loss or gradient")

    def skips() -> dict:
        return {p.name: p.consecutive_skips for p in run.phases}

    def end_tick(done: bool) -> None:
        """Statistics, progress, and (every ``snap`` ticks and at the end) a snapshot."""
        nonlocal tick_start_time, tick_skipped
        run.sync_buffers()
        tick_end_time = time.time()
        tick_images = counters["nimg"] - counters["tick_start_nimg"]
        tick_sec = tick_end_time - tick_start_time
        counters["tick"] += 1
        counters["tick_start_nimg"] = counters["nimg"]
        counters["elapsed_sec"] = elapsed_before + tick_end_time - start_time
        record = {"tick": counters["tick"], "nimg": counters["nimg"],
                  "kimg": counters["nimg"] / 1000}
        record.update(run.stats.reduce(ctx))
        if run.augment_pipe is not None:
            record["Progress/augment"] = float(run.augment_pipe.p)
        record["Progress/skipped_steps"] = tick_skipped
        record["Progress/skipped_total"] = counters["skipped_total"]
        record["Timing/total_sec"] = counters["elapsed_sec"]
        record["Timing/sec_per_tick"] = tick_sec
        record["Timing/sec_per_kimg"] = tick_sec / max(tick_images / 1000, 1e-9)
        record["Timing/images_per_sec"] = tick_images / max(tick_sec, 1e-9)
        if device.type == "cuda":
            record["Resources/peak_gpu_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
            torch.cuda.reset_peak_memory_stats(device)
        tick_skipped = 0
        snapshot_due = done or counters["tick"] % opts.snap == 0
        try:
            if snapshot_due:
                snapshots.samples_and_metrics(run.G_ema, counters["nimg"], record)
            logger.log(record)
            logger.print(progress_line(record, settings.total_kimg))
            if snapshot_due:
                snapshots.checkpoint(components, dict(metadata, counters=counters,
                                                      consecutive_skips=skips()))
                snapshots.plot()
        except RunWriteError:
            raise
        except OSError as exc:
            raise snapshots.write_error(exc) from exc
        tick_start_time = time.time()

    done = counters["nimg"] >= total_nimg
    with StopRequest() as stop:
        while not done:
            # One step: this process's share of a batch of real data, then the phases.
            try:
                run.step(run.prepare_real(next(loader)), on_skip=on_skip)
            except NonFiniteTrainingError as exc:
                message = (
                    f"stopping: {exc} (at {counters['nimg'] / 1000:.3f} kimg). The last good "
                    f"checkpoint is {snapshots.last_checkpoint}; resume from it with a lower "
                    "learning rate or gamma, or in fp32."
                )
                logger.log({"tick": counters["tick"], "nimg": counters["nimg"],
                            "kimg": counters["nimg"] / 1000, "stopped": message})
                logger.print(message)
                raise NonFiniteTrainingError(message) from None
            done = counters["nimg"] >= total_nimg
            if done or counters["nimg"] >= counters["tick_start_nimg"] + tick_nimg:
                end_tick(done)
            if not done and stop.agreed(ctx):
                _snapshot_and_stop(stop, run, components, metadata, snapshots, skips(),
                                   elapsed_before, start_time)


def _snapshot_and_stop(stop: StopRequest, run: TrainingRun, components, metadata, snapshots,
                       skips: dict, elapsed_before: float, start_time: float) -> None:
    """A snapshot of the state after this step, then :class:`TrainingInterrupted`."""
    counters = run.counters
    if snapshots.last_nimg != counters["nimg"]:  # not just written at the end of a tick
        counters["elapsed_sec"] = elapsed_before + time.time() - start_time
        snapshots.checkpoint(components, dict(metadata, counters=counters,
                                              consecutive_skips=skips))
    last = snapshots.last_checkpoint
    raise TrainingInterrupted(
        f"stopped by {stop.name} at {counters['nimg'] / 1000:.3f} kimg after writing {last}; "
        f"continue with: gankern train --resume {last} (or, with the same options as this "
        "run, --resume auto)", signum=stop.signum, snapshot=last)


def _stop(exc: BaseException, run_dir: Path, created: list[Path], snapshots, logger,
          ctx) -> None:
    """After a failure: note it in log.txt, and remove the run directory (and the empty
    folders made for it) of a new run that wrote no checkpoint: a failed start leaves
    nothing behind."""
    if logger is not None:
        logger.note(f"stopped: {type(exc).__name__}: {exc}")
        logger.close()
    wrote_nothing = snapshots is None or not snapshots.written
    if ctx.is_main and created and wrote_nothing:
        shutil.rmtree(run_dir, ignore_errors=True)
        for folder in created[1:]:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: something else is in there


def _precision_text(run: TrainingRun) -> str:
    """The precision a run really computes in, for its log."""
    if run.precision == "fp32":
        return "fp32"
    if run.family.precision_mode != "blocks":
        return f"{run.precision} (autocast)"
    half = sum(1 for name, net in run.networks.items() if not name.endswith("_ema")
               for m in net.modules() if getattr(m, "use_fp16", False))
    if half == 0:
        return (f"{run.precision} requested, but config {run.config.name} has no "
                "half-precision layers: everything runs in float32")
    if run.precision == "fp16" and run.device.type != "cuda":
        return (f"fp16 requested, but float16 layers run only on GPUs: the {half} "
                "half-precision blocks run in float32 here (bf16 works on CPUs)")
    return f"{run.precision} ({half} half-precision blocks, the rest float32)"


def _resume_context(meta: dict, opts: TrainingOptions, data, run: TrainingRun) -> str:
    """What differs between a checkpoint and the run that failed to resume from it."""
    notes = []
    saved_data = (meta.get("dataset") or {}).get("name")
    if saved_data is not None and saved_data != data.name:
        notes.append(f"the checkpoint was trained on {saved_data}, this run's data are "
                     f"{data.name}")
    saved_cfg = (meta.get("networks") or {}).get("cfg")
    if saved_cfg is not None and saved_cfg != run.config.name:
        notes.append(f"its networks are --cfg {saved_cfg}, this run builds --cfg "
                     f"{run.config.name}")
    try:
        saved_aug = augmentation_mode(TrainingOptions.from_dict(meta["options"]))
    except (KeyError, TypeError, ValueError):
        saved_aug = None
    if saved_aug is not None and saved_aug != augmentation_mode(opts):
        notes.append(f"it was trained with --aug {saved_aug}, this run uses --aug "
                     f"{augmentation_mode(opts)}")
    return f" ({'; '.join(notes)})" if notes else ""
