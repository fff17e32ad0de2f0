"""One entry point per kind of item for ``--data`` (a folder, a zip, or a built-in name).

* :func:`open_dataset`: images (and labels), for the GANs that generate from noise, and the
  high-resolution images of super-resolution.
* :func:`open_paired_dataset`: pairs ``(input, target)`` for pix2pix.
* :func:`open_unpaired_dataset`: two domains drawn independently, for CycleGAN.
"""

from __future__ import annotations

import os

from gankern.data.builtin import BuiltinDigitsDataset
from gankern.data.builtin_tasks import (
    BuiltinDigitsColorDataset,
    BuiltinDigitsEdgesDataset,
    BuiltinDigitsInvertedDataset,
    BuiltinDigitsSRDataset,
)
from gankern.data.dataset import ImageDataset, ImageFolderDataset, check_choice
from gankern.data.image_files import top_level_folders
from gankern.data.paired import FolderPairDataset, PairedImageDataset, SideBySidePairDataset
from gankern.data.unpaired import UnpairedImageDataset

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = {"digits": BuiltinDigitsDataset, "digits-sr": BuiltinDigitsSRDataset}
BUILTIN_PAIRED_DATASETS = {"digits-edges": BuiltinDigitsEdgesDataset}
BUILTIN_UNPAIRED_DATASETS = {
    "digits-inverted": BuiltinDigitsInvertedDataset,
    "digits-color": BuiltinDigitsColorDataset,
}
DEFAULT_DATASET = "builtin:digits"
PAIRED_LAYOUTS = ("auto", "side-by-side", "folders")
# kind -> (what it is, the function that opens it, its built-in datasets)
_KINDS = {
    "images": ("an image dataset", "open_dataset", BUILTIN_DATASETS),
    "paired": ("a paired dataset", "open_paired_dataset", BUILTIN_PAIRED_DATASETS),
    "unpaired": ("an unpaired dataset", "open_unpaired_dataset", BUILTIN_UNPAIRED_DATASETS),
}


def _builtin(data, kind: str):
    """The built-in dataset class named by ``data`` (``"builtin:NAME"``) for ``kind``, None
    when ``data`` is a path; ValueError naming the right opener for a built-in of another
    kind, or the known names."""
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"data must be a path or 'builtin:NAME', got {type(data).__name__}")
    if not (isinstance(data, str) and data.startswith(BUILTIN_PREFIX)):
        return None
    key = data[len(BUILTIN_PREFIX):]
    for other_kind, (what, opener, table) in _KINDS.items():
        if key in table:
            if other_kind != kind:
                raise ValueError(f"{data!r} is {what} (items of another kind); open it with "
                                 f"gankern.data.{opener}")
            return table[key]
    known = ", ".join(BUILTIN_PREFIX + k for k in _KINDS[kind][2])
    raise ValueError(f"data must be a folder, a .zip or one of {known}, got {data!r}")


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
    """Open ``data``: ``"builtin:digits"`` (the default), ``"builtin:digits-sr"``, a folder or
    a .zip of images.

    For a built-in dataset ``resolution`` chooses the size (None: its default, 32 px for
    the digits); for a folder or zip it is a check of the images' size. The other
    arguments are those of ``ImageDataset``.
    """
    common = dict(use_labels=use_labels, xflip=xflip, max_size=max_size,
                  random_seed=random_seed, on_bad_file=on_bad_file)
    builtin = _builtin(data, "images")
    if builtin is not None:
        if resolution is not None:
            common["resolution"] = resolution
        return builtin(**common)
    return ImageFolderDataset(data, resolution=resolution, **common)


def open_paired_dataset(
    data="builtin:digits-edges",
    *,
    layout: str = "auto",
    direction: str = "AtoB",
    resolution: int | None = None,
    xflip: bool = False,
    max_size: int | None = None,
    random_seed: int = 0,
    on_bad_file: str = "raise",
) -> PairedImageDataset:
    """Open paired data: ``"builtin:digits-edges"`` (the default), or a folder or .zip.

    Args:
        data: the built-in name or the path.
        layout: for a path, ``"side-by-side"`` (A|B in one image,
            :class:`~gankern.data.SideBySidePairDataset`), ``"folders"`` (``A/`` and ``B/``
            with matching names, :class:`~gankern.data.FolderPairDataset`) or ``"auto"``
            (folders when ``A/`` and ``B/`` are at the top of ``data``, else side by side).
        direction: ``"AtoB"`` (items ``(A, B)``) or ``"BtoA"``.
        resolution: a built-in's size (None: 32), or a check of the images' size.
        xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``.
    """
    check_choice("layout", layout, PAIRED_LAYOUTS)
    common = dict(direction=direction, xflip=xflip, max_size=max_size, random_seed=random_seed,
                  on_bad_file=on_bad_file)
    builtin = _builtin(data, "paired")
    if builtin is not None:
        return builtin(**common) if resolution is None else builtin(resolution, **common)
    if layout == "auto":
        layout = "folders" if {"A", "B"} <= top_level_folders(data) else "side-by-side"
    if layout == "folders":
        return FolderPairDataset(data, resolution=resolution, **common)
    return SideBySidePairDataset(data, resolution=resolution, **common)


def open_unpaired_dataset(
    data="builtin:digits-inverted",
    *,
    split: str = "train",
    direction: str = "AtoB",
    resolution: int | None = None,
    xflip: bool = False,
    max_size: int | None = None,
    random_seed: int = 0,
    on_bad_file: str = "raise",
) -> UnpairedImageDataset:
    """Open two unpaired domains: ``"builtin:digits-inverted"`` (the default),
    ``"builtin:digits-color"``, or a folder or .zip in CycleGAN's layout.

    Args:
        data: the built-in name or the path, holding ``<split>A/`` and ``<split>B/``.
        split: ``"train"`` (``trainA/``, ``trainB/``) or another prefix (``"test"``, ...).
        direction: ``"AtoB"`` (items ``(a, b)``) or ``"BtoA"``.
        resolution: a built-in's size (None: 32), or a check of the images' size.
        xflip, max_size, random_seed, on_bad_file: applied to each domain (see
            ``ImageDataset``).
    """
    common = dict(xflip=xflip, max_size=max_size, random_seed=random_seed,
                  on_bad_file=on_bad_file)
    builtin = _builtin(data, "unpaired")
    if builtin is not None:
        if resolution is not None:
            common["resolution"] = resolution
        return builtin(direction=direction, **common)
    if not isinstance(split, str) or not split:
        raise ValueError(f"split must be a non-empty folder prefix such as 'train', got {split!r}")
    folders = (f"{split}A", f"{split}B")
    found = top_level_folders(data)
    if not set(folders) <= found:
        shown = ", ".join(sorted(found)) or "none"
        raise ValueError(f"data {os.fspath(data)!r} must hold the folders {folders[0]}/ and "
                         f"{folders[1]}/ (CycleGAN's layout); folders found: {shown}")
    a, b = (ImageFolderDataset(data, resolution=resolution, subdir=folder, **common)
            for folder in folders)
    name = os.path.splitext(os.path.basename(os.path.normpath(os.fspath(data))))[0]
    return UnpairedImageDataset(a, b, name=name, direction=direction)
