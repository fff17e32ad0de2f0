"""Convert official StyleGAN2-ADA / StyleGAN3 (stylegan2 networks) pickles into gankern models.

gankern's :class:`~gankern.models.stylegan2.Generator` and
:class:`~gankern.models.stylegan2.Discriminator` take the same constructor arguments and use
the same module and parameter names as StyleGAN2-ADA's ``training/networks.py`` (and
StyleGAN3's ``training/networks_stylegan2.py``), so a conversion is: read the pickle without
running it (:mod:`gankern.models.safe_pickle`), rebuild the network from its recorded
constructor arguments with the defaults of the code base that wrote it, check the pickled
layer attributes against the rebuilt layers, and copy every parameter and buffer by name.
"""

from __future__ import annotations

import numbers
import os
from typing import BinaryIO

import torch
from torch import nn

from gankern.models.safe_pickle import PickledModule, read_network_pickle
from gankern.models.stylegan2 import Discriminator, Generator

# Where the two code bases differ in constructor defaults (the pickles record only the
# arguments that were passed).
_SG3_SYNTHESIS_DEFAULTS = {"num_fp16_res": 4, "conv_clamp": 256}
_SG3_MAPPING_DEFAULTS = {"w_avg_beta": 0.998}
_SG3_DISCRIMINATOR_DEFAULTS = {"num_fp16_res": 4, "conv_clamp": 256}
# Constructor arguments that only select an equivalent code path.
_IGNORED_KWARGS = {"fused_modconv_default"}
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")

# Layer attributes compared between the pickle and the rebuilt network.
_CHECKED_ATTRIBUTES = (
    "activation", "architecture", "conv_clamp", "up", "down", "padding", "use_noise",
    "use_fp16", "resolution", "in_channels", "img_channels", "num_ws", "w_avg_beta",
    "group_size", "num_channels", "cmap_dim", "z_dim", "c_dim", "w_dim", "is_last",
    "weight_gain", "bias_gain", "act_gain",
)  # fmt: skip


def source_flavor(module: PickledModule) -> str:
    """``"stylegan2-ada"`` or ``"stylegan3"`` (its stylegan2 networks), from the pickled source.

    Raises ValueError for StyleGAN3's alias-free networks, which gankern does not implement.
    """
    src = module.module_src
    if "class SynthesisInput" in src or "filtered_lrelu" in src:
        raise ValueError(
            "this pickle holds StyleGAN3 (alias-free, config t/r) networks; gankern converts "
            "StyleGAN2 networks only (StyleGAN2-ADA pickles, or StyleGAN3 pickles trained "
            "with --cfg=stylegan2)"
        )
    return "stylegan3" if "update_emas" in src else "stylegan2-ada"


def _plain(value):
    """EasyDicts and numpy scalars -> plain Python containers and numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def _positional(module: PickledModule, names: tuple[str, ...]) -> dict:
    """The recorded positional constructor arguments, by name."""
    args = _plain(module.init_args)
    if len(args) > len(names):
        raise ValueError(
            f"the pickled {module.class_name} has {len(args)} positional constructor "
            f"arguments, expected at most {len(names)}"
        )
    return dict(zip(names[: len(args)], args, strict=True))


def generator_kwargs(module: PickledModule) -> dict:
    """Constructor arguments of gankern's Generator for a pickled ``Generator``."""
    kwargs = {**_positional(module, _GENERATOR_ARGS), **_plain(module.init_kwargs)}
    mapping = dict(kwargs.pop("mapping_kwargs", None) or {})
    if source_flavor(module) == "stylegan3":
        # StyleGAN3 passes the synthesis arguments flat, with other defaults.
        synthesis = {k: kwargs.pop(k) for k in list(kwargs) if k not in _GENERATOR_ARGS}
        synthesis = {**_SG3_SYNTHESIS_DEFAULTS, **synthesis}
        mapping = {**_SG3_MAPPING_DEFAULTS, **mapping}
    else:
        synthesis = dict(kwargs.pop("synthesis_kwargs", None) or {})
    synthesis = {k: v for k, v in synthesis.items() if k not in _IGNORED_KWARGS}
    return dict(kwargs, mapping_kwargs=mapping, synthesis_kwargs=synthesis)


def discriminator_kwargs(module: PickledModule) -> dict:
    """Constructor arguments of gankern's Discriminator for a pickled ``Discriminator``."""
    names = ("c_dim", "img_resolution", "img_channels")
    kwargs = {**_positional(module, names), **_plain(module.init_kwargs)}
    if source_flavor(module) == "stylegan3":
        kwargs = {**_SG3_DISCRIMINATOR_DEFAULTS, **kwargs}
    return kwargs


def _same(a, b) -> bool:
    if isinstance(a, numbers.Number) and isinstance(b, numbers.Number):
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(a)))
    return a == b


def _check_attributes(source: PickledModule, model: nn.Module) -> None:
    modules = dict(model.named_modules())
    for path, pickled in source.named_modules():
        ours = modules.get(path)
        if ours is None:
            raise ValueError(f"the pickle has a module {path!r} ({pickled.class_name}) that the "
                             "rebuilt network lacks")  # fmt: skip
        for name in _CHECKED_ATTRIBUTES:
            if name in pickled.attributes and hasattr(ours, name):
                want, got = _plain(pickled.attributes[name]), getattr(ours, name)
                if not _same(want, got):
                    raise ValueError(
                        f"{path or 'network'}.{name}: the pickle has {want!r}, the network "
                        f"rebuilt from its constructor arguments has {got!r}"
                    )


def load_state_by_name(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``model`` by name, checking names and shapes both ways.

    Buffers that gankern derives from the configuration (``resample_filter``, not saved in its
    state dicts) are compared with the rebuilt ones instead of copied.
    """
    own = model.state_dict()
    derived = dict(model.named_buffers())
    state = dict(state)
    for name in [k for k in state if k not in own and k in derived]:
        if not torch.allclose(state[name].float(), derived[name].float(), atol=1e-6):
            raise ValueError(f"{source}: {name} differs from the configured filter")
        del state[name]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{source} does not match the rebuilt network: missing {missing[:8]}"
            f"{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
            f"{'...' if len(unexpected) > 8 else ''}"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise ValueError(
                f"{source}: {name} has shape {tuple(tensor.shape)}, the rebuilt network expects "
                f"{tuple(own[name].shape)}"
            )
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def convert_pickled_network(module: PickledModule, impl: str = "auto") -> nn.Module:
    """Build the gankern Generator or Discriminator equal to a pickled one.

    Args:
        module: a ``Generator`` or ``Discriminator`` record from :func:`read_network_pickle`.
        impl: backend of the returned network's ops.

    Returns:
        The network in eval mode, on the CPU, with the pickled parameters and buffers.
    """
    if not isinstance(module, PickledModule):
        raise TypeError(f"module must be a PickledModule, got {type(module).__name__}")
    if module.class_name == "Generator":
        kwargs, cls = generator_kwargs(module), Generator
    elif module.class_name == "Discriminator":
        kwargs, cls = discriminator_kwargs(module), Discriminator
    else:
        raise ValueError(
            f"can convert Generator and Discriminator networks, got {module.class_name!r}"
        )
    try:
        model = cls(**kwargs, impl=impl)
    except TypeError as exc:
        raise ValueError(
            f"the pickled {module.class_name} has constructor arguments gankern does not "
            f"support: {kwargs} ({exc})"
        ) from exc
    _check_attributes(module, model)
    load_state_by_name(model, module.state_dict(), f"pickled {module.class_name}")
    return model.eval()


def load_stylegan2_pkl(
    file: str | os.PathLike | BinaryIO, impl: str = "auto"
) -> dict[str, nn.Module]:
    """Load the networks of an official StyleGAN2-ADA / StyleGAN3 (stylegan2) ``.pkl``.

    The pickle is read without executing any of its code (see
    :mod:`gankern.models.safe_pickle` and docs/pretrained.md).

    Args:
        file: path or binary file object of e.g. ``ffhq.pkl`` or ``network-snapshot-*.pkl``.
        impl: backend of the returned networks' ops.

    Returns:
        ``{"G": ..., "D": ..., "G_ema": ...}`` for the networks the pickle holds (usually all
        three; ``G_ema`` is the one to sample from), each in eval mode on the CPU.
    """
    data = read_network_pickle(file)
    networks = {
        key: convert_pickled_network(data[key], impl=impl)
        for key in ("G", "D", "G_ema")
        if isinstance(data.get(key), PickledModule)
    }
    if not networks:
        raise ValueError(
            f"no G, D or G_ema network in this pickle (top-level keys: {sorted(map(str, data))})"
        )
    return networks
