"""Minibatch standard deviation (Karras et al., 2018), as in StyleGAN2's discriminator."""

from __future__ import annotations

import torch
from torch import nn

from gankern.ops._checks import check_int, check_tensor


class MinibatchStdLayer(nn.Module):
    """Append the standard deviation across groups of samples as extra feature maps.

    The batch is split into groups of ``min(group_size, N)`` samples (sample ``i`` belongs to
    group ``i % (N / G)``, as in StyleGAN2) and the channels into ``num_channels`` slices. For
    each group and slice, the standard deviation over the group's samples is averaged over
    the slice's channels and all pixels; the result is appended as ``num_channels`` constant
    feature maps to every sample of the group.

    Args:
        group_size: samples per group; None for the whole batch.
        num_channels: number of appended feature maps (must divide the input channels).
    """

    def __init__(self, group_size: int | None, num_channels: int = 1):
        super().__init__()
        self.group_size = (
            None if group_size is None else check_int("group_size", group_size, min_value=1)
        )
        self.num_channels = check_int("num_channels", num_channels, min_value=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, C, H, W]`` -> ``[N, C + num_channels, H, W]``."""
        check_tensor("x", x, ndim=4)
        n, c, h, w = x.shape
        g = n if self.group_size is None else min(self.group_size, n)
        f = self.num_channels
        if n % g:
            raise ValueError(
                f"the batch size ({n}) must be divisible by the minibatch-std group size "
                f"min(group_size={self.group_size}, batch) = {g}"
            )
        if c % f:
            raise ValueError(f"x's channels ({c}) must be divisible by num_channels={f}")
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)  # deviation from the group mean
        y = y.square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt()  # standard deviation
        y = y.mean(dim=[2, 3, 4])  # [n, F]: average over channels and pixels
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
