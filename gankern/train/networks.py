"""Networks of a run: built from the options and the dataset, or rebuilt from a checkpoint.

:func:`resolve_config` turns ``--cfg`` plus the dataset's shape into a
:class:`~gankern.models.stylegan2_configs.StyleGAN2Config` with the precision and the
``extra`` overrides applied; its generator and discriminator configurations are saved in
every checkpoint, so :func:`load_generator` can rebuild the exact networks later
(``gankern generate``, metrics) from the file alone.
"""

from __future__ import annotations

import dataclasses
import os

import torch

from gankern.models.stylegan2_configs import (
    DiscriminatorConfig,
    GeneratorConfig,
    StyleGAN2Config,
    get_config,
)
from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
from gankern.train.options import TrainingOptions
from gankern.train.state_codec import decode_state


def config_name(opts: TrainingOptions) -> str:
    """``opts.cfg``, or its default: ``digits`` on the built-in digits, else ``auto``."""
    if opts.cfg is not None:
        return opts.cfg
    return "digits" if opts.data == "builtin:digits" else "auto"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> fp16 on CUDA, fp32 elsewhere; other values unchanged."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


def _apply_overrides(config, overrides: dict, what: str):
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"extra[{what!r}] has unknown fields {unknown}; known: {sorted(names)}")
    return dataclasses.replace(config, **overrides)


def resolve_config(
    opts: TrainingOptions,
    resolution: int,
    img_channels: int,
    c_dim: int,
    world_size: int,
    device: torch.device,
) -> StyleGAN2Config:
    """The network configuration of a run.

    Precision: ``fp32`` runs every block in float32 without clamping (as StyleGAN2-ADA's
    ``--fp32``); ``fp16`` keeps the configuration's half-precision blocks (float16, which
    only runs on GPUs: on a CPU those blocks stay float32); ``bf16`` runs the same blocks in
    bfloat16 (also on CPUs). ``opts.extra`` may hold ``{"G": {...}, "D": {...}}`` field
    overrides of the generator and discriminator configurations.
    """
    cfg = get_config(config_name(opts), resolution=resolution, img_channels=img_channels,
                     c_dim=c_dim, gpus=world_size)
    extra = dict(opts.extra)
    unknown = sorted(set(extra) - {"G", "D"})
    if unknown:
        raise ValueError(f"extra may only hold 'G' and 'D' overrides, got {unknown}")
    G = _apply_overrides(cfg.G, extra.get("G", {}), "G")
    D = _apply_overrides(cfg.D, extra.get("D", {}), "D")
    if resolve_precision(opts.precision, device) == "fp32":
        G = dataclasses.replace(G, num_fp16_res=0, conv_clamp=None)
        D = dataclasses.replace(D, num_fp16_res=0, conv_clamp=None)
    return cfg.replace(G=G, D=D)


def half_dtype_for(precision: str) -> str:
    """The ``half_dtype`` of the networks' half-precision blocks for a precision option."""
    return "bfloat16" if precision == "bf16" else "float16"


def build_networks(config: StyleGAN2Config, precision: str, impl: str, device: torch.device,
                   channels_last: bool = False):
    """Fresh ``(G, D)`` on ``device``, in training mode, from the configuration.

    The caller seeds the global RNG first (initialization draws from it).
    """
    G = config.G.build(impl=impl).set_half_dtype(half_dtype_for(precision))
    D = config.D.build(impl=impl).set_half_dtype(half_dtype_for(precision))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    G = G.to(device=device, memory_format=memory_format).train()
    D = D.to(device=device, memory_format=memory_format).train()
    return G, D


def config_metadata(config: StyleGAN2Config, precision: str) -> dict:
    """What a checkpoint records about its networks (JSON-able)."""
    return {
        "cfg": config.name,
        "G": dataclasses.asdict(config.G),
        "D": dataclasses.asdict(config.D),
        "precision": precision,
    }


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
        which: ``"G_ema"`` (the moving average, what to sample from) or ``"G"``.
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
    G = GeneratorConfig(**net_meta["G"]).build(impl=impl)
    G.set_half_dtype(half_dtype_for(net_meta.get("precision", "fp32")))
    state = decode_state(meta["states"][which], tensors)
    G.load_state_dict(state)
    G = G.to(device).eval().requires_grad_(False)
    G.checkpoint_metadata = {k: v for k, v in meta.items() if k not in ("states", "rng")}
    return G


def discriminator_config_from(meta: dict) -> DiscriminatorConfig:
    """The discriminator configuration recorded in a checkpoint's metadata."""
    return DiscriminatorConfig(**meta["networks"]["D"])
