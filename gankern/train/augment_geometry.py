"""Geometry for the augmentation pipeline: matrices, exact pixel blitting, affine resampling.

Coordinates: an image's pixel ``(i, j)`` (row, column) has its centre at ``x = j + 0.5 - W/2``,
``y = i + 0.5 - H/2``: the origin is the image centre, x points right, y points down, in
pixel units. Affine transforms are stored as *inverse* 3x3 matrices that map an output
position to the input position it is read from; batches of them are float64 CPU tensors
``[N, 3, 3]`` (small, exact enough, and reading them never synchronizes with a GPU).

Two ways of executing geometry:

* :func:`blit`: x-flip, rotation by multiples of 90 degrees and integer translation are
  exact pixel permutations (translation reflects at the borders), so they are done by
  indexing, with no filtering at all.
* :func:`affine_resample`: any affine transform, resampled with little aliasing: reflect
  padding, 2x upsampling with a windowed-sinc low-pass FIR filter
  (:func:`gankern.ops.upsample2d`), bilinear sampling at the transformed positions
  (``grid_sample``), 2x downsampling with the same filter. An identity transform returns
  the input low-passed by the up/down filter pair (a flat response up to about half the
  Nyquist frequency, see :func:`resampling_filter`).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from gankern.ops.upfirdn2d import downsample2d, upsample2d

_F64 = torch.float64


# --- Batched matrices (float64, CPU) -------------------------------------------------------


def _matrices(rows: list[list]) -> torch.Tensor:
    """Stack rows of per-sample tensors / Python numbers into ``[N, R, C]``."""
    n = next(v.shape[0] for row in rows for v in row if isinstance(v, torch.Tensor))
    cols = [
        torch.stack(
            [v.to(_F64) if isinstance(v, torch.Tensor) else torch.full([n], float(v), dtype=_F64)
             for v in row],
            dim=-1,
        )
        for row in rows
    ]
    return torch.stack(cols, dim=-2)


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` translations by ``(tx, ty)`` (``[N]`` each)."""
    return _matrices([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` scalings by ``(sx, sy)`` around the origin."""
    return _matrices([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` rotations by ``theta`` radians (from +x towards +y) around the origin."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrices([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def translate3d(t: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]`` translations of RGB space by ``(t, t, t)`` (``[N]``)."""
    return _matrices([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]])


def scale3d(s: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]`` uniform scalings of RGB space by ``s`` around 0."""
    return _matrices([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]])


def rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``[N, 4, 4]`` rotations of RGB space by ``theta`` around the unit 3-vector ``axis``
    (Rodrigues' formula)."""
    ax, ay, az = (float(v) for v in axis)
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return _matrices(
        [
            [c + ax * ax * d, ax * ay * d - az * s, ax * az * d + ay * s, 0],
            [ay * ax * d + az * s, c + ay * ay * d, ay * az * d - ax * s, 0],
            [az * ax * d - ay * s, az * ay * d + ax * s, c + az * az * d, 0],
            [0, 0, 0, 1],
        ]
    )


# --- Exact pixel operations ----------------------------------------------------------------


def reflect_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold integer positions into ``[0, size)`` by mirroring about the first and last pixel
    (the ``"reflect"`` mode of ``F.pad`` and NumPy: ``-1 -> 1``, ``size -> size - 2``),
    for any distance from the image."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


def reflect_pad(x: torch.Tensor, left: int, right: int, top: int, bottom: int) -> torch.Tensor:
    """Pad ``[N, C, H, W]`` by mirroring (``"reflect"``), any amount (even beyond the image
    size, where ``F.pad`` refuses). Differentiable to any order (it is an index_select)."""
    h, w = x.shape[-2:]
    if left or right:
        cols = reflect_index(torch.arange(-left, w + right, device=x.device), w)
        x = x.index_select(3, cols)
    if top or bottom:
        rows = reflect_index(torch.arange(-top, h + bottom, device=x.device), h)
        x = x.index_select(2, rows)
    return x


def _per_sample(mask: torch.Tensor, device: torch.device) -> torch.Tensor:
    return mask.to(device).view(-1, 1, 1, 1)


def blit(x: torch.Tensor, flip: torch.Tensor, rot90: torch.Tensor, shift: torch.Tensor):
    """Exact per-sample x-flip, then rotation by 90 degrees, then integer translation.

    Args:
        x: ``[N, C, H, W]`` images (square when any ``rot90`` is odd).
        flip: ``[N]`` bool, mirror left-right.
        rot90: ``[N]`` int in 0..3, rotate by ``rot90 * 90`` degrees as ``torch.rot90`` with
            ``dims=(2, 3)``.
        shift: ``[N, 2]`` int ``(tx, ty)``: content moves ``tx`` pixels right and ``ty`` down;
            what enters at the borders is the mirror image (``out[i, j] =
            in[reflect(i - ty), reflect(j - tx)]``, see :func:`reflect_index`).

    All on the CPU (parameters) and the images' device (pixels); differentiable to any
    order; samples with nothing to do are returned unchanged.
    """
    n, c, h, w = x.shape
    dev = x.device
    if bool(flip.any()):
        x = torch.where(_per_sample(flip, dev), x.flip(3), x)
    for k in (1, 2, 3):
        chosen = rot90 == k
        if bool(chosen.any()):
            if k % 2 == 1 and h != w:
                raise ValueError(f"rotate90 needs square images, got {h}x{w}")
            x = torch.where(_per_sample(chosen, dev), torch.rot90(x, k, dims=(2, 3)), x)
    if bool(shift.any()):
        tx = shift[:, 0].to(dev)
        ty = shift[:, 1].to(dev)
        cols = reflect_index(torch.arange(w, device=dev)[None, :] - tx[:, None], w)  # [N, W]
        x = x.gather(3, cols[:, None, None, :].expand(n, c, h, w))
        rows = reflect_index(torch.arange(h, device=dev)[None, :] - ty[:, None], h)  # [N, H]
        x = x.gather(2, rows[:, None, :, None].expand(n, c, h, w))
    return x


# --- Affine resampling ---------------------------------------------------------------------


@functools.cache
def _resampling_taps(numtaps: int, beta: float) -> tuple[float, ...]:
    import scipy.signal

    taps = scipy.signal.firwin(numtaps, 0.5, window=("kaiser", beta))
    return tuple(float(t) for t in taps / taps.sum())


def resampling_filter(device=None) -> torch.Tensor:
    """The 1-D low-pass filter of :func:`affine_resample`: 16 taps, cut-off at half the
    upsampled rate (the original Nyquist frequency), Kaiser window (beta 8), unit DC gain.

    Even length, symmetric: the alignment of :func:`gankern.ops.upsample2d` and
    :func:`gankern.ops.downsample2d` keeps pixel centres in place. An upsample followed by
    a downsample with it passes cosines of up to a quarter of the sampling rate within
    about 2 % (1e-4 up to an eighth).
    """
    return torch.tensor(_resampling_taps(16, 8.0), dtype=torch.float32, device=device)


def affine_resample(
    x: torch.Tensor, inverse: torch.Tensor, f: torch.Tensor, impl: str = "auto"
) -> torch.Tensor:
    """Resample each image of ``x`` through an affine transform.

    Args:
        x: ``[N, C, H, W]`` float32 or float64 images.
        inverse: ``[N, 3, 3]`` float64 CPU matrices mapping output positions to input
            positions (centred pixel coordinates, see the module docstring).
        f: 1-D even-length low-pass filter (:func:`resampling_filter`) on x's device.
        impl: backend of the upsampling/downsampling (:func:`gankern.ops.upfirdn2d`).

    Returns:
        ``[N, C, H, W]``: output pixel ``p`` is the (band-limited) input at ``inverse @ p``.
        The input is extended by mirroring (reflect padding of up to ``size - 1`` pixels,
        and reflection of the upsampled image beyond that).
    """
    n, _, h, w = x.shape
    taps = f.shape[0]
    # Margin of the upsampled output kept for the downsampling filter (cropped at the end).
    margin = taps // 2
    # How far the upsampling filter reaches, in input pixels, plus one for bilinear taps.
    reach = taps / 4 + 1
    # The corners of the output area the grid covers, mapped into the input.
    ex, ey = w / 2 + margin / 2, h / 2 + margin / 2
    corners = torch.tensor([[-ex, ex, ex, -ex], [-ey, -ey, ey, ey], [1, 1, 1, 1]], dtype=_F64)
    points = inverse @ corners  # [N, 3, 4]
    lo_x, hi_x = float(points[:, 0].min()), float(points[:, 0].max())
    lo_y, hi_y = float(points[:, 1].min()), float(points[:, 1].max())

    def _pad(need: float, size: int) -> int:
        return int(min(max(math.ceil(need), 0), size - 1))

    px0, px1 = _pad(-lo_x - w / 2 + reach, w), _pad(hi_x - w / 2 + reach, w)
    py0, py1 = _pad(-lo_y - h / 2 + reach, h), _pad(hi_y - h / 2 + reach, h)
    # (Margins are below the image size, so F.pad can mirror; its backward is cheaper than
    # index_select's scatter.)
    x = F.pad(x, [px0, px1, py0, py1], mode="reflect") if px0 + px1 + py0 + py1 else x
    x = upsample2d(x, f, up=2, impl=impl)
    up_h, up_w = x.shape[2], x.shape[3]
    out_h, out_w = 2 * h + 2 * margin, 2 * w + 2 * margin

    # affine_grid works in normalized coordinates (align_corners=False): output grid column
    # k is at u = (2k + 1) / out_w - 1, which is output position u * out_w / 4 in input
    # pixels; input position x maps to 4 * (x + w/2 + px0) / up_w - 1 in the upsampled,
    # padded image.
    from_grid = torch.tensor([[out_w / 4, 0, 0], [0, out_h / 4, 0], [0, 0, 1]], dtype=_F64)
    to_grid = torch.tensor(
        [
            [4 / up_w, 0, 4 * (w / 2 + px0) / up_w - 1],
            [0, 4 / up_h, 4 * (h / 2 + py0) / up_h - 1],
            [0, 0, 1],
        ],
        dtype=_F64,
    )
    theta = (to_grid @ inverse @ from_grid)[:, :2, :].to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, [n, x.shape[1], out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return downsample2d(x, f, down=2, padding=-margin, impl=impl)
