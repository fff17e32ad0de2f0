"""An ordered set of orthonormal directions (what GANSpace and SeFa find), and the helpers the
methods share: ws-layer selection, sign convention, spread of samples along a direction."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import torch

from gankern.editing.directions import Direction

__all__ = ["Components", "canonical_signs", "check_count", "check_ws_layers", "spread_along"]


def check_count(name: str, value, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (``ValueError`` naming ``name`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_ws_layers(layers, num_ws: int) -> tuple[int, ...]:
    """``layers`` (None: all) as sorted unique ws indices in ``[0, num_ws - 1]``."""
    if layers is None:
        return tuple(range(num_ws))
    items = list(layers) if isinstance(layers, (list, tuple, range)) else None
    if (not items or len(set(items)) != len(items)
            or any(isinstance(i, bool) or not isinstance(i, numbers.Integral) for i in items)
            or min(items) < 0 or max(items) >= num_ws):
        raise ValueError(f"layers must be distinct ws indices in [0, {num_ws - 1}], "
                         f"got {layers!r}")
    return tuple(sorted(int(i) for i in items))


def canonical_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Flip each row so that its entry of largest magnitude is positive (eigenvectors and
    principal axes are defined up to sign; this makes them reproducible)."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    signs = torch.sign(vectors.gather(1, idx))
    signs[signs == 0] = 1
    return vectors * signs


def spread_along(samples: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """Standard deviation of ``samples`` ``[N, D]`` projected on each row of ``vectors``
    ``[K, D]``: ``[K]``."""
    return (samples.double() @ vectors.double().T).std(dim=0).float()


@dataclass
class Components:
    """Orthonormal directions in one space, most important first.

    Attributes:
        vectors: ``[K, D]``, orthonormal rows.
        values: ``[K]``: GANSpace's variance of the samples along each; SeFa's eigenvalues.
        scales: ``[K]``: standard deviation of random latents along each (one unit of
            strength).
        space: ``"w"`` or ``"style"``.
        method: ``"ganspace"`` or ``"sefa"``.
        network: the generator's :func:`gankern.editing.directions.network_signature`.
        layers: space ``"w"``: the ws rows an edit moves by default; space ``"style"``: the
            style layers the vectors span.
        info: details (number of samples, explained variance ratio...).
    """

    vectors: torch.Tensor
    values: torch.Tensor
    scales: torch.Tensor
    space: str
    method: str
    network: dict
    layers: tuple
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def direction(self, k: int, layers=None) -> Direction:
        """Component ``k`` as a :class:`Direction`; ``layers`` (space ``"w"`` only) picks
        the ws rows it moves (default: :attr:`layers`)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral):
            raise TypeError(f"component must be an int, got {k!r}")
        if not 0 <= k < len(self):
            raise ValueError(f"component must be in [0, {len(self) - 1}] ({len(self)} "
                             f"{self.method} components), got {k}")
        if self.space == "w":
            layers = (check_ws_layers(layers, self.network["num_ws"]) if layers is not None
                      else self.layers)
        elif layers is not None:
            raise ValueError("layers applies to w-space components only; style-space "
                             "components span the style layers they were computed on")
        else:
            layers = self.layers
        info = dict(self.info, component=int(k), value=float(self.values[k]))
        return Direction(vector=self.vectors[k], space=self.space, layers=layers,
                         scale=float(self.scales[k]), method=self.method,
                         network=self.network, info=info)
