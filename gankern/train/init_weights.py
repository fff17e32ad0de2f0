"""Fine-tuning: a new run whose networks start from published weights (``--init FILE``).

The model family reads the file (:meth:`gankern.train.family.GANFamily.init_weights`: for
StyleGAN2, an official StyleGAN2-ADA / StyleGAN3-stylegan2 ``.pkl``, a rosinality ``.pt``
or a gankern snapshot, through loaders that never run code from the file) and says which
network architecture it holds; the run builds exactly that architecture (the overrides are
folded into ``opts.extra``, so checkpoints rebuild it without the file) with the
hyperparameters of ``--cfg``, and copies the weights in by name, every name and shape
checked. A resumed run ignores ``--init``: its checkpoint holds the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import nn

from gankern.models.convert_ada import load_state_by_name
from gankern.train.options import TrainingOptions


@dataclass
class InitWeights:
    """Published networks to start from.

    Attributes:
        path: the file they came from (for messages).
        networks: name (``"G"``, ``"D"``, ``"G_ema"``) -> the loaded network.
        extra: configuration overrides (``{"G": {...}, "D": {...}}``, as
            :attr:`TrainingOptions.extra`) that rebuild their architecture.
    """

    path: str
    networks: dict[str, nn.Module]
    extra: dict = field(default_factory=dict)


def merge_extra(opts: TrainingOptions, init: InitWeights) -> TrainingOptions:
    """``opts`` with the architecture of ``init`` folded into ``opts.extra``.

    An override of ``opts.extra`` that contradicts the file is an error (the weights would
    not fit).
    """
    extra = {key: dict(value) for key, value in opts.extra.items()}
    for key, overrides in init.extra.items():
        mine = extra.setdefault(key, {})
        for name, value in overrides.items():
            if name in mine and mine[name] != value:
                raise ValueError(
                    f"extra[{key!r}][{name!r}] = {mine[name]!r} contradicts --init "
                    f"{init.path}, whose networks have {value!r}"
                )
            mine[name] = value
    return dataclasses.replace(opts, extra=extra)


def copy_init_weights(networks: Mapping[str, nn.Module], init: InitWeights) -> list[str]:
    """Copy the published weights into a run's freshly built ``networks``.

    A moving average missing from the file starts as a copy of its network (and the reverse);
    a network the file does not hold at all (a rosinality file with only ``g_ema`` has no
    discriminator) keeps its fresh initialization. Returns the names of those networks.
    """
    fresh = []
    for name, net in networks.items():
        source = init.networks.get(name)
        if source is None and name.endswith("_ema"):
            source = init.networks.get(name[: -len("_ema")])
        if source is None:
            source = init.networks.get(f"{name}_ema")
        if source is None:
            fresh.append(name)
            continue
        load_state_by_name(net, source.state_dict(), f"--init {init.path} ({name})")
    return fresh
