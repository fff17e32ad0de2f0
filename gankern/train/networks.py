"""Networks rebuilt from a training checkpoint, for any model family.

A checkpoint records its model family (``options.model``), the configuration of each
network (``networks.<name>``) and the precision, so :func:`load_generator` rebuilds the
exact networks later (``gankern generate``, ``gankern metrics``, editing tools) from the
file alone, and loads their weights.
"""

from __future__ import annotations

import os

import torch

from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
from gankern.train.families import DEFAULT_MODEL, get_family
from gankern.train.precision import resolve_precision
from gankern.train.state_codec import decode_state

__all__ = ["checkpoint_model", "load_generator", "load_network", "resolve_precision"]


def checkpoint_model(meta: dict) -> str:
    """The model family a checkpoint was trained as (StyleGAN2 for older checkpoints)."""
    networks = meta.get("networks") or {}
    options = meta.get("options") or {}
    return networks.get("model") or options.get("model") or DEFAULT_MODEL


def load_network(meta: dict, tensors: dict, which: str, impl: str = "auto",
                 device: str | torch.device = "cpu"):
    """Network ``which`` (``"G_ema"``, ``"G"``, ``"D"``, ...) of a loaded checkpoint, in eval
    mode with gradients disabled.

    A moving average (``"<name>_ema"``) is rebuilt from the config of ``<name>``; a model
    trained without one (``ema_kimg=0``) gives its network itself for ``"<name>_ema"``.
    """
    family = get_family(checkpoint_model(meta))
    states = meta.get("states") or {}
    net_meta = meta.get("networks")
    if which.endswith("_ema") and which not in states:
        which = which[: -len("_ema")]
    key = which[: -len("_ema")] if which.endswith("_ema") else which
    if not isinstance(net_meta, dict) or key not in net_meta or which not in states:
        raise ValueError(f"the checkpoint has no network {which!r} (it has "
                         f"{sorted(k for k in states if k in net_meta or k.endswith('_ema'))})")
    config = family.config_from_metadata(key, net_meta[key])
    net = family.build_network(key, config, net_meta.get("precision", "fp32"), impl)
    net.load_state_dict(decode_state(states[which], tensors))
    net = net.to(device).eval().requires_grad_(False)
    net.checkpoint_metadata = {k: v for k, v in meta.items() if k not in ("states", "rng")}
    return net


def load_generator(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    which: str = "G_ema",
    impl: str = "auto",
):
    """Rebuild a generator from a training checkpoint (or a run directory's newest one).

    Args:
        path: a ``snapshot-*.safetensors`` file, or a run directory.
        device: where to put it.
        which: ``"G_ema"`` (the moving average, what to sample from; the generator itself
            for models trained without one) or ``"G"``.
        impl: backend of the ops.

    Returns:
        The generator in eval mode with gradients disabled; its checkpoint metadata is in
        ``G.checkpoint_metadata`` (options, counters).
    """
    if which not in ("G_ema", "G"):
        raise ValueError(f"which must be 'G_ema' or 'G', got {which!r}")
    tensors, meta = load_checkpoint(resolve_resume_path(path))
    net_meta = meta.get("networks")
    if not isinstance(net_meta, dict) or "G" not in net_meta:
        raise ValueError(f"{path}: the checkpoint does not describe its generator")
    return load_network(meta, tensors, which, impl=impl, device=device)
