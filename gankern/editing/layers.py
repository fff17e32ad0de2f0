"""The latents and styles of a style-based generator, as the editing tools see them.

Everything here works on any generator with StyleGAN2-ADA's API (``G.mapping(z, c,
truncation_psi=...)`` -> ws ``[N, G.num_ws, G.w_dim]``, ``G.synthesis(ws, noise_mode=...)``)
whose synthesis layers turn a w into their styles with a linear submodule named ``affine``:
StyleGAN2's modulated convolutions and ToRGB layers, StyleGAN v1's AdaIN. Which w each
``affine`` reads is not assumed from the architecture but measured (:func:`style_layers`):
the synthesis network runs once on ws whose rows all differ, and each affine layer's input
is matched to the row it came from.

The style space ("S", Wu et al. 2021) is the concatenation of all affine outputs, in the
order of :func:`style_layers`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

__all__ = [
    "StyleLayer",
    "check_style_based",
    "embed_in_style_space",
    "generator_device",
    "labels_for",
    "render_kwargs",
    "sample_ws",
    "select_style_layers",
    "style_layers",
    "style_offsets",
    "styles_from_ws",
    "ws_for_seeds",
]


@dataclass(frozen=True)
class StyleLayer:
    """One affine layer of the synthesis network.

    Attributes:
        name: its module path inside ``G.synthesis`` (``"b8.conv0.affine"``).
        channels: how many style channels it produces.
        ws_index: which row of ws (``ws[:, ws_index]``) it reads.
    """

    name: str
    channels: int
    ws_index: int


def check_style_based(G) -> None:
    """``TypeError`` unless ``G`` has StyleGAN2-ADA's style-based API."""
    missing = [a for a in ("mapping", "synthesis", "num_ws", "w_dim", "z_dim", "c_dim")
               if not hasattr(G, a)]
    if not isinstance(G, nn.Module) or missing:
        raise TypeError(
            f"G must be a style-based generator with StyleGAN2-ADA's API (G.mapping, "
            f"G.synthesis, G.num_ws, G.w_dim), got {type(G).__name__}"
            + (f" without {', '.join(missing)}" if missing else "")
        )


def generator_device(G) -> torch.device:
    """The device of ``G``'s parameters."""
    return next(G.parameters()).device


def _affine_modules(G) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in G.synthesis.named_modules()
            if name.rsplit(".", 1)[-1] == "affine"]


@torch.no_grad()
def style_layers(G) -> list[StyleLayer]:
    """The affine layers of ``G.synthesis`` that its forward pass uses, in call order, with
    their channel counts and the row of ws each one reads (measured, see the module doc).

    Raises ``ValueError`` when the synthesis network has no ``affine`` layers.
    """
    check_style_based(G)
    modules = _affine_modules(G)
    if not modules:
        raise ValueError(
            f"{type(G).__name__}.synthesis has no style layers (no submodules named "
            "'affine'): style-space editing needs a style-based generator"
        )
    device = generator_device(G)
    probe = torch.randn([1, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(0))
    probe = probe.to(device)
    seen: dict[str, list] = {name: [] for name, _ in modules}
    hooks = [m.register_forward_hook(lambda m, inp, out, name=name: seen[name].append(
        (inp[0].detach().float(), out.shape[-1]))) for name, m in modules]
    try:
        G.synthesis(probe, noise_mode="const")
    finally:
        for h in hooks:
            h.remove()
    layers = []
    rows = probe[0].float()
    for name, _ in modules:
        if not seen[name]:
            continue  # not part of the image (e.g. an unused branch)
        if len(seen[name]) != 1:
            raise ValueError(f"style layer {name!r} ran {len(seen[name])} times in one "
                             "synthesis pass; cannot tell which w it reads")
        w, channels = seen[name][0]
        error = (rows - w.reshape(1, -1)).norm(dim=1) / rows.norm(dim=1)
        index = int(error.argmin())
        if float(error[index]) > 1e-3:
            raise ValueError(f"style layer {name!r} does not read a row of ws as it is")
        layers.append(StyleLayer(name, int(channels), index))
    return layers


def _layer_modules(G, layers) -> list[tuple[StyleLayer, nn.Module]]:
    modules = dict(G.synthesis.named_modules())
    return [(layer, modules[layer.name]) for layer in layers]


def styles_from_ws(G, ws: torch.Tensor, layers: list[StyleLayer] | None = None) -> torch.Tensor:
    """The style-space coordinates ``[N, sum of channels]`` of ws ``[N, num_ws, w_dim]``: the
    outputs of the affine layers (``layers``, default all of :func:`style_layers`),
    concatenated in that order."""
    layers = style_layers(G) if layers is None else layers
    return torch.cat([m(ws[:, layer.ws_index]) for layer, m in _layer_modules(G, layers)], 1)


@contextlib.contextmanager
def style_offsets(G, offsets: dict[str, torch.Tensor]):
    """Inside the ``with`` block, ``offsets[name]`` is added to the output of the affine layer
    ``name`` (``[C]`` for every sample, or ``[N, C]`` per sample) whenever it runs."""
    modules = dict(G.synthesis.named_modules())
    unknown = sorted(set(offsets) - set(modules))
    if unknown:
        raise ValueError(f"offsets names unknown style layers {unknown[:3]}")

    def add(offset):
        return lambda module, inp, out: out + offset.to(out.dtype)

    hooks = [modules[name].register_forward_hook(add(offset)) for name, offset in offsets.items()]
    try:
        yield
    finally:
        for h in hooks:
            h.remove()


def labels_for(G, n: int, class_idx: int | None = None, seed: int = 0) -> torch.Tensor:
    """Labels ``[n, c_dim]``: one-hot ``class_idx``; random classes for a conditional model
    without one; an empty ``[n, 0]`` for an unconditional model (``class_idx`` must be None)."""
    c = torch.zeros([n, G.c_dim], device=generator_device(G))
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError(f"class_idx must be None for an unconditional model, got {class_idx}")
        return c
    if class_idx is None:
        classes = torch.randint(G.c_dim, [n], generator=torch.Generator().manual_seed(seed))
    else:
        if not 0 <= class_idx < G.c_dim:
            raise ValueError(f"class_idx must be in [0, {G.c_dim - 1}], got {class_idx}")
        classes = torch.full([n], class_idx)
    c[torch.arange(n), classes.to(c.device)] = 1
    return c


@torch.no_grad()
def sample_ws(G, num: int, seed: int = 0, class_idx: int | None = None,
              truncation_psi: float = 1.0, batch_size: int = 1024) -> torch.Tensor:
    """ws ``[num, num_ws, w_dim]`` of ``num`` random latents (a ``torch.Generator`` seeded
    with ``seed``), on ``G``'s device."""
    check_style_based(G)
    device = generator_device(G)
    z = torch.randn([num, G.z_dim], generator=torch.Generator().manual_seed(seed)).to(device)
    c = labels_for(G, num, class_idx, seed)
    return torch.cat([G.mapping(z[i : i + batch_size], c[i : i + batch_size],
                                truncation_psi=truncation_psi)
                      for i in range(0, num, batch_size)])


@torch.no_grad()
def ws_for_seeds(G, seeds, class_idx: int | None = None,
                 truncation_psi: float = 1.0) -> torch.Tensor:
    """ws ``[len(seeds), num_ws, w_dim]`` of the images ``gankern generate --seeds`` draws:
    z of seed s is ``np.random.RandomState(s).randn(z_dim)``."""
    check_style_based(G)
    device = generator_device(G)
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])
    z = torch.from_numpy(z).float().to(device)
    c = labels_for(G, len(seeds), class_idx)
    return G.mapping(z, c, truncation_psi=truncation_psi)


def select_style_layers(G, names=None) -> list[StyleLayer]:
    """The style layers named in ``names`` (None: all), in the order of :func:`style_layers`;
    ``ValueError`` naming the unknown ones and listing the available."""
    layers = style_layers(G)
    if names is None:
        return layers
    if isinstance(names, str):
        names = [names]
    available = [layer.name for layer in layers]
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise ValueError(f"unknown style layers {unknown or names!r}; this generator has "
                         f"{', '.join(available)}")
    return [layer for layer in layers if layer.name in set(names)]


def embed_in_style_space(G, values: torch.Tensor, layers: list[StyleLayer]) -> torch.Tensor:
    """Rows ``[K, sum of the channels of layers]`` placed in the whole style space of ``G``
    (``[K, total channels]``, zeros in the other layers)."""
    out = values.new_zeros([values.shape[0], sum(l.channels for l in style_layers(G))])
    positions, start = {}, 0
    for layer in style_layers(G):
        positions[layer.name] = start
        start += layer.channels
    src = 0
    for layer in layers:
        out[:, positions[layer.name] : positions[layer.name] + layer.channels] = \
            values[:, src : src + layer.channels]
        src += layer.channels
    return out


def render_kwargs(G) -> dict:
    """Keyword arguments of ``G.synthesis`` for rendering batches: constant noise, plus the
    model family's sampling settings when ``G`` was loaded from a checkpoint (StyleGAN2:
    the shared-weight modulated convolution, faster for batches; same images)."""
    kwargs = {}
    meta = getattr(G, "checkpoint_metadata", None)
    if isinstance(meta, dict):
        from gankern.train.families import get_family
        from gankern.train.networks import checkpoint_model

        kwargs.update(get_family(checkpoint_model(meta)).sampling_kwargs)
    kwargs.setdefault("noise_mode", "const")
    return kwargs
