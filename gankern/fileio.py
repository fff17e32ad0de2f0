"""Small file-system helpers shared by every layer: error texts, early checks, stale temp files.

* :func:`describe_os_error`: ``"No space left on device: runs/x.png"`` instead of
  ``"[Errno 28] No space left on device"`` (what went wrong, and where).
* :func:`check_writable_dir`: fail before hours of work, not after, when an output folder
  cannot be created or written (a read-only file system, no permission).
* :func:`remove_stale_temp_files`: the temporary files of atomic writes killed half-way
  (``.<name>.<pid>.tmp``) are removed when the next run starts in that folder.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

# ``.<name>.<pid>.tmp`` (gankern.train.checkpoint.atomic_write_bytes) and
# ``.<name>.tmp-<pid>`` (the dataset tool's output before it is moved into place).
_TEMP_PATTERNS = (re.compile(r"^\..+\.(\d+)\.tmp$"), re.compile(r"^\..+\.tmp-(\d+)$"))
# A temporary file older than this is stale even if its process id is in use again.
STALE_AFTER_SEC = 3600.0


def describe_os_error(exc: OSError) -> str:
    """``<reason>: <path>`` for an OSError that names a file, else its text."""
    if exc.strerror and exc.filename is not None:
        text = f"{exc.strerror}: {os.fsdecode(exc.filename)}"
        if exc.filename2 is not None:
            text += f" -> {os.fsdecode(exc.filename2)}"
        return text
    if exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Create ``path`` (and its parents) if needed and check that files can be written in it.

    Args:
        path: the folder.
        what: how messages name it (``"--outdir"``).

    Returns:
        ``path`` as a Path. Folders it created are kept (they are about to be written to).

    Raises:
        OSError: with ``what`` and the path in its message, when the folder cannot be
            created or written (a read-only file system, no permission, a file in the way).
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{what} {path} is a file, not a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".gankern-write-check-"):
            pass
    except OSError as exc:
        raise type(exc)(
            exc.errno, f"cannot write to {what} {path}: {exc.strerror or describe_os_error(exc)}"
        ) from exc
    return path


def check_can_create(path: str | os.PathLike, what: str) -> Path:
    """Check, without creating anything, that ``path`` (a folder or file to be written) can
    be created or written: its nearest existing ancestor must be a writable folder.

    Raises:
        OSError: naming ``what`` and the path (read-only file system, no permission, a file
            where a folder is needed).
    """
    path = Path(path)
    ancestor = (
        path if path.exists() else next((p for p in path.absolute().parents if p.exists()), None)
    )
    if ancestor is None:
        raise FileNotFoundError(errno.ENOENT, f"{what} {path}: no existing parent folder")
    if ancestor != path and not ancestor.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"cannot create {what} {path}: {ancestor} is a file, not a folder"
        )
    target = ancestor if ancestor.is_dir() else ancestor.parent
    if not os.access(target, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only_mount(target) else errno.EACCES
        reason = "read-only file system" if code == errno.EROFS else "no permission to write"
        raise PermissionError(code, f"cannot write {what} {path}: {reason} in {target}")
    return path


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process has not written anything there yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(directory: str | os.PathLike, prefix: str = ".") -> list[Path]:
    """Remove the temporary files that interrupted atomic writes left in ``directory``.

    A file (or folder) matching ``.<name>.<pid>.tmp`` or ``.<name>.tmp-<pid>`` and starting
    with ``prefix`` is stale when its process is gone (or is this process), or when it is
    older than :data:`STALE_AFTER_SEC`. Returns the removed paths (nothing is removed if
    ``directory`` does not exist).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in directory.iterdir():
        if not entry.name.startswith(prefix):
            continue
        match = next((m for p in _TEMP_PATTERNS if (m := p.match(entry.name))), None)
        if match is None:
            continue
        try:
            old = now - entry.lstat().st_mtime > STALE_AFTER_SEC
        except FileNotFoundError:
            continue
        if _process_alive(int(match.group(1))) and not old:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed
