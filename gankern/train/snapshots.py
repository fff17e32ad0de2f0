"""The run directory and what a snapshot writes into it.

A run directory holds::

    training_options.json          the options and resolved settings (rewritten at each start)
    stats.jsonl                    one record per tick (losses, timing, metrics)
    events.out.tfevents.*          the same for TensorBoard
    snapshot-000012345.safetensors checkpoints (after 12,345 images), see gankern.train.checkpoint
    samples-000012345.png          the EMA generator on fixed latents at that point
    plot.png                       losses, regularizers, augmentation and metrics over time

    log.txt                        everything the run printed (and its warnings)

Only process 0 writes. New runs get a numbered directory under ``outdir``
(``00003-digits-tiny-batch32``); a resumed run continues in the directory of its checkpoint,
unless ``outdir`` names another folder: then it continues in a new numbered directory there
(and says so). Temporary files of interrupted writes are removed when a run starts.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import torch

from gankern.fileio import describe_os_error, remove_stale_temp_files
from gankern.train.checkpoint import (
    atomic_write_bytes,
    list_snapshots,
    save_checkpoint,
    snapshot_name,
)
from gankern.train.distributed import DistributedContext
from gankern.train.training_log import STATS_FILE
from gankern.train.training_state import collect_state
from gankern.train.visuals import (
    plot_training_curves,
    save_image_grid,
)

OPTIONS_FILE = "training_options.json"
PLOT_FILE = "plot.png"
# Seed offset of the snapshot grid's latents, so they are not the training seed's stream.
GRID_SEED_OFFSET = 7919


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "data"


class RunWriteError(OSError):
    """A write of a running training run failed; the message names the file and the last
    good snapshot (see :meth:`SnapshotWriter.write_error`)."""


def _same_dir(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def prepare_run_dir(opts, dataset, settings, ctx: DistributedContext, resume_path,
                    cfg_name: str, print_fn=print) -> tuple[Path, list[Path]]:
    """``(run directory, created)``: ``opts.run_dir``, the resumed checkpoint's (when it is
    in ``opts.outdir``), or a new numbered one under ``opts.outdir``; ``created`` lists the
    folders made for it (the run directory first, then the parents that did not exist).
    Stale temporary files of interrupted writes in it are removed (and reported through
    ``print_fn``)."""
    if opts.run_dir is not None:
        run_dir = Path(opts.run_dir)
    elif resume_path is not None and _same_dir(Path(resume_path).parent.parent, opts.outdir):
        run_dir = Path(resume_path).parent
    else:
        outdir = Path(opts.outdir)
        ids = []
        if outdir.is_dir():
            for entry in outdir.iterdir():
                m = re.match(r"^(\d+)-", entry.name)
                if m and entry.is_dir():
                    ids.append(int(m.group(1)))
        run_id = max(ids, default=-1) + 1
        desc = f"{_slug(dataset.name)}-{_slug(cfg_name)}-batch{settings.batch}"
        if ctx.world_size > 1:
            desc += f"-procs{ctx.world_size}"
        run_dir = outdir / f"{run_id:05d}-{desc}"
    created = []
    for folder in (run_dir, *run_dir.parents):
        if folder.exists():
            break
        created.append(folder)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        removed = remove_stale_temp_files(run_dir)
        if removed:
            print_fn(f"Removed {len(removed)} temporary file(s) left by an interrupted write: "
                     + ", ".join(p.name for p in removed), flush=True)
        text = json.dumps({"options": opts.to_dict(), "settings": settings.to_dict()}, indent=2)
        atomic_write_bytes(run_dir / OPTIONS_FILE, text.encode())
    ctx.barrier()
    return run_dir, created


def _all_finite(*modules: torch.nn.Module) -> bool:
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                return False
    return True


class SnapshotWriter:
    """Writes checkpoints, sample grids, metrics and the plot of one run (process 0)."""

    def __init__(self, run_dir: Path, opts, settings, dataset, family, ctx: DistributedContext,
                 logger):
        self.run_dir = Path(run_dir)
        self.opts = opts
        self.settings = settings
        self.dataset = dataset
        self.ctx = ctx
        self.logger = logger
        self.family = family
        existing = list_snapshots(self.run_dir) if ctx.is_main else []
        resumed_from = Path(opts.resume) if opts.resume else None
        self.last_checkpoint: Path | None = existing[-1] if existing else resumed_from
        self.written = 0  # checkpoints written by this run
        self.last_nimg: int | None = None  # images at this run's latest checkpoint call
        ctx.barrier()

    def samples_and_metrics(self, G_ema, nimg: int, record: dict | None) -> None:
        """The sample grid and (with a tick ``record``) the metrics, added to the record."""
        t0 = time.time()
        self.family.prepare_sampler(G_ema)
        if self.ctx.is_main:
            self._sample_grid(G_ema, nimg)
        if record is not None and self.settings.metrics:
            self._metrics(G_ema, record)
        if record is not None:
            record["Timing/snapshot_sec"] = time.time() - t0
        self.ctx.barrier()

    def checkpoint(self, components: dict, metadata: dict) -> None:
        """Write the checkpoint (process 0), unless the networks hold non-finite values.

        The loop writes it after the tick's log record: a run killed in between resumes
        from the previous checkpoint and rewrites that record, so no record is lost.
        """
        nimg = metadata["counters"]["nimg"]
        self.last_nimg = nimg  # on every process (the decisions that depend on it agree)
        if self.ctx.is_main:
            networks = [obj for obj in components.values() if isinstance(obj, torch.nn.Module)]
            if _all_finite(*networks):
                tensors, meta = collect_state(components, metadata)
                path = self.run_dir / snapshot_name(nimg)
                try:
                    save_checkpoint(path, tensors, meta)
                except RunWriteError:
                    raise
                except OSError as exc:
                    raise self.write_error(exc, path) from exc
                self.last_checkpoint = path
                self.written += 1
                self._prune()
            else:
                self.logger.print(f"Not writing a checkpoint at {nimg / 1000:.3f} kimg: the "
                                  "networks hold non-finite values")
        self.ctx.barrier()

    def write_error(self, exc: OSError, path=None) -> OSError:
        """``exc`` (a failed write of the run) as an OSError whose message names the file
        and the last good snapshot to resume from."""
        where = exc.filename if exc.filename is not None else path
        reason = exc.strerror or describe_os_error(exc)
        what = f"{reason}: {where}" if where is not None else reason
        if self.last_checkpoint is None:
            tail = "no snapshot was written yet"
        else:
            tail = (f"the last good snapshot is {self.last_checkpoint} (once there is room, "
                    f"continue with --resume {self.last_checkpoint})")
        return RunWriteError(exc.errno, f"{what}; the run stopped, {tail}")

    def _prune(self) -> None:
        keep = self.opts.keep_snapshots
        if keep <= 0:
            return
        for old in list_snapshots(self.run_dir)[:-keep]:
            old.unlink(missing_ok=True)

    def _sample_grid(self, G_ema, nimg: int) -> None:
        images, cols = self.family.snapshot_grid(G_ema, self.opts.seed + GRID_SEED_OFFSET,
                                                 self.dataset)
        # A thin gray line between cells keeps neighbouring samples apart.
        save_image_grid(images, self.run_dir / f"samples-{nimg:09d}.png", cols, pad=2,
                        pad_value=96)

    def _metrics(self, G_ema, record: dict) -> None:
        from gankern.train.snapshot_metrics import compute_snapshot_metrics

        t0 = time.time()
        results = compute_snapshot_metrics(
            G_ema, self.dataset, self.settings.metrics, self.opts, self.ctx,
            generator_kwargs=self.family.snapshot_metric_kwargs(),
        )
        for name, value in results.items():
            record[f"Metrics/{name}"] = value
        if self.ctx.is_main and results:
            text = ", ".join(f"{k} {v:.4g}" for k, v in results.items())
            self.logger.print(f"Metrics at {record['kimg']:.3f} kimg: {text} "
                              f"({time.time() - t0:.1f} s)")

    def plot(self) -> None:
        """Redraw ``plot.png`` from ``stats.jsonl``."""
        if self.ctx.is_main:
            plot_training_curves(self.run_dir / STATS_FILE, self.run_dir / PLOT_FILE)
