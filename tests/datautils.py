"""Helpers for the data tests: write known images (Pillow) into folders and zips."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np


def random_images(count: int, height: int, width: int, channels: int, seed: int = 0):
    """``count`` random uint8 images, HWC (HW for one channel)."""
    rng = np.random.default_rng(seed)
    shape = (count, height, width) if channels == 1 else (count, height, width, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def write_image(path, array, **save_args) -> str:
    """Save a HW or HWC uint8 array with Pillow (format from the extension)."""
    from PIL import Image

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **save_args)
    return str(path)


def write_labels(folder, pairs) -> None:
    """Write ``dataset.json`` with ``{"labels": [[name, label], ...]}``."""
    with open(os.path.join(folder, "dataset.json"), "w") as f:
        json.dump({"labels": [list(p) for p in pairs]}, f)


def zip_folder(folder, zip_path) -> str:
    """Zip every file of ``folder`` with names relative to it (deflated, as users do)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for root, _, files in os.walk(folder):
            for file in files:
                full = os.path.join(root, file)
                zf.write(full, os.path.relpath(full, folder).replace(os.sep, "/"))
    return str(zip_path)


def chw(array) -> np.ndarray:
    """HW or HWC -> CHW, written independently of the dataset code."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array[None]
    return np.stack([array[:, :, c] for c in range(array.shape[2])])


def truncate_file(path, keep_fraction: float = 0.5) -> None:
    """Cut a file short, as an interrupted copy would."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep_fraction)])
