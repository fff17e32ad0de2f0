"""Checkpoint files: tensors in safetensors, everything else as JSON, written atomically.

A checkpoint is one ``.safetensors`` file. Its tensors are named ``<group>/<key>`` (for
example ``G/mapping.fc0.weight`` or ``G_opt/state/3/exp_avg``); its safetensors metadata
holds a JSON document with the rest (options, counters, optimizer hyperparameters, RNG
states that are not tensors). Loading uses only safetensors and ``json``: nothing in a
checkpoint is ever executed, unlike pickle-based formats.

Writes are atomic: the bytes go to a temporary file in the same directory, are flushed and
fsynced, then renamed over the destination (and the directory is fsynced), so a reader, or
a run killed at any moment, sees either the previous file or the complete new one.

Integrity: the header carries SHA-256 checksums of the tensor data (every tensor's name,
dtype, shape and bytes) and of the JSON metadata, and loading verifies both, so a file
damaged on disk or in a copy (flipped bytes inside a tensor, which safetensors itself cannot
notice) is refused with its name and the previous good snapshot of its run directory
instead of silently training from garbage. Files written before checksums existed load
without the check.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

FORMAT_NAME = "gankern-checkpoint"
FORMAT_VERSION = 1
SNAPSHOT_PATTERN = re.compile(r"^snapshot-(\d{9,})\.safetensors$")
TEMP_SUFFIX = ".tmp"


class CheckpointError(ValueError):
    """A file is not a readable gankern checkpoint (missing, truncated, foreign, corrupt)."""


def tensors_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) of CPU tensors: every name, dtype, shape and byte, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            digest.update(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def text_checksum(text: str) -> str:
    """SHA-256 (hex) of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def snapshot_name(num_images: int) -> str:
    """File name of the snapshot taken after ``num_images`` training images."""
    return f"snapshot-{int(num_images):09d}.safetensors"


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that ``path`` is never seen half-written.

    With ``fsync=False`` the file is still never half-written if the process dies, but a
    crash of the whole machine may lose it (for many small files: generated images).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_directory(path.parent)


def save_checkpoint(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict
) -> None:
    """Atomically write ``tensors`` and the JSON-serializable ``metadata`` to ``path``.

    Tensors are copied to the CPU as contiguous, unshared tensors (safetensors refuses
    tensors that share memory, which module buffers sometimes do).
    """
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"checkpoint tensor {name!r} must be a torch.Tensor, got {type(t).__name__}"
            )
    cpu = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    text = json.dumps(metadata, allow_nan=False)
    header = {
        "format": FORMAT_NAME,
        "version": str(FORMAT_VERSION),
        "json": text,
        "json_sha256": text_checksum(text),
        "tensors_sha256": tensors_checksum(cpu),
    }
    atomic_write_bytes(path, safetensors_save(cpu, metadata=header))


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensors, metadata)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a complete gankern checkpoint, or its checksums do
            not match (the message names the previous good snapshot of its folder).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return _load_verified(path)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}. {_previous_good_hint(path)}") from exc.__cause__


def _load_verified(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """:func:`load_checkpoint` without the hint about other snapshots."""
    data = path.read_bytes()
    try:
        tensors = safetensors_load(data)
        header = _read_header(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or "
                              f"damaged: {exc})") from exc
    if header.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not a gankern checkpoint "
            f"(format {header.get('format')!r}, expected {FORMAT_NAME!r})"
        )
    if header.get("version") != str(FORMAT_VERSION):
        raise CheckpointError(
            f"{path} has checkpoint format version {header.get('version')!r}, "
            f"this gankern reads version {FORMAT_VERSION}"
        )
    text = header.get("json")
    if "json_sha256" in header and (text is None or text_checksum(text) != header["json_sha256"]):
        raise CheckpointError(f"{path} is corrupt: its metadata does not match the checksum "
                              "written with it")
    if "tensors_sha256" in header and tensors_checksum(tensors) != header["tensors_sha256"]:
        raise CheckpointError(f"{path} is corrupt: its tensor data does not match the checksum "
                              "written with it")
    try:
        metadata = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} has unreadable metadata ({exc})") from exc
    return tensors, metadata


def _snapshot_number(path: Path) -> int | None:
    match = SNAPSHOT_PATTERN.match(path.name)
    return int(match.group(1)) if match else None


def previous_good_snapshot(path: str | os.PathLike) -> Path | None:
    """The newest snapshot in ``path``'s folder older than ``path`` that loads and verifies
    (for a file that is not a snapshot, the newest good one of its folder), or None."""
    path = Path(path)
    if not path.parent.is_dir():
        return None
    number = _snapshot_number(path)
    for candidate in reversed(list_snapshots(path.parent)):
        if candidate.name == path.name or (number is not None
                                           and _snapshot_number(candidate) >= number):
            continue
        try:
            _load_verified(candidate)
        except (CheckpointError, OSError):
            continue
        return candidate
    return None


def _previous_good_hint(path: Path) -> str:
    previous = previous_good_snapshot(path)
    if previous is None:
        return f"No other good snapshot is in {path.parent}"
    return f"The previous good snapshot is {previous} (resume with --resume {previous})"


def _read_header(data: bytes) -> dict:
    """The ``__metadata__`` of a safetensors byte string (its JSON header)."""
    if len(data) < 8:
        raise ValueError("file too short")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError("header size exceeds file size")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__", {})
    return meta if isinstance(meta, dict) else {}


def list_snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """The snapshot files of a run directory, oldest first (temporary files excluded)."""
    run_dir = Path(run_dir)
    found = [p for p in run_dir.iterdir() if SNAPSHOT_PATTERN.match(p.name)]
    return sorted(found, key=lambda p: int(SNAPSHOT_PATTERN.match(p.name).group(1)))


def resolve_resume_path(path: str | os.PathLike) -> Path:
    """Turn a checkpoint argument (a checkpoint file or a run directory) into a file.

    For a directory, the newest snapshot in it that loads and verifies is returned; newer
    damaged ones are skipped with a warning naming them (a snapshot can only be damaged by
    something other than gankern, but one bad file should not make a whole run
    unresumable).
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path} (expected a checkpoint file "
                                "or a run directory)")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is neither a checkpoint file nor a run directory")
    snapshots = list_snapshots(path)
    if not snapshots:
        raise FileNotFoundError(f"no snapshot-*.safetensors in the run directory {path}")
    errors = []
    for candidate in reversed(snapshots):
        try:
            _load_verified(candidate)
        except CheckpointError as exc:
            errors.append(str(exc))
            continue
        if errors:
            warnings.warn(f"skipping {len(errors)} damaged snapshot(s) in {path} ({errors[0]}); "
                          f"using the previous good one, {candidate.name}", RuntimeWarning,
                          stacklevel=2)
        return candidate
    raise CheckpointError(f"no readable snapshot in {path}: " + "; ".join(errors))
