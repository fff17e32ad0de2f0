"""Pictures of a run: image grids of generator samples and a plot of the logged curves."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from gankern.train.checkpoint import atomic_write_bytes


def to_uint8(images: torch.Tensor, drange=(-1.0, 1.0)) -> np.ndarray:
    """Float images [N, C, H, W] in ``drange`` -> uint8 numpy [N, C, H, W] (rounded, clipped)."""
    lo, hi = drange
    x = (images.detach().float().cpu() - lo) * (255.0 / (hi - lo))
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def tile_images(images: np.ndarray, cols: int, pad: int = 0, pad_value: int = 0) -> np.ndarray:
    """Arrange uint8 [N, C, H, W] into one [rows * H, cols * W, C] array, row by row.

    ``pad`` pixels of ``pad_value`` separate the cells (none around the border); missing
    cells of the last row stay black.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got shape {images.shape}")
    n, c, h, w = images.shape
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    rows = math.ceil(n / cols)
    canvas = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), pad_value,
                     dtype=np.uint8)
    for r in range(rows):
        for k in range(cols):
            i = r * cols + k
            y, x = r * (h + pad), k * (w + pad)
            canvas[y : y + h, x : x + w] = images[i].transpose(1, 2, 0) if i < n else 0
    return canvas


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, 1|3] (or [H, W]) array."""
    from PIL import Image

    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        image = Image.fromarray(pixels, "L")
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        image = Image.fromarray(pixels, "RGB")
    else:
        raise ValueError(f"cannot write an image with shape {pixels.shape} (1 or 3 channels)")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, cols: int,
                    drange=(-1.0, 1.0), pad: int = 0, pad_value: int = 0) -> None:
    """Save float images [N, C, H, W] as one PNG grid with ``cols`` columns (atomically)."""
    pixels = tile_images(to_uint8(images, drange), cols, pad=pad, pad_value=pad_value)
    atomic_write_bytes(path, encode_png(pixels))


def grid_shape(resolution: int, max_pixels: int = 1024, max_cells: int = 16) -> tuple[int, int]:
    """(cols, rows) of the snapshot grid: about ``max_pixels`` wide, 4 to ``max_cells`` cells."""
    side = int(np.clip(max_pixels // max(resolution, 1), 4, max_cells))
    return side, side


def class_sorted_latents(z_dim: int, c_dim: int, cols: int, rows: int,
                         seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed latents and labels for a grid: the same every snapshot.

    ``rows * cols`` standard normal latents from ``seed``; for a conditional generator row
    ``r`` holds one-hot class ``r % c_dim``, so the grid is sorted by class (labels are
    ``[n, 0]`` when unconditional).
    """
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn([rows * cols, z_dim], generator=g)
    c = torch.zeros([rows * cols, c_dim])
    if c_dim > 0:
        classes = np.repeat(np.arange(rows) % c_dim, cols)
        c[np.arange(rows * cols), classes] = 1
    return z, c


@torch.no_grad()
def generate(G, z: torch.Tensor, c: torch.Tensor, batch_size: int = 64, **kwargs) -> torch.Tensor:
    """``G(z, c, **kwargs)`` in batches on G's device; float32 images on the CPU."""
    device = next(G.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        img = G(z[i : i + batch_size].to(device), c[i : i + batch_size].to(device), **kwargs)
        out.append(img.float().cpu())
    return torch.cat(out)


# Curves drawn by plot_training_curves, one panel each, when present in the log.
PLOT_PANELS = (
    ("Losses", ("Loss/G/loss", "Loss/D/loss")),
    ("Auxiliary classifier", ("Loss/G/aux", "Loss/D/aux")),
    ("Regularization", ("Loss/r1_penalty", "Loss/r2_penalty", "Loss/gp_penalty",
                        "Loss/pl_penalty")),
    ("D outputs", ("Loss/scores/real", "Loss/scores/fake", "Loss/signs/real")),
    ("Augmentation probability", ("Progress/augment",)),
)


def plot_training_curves(stats_path: str | os.PathLike, png_path: str | os.PathLike) -> bool:
    """Plot the losses, regularizers, D outputs, augmentation and metrics against kimg.

    Reads ``stats.jsonl``; metric records are the keys starting with ``Metrics/``. Returns
    False (and writes nothing) when there is nothing to plot yet.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    records = []
    path = Path(stats_path)
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if not records:
        return False
    metric_keys = sorted({k for r in records for k in r if k.startswith("Metrics/")})
    present = {k for r in records for k in r}
    panels = [(title, keys) for title, keys in PLOT_PANELS if present.intersection(keys)]
    panels += [(key[len("Metrics/"):], (key,)) for key in metric_keys]
    if not panels:
        return False
    fig = Figure(figsize=(6.4, 2.4 * len(panels)), dpi=100, layout="constrained")
    for i, (title, keys) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for key in keys:
            points = [(r["kimg"], r[key]) for r in records if r.get(key) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="." if len(points) < 30 else None, label=key)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    ax.set_xlabel("kimg")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(png_path, buf.getvalue())
    return True
