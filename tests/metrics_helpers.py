"""Shared by the metrics tests: a quickly trained digits extractor and small image sets."""

from __future__ import annotations

import functools

import numpy as np
import torch

from gankern.data import load_digits
from gankern.metrics.digits_extractor import DigitsRecipe, train_digits_extractor

# A shortened recipe: enough steps to tell digits from noise, a few seconds on one thread.
SMALL_RECIPE = DigitsRecipe(steps=80)


@functools.lru_cache(maxsize=1)
def _small_state() -> dict:
    model, _ = train_digits_extractor(SMALL_RECIPE)
    return {k: v.clone() for k, v in model.state_dict().items()}


def small_digits_extractor():
    """A fresh copy of the digits extractor trained with ``SMALL_RECIPE`` (trained once)."""
    from gankern.metrics.digits_extractor import DigitsFeatureNet

    model = DigitsFeatureNet()
    model.load_state_dict(_small_state())
    model.identity = f"digits-small-test-{SMALL_RECIPE.key('test')}"
    return model.requires_grad_(False).eval()


def digits(n: int | None = None, start: int = 0) -> np.ndarray:
    images, _ = load_digits(32)
    return images[start:] if n is None else images[start : start + n]


def uniform_noise(n: int, seed: int = 0, channels: int = 1, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)


class ToyGenerator(torch.nn.Module):
    """StyleGAN2-ADA's interface on a linear map: mapping(z, c) -> ws, synthesis(ws) -> image.

    ``mapping`` is the identity on z (one w repeated ``num_ws`` times), ``synthesis`` a fixed
    linear map of the first w followed by tanh, so images lie in (-1, 1).
    """

    def __init__(self, z_dim=8, c_dim=0, resolution=8, channels=1, num_ws=2, linear=False):
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws = z_dim, c_dim, num_ws
        self.shape = (channels, resolution, resolution)
        self.linear = linear
        gen = torch.Generator().manual_seed(123)
        weight = torch.randn(channels * resolution * resolution, z_dim, generator=gen)
        self.weight = torch.nn.Parameter(weight / z_dim**0.5, requires_grad=False)
        self.calls: list[dict] = []

    def mapping(self, z, c):
        assert not self.training, "metrics must sample in eval mode"
        return z[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, **kwargs):
        self.calls.append(kwargs)
        x = ws[:, 0] @ self.weight.T
        x = x if self.linear else torch.tanh(x)
        return x.view(-1, *self.shape)

    def forward(self, z, c, **kwargs):
        assert not self.training, "metrics must sample in eval mode"
        if self.c_dim:
            assert c.shape == (z.shape[0], self.c_dim)
            assert torch.all(c.sum(1) == 1) and set(c.unique().tolist()) <= {0.0, 1.0}
        return self.synthesis(self.mapping(z, c), **kwargs)
