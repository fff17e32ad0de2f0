"""Latent directions: what every method finds, saved in small files and applied to images.

A :class:`Direction` lives in one of two spaces:

* ``"w"``: a unit vector ``[w_dim]`` added to the ws of the layers ``layers`` (indices into
  ws; StyleGAN2-ADA's ``num_ws`` rows). GANSpace, SeFa and InterFaceGAN find these.
* ``"style"``: a vector over the whole style space (the outputs of every affine layer,
  concatenated as :func:`gankern.editing.layers.style_layers` lists them), added to the
  styles while the synthesis network runs. StyleSpace (and GANSpace on styles) find these.

An edit of strength ``a`` adds ``a * scale * vector``. The methods set ``scale`` so that
strengths are in standard deviations: the spread of the latents along the direction over
random samples (for StyleSpace: of each channel), so ``--strength -3,0,3`` means the same
thing for every method.

Files are safetensors (``vector``; everything else as JSON in the header, nothing pickled)
and record the network they were found on: its shape (``w_dim``, ``num_ws``, the style
layers) and a fingerprint of its mapping and affine weights. Applying a direction to a
network of another shape is an error; to another network of the same shape, a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from gankern.editing.layers import (
    check_style_based,
    generator_device,
    render_kwargs,
    style_layers,
    style_offsets,
)

SPACES = ("w", "style")
FILE_KIND = "gankern-direction"
FILE_VERSION = 1

__all__ = [
    "SPACES",
    "Direction",
    "apply_direction",
    "edit_grid",
    "edit_ws",
    "load_direction",
    "network_signature",
    "save_direction",
]


def network_signature(G) -> dict:
    """What a direction records about the generator it was found on (JSON-able): ``w_dim``,
    ``num_ws``, ``style_layers`` (``[name, channels, ws_index]`` each) and ``fingerprint``
    (a hash of the mapping network's state and the affine layers' weights)."""
    check_style_based(G)
    layers = style_layers(G)
    digest = hashlib.sha256()
    modules = dict(G.synthesis.named_modules())
    named = sorted(G.mapping.state_dict().items())
    named += [(f"synthesis.{l.name}.{k}", v) for l in layers
              for k, v in sorted(modules[l.name].state_dict().items())]
    for name, tensor in named:
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return {
        "w_dim": int(G.w_dim),
        "num_ws": int(G.num_ws),
        "style_layers": [[l.name, l.channels, l.ws_index] for l in layers],
        "fingerprint": digest.hexdigest()[:16],
    }


@dataclass
class Direction:
    """A direction in latent space and how to apply it.

    Attributes:
        vector: ``[w_dim]`` (space ``"w"``, unit length) or ``[total style channels]``
            (space ``"style"``), float32 on the CPU.
        space: ``"w"`` or ``"style"``.
        layers: space ``"w"``: the ws rows the edit moves (sorted indices); space
            ``"style"``: the names of the style layers where ``vector`` is not zero.
        scale: an edit of strength ``a`` adds ``a * scale * vector``.
        method: what found it (``"ganspace"``, ``"sefa"``, ``"interfacegan"``,
            ``"stylespace"``).
        network: :func:`network_signature` of the generator it was found on.
        info: method-specific details (component, eigenvalue, attribute, accuracy...).
    """

    vector: torch.Tensor
    space: str
    layers: tuple
    scale: float
    method: str
    network: dict
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim != 1:
            raise TypeError(f"vector must be a 1-d tensor, got {type(self.vector).__name__}")
        self.vector = self.vector.detach().float().cpu()
        self.scale = float(self.scale)
        if not math.isfinite(self.scale) or not bool(torch.isfinite(self.vector).all()):
            raise ValueError("vector and scale must be finite")
        expected = self._expected_size(self.network)
        if self.vector.numel() != expected:
            raise ValueError(f"vector must have {expected} entries for space {self.space!r} "
                             f"on this network, got {self.vector.numel()}")
        self.layers = tuple(self.layers)
        if self.space == "w":
            num_ws = int(self.network["num_ws"])
            if not self.layers or any(isinstance(i, bool) or not isinstance(i, int)
                                      or not 0 <= i < num_ws for i in self.layers):
                raise ValueError(f"layers of a w-space direction must be ws indices in "
                                 f"[0, {num_ws - 1}], got {list(self.layers)}")
        else:
            names = {name for name, _, _ in self.network["style_layers"]}
            unknown = [n for n in self.layers if n not in names]
            if not self.layers or unknown:
                raise ValueError(f"layers of a style-space direction must name style layers "
                                 f"of its network, got {list(self.layers)}")

    def _expected_size(self, network: dict) -> int:
        if self.space == "w":
            return int(network["w_dim"])
        return sum(int(c) for _, c, _ in network["style_layers"])

    def check_network(self, G) -> bool:
        """``ValueError`` if ``G`` has another shape than the network the direction was found
        on (w_dim, num_ws, style layers); otherwise whether it is that very network (the
        same mapping and affine weights)."""
        mine = self.network
        theirs = network_signature(G)
        what = "the direction"
        if self.space == "w":
            if theirs["w_dim"] != mine["w_dim"] or theirs["num_ws"] != mine["num_ws"]:
                raise ValueError(
                    f"{what} was found on another network: w_dim {mine['w_dim']} and "
                    f"num_ws {mine['num_ws']}, this generator has w_dim {theirs['w_dim']} and "
                    f"num_ws {theirs['num_ws']}")
        elif theirs["style_layers"] != mine["style_layers"]:
            raise ValueError(
                f"{what} was found on another network: its {len(mine['style_layers'])} style "
                f"layers ({sum(c for _, c, _ in mine['style_layers'])} channels) differ from "
                f"this generator's {len(theirs['style_layers'])} "
                f"({sum(c for _, c, _ in theirs['style_layers'])} channels)")
        return theirs["fingerprint"] == mine["fingerprint"]

    def style_offsets(self, strength: float) -> dict[str, torch.Tensor]:
        """Space ``"style"``: the offset of each style layer for an edit of ``strength``."""
        if self.space != "style":
            raise ValueError(f"style_offsets needs a style-space direction, got {self.space!r}")
        delta = self.vector * (float(strength) * self.scale)
        out, start = {}, 0
        for name, channels, _ in self.network["style_layers"]:
            if name in self.layers:
                out[name] = delta[start : start + channels]
            start += channels
        return out

    def metadata(self) -> dict:
        """Everything but the vector, JSON-able."""
        return {"space": self.space, "layers": list(self.layers), "scale": self.scale,
                "method": self.method, "network": self.network, "info": self.info}


def save_direction(direction: Direction, path: str | os.PathLike) -> Path:
    """Write ``direction`` to a safetensors file (atomically); returns the path."""
    from safetensors.torch import save

    from gankern.train.checkpoint import atomic_write_bytes

    if not isinstance(direction, Direction):
        raise TypeError(f"direction must be a Direction, got {type(direction).__name__}")
    path = Path(path)
    header = {"gankern": FILE_KIND, "version": str(FILE_VERSION),
              "direction": json.dumps(direction.metadata(), sort_keys=True)}
    atomic_write_bytes(path, save({"vector": direction.vector.contiguous()}, metadata=header))
    return path


def load_direction(path: str | os.PathLike) -> Direction:
    """Read a direction written by :func:`save_direction` (``FileNotFoundError`` when it is
    missing, ``ValueError`` when it is not a direction file)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"direction file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a direction file (not safetensors: {exc})") from None
    if header.get("gankern") != FILE_KIND or "vector" not in tensors:
        raise ValueError(f"{path} is not a direction file (a safetensors file without "
                         "gankern's direction header)")
    if int(header.get("version", 0)) > FILE_VERSION:
        raise ValueError(f"{path}: direction file version {header['version']} is newer than "
                         f"this gankern reads ({FILE_VERSION})")
    meta = json.loads(header["direction"])
    return Direction(vector=tensors["vector"], **meta)


def edit_ws(ws: torch.Tensor, direction: Direction, strength: float) -> torch.Tensor:
    """ws ``[N, num_ws, w_dim]`` moved by ``strength`` along a w-space ``direction`` (on its
    layers only); returns a new tensor."""
    if direction.space != "w":
        raise ValueError(f"edit_ws needs a w-space direction, got {direction.space!r} "
                         "(use apply_direction, which edits styles while rendering)")
    if ws.ndim != 3 or ws.shape[2] != direction.vector.numel():
        raise ValueError(f"ws must be [N, num_ws, {direction.vector.numel()}], "
                         f"got {tuple(ws.shape)}")
    delta = (direction.vector * (float(strength) * direction.scale)).to(ws)
    out = ws.clone()
    out[:, list(direction.layers)] += delta
    return out


def _as_ws(G, w: torch.Tensor) -> torch.Tensor:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a tensor, got {type(w).__name__}")
    if w.ndim == 2 and w.shape[1] == G.w_dim:
        return w.unsqueeze(1).repeat(1, G.num_ws, 1)
    if w.ndim == 3 and tuple(w.shape[1:]) == (G.num_ws, G.w_dim):
        return w
    raise ValueError(f"w must be [N, {G.w_dim}] or [N, {G.num_ws}, {G.w_dim}], "
                     f"got {tuple(w.shape)}")


def apply_direction(G, w: torch.Tensor, direction: Direction, strength: float,
                    check: bool = True, **synthesis_kwargs) -> torch.Tensor:
    """Images of ``w`` edited by ``strength`` (in the direction's standard deviations) along
    ``direction``.

    Args:
        G: the style-based generator (StyleGAN2-ADA's API).
        w: ``[N, w_dim]`` or ws ``[N, num_ws, w_dim]``.
        direction: a :class:`Direction` found on this network (or one of its shape).
        strength: how far to move; 0 renders ``w`` as it is.
        check: check the direction against ``G`` (``ValueError`` for another shape, a
            warning for another network of the same shape).
        **synthesis_kwargs: passed to ``G.synthesis`` (default: constant noise, see
            :func:`gankern.editing.layers.render_kwargs`).

    Returns:
        Images ``[N, C, H, W]`` in about [-1, 1].
    """
    check_style_based(G)
    if not isinstance(direction, Direction):
        raise TypeError(f"direction must be a Direction, got {type(direction).__name__}")
    if check and not direction.check_network(G):
        warnings.warn("the direction was found on another generator of the same shape; "
                      "the edit may not mean the same thing here", stacklevel=2)
    ws = _as_ws(G, w).to(generator_device(G))
    synthesis_kwargs = {**render_kwargs(G), **synthesis_kwargs}
    if direction.space == "w":
        return G.synthesis(edit_ws(ws, direction, strength), **synthesis_kwargs)
    offsets = {k: v.to(ws.device) for k, v in direction.style_offsets(strength).items()}
    with style_offsets(G, offsets):
        return G.synthesis(ws, **synthesis_kwargs)


@torch.no_grad()
def edit_grid(G, w: torch.Tensor, direction: Direction, strengths, check: bool = True,
              **synthesis_kwargs) -> torch.Tensor:
    """Images ``[N * len(strengths), C, H, W]``: for each of the N latents (rows), one image
    per strength (columns), row by row (tile with ``len(strengths)`` columns)."""
    strengths = [float(s) for s in strengths]
    if not strengths:
        raise ValueError("strengths must not be empty")
    if check and not direction.check_network(G):
        warnings.warn("the direction was found on another generator of the same shape; "
                      "the edit may not mean the same thing here", stacklevel=2)
    columns = [apply_direction(G, w, direction, s, check=False, **synthesis_kwargs).cpu()
               for s in strengths]
    return torch.stack(columns, dim=1).flatten(0, 1)

