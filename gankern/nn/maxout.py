"""Maxout units (Goodfellow et al. 2013): :class:`MaxoutLinear`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankern.ops._checks import check_int


class MaxoutLinear(nn.Linear):
    """``y[:, j] = max_k (x @ W^T + b)[:, j * num_pieces + k]``: a linear map to
    ``num_units * num_pieces`` features, then the maximum over each unit's pieces.

    Args:
        in_features: input features.
        num_units: output features (maxout units).
        num_pieces: linear pieces per unit.

    The pieces of one unit are consecutive features of the linear map, as pylearn2's
    ``Maxout`` (the discriminator of Goodfellow et al. 2014) groups them. A subclass of
    ``nn.Linear`` (weight ``[num_units * num_pieces, in_features]``, bias), so spectral
    normalization and initialization treat it as one.
    """

    def __init__(self, in_features: int, num_units: int, num_pieces: int):
        num_units = check_int("num_units", num_units, min_value=1)
        num_pieces = check_int("num_pieces", num_pieces, min_value=1)
        super().__init__(in_features, num_units * num_pieces)
        self.num_units = num_units
        self.num_pieces = num_pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        return y.unflatten(-1, (self.num_units, self.num_pieces)).amax(-1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_units={self.num_units}, "
            f"num_pieces={self.num_pieces}"
        )
