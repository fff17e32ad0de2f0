"""StyleSpace (Wu et al. 2021): single style channels that control an attribute.

The style space S is the concatenation of every affine layer's output (the per-channel
modulations). For each channel of the chosen layers, the styles of ``num_samples`` random
images are moved by ``+-perturbation`` standard deviations of that channel (the rest left
alone), the images rendered and scored by the attribute; the channel's effect is the mean
score change per standard deviation, ``(A(s + p sigma e_c) - A(s - p sigma e_c)) / 2p``.
The channels with the largest effects are the attribute's controls; editing them moves
each by ``strength`` of its standard deviations, in the sign of its effect.

Measuring every channel costs ``2 * num_samples`` renders per channel (a 1024 px StyleGAN2
has about 9000). With ``candidates=K`` a first pass ranks all channels by the gradient of
the attribute with respect to the styles (times each channel's standard deviation,
averaged over the samples: one backward pass) and only the ``K`` strongest are measured;
this needs a differentiable attribute (the built-in ones are).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch

from gankern.editing.attributes import attribute_name, resolve_attribute
from gankern.editing.components import check_count
from gankern.editing.directions import Direction, network_signature
from gankern.editing.layers import (
    check_style_based,
    generator_device,
    render_kwargs,
    sample_ws,
    select_style_layers,
    style_layers,
    style_offsets,
    styles_from_ws,
)

__all__ = ["StyleChannels", "stylespace"]


@dataclass
class StyleChannels:
    """The measured effect of each style channel on an attribute.

    Attributes:
        effects: ``[S]`` over the whole style space: mean attribute change per standard
            deviation of the channel (0 where not measured).
        measured: ``[S]`` bool, the channels measured (of the chosen layers; only the
            candidates when screened).
        stds: ``[S]`` standard deviation of each channel over random latents.
        network: the generator's :func:`network_signature`.
        attribute: the attribute's name.
        info: the settings of the measurement.
    """

    effects: torch.Tensor
    measured: torch.Tensor
    stds: torch.Tensor
    network: dict
    attribute: str
    info: dict = field(default_factory=dict)

    def ranking(self) -> torch.Tensor:
        """Indices (into S) of the measured channels, largest ``|effect|`` first."""
        idx = torch.nonzero(self.measured).flatten()
        return idx[torch.argsort(self.effects[idx].abs(), descending=True, stable=True)]

    def channel(self, index: int) -> tuple[str, int]:
        """``(layer name, channel within the layer)`` of style-space index ``index``."""
        start = 0
        for name, channels, _ in self.network["style_layers"]:
            if index < start + channels:
                return name, index - start
            start += channels
        raise ValueError(f"index must be in [0, {start - 1}], got {index}")

    def top(self, k: int = 10) -> list[tuple[str, int, float]]:
        """The ``k`` strongest channels: ``(layer, channel, effect)``."""
        return [(*self.channel(int(i)), float(self.effects[i])) for i in self.ranking()[:k]]

    def direction(self, top_k: int = 1, channels=None) -> Direction:
        """A style-space :class:`Direction` moving the ``top_k`` strongest channels (or the
        style-space indices ``channels``) each by one of its standard deviations per unit of
        strength, in the direction that raises the attribute."""
        if channels is None:
            ranking = self.ranking()
            top_k = check_count("top_k", top_k, 1)
            if top_k > len(ranking):
                raise ValueError(f"top_k must be <= {len(ranking)} (the measured channels), "
                                 f"got {top_k}")
            channels = ranking[:top_k].tolist()
        size = self.effects.numel()
        if (not channels or any(isinstance(c, bool) or not isinstance(c, numbers.Integral)
                                or not 0 <= c < size for c in channels)):
            raise ValueError(f"channels must be style-space indices in [0, {size - 1}], "
                             f"got {channels!r}")
        vector = torch.zeros(size)
        for c in channels:
            sign = 1.0 if float(self.effects[c]) >= 0 else -1.0
            vector[c] = sign * float(self.stds[c])
        layers = tuple(dict.fromkeys(self.channel(int(c))[0] for c in channels))
        info = dict(self.info, attribute=self.attribute,
                    channels=[[*self.channel(int(c)), float(self.effects[c])] for c in channels])
        return Direction(vector=vector, space="style", layers=layers, scale=1.0,
                         method="stylespace", network=self.network, info=info)


@torch.no_grad()
def stylespace(G, attribute, num_samples: int = 16, layers=None, perturbation: float = 2.0,
               candidates: int | None = None, class_idx: int | None = None,
               truncation_psi: float = 1.0, seed: int = 0, stats_samples: int = 1000,
               batch_size: int = 256) -> StyleChannels:
    """Measure how much each style channel of ``layers`` moves ``attribute``.

    Args:
        G: a style-based generator (StyleGAN2-ADA's API).
        attribute: an attribute name (see :mod:`gankern.editing.attributes`) or a callable
            ``f(images) -> [N]``.
        num_samples: images each channel is tried on (the cost is ``2 * num_samples``
            renders per channel).
        layers: names of the style layers to search (None: all).
        perturbation: how far each channel is moved, in its standard deviations.
        candidates: measure only the this many channels with the largest gradient
            estimate (None: measure every channel of ``layers``).
        class_idx: class of a conditional model (None: random classes).
        truncation_psi: truncation of the samples.
        seed: seed of the samples (the statistics use ``seed + 1``).
        stats_samples: random latents for the channels' standard deviations.
        batch_size: images rendered at a time.

    Returns:
        :class:`StyleChannels`; ``.top(k)`` lists the strongest, ``.direction(top_k)``
        makes an edit of them.
    """
    check_style_based(G)
    num_samples = check_count("num_samples", num_samples, 1)
    stats_samples = check_count("stats_samples", stats_samples, 2)
    perturbation = float(perturbation)
    if not perturbation > 0:
        raise ValueError(f"perturbation must be > 0, got {perturbation}")
    attr = resolve_attribute(attribute, generator_device(G))
    all_layers = style_layers(G)
    chosen = {layer.name for layer in select_style_layers(G, layers)}
    stats_ws = sample_ws(G, stats_samples, seed=seed + 1, class_idx=class_idx,
                         truncation_psi=truncation_psi)
    stds = styles_from_ws(G, stats_ws, all_layers).std(dim=0).cpu()
    ws = sample_ws(G, num_samples, seed=seed, class_idx=class_idx,
                   truncation_psi=truncation_psi)
    chosen_mask = torch.cat([torch.full([layer.channels], layer.name in chosen)
                             for layer in all_layers])
    if candidates is not None:
        candidates = check_count("candidates", candidates, 1)
        estimate = _gradient_effects(G, attr, ws, all_layers) * stds
        estimate[~chosen_mask] = 0
        order = torch.argsort(estimate.abs(), descending=True, stable=True)
        chosen_mask = torch.zeros_like(chosen_mask)
        chosen_mask[order[: min(candidates, int(chosen_mask.numel()))]] = True
    effects = torch.zeros_like(stds)
    per_batch = max(1, batch_size // (2 * num_samples))  # channels per rendered batch
    start = 0
    for layer in all_layers:
        todo = torch.nonzero(chosen_mask[start : start + layer.channels]).flatten().tolist()
        for i in range(0, len(todo), per_batch):
            cs = todo[i : i + per_batch]
            idx = [start + c for c in cs]
            deltas = stds[idx] * perturbation
            effects[idx] = _channel_effects(G, attr, ws, layer, cs, deltas) / (2 * perturbation)
        start += layer.channels
    info = {"num_samples": num_samples, "perturbation": perturbation, "seed": seed,
            "truncation_psi": float(truncation_psi), "stats_samples": stats_samples,
            "candidates": candidates,
            "layers": [layer.name for layer in all_layers if layer.name in chosen]}
    return StyleChannels(effects=effects, measured=chosen_mask, stds=stds,
                         network=network_signature(G), attribute=attribute_name(attr), info=info)


def _channel_effects(G, attr, ws, layer, channels, deltas) -> torch.Tensor:
    """Mean ``A(+delta) - A(-delta)`` over the samples ``ws`` for each channel of ``layer``,
    all in one batch (row block ``(sign, channel)`` holds the samples)."""
    n, k = ws.shape[0], len(channels)
    offsets = torch.zeros([2, k, n, layer.channels], device=ws.device)
    for j, (c, d) in enumerate(zip(channels, deltas.tolist(), strict=True)):
        offsets[0, j, :, c] = d
        offsets[1, j, :, c] = -d
    batch = ws.repeat(2 * k, 1, 1)
    with style_offsets(G, {layer.name: offsets.reshape(2 * k * n, layer.channels)}):
        scores = attr(G.synthesis(batch, **render_kwargs(G))).float().cpu()
    scores = scores.reshape(2, k, n)
    return (scores[0] - scores[1]).mean(dim=1)


def _gradient_effects(G, attr, ws, layers) -> torch.Tensor:
    """The mean gradient ``[S]`` of the attribute with respect to every style channel."""
    offsets = {layer.name: torch.zeros([ws.shape[0], layer.channels], device=ws.device,
                                       requires_grad=True) for layer in layers}
    with torch.enable_grad(), style_offsets(G, offsets):
        score = attr(G.synthesis(ws, **render_kwargs(G))).float().sum()
        grads = torch.autograd.grad(score, list(offsets.values()), allow_unused=True)
    means = [torch.zeros(layer.channels) if g is None else g.mean(dim=0).cpu()
             for layer, g in zip(layers, grads, strict=True)]
    return torch.cat(means)
