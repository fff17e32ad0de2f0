"""Where gankern keeps what it computes once and reuses: extractor weights and statistics.

The cache directory is ``$GANKERN_CACHE`` when set, else ``~/.cache/gankern``. Files are
written atomically (a temporary file in the same directory, then a rename), so concurrent
processes (pytest-xdist workers, DDP ranks) never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gankern.pretrained import cache_dir


def metrics_cache_dir() -> Path:
    """The subdirectory for metrics: extractor weights, dataset statistics."""
    return cache_dir() / "metrics"


def stable_hash(obj, length: int = 16) -> str:
    """A short hex digest of a JSON-serializable object (key order does not matter)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: str | os.PathLike, length: int = 16) -> str:
    """A short hex digest of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cached files are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
