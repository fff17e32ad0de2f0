"""Training statistics and where they go: progress lines, JSONL, TensorBoard.

Statistics are collected on the device without synchronizing (:class:`TickStats` keeps a
running sum and count per name) and reduced over processes once per tick. Each tick
becomes one JSON line in ``stats.jsonl`` (the plot is drawn from it), one set of
TensorBoard scalars, and one progress line on rank 0.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import torch

from gankern.train.distributed import DistributedContext

STATS_FILE = "stats.jsonl"
LOG_FILE = "log.txt"
# Longer than this is not a duration anyone plans around: shown as "> 10000d".
MAX_SHOWN_SEC = 10000 * 86400


class TickStats:
    """Running means of named values over one tick, summed over processes at the end."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sums: dict[str, torch.Tensor] = {}

    def add(self, name: str, values: torch.Tensor | float) -> None:
        """Add every element of ``values`` (a tensor on any device, or a number)."""
        if isinstance(values, torch.Tensor):
            values = values.detach().float().reshape(-1)
            pair = torch.stack([values.sum(), values.new_tensor(float(values.numel()))])
        else:
            pair = torch.tensor([float(values), 1.0])
        pair = pair.to(self.device)
        if name in self._sums:
            self._sums[name] += pair
        else:
            self._sums[name] = pair

    def reduce(self, ctx: DistributedContext) -> dict[str, float]:
        """Means over this tick and all processes; resets the collection.

        Every process must have added the same names (they run the same phases).
        """
        names = sorted(self._sums)
        self._sums, sums = {}, self._sums
        if not names:
            return {}
        stacked = torch.stack([sums[n] for n in names])
        ctx.all_reduce_(stacked)
        stacked = stacked.cpu()
        means = {}
        for n, (s, c) in zip(names, stacked, strict=True):
            means[n] = float(s) / float(c) if c > 0 else math.nan
        return means


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN; a missing point in the plot
    return v


def format_duration(seconds: float) -> str:
    """``1h 02m 03s`` style durations for progress lines (``3d 04h 05m`` beyond a day,
    ``> 10000d`` beyond that; negative durations are 0s)."""
    if not math.isfinite(seconds):
        return "?"
    if seconds >= MAX_SHOWN_SEC:
        return f"> {MAX_SHOWN_SEC // 86400}d"
    s = max(int(round(seconds)), 0)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600:02d}h {s % 3600 // 60:02d}m"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


class WarningLog:
    """While active, every warning shown is also kept for ``log.txt``: buffered until a
    :class:`RunLogger` is attached (warnings come before the run directory exists), then
    written through it."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._logger: RunLogger | None = None
        self._catcher = None

    def __enter__(self) -> WarningLog:
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            self.add(f"warning: {message}")
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return self

    def __exit__(self, *exc_info) -> None:
        self._catcher.__exit__(*exc_info)

    def add(self, text: str) -> None:
        if self._logger is not None:
            self._logger.note(text)
        else:
            self._lines.append(text)

    def attach(self, logger: RunLogger) -> None:
        """Write the buffered warnings, and the later ones, to ``logger``'s log."""
        self._logger = logger
        for text in self._lines:
            logger.note(text)
        self._lines.clear()


class RunLogger:
    """Writes one record per tick to ``stats.jsonl`` and TensorBoard, prints progress.

    Only the main process creates a ``RunLogger`` that writes; on other ranks pass
    ``enabled=False`` and every call is a no-op. Everything printed through it is also
    appended to ``log.txt`` in the run directory (with :meth:`note`, text for the log only).
    """

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True,
                 tensorboard: bool = True, print_fn=print):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.print_fn = print_fn
        self._tb = None
        self._log = None
        if not enabled:
            return
        self._log = open(self.run_dir / LOG_FILE, "a", encoding="utf-8")  # noqa: SIM115
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.run_dir))
            except ImportError as exc:
                warnings.warn(f"TensorBoard logging disabled: {exc}", RuntimeWarning, stacklevel=2)

    @property
    def stats_path(self) -> Path:
        return self.run_dir / STATS_FILE

    def truncate_after(self, num_images: int) -> None:
        """Drop records beyond ``num_images`` (a resumed run rewrites what came after its
        snapshot; keeping both would draw two curves over the same images)."""
        if not self.enabled or not self.stats_path.exists():
            return
        kept = []
        for line in self.stats_path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a killed process
            if record.get("nimg", 0) <= num_images:
                kept.append(line)
        self.stats_path.write_text("".join(line + "\n" for line in kept))

    def log(self, record: dict) -> None:
        """Append ``record`` (with ``nimg`` and ``kimg``) and write its scalars to TensorBoard."""
        if not self.enabled:
            return
        clean = {k: _json_value(v) for k, v in record.items()}
        with open(self.stats_path, "a") as f:
            f.write(json.dumps(clean) + "\n")
            f.flush()
        if self._tb is not None:
            step = int(record["nimg"])
            for key, value in record.items():
                if key in ("nimg", "tick") or isinstance(value, bool):
                    continue
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, global_step=step)
            self._tb.flush()

    def print(self, text: str) -> None:
        """Print ``text`` (rank 0) and append it to ``log.txt``."""
        if self.enabled:
            self.print_fn(text, flush=True)
            self.note(text)

    def note(self, text: str) -> None:
        """Append ``text`` to ``log.txt`` only (warnings shown elsewhere, the stop reason)."""
        if self._log is not None:
            self._log.write(text.rstrip("\n") + "\n")
            self._log.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._log is not None:
            self._log.close()
            self._log = None


def progress_line(record: dict, total_kimg: float) -> str:
    """One human-readable progress line from a tick record."""
    kimg = record["kimg"]
    sec_per_kimg = record.get("Timing/sec_per_kimg", math.nan)
    eta = max(total_kimg - kimg, 0.0) * sec_per_kimg
    parts = [
        f"tick {record['tick']:<4d}",
        f"kimg {kimg:<8.3f}",
        f"time {format_duration(record.get('Timing/total_sec', math.nan)):<11s}",
        f"s/kimg {sec_per_kimg:<7.2f}",
        f"img/s {record.get('Timing/images_per_sec', math.nan):<7.1f}",
        f"ETA {format_duration(eta):<11s}",
        f"G {record.get('Loss/G/loss', math.nan):.3f}",
        f"D {record.get('Loss/D/loss', math.nan):.3f}",
    ]
    if "Progress/augment" in record:
        parts.append(f"aug {record['Progress/augment']:.3f}")
    skipped = record.get("Progress/skipped_steps", 0)
    if skipped:
        parts.append(f"skipped {int(skipped)}")
    return "  ".join(parts)
