"""Pixel-value transforms of the augmentation pipeline: color matrices, band filtering,
additive noise and cutout.

Each function takes per-sample parameters as CPU tensors (drawn by
:mod:`gankern.train.augment_sampling`) and a per-sample ``mask``; samples outside the mask
are returned bit for bit unchanged. All are differentiable to any order with respect to
the images.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from gankern.train.augment_geometry import reflect_pad

# Relative power of the four filter bands in natural images (roughly a 1/f spectrum),
# used to keep the expected image energy when one band's gain changes.
BAND_EXPECTED_POWER = (10 / 13, 1 / 13, 1 / 13, 1 / 13)
# Upper edges of the four bands, as fractions of the Nyquist frequency.
BAND_EDGES = (1 / 8, 1 / 4, 1 / 2)
FILTER_BANK_TAPS = 47
FILTER_BANK_WINDOW = ("kaiser", 5.0)


def _where(mask: torch.Tensor, changed: torch.Tensor, unchanged: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.to(unchanged.device).view(-1, 1, 1, 1), changed, unchanged)


def apply_color_matrix(x: torch.Tensor, matrix: torch.Tensor, mask: torch.Tensor):
    """Apply per-sample 4x4 affine color matrices.

    Args:
        x: ``[N, 3, H, W]`` RGB or ``[N, 1, H, W]`` gray images.
        matrix: ``[N, 4, 4]`` float64 CPU: ``rgb' = M[:3, :3] @ rgb + M[:3, 3]``.
        mask: ``[N]`` bool, the samples to transform.

    A gray image is treated as the RGB image ``(g, g, g)``, transformed, and averaged back
    to gray: ``g' = mean_i(sum_j M[i, j]) * g + mean_i(M[i, 3])``.
    """
    if not bool(mask.any()):
        return x
    m = matrix.to(device=x.device, dtype=x.dtype)
    if x.shape[1] == 3:
        y = torch.einsum("nij,njhw->nihw", m[:, :3, :3], x) + m[:, :3, 3, None, None]
    else:
        scale = m[:, :3, :3].sum(dim=2).mean(dim=1)
        offset = m[:, :3, 3].mean(dim=1)
        y = x * scale.view(-1, 1, 1, 1) + offset.view(-1, 1, 1, 1)
    return _where(mask, y, x)


@functools.cache
def _band_taps() -> tuple[tuple[float, ...], ...]:
    import numpy as np
    import scipy.signal

    lowpasses = [
        scipy.signal.firwin(FILTER_BANK_TAPS, edge, window=FILTER_BANK_WINDOW)
        for edge in BAND_EDGES
    ]
    lowpasses = [h / h.sum() for h in lowpasses]
    identity = np.zeros(FILTER_BANK_TAPS)
    identity[FILTER_BANK_TAPS // 2] = 1
    edges = [np.zeros(FILTER_BANK_TAPS), *lowpasses, identity]
    # Band b passes what lies between two successive low-pass filters; the bands sum to the
    # identity, so equal gains leave the image unchanged.
    bands = [hi - lo for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return tuple(tuple(float(v) for v in band) for band in bands)


def filter_bank(device=None) -> torch.Tensor:
    """``[4, 47]`` float64 symmetric FIR filters splitting the spectrum into the bands
    ``[0, 1/8]``, ``[1/8, 1/4]``, ``[1/4, 1/2]`` and ``[1/2, 1]`` of the Nyquist frequency
    (differences of Kaiser-windowed-sinc low-pass filters, beta 5: each band passes its
    interior within about 2 %). They sum to the unit impulse."""
    return torch.tensor(_band_taps(), dtype=torch.float64, device=device)


def apply_band_gains(x: torch.Tensor, gains: torch.Tensor, mask: torch.Tensor):
    """Amplify or attenuate frequency bands, per sample.

    Args:
        x: ``[N, C, H, W]`` images.
        gains: ``[N, 4]`` float64 CPU gain of each band of :func:`filter_bank`.
        mask: ``[N]`` bool, the samples to filter.

    The combined filter ``sum_b gains[b] * bank[b]`` is applied separably (rows, then
    columns), with the image extended by mirroring.
    """
    if not bool(mask.any()):
        return x
    n, c, h, w = x.shape
    taps = (gains @ filter_bank()).to(device=x.device, dtype=x.dtype)  # [N, T]
    pad = FILTER_BANK_TAPS // 2
    weight = taps.repeat_interleave(c, dim=0)[:, None, None, :]  # [N*C, 1, 1, T]
    y = reflect_pad(x, pad, pad, pad, pad).reshape(1, n * c, h + 2 * pad, w + 2 * pad)
    y = F.conv2d(y, weight, groups=n * c)
    y = F.conv2d(y, weight.transpose(2, 3), groups=n * c)
    return _where(mask, y.reshape(n, c, h, w), x)


def add_noise(x: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None):
    """Add Gaussian noise of standard deviation ``sigma[n]`` (``[N]`` float64 CPU) to each
    sample; samples with ``sigma == 0`` are unchanged. The noise is drawn on the
    generator's device (the images' device for the global generator)."""
    if not bool((sigma > 0).any()):
        return x
    device = x.device if generator is None else generator.device
    noise = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)
    y = x + noise * sigma.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
    return _where(sigma > 0, y, x)


def cutout(x: torch.Tensor, center: torch.Tensor, size: float, mask: torch.Tensor):
    """Zero a square per sample.

    Args:
        x: ``[N, C, H, W]`` images.
        center: ``[N, 2]`` float64 CPU ``(cx, cy)`` in ``[0, 1)``, fractions of W and H.
        size: side of the square as a fraction of the image side.
        mask: ``[N]`` bool, the samples to cut.

    A pixel is zeroed when its centre ``((j + 0.5) / W, (i + 0.5) / H)`` lies strictly
    within ``size / 2`` of the centre along both axes.
    """
    if not bool(mask.any()):
        return x
    _, _, h, w = x.shape
    cx = center[:, 0].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
    cy = center[:, 1].to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)
    px = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) / w
    py = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) / h
    inside = ((px.view(1, 1, 1, w) - cx).abs() < size / 2) & (
        (py.view(1, 1, h, 1) - cy).abs() < size / 2
    )
    return _where(mask, x * (~inside).to(x.dtype), x)
