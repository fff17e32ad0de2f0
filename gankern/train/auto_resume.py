"""``--resume auto``: continue the newest run of the same options, or start one.

A job script that says ``gankern train --data x.zip --kimg 25000 --resume auto`` can be
requeued unchanged after a preemption: the first time it starts a run, later it continues
from the newest good snapshot of the newest run in ``--outdir`` whose saved options
(``training_options.json``) are those of the command, up to the options that do not change
what is computed (``kimg``, ``snap``, ``metrics``, ... see
:data:`gankern.train.options.RESUME_SAFE`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gankern.train.checkpoint import CheckpointError, list_snapshots, load_checkpoint
from gankern.train.options import RESUME_SAFE, TrainingOptions

AUTO = "auto"
OPTIONS_FILE = "training_options.json"


def _identity(options: dict, default_data: str | None) -> dict:
    """The options that tell runs apart (data made explicit)."""
    out = {k: v for k, v in options.items() if k not in RESUME_SAFE}
    if out.get("init") is not None:  # the file's architecture was folded into extra
        out.pop("extra", None)
    if out.get("data") is None:
        out["data"] = default_data
    if out.get("betas") is not None:
        out["betas"] = list(out["betas"])
    return out


def _run_dirs(outdir: Path) -> list[Path]:
    """The numbered run directories of ``outdir``, newest (highest number) first."""
    if not outdir.is_dir():
        return []
    numbered = []
    for entry in outdir.iterdir():
        match = re.match(r"^(\d+)-", entry.name)
        if match and entry.is_dir():
            numbered.append((int(match.group(1)), entry))
    return [entry for _, entry in sorted(numbered, reverse=True)]


def find_auto_resume(opts: TrainingOptions, default_data: str | None = None) -> Path | None:
    """The snapshot ``--resume auto`` continues from, or None (start a new run).

    Args:
        opts: the options of the command (``opts.outdir`` is searched).
        default_data: the model family's built-in dataset (what ``data=None`` means).

    Returns:
        The newest snapshot that loads and verifies, of the newest run directory whose saved
        options match ``opts`` (see the module docstring).
    """
    wanted = _identity(opts.to_dict(), default_data)
    for run_dir in _run_dirs(Path(opts.outdir)):
        try:
            saved = json.loads((run_dir / OPTIONS_FILE).read_text())["options"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        try:
            saved = TrainingOptions.from_dict(saved).to_dict()
        except (TypeError, ValueError):
            continue
        if _identity(saved, default_data) != wanted:
            continue
        for snapshot in reversed(list_snapshots(run_dir)):
            try:
                load_checkpoint(snapshot)
            except (CheckpointError, OSError):
                continue
            return snapshot
    return None
