"""Pretrained weights from local files: where gankern looks for them and how it loads them.

gankern never downloads weights. A weights file is found from an explicit path, else an
environment variable, else the cache directory (``$GANKERN_CACHE``, default
``~/.cache/gankern``), and loaded as a plain state dict without running pickled code. The
metrics (Inception, VGG16, LPIPS) and the models (VGG19 for SRGAN's content loss) share
this module, which imports nothing else from gankern so that any layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def cache_dir() -> Path:
    """The gankern cache directory: ``$GANKERN_CACHE``, else ``~/.cache/gankern`` (not created)."""
    root = os.environ.get("GANKERN_CACHE", "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "gankern"


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained weights file is not where gankern looked; the message says where to put it."""


def resolve_weights_path(
    weights: str | os.PathLike | None, *, env_var: str, filename: str, what: str, source: str,
    subdir: str = "metrics",
) -> Path:
    """Find a weights file: the ``weights`` argument, else ``$env_var``, else the cache.

    Args:
        weights: an explicit path (wins when given).
        env_var: environment variable holding a path.
        filename: the file's name inside ``<cache>/<subdir>/``.
        what: what the weights are, for the error message.
        source: where a user can get the file, for the error message.
        subdir: the cache subdirectory (``"metrics"`` for the metrics' extractors,
            ``"models"`` for networks the models use).
    """
    default = cache_dir() / subdir / filename
    if weights is not None:
        origin, path = "the weights argument", Path(weights).expanduser()
    elif os.environ.get(env_var, "").strip():
        origin, path = f"${env_var}", Path(os.environ[env_var].strip()).expanduser()
    else:
        origin, path = "the cache", default
    if path.is_file():
        return path
    raise WeightsNotFoundError(
        f"{what} not found: {path} (from {origin}) does not exist. gankern never downloads "
        f"weights. Get {filename} ({source}) and either put it at "
        f"{default}, or set {env_var}=/path/to/{filename}, or pass "
        f"its path as the weights argument (--weights on the command line)."
    )


def describe_torch_load_error(exc: Exception) -> str:
    """Why ``torch.load`` failed, in words (for a file that is not a torch.save file at all it
    raises ``KeyError(174812789)``, ``struct.error`` or a bare ``EOFError``)."""
    import pickle
    import struct

    if isinstance(exc, (KeyError, EOFError, struct.error, pickle.UnpicklingError)):
        return "its contents do not start like a torch.save file (empty, cut off or other)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_state_dict_strict(
    module: nn.Module, path: Path, what: str, ignore: tuple[str, ...] = ()
) -> None:
    """Load a plain state dict saved with ``torch.save`` (``weights_only``: no pickled code).

    Every parameter and buffer must be present with its exact shape (BatchNorm's
    ``num_batches_tracked`` counters are optional); anything else is an error naming the
    offending keys. Keys of the file starting with a prefix in ``ignore`` are skipped.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{what}: {path} is not a readable torch weights file (a state dict "
                         f"saved with torch.save): {describe_torch_load_error(exc)}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{what}: {path} must hold a state dict, got {type(state).__name__}")
    skip = "num_batches_tracked"
    state = {k: v for k, v in state.items()
             if not k.endswith(skip) and not k.startswith(tuple(ignore))}
    expected = {k: v for k, v in module.state_dict().items() if not k.endswith(skip)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                shown = ", ".join(items[:5]) + more
                parts.append(f"{label} {len(items)}: {shown}")
        raise ValueError(f"{what}: {path} does not match the network; " + "; ".join(parts))
    module.load_state_dict(state, strict=False)
