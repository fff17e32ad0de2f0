"""``open_dataset``: one entry point for ``--data`` (a folder, a zip, or a built-in name)."""

from __future__ import annotations

import os

from gankern.data.builtin import BuiltinDigitsDataset
from gankern.data.dataset import ImageDataset, ImageFolderDataset

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = {"digits": BuiltinDigitsDataset}
DEFAULT_DATASET = "builtin:digits"


def open_dataset(
    data=DEFAULT_DATASET,
    *,
    resolution: int | None = None,
    use_labels: bool = False,
    xflip: bool = False,
    max_size: int | None = None,
    random_seed: int = 0,
    on_bad_file: str = "raise",
) -> ImageDataset:
    """Open ``data``: ``"builtin:digits"`` (the default), a folder or a .zip of images.

    For a built-in dataset ``resolution`` chooses the size (None: its default, 32 px for
    the digits); for a folder or zip it is a check of the images' size. The other
    arguments are those of ``ImageDataset``.
    """
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be a path or 'builtin:NAME', got {type(data).__name__}")
    common = dict(use_labels=use_labels, xflip=xflip, max_size=max_size,
                  random_seed=random_seed, on_bad_file=on_bad_file)
    if isinstance(data, str) and data.startswith(BUILTIN_PREFIX):
        key = data[len(BUILTIN_PREFIX):]
        if key not in BUILTIN_DATASETS:
            known = ", ".join(BUILTIN_PREFIX + k for k in BUILTIN_DATASETS)
            raise ValueError(f"data must be a folder, a .zip or one of {known}, got {data!r}")
        if resolution is not None:
            common["resolution"] = resolution
        return BUILTIN_DATASETS[key](**common)
    return ImageFolderDataset(data, resolution=resolution, **common)
