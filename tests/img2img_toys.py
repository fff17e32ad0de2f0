"""Toy translators and patch discriminators with NumPy twins, for checking the image-to-image
objectives against written-out formulas (float64).

Toy G: ``tanh(W x + b)`` per pixel (a 1x1 convolution), after a nearest ``scale``-times
upsampling for super-resolution. Toy D: ``v . u + a |u|^2 + b`` per pixel of ``u``, the
channel concatenation of its inputs: a map of patch logits ``[N, 1, H, W]``, or their mean
``[N, 1]`` (a single-logit D, as SRGAN's).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gankern.train.family import PhaseInputs


class ToyTranslator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, seed: int, scale: int = 1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, scale
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, generator=g,
                                               dtype=torch.float64) * 0.7)
        self.bias = nn.Parameter(torch.randn(out_channels, generator=g, dtype=torch.float64) * 0.1)

    def forward(self, x):
        if self.scale > 1:
            x = x.repeat_interleave(self.scale, 2).repeat_interleave(self.scale, 3)
        return torch.tanh(torch.einsum("oc,nchw->nohw", self.weight, x)
                          + self.bias[None, :, None, None])


class ToyPatchD(nn.Module):
    def __init__(self, channels: int, seed: int, single_logit: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.single_logit = single_logit
        self.v = nn.Parameter(torch.randn(channels, generator=g, dtype=torch.float64))
        self.a = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(-0.2, dtype=torch.float64))

    def forward(self, *images, c=None):
        u = torch.cat(images, dim=1)
        logits = (torch.einsum("c,nchw->nhw", self.v, u) + self.a * u.square().sum(1)
                  + self.b)[:, None]
        return logits.mean((2, 3)) if self.single_logit else logits


def np_G(G: ToyTranslator, x: np.ndarray) -> np.ndarray:
    if G.scale > 1:
        x = x.repeat(G.scale, axis=2).repeat(G.scale, axis=3)
    W, b = G.weight.detach().numpy(), G.bias.detach().numpy()
    return np.tanh(np.einsum("oc,nchw->nohw", W, x) + b[None, :, None, None])


def np_D(D: ToyPatchD, *images: np.ndarray) -> np.ndarray:
    """Logits per image and patch ``[N, P]``."""
    u = np.concatenate(images, axis=1)
    v, a, b = D.v.detach().numpy(), D.a.item(), D.b.item()
    logits = np.einsum("c,nchw->nhw", v, u) + a * (u**2).sum(1) + b
    logits = logits.reshape(len(u), -1)
    return logits.mean(1, keepdims=True) if D.single_logit else logits


def np_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b).reshape(len(a), -1).mean(1)


def np_mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a - b) ** 2).reshape(len(a), -1).mean(1)


def images(n: int, channels: int, side: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, side, side, generator=g, dtype=torch.float64) * 2 - 1


def phase_inputs(*real: torch.Tensor) -> PhaseInputs:
    n = real[0].shape[0]
    return PhaseInputs(real=real, z=torch.zeros(n, 0), c=torch.zeros(n, 0), batch=n,
                       num_slices=1, step=0)
