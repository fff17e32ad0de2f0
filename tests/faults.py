"""Simulated file-system faults for the CLI tests: a read-only folder and a full disk.

The tests run as root on CI, where ``chmod`` does not stop writes, and cannot mount a small
file system; so the Python-level entry points that create or write files (``open``,
``io.open``, ``os.open``, ``os.mkdir``, ``os.access``) are patched to fail the way the
kernel would (``EROFS`` at creation, ``ENOSPC`` at write) for paths below a folder and
matching a name pattern. Everything else is untouched.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fnmatch
import io
import os
from pathlib import Path

import pytest

_WRITE_MODES = set("wax+")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class _FullFile:
    """A file object whose writes fail with ENOSPC (opening and closing still work)."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def writelines(self, lines):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@contextlib.contextmanager
def failing_writes(root, kind: str, pattern: str = "*"):
    """Within the block, writes below ``root`` to names matching ``pattern`` fail.

    Args:
        root: the folder.
        kind: ``"read-only"`` (creating files or folders fails with EROFS) or ``"full"``
            (files open, but writing to them fails with ENOSPC).
        pattern: an ``fnmatch`` pattern of the file names concerned.
    """
    root = os.path.realpath(root)
    real_open, real_os_open = builtins.open, os.open
    real_mkdir, real_access = os.mkdir, os.access

    def concerned(path) -> bool:
        if isinstance(path, int):
            return False
        full = os.path.realpath(os.fsdecode(path))
        return (full == root or full.startswith(root + os.sep)) and fnmatch.fnmatch(
            os.path.basename(full), pattern
        )

    def read_only(path):
        return OSError(errno.EROFS, "Read-only file system", os.fspath(path))

    def fake_open(file, mode="r", *args, **kwargs):
        if (
            isinstance(file, (str, bytes, os.PathLike))
            and _WRITE_MODES & set(mode)
            and concerned(file)
        ):
            if kind == "read-only":
                raise read_only(file)
            return _FullFile(real_open(file, mode, *args, **kwargs))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & _WRITE_FLAGS and concerned(path):
            if kind == "read-only":
                raise read_only(path)
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if kind == "read-only" and concerned(path):
            raise read_only(path)
        return real_mkdir(path, *args, **kwargs)

    def fake_access(path, mode, *args, **kwargs):
        if kind == "read-only" and mode & os.W_OK and concerned(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(builtins, "open", fake_open)
        patch.setattr(io, "open", fake_open)
        patch.setattr(os, "open", fake_os_open)
        patch.setattr(os, "mkdir", fake_mkdir)
        patch.setattr(os, "access", fake_access)
        yield Path(root)


def tree_state(root) -> dict:
    """``{relative path: (size, mtime_ns)}`` of every file below ``root`` (``"dir"`` for a
    folder: a folder's time changes when something was created in it and removed again)."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        key = str(path.relative_to(root))
        out[key] = "dir" if path.is_dir() else (stat.st_size, stat.st_mtime_ns)
    return out
