"""The training loop of every model family: :func:`training_loop`, to be read top to bottom.

Setup (data, the model family's networks and objective, augmentation, optimizers, resume;
see :mod:`gankern.train.run`), then steps until the requested number of images: each step
runs the phases of :mod:`gankern.train.phases`, updates the EMA generator and ADA's
probability; every ``kimg_per_tick`` thousand images a tick logs statistics, and every
``snap`` ticks a snapshot writes a checkpoint, a sample grid, metrics and a plot
(:mod:`gankern.train.snapshots`). The loop names no architecture: ``opts.model`` picks the
family (:mod:`gankern.train.families`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gankern.data import infinite_loader
from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
from gankern.train.data import describe_data, open_training_data
from gankern.train.distributed import DistributedContext, init_distributed
from gankern.train.families import get_family
from gankern.train.options import TrainingOptions, check_options
from gankern.train.run import (
    INIT_STREAM,
    LATENT_STREAM,
    NonFiniteTrainingError,
    build_augmentation,
    build_training_run,
    phase_inputs,
)
from gankern.train.snapshots import SnapshotWriter, prepare_run_dir
from gankern.train.training_log import RunLogger, progress_line
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
) -> Path:
    """Train (or continue training) a model as ``opts`` says; returns the run directory.

    Args:
        opts: the options (see :class:`TrainingOptions`).
        ctx: this process's place in a process group (default: from the environment, which
            describes a single process unless launched by torchrun or ``--gpus``).
        setup_hook: called as ``setup_hook(G, D)`` once the networks exist (and before a
            checkpoint is restored into them), e.g. to instrument them.
        print_fn: where progress lines go (rank 0 only).

    Raises:
        NonFiniteTrainingError: ``max_nonfinite_steps`` consecutive skipped steps in a phase.
    """
    check_options(opts)
    if opts.data is None:  # the model family's built-in dataset
        opts = dataclasses.replace(opts, data=get_family(opts.model).default_data)
    ctx = ctx or init_distributed(opts.device)
    device = ctx.device
    torch.backends.cuda.matmul.allow_tf32 = opts.tf32
    torch.backends.cudnn.allow_tf32 = opts.tf32
    torch.backends.cudnn.benchmark = device.type == "cuda"
    start_time = time.time()

    # --- Where we start from --------------------------------------------------------------
    resume_path = resolve_resume_path(opts.resume) if opts.resume else None
    resumed = load_checkpoint(resume_path) if resume_path else None

    # --- Data -----------------------------------------------------------------------------
    family = get_family(opts.model)(opts)
    dataset = open_training_data(opts, family)
    data = describe_data(dataset, family.data_kind)
    labels = None
    if data.c_dim > 0:
        labels = np.stack([dataset.get_label(i) for i in range(len(dataset))]).astype(np.float32)

    # --- The model family: networks, objective, augmentation, optimizers, phases ----------
    run = build_training_run(opts, data, ctx, labels, setup_hook, family=family)
    settings, counters = run.settings, run.counters
    components = run.components()

    # --- Counters, restored state ---------------------------------------------------------
    if resumed is not None:
        tensors, meta = resumed
        restore_state(components, tensors, meta)
        counters.update(meta["counters"])
        for phase in run.phases:
            phase.consecutive_skips = meta.get("consecutive_skips", {}).get(phase.name, 0)
    else:
        for module in run.networks.values():
            ctx.broadcast_module_(module)
    elapsed_before = counters["elapsed_sec"]
    run.family.on_step(counters["nimg"])

    # --- Run directory, logs, snapshots ---------------------------------------------------
    run_dir = prepare_run_dir(opts, dataset, settings, ctx, resume_path, run.config.name)
    logger = RunLogger(run_dir, enabled=ctx.is_main, tensorboard=opts.tensorboard,
                       print_fn=print_fn)
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
    sizes = ", ".join(f"{name} {sum(p.numel() for p in run.networks[name].parameters()):,}"
                      for names in run.family.players.values() for name in names)
    logger.print(f"Run directory: {run_dir}")
    logger.print(f"Model {opts.model}, config {run.config.name}: {sizes} parameters")
    logger.print(f"Device: {device} x {ctx.world_size}, precision {run.precision}")
    logger.print("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.to_dict().items()))
    for note in run.family.notes():
        logger.print(note)
    if resumed is not None:
        logger.print(f"Resumed from {resume_path} at {counters['nimg'] / 1000:.3f} kimg")
    else:
        snapshots.samples_and_metrics(run.G_ema, counters["nimg"], record=None)
        snapshots.checkpoint(components, dict(metadata, counters=counters, consecutive_skips={}))

    # --- Training -------------------------------------------------------------------------
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

    done = counters["nimg"] >= total_nimg
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
            logger.close()
            raise NonFiniteTrainingError(message) from None
        done = counters["nimg"] >= total_nimg
        if not done and counters["nimg"] < counters["tick_start_nimg"] + tick_nimg:
            continue

        # --- End of a tick: statistics, progress, maybe a snapshot ------------------------
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
        if snapshot_due:
            snapshots.samples_and_metrics(run.G_ema, counters["nimg"], record)
        logger.log(record)
        logger.print(progress_line(record, settings.total_kimg))
        if snapshot_due:
            skips = {p.name: p.consecutive_skips for p in run.phases}
            snapshots.checkpoint(components, dict(metadata, counters=counters,
                                                  consecutive_skips=skips))
            snapshots.plot()
        tick_start_time = time.time()

    logger.print(f"Done: {counters['nimg'] / 1000:.3f} kimg, run directory {run_dir}")
    logger.close()
    return run_dir
