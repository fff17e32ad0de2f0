"""The StyleGAN2 training loop: :func:`training_loop`, to be read top to bottom.

Setup (data, networks, augmentation, loss and optimizers, resume), then steps until the
requested number of images: each step runs the phases of :mod:`gankern.train.phases`,
updates the EMA generator and ADA's probability; every ``kimg_per_tick`` thousand images a
tick logs statistics, and every ``snap`` ticks a snapshot writes a checkpoint, a sample
grid, metrics and a plot (:mod:`gankern.train.snapshots`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gankern.data import infinite_loader, open_dataset
from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
from gankern.train.distributed import DistributedContext, init_distributed
from gankern.train.ema import copy_buffers, ema_beta, update_ema
from gankern.train.loss import StyleGAN2Loss
from gankern.train.networks import (
    build_networks,
    config_metadata,
    resolve_config,
    resolve_precision,
)
from gankern.train.options import TrainingOptions, augmentation_mode, check_options
from gankern.train.phases import make_phases, run_phase
from gankern.train.rng import make_generator, seed_global_rngs
from gankern.train.settings import resolve_settings
from gankern.train.snapshots import SnapshotWriter, prepare_run_dir
from gankern.train.training_log import RunLogger, TickStats, progress_line
from gankern.train.training_state import restore_state

# Tags of the random streams derived from the seed (see gankern.train.rng).
INIT_STREAM = 4
LATENT_STREAM = 2


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive steps had non-finite losses or gradients; the run stopped."""


def build_augmentation(opts: TrainingOptions, device: torch.device):
    """``(augment_fn, augment_pipe, ada_controller)`` for ``opts.aug`` (None where unused)."""
    mode = augmentation_mode(opts)
    if mode == "noaug":
        return None, None, None
    try:
        from gankern.train import augment
    except ImportError as exc:
        raise ValueError(
            f"aug={mode!r} needs gankern.train.augment, which is not available ({exc}); "
            "use aug='noaug'"
        ) from exc
    if mode == "diffaugment":
        policy = opts.diffaugment
        return (lambda x: augment.diff_augment(x, policy)), None, None
    pipe = augment.AugmentPipe(opts.augpipe, impl=opts.impl).to(device)
    ada = augment.AdaController(
        pipe, target=opts.ada_target, interval=opts.ada_interval, kimg=opts.ada_kimg
    )
    return pipe, pipe, ada


def phase_inputs(seed: int, step: int, phase_index: int, batch: int, z_dim: int,
                 labels: np.ndarray | None, c_dim: int, device: torch.device):
    """Latents and labels of one phase's global batch (the same for any process count)."""
    g = make_generator(seed, LATENT_STREAM, step, phase_index)
    z = torch.randn([batch, z_dim], generator=g)
    if c_dim > 0:
        idx = torch.randint(len(labels), [batch], generator=g).numpy()
        c = torch.from_numpy(labels[idx])
    else:
        c = torch.zeros([batch, 0])
    return z.to(device), c.to(device)


def training_loop(
    opts: TrainingOptions,
    ctx: DistributedContext | None = None,
    setup_hook: Callable | None = None,
    print_fn: Callable = print,
) -> Path:
    """Train (or continue training) a StyleGAN2 as ``opts`` says; returns the run directory.

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
    dataset = open_dataset(
        opts.data, resolution=opts.resolution, use_labels=opts.cond, xflip=opts.mirror,
        max_size=opts.max_images, random_seed=opts.seed, on_bad_file=opts.on_bad_file,
    )  # fmt: skip
    labels = None
    if dataset.c_dim > 0:
        labels = np.stack([dataset.get_label(i) for i in range(len(dataset))]).astype(np.float32)

    # --- Networks -------------------------------------------------------------------------
    precision = resolve_precision(opts.precision, device)
    config = resolve_config(opts, dataset.resolution, dataset.num_channels, dataset.c_dim,
                            ctx.world_size, device)
    settings = resolve_settings(opts, config, ctx.world_size, precision)
    seed_global_rngs(opts.seed, INIT_STREAM)  # initialization: the same on every process
    G, D = build_networks(config, precision, opts.impl, device, opts.channels_last)
    if setup_hook is not None:
        setup_hook(G, D)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    G.requires_grad_(False)
    D.requires_grad_(False)

    # --- Augmentation, loss, optimizers ---------------------------------------------------
    augment_fn, augment_pipe, ada = build_augmentation(opts, device)
    loss = StyleGAN2Loss(
        G, D, r1_gamma=settings.gamma, pl_weight=settings.pl_weight, pl_decay=settings.pl_decay,
        style_mixing_prob=settings.style_mixing, augment=augment_fn,
        channels_last=opts.channels_last,
    )  # fmt: skip
    G_opt, D_opt, phases = make_phases(G, D, settings)
    components = {"G": G, "D": D, "G_ema": G_ema, "G_opt": G_opt, "D_opt": D_opt,
                  "loss": loss, "augment_pipe": augment_pipe, "ada": ada}

    # --- Counters, restored state ---------------------------------------------------------
    counters = {"nimg": 0, "step": 0, "tick": 0, "tick_start_nimg": 0, "elapsed_sec": 0.0,
                "skipped_total": 0}
    if resumed is not None:
        tensors, meta = resumed
        restore_state(components, tensors, meta)
        counters.update(meta["counters"])
        for phase in phases:
            phase.consecutive_skips = meta.get("consecutive_skips", {}).get(phase.name, 0)
    else:
        for module in (G, D, G_ema):
            ctx.broadcast_module_(module)
    elapsed_before = counters["elapsed_sec"]

    # --- Run directory, logs, snapshots ---------------------------------------------------
    run_dir = prepare_run_dir(opts, dataset, settings, ctx, resume_path, config.name)
    logger = RunLogger(run_dir, enabled=ctx.is_main, tensorboard=opts.tensorboard,
                       print_fn=print_fn)
    logger.truncate_after(counters["nimg"])
    metadata = {
        "options": opts.to_dict(),
        "settings": settings.to_dict(),
        "networks": config_metadata(config, precision),
        "dataset": {"name": dataset.name, "size": len(dataset), "c_dim": dataset.c_dim,
                    "resolution": dataset.resolution, "channels": dataset.num_channels},
    }  # fmt: skip
    snapshots = SnapshotWriter(run_dir, opts, settings, dataset, labels, ctx, logger)
    logger.print(f"Run directory: {run_dir}")
    logger.print(f"Device: {device} x {ctx.world_size}, precision {precision}, "
                 f"G {sum(p.numel() for p in G.parameters()):,} / "
                 f"D {sum(p.numel() for p in D.parameters()):,} parameters")
    logger.print("Settings: " + ", ".join(f"{k}={v}" for k, v in settings.to_dict().items()))
    if resumed is not None:
        logger.print(f"Resumed from {resume_path} at {counters['nimg'] / 1000:.3f} kimg")
    else:
        snapshots.samples_and_metrics(G_ema, counters["nimg"], record=None)
        snapshots.checkpoint(components, dict(metadata, counters=counters, consecutive_skips={}))

    # --- Training -------------------------------------------------------------------------
    total_nimg = int(round(settings.total_kimg * 1000))
    tick_nimg = opts.kimg_per_tick * 1000
    loader = infinite_loader(
        dataset, settings.batch // ctx.world_size, rank=ctx.rank, world_size=ctx.world_size,
        seed=opts.seed, start=counters["step"] * settings.batch, num_workers=opts.num_workers,
    )  # fmt: skip
    stats = TickStats(device)
    tick_start_time = time.time()
    tick_skipped = 0
    done = counters["nimg"] >= total_nimg
    while not done:
        # Real images of this step: this process's share, one tensor per accumulation round.
        images, image_labels = next(loader)
        images = images.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
        if opts.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        image_labels = image_labels.to(device, non_blocking=True)
        real = [images[r :: settings.rounds] for r in range(settings.rounds)]
        real_c = [image_labels[r :: settings.rounds] for r in range(settings.rounds)]

        # The phases: G main / reg, D main / reg.
        for phase_index, phase in enumerate(phases):
            if counters["step"] % phase.interval != 0:
                continue
            gen_z, gen_c = phase_inputs(opts.seed, counters["step"], phase_index,
                                        settings.batch, G.z_dim, labels, G.c_dim, device)
            result = run_phase(
                phase, phase_index, step=counters["step"], seed=opts.seed, loss=loss,
                settings=settings, ctx=ctx, real=real, real_c=real_c, gen_z=gen_z,
                gen_c=gen_c, guarded=[G, D],
            )  # fmt: skip
            if result.finite:
                for name, values in result.stats:
                    stats.add(name, values)
                if ada is not None and result.real_logits is not None:
                    ada.accumulate(result.real_logits)
            else:
                tick_skipped += 1
                counters["skipped_total"] += 1
                logger.print(f"Skipped a {phase.name} step at {counters['nimg'] / 1000:.3f} kimg:"
                             " non-finite loss or gradient")
                if phase.consecutive_skips >= opts.max_nonfinite_steps:
                    last = snapshots.last_checkpoint
                    message = (
                        f"stopping: {phase.consecutive_skips} consecutive {phase.name} steps had "
                        f"non-finite losses or gradients (at {counters['nimg'] / 1000:.3f} kimg). "
                        f"The last good checkpoint is {last}; resume from it with a lower "
                        "learning rate or gamma, or in fp32."
                    )
                    logger.log({"tick": counters["tick"], "nimg": counters["nimg"],
                                "kimg": counters["nimg"] / 1000, "stopped": message})
                    logger.print(message)
                    logger.close()
                    raise NonFiniteTrainingError(message)

        # The EMA generator, then ADA's probability.
        update_ema(G_ema, G, ema_beta(settings.batch, counters["nimg"], settings.ema_kimg,
                                      settings.ema_rampup))
        counters["nimg"] += settings.batch
        counters["step"] += 1
        if ada is not None and counters["step"] % opts.ada_interval == 0:
            ada.update(settings.batch * opts.ada_interval)
        done = counters["nimg"] >= total_nimg
        if not done and counters["nimg"] < counters["tick_start_nimg"] + tick_nimg:
            continue

        # --- End of a tick: statistics, progress, maybe a snapshot ------------------------
        ctx.average_buffers_(G)
        copy_buffers(G_ema, G)
        tick_end_time = time.time()
        tick_images = counters["nimg"] - counters["tick_start_nimg"]
        tick_sec = tick_end_time - tick_start_time
        counters["tick"] += 1
        counters["tick_start_nimg"] = counters["nimg"]
        counters["elapsed_sec"] = elapsed_before + tick_end_time - start_time
        record = {"tick": counters["tick"], "nimg": counters["nimg"],
                  "kimg": counters["nimg"] / 1000}
        record.update(stats.reduce(ctx))
        if augment_pipe is not None:
            record["Progress/augment"] = float(augment_pipe.p)
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
            snapshots.samples_and_metrics(G_ema, counters["nimg"], record)
        logger.log(record)
        logger.print(progress_line(record, settings.total_kimg))
        if snapshot_due:
            skips = {p.name: p.consecutive_skips for p in phases}
            snapshots.checkpoint(components, dict(metadata, counters=counters,
                                                  consecutive_skips=skips))
            snapshots.plot()
        tick_start_time = time.time()

    logger.print(f"Done: {counters['nimg'] / 1000:.3f} kimg, run directory {run_dir}")
    logger.close()
    return run_dir
