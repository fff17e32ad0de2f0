"""What the classic families share: named configurations as a table, the papers' recorded
hyperparameters turned into the trainer's defaults, and ``extra`` network overrides.

A family lists its configurations as :class:`ConfigEntry` rows (a function making the
``(G config, D config)`` pair for the data, and the recommended :class:`Hyperparameters`);
the networks come from :mod:`gankern.models`, the objective from
:class:`gankern.train.adversarial.NoiseToImageFamily`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from gankern.models.hyperparams import GANHyperparams
from gankern.train.adversarial import NoiseToImageFamily
from gankern.train.family import DataInfo, Hyperparameters, NetworkConfig

# Loss names of gankern.models.hyperparams -> gankern.train.losses.
_LOSS_NAMES = {"least_squares": "lsgan"}


@dataclass(frozen=True)
class ConfigEntry:
    """One named configuration: ``networks(data, options) -> {"G": cfg, "D": cfg}`` and the
    recommended hyperparameters (``recommended(data, options)`` when they depend on the data
    or the family's options)."""

    networks: Callable[[DataInfo, Any], Mapping[str, Any]]
    recommended: Hyperparameters | Callable[[DataInfo, Any], Hyperparameters]
    description: str = ""


def from_paper(hp: GANHyperparams, total_kimg: float, **overrides) -> Hyperparameters:
    """A paper's recorded settings (:class:`gankern.models.hyperparams.GANHyperparams`) as
    the trainer's defaults, for a run of ``total_kimg`` thousand real images.

    The paper's total number of G steps, when recorded, sets the linear decay's start as a
    fraction of training; what the trainer cannot express (an exponential decay, momentum
    ramps) is left to the paper's notes.
    """
    decay_start = 0.0
    if hp.lr_schedule == "linear" and hp.total_g_steps:
        decay_start = hp.lr_decay_start / hp.total_g_steps
    if hp.betas is not None:
        betas = tuple(hp.betas)
    elif hp.optimizer == "rmsprop":
        betas = (0.0, 0.99)  # torch's default smoothing constant
    else:
        betas = (hp.momentum or 0.0, 0.999)
    values = dict(
        batch=hp.batch, glr=hp.lr_g, dlr=hp.lr_d, total_kimg=total_kimg,
        optimizer=hp.optimizer, betas=betas, loss=_LOSS_NAMES.get(hp.loss, hp.loss),
        n_critic=hp.n_critic, clip=hp.weight_clip,
        d_reg="gp" if hp.gp_weight > 0 else "none", gamma=hp.gp_weight,
        lr_schedule="linear" if hp.lr_schedule == "linear" else "constant",
        lr_decay_start=decay_start,
    )  # fmt: skip
    values.update(overrides)
    return Hyperparameters(**values)


def ema_kimg_from_decay(decay: float, images_per_update: float) -> float:
    """The EMA half-life in thousands of images (the trainer's ``ema_kimg``) of a moving
    average that decays by ``decay`` every ``images_per_update`` images (a paper's per-step
    decay such as BigGAN's 0.9999 per iteration or ProGAN's 0.999 per minibatch):
    ``decay ** (n / images_per_update) = 0.5`` at ``n = ema_kimg * 1000``."""
    if not 0 < decay < 1:
        raise ValueError(f"decay must be in (0, 1), got {decay}")
    if not images_per_update > 0:
        raise ValueError(f"images_per_update must be > 0, got {images_per_update}")
    return images_per_update * math.log(0.5) / math.log(decay) / 1000


def apply_overrides(configs: Mapping[str, Any], extra: Mapping) -> dict:
    """``configs`` with ``extra = {"G": {field: value}, "D": {...}}`` applied."""
    unknown = sorted(set(extra) - set(configs))
    if unknown:
        raise ValueError(f"extra may only hold overrides of {sorted(configs)}, got {unknown}")
    out = {}
    for key, cfg in configs.items():
        overrides = dict(extra.get(key, {}))
        names = {f.name for f in dataclasses.fields(cfg)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise ValueError(f"extra[{key!r}] has unknown fields {bad}; known: {sorted(names)}")
        out[key] = dataclasses.replace(cfg, **overrides) if overrides else cfg
    return out


class ConfiguredFamily(NoiseToImageFamily):
    """A noise-to-image family with a table of named configurations (see the module).

    Class attributes: ``configs`` (name -> :class:`ConfigEntry`), ``digits_config`` (the
    default on the built-in digits), ``default_config`` (elsewhere), ``config_classes``
    (network name -> config dataclass, to rebuild networks from checkpoints).
    """

    configs: ClassVar[Mapping[str, ConfigEntry]] = {}
    digits_config: ClassVar[str] = "digits"
    default_config: ClassVar[str] = ""
    config_classes: ClassVar[Mapping[str, type]] = {}

    @classmethod
    def config_names(cls) -> tuple[str, ...]:
        return tuple(cls.configs)

    @classmethod
    def default_config_name(cls, data: str) -> str:
        return cls.digits_config if data.startswith("builtin:") else cls.default_config

    def network_config(self, cfg: str, data: DataInfo, world_size: int, precision: str,
                       extra: Mapping) -> NetworkConfig:
        entry = self.configs[cfg]
        configs = apply_overrides(entry.networks(data, self.options), extra)
        recommended = entry.recommended
        if callable(recommended):
            recommended = recommended(data, self.options)
        return NetworkConfig(name=cfg, configs=configs, recommended=recommended,
                             description=entry.description)

    @classmethod
    def config_from_metadata(cls, key: str, values: Mapping):
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls.config_classes[key](**values)
