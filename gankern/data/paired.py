"""Paired image datasets for image-to-image translation (pix2pix): items ``(input, target)``.

Two layouts on disk, each a folder or a zip:

* side by side (pix2pix's own datasets): every image holds a pair, A on the left half and B
  on the right half (:class:`SideBySidePairDataset`);
* aligned folders: ``A/`` and ``B/`` with the same file names, ``A/x.png`` paired with
  ``B/x.png`` (the extension may differ: ``B/x.jpg``) (:class:`FolderPairDataset`).

An item is a pair of uint8 arrays ``[C_in, H, W]`` and ``[C_out, H, W]``: ``(A, B)`` for
``direction="AtoB"``, ``(B, A)`` for ``"BtoA"``. The two sides may have different channel
counts (edges in gray, photos in color) but have one size. A default DataLoader collation
turns a batch into two uint8 tensors. ``xflip`` mirrors both images of a pair together.
Mismatched pairs, missing partners, images of different sizes, empty folders and undecodable
files raise one ValueError (:class:`~gankern.data.CorruptImageError` for undecodable files)
that names the file, as :class:`~gankern.data.ImageFolderDataset` does.
"""

from __future__ import annotations

import os
import posixpath

import numpy as np

from gankern.data.dataset import ImageDataset, ImageFolderDataset, check_choice
from gankern.data.image_files import CorruptImageError, ImageSource

DIRECTIONS = ("AtoB", "BtoA")


class PairedImageDataset(ImageDataset):
    """Base class of the paired datasets: x-flips, subsets and bad-file handling of
    :class:`~gankern.data.ImageDataset` over pairs, items ``(input, target)``.

    Subclasses implement ``_load_raw_pair(raw_index) -> (a, b)`` (uint8 ``[C, H, W]`` each)
    and may override ``_describe_side(raw_index, side)`` (side 0: A, 1: B) to name files in
    messages. Internally a pair is held as one image with the channels of A then B, so that
    the base class flips and checks both together.

    Args:
        name: a short name for logs.
        num_pairs: number of raw pairs.
        a_shape, b_shape: ``[C, H, W]`` of the A and B images (same H and W).
        direction: ``"AtoB"`` (items ``(A, B)``) or ``"BtoA"`` (items ``(B, A)``).
        xflip, max_size, random_seed, on_bad_file: see ``ImageDataset`` (``max_size`` and
            ``xflip`` count pairs).
    """

    def __init__(self, *, name: str, num_pairs: int, a_shape, b_shape, direction: str = "AtoB",
                 xflip: bool = False, max_size: int | None = None, random_seed: int = 0,
                 on_bad_file: str = "raise"):
        self._direction = check_choice("direction", direction, DIRECTIONS)
        self._a_shape = tuple(int(s) for s in a_shape)
        self._b_shape = tuple(int(s) for s in b_shape)
        if self._a_shape[1:] != self._b_shape[1:]:
            raise ValueError(f"the A and B images of dataset {name!r} must have one size, got "
                             f"{self._a_shape} and {self._b_shape}")
        super().__init__(
            name=name, raw_shape=(num_pairs, self._a_shape[0] + self._b_shape[0],
                                  *self._a_shape[1:]),
            raw_labels=None, use_labels=False, xflip=xflip, max_size=max_size,
            random_seed=random_seed, on_bad_file=on_bad_file,
        )

    # --- to be provided by subclasses -------------------------------------------------------

    def _load_raw_pair(self, raw_index: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _describe_side(self, raw_index: int, side: int) -> str:
        return f"{self._describe_raw(raw_index)} ({'AB'[side]})"

    # --- pairs as stacked images ------------------------------------------------------------

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        pair = self._load_raw_pair(raw_index)
        for side, (image, shape) in enumerate(zip(pair, (self._a_shape, self._b_shape),
                                                  strict=True)):
            if image.shape != shape:
                where = self._describe_side(raw_index, side)
                raise CorruptImageError(f"image {where} has shape {image.shape}, expected "
                                        f"{shape}", path=where)
        return np.concatenate(pair, axis=0)

    def __getitem__(self, idx):
        stacked, _ = super().__getitem__(idx)
        a, b = stacked[: self._a_shape[0]], stacked[self._a_shape[0]:]
        return (a, b) if self._direction == "AtoB" else (b, a)

    # --- properties -------------------------------------------------------------------------

    @property
    def direction(self) -> str:
        return self._direction

    @property
    def a_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the A images."""
        return self._a_shape

    @property
    def b_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the B images."""
        return self._b_shape

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the first image of an item (A for ``"AtoB"``)."""
        return self._a_shape if self._direction == "AtoB" else self._b_shape

    @property
    def target_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the second image of an item (B for ``"AtoB"``)."""
        return self._b_shape if self._direction == "AtoB" else self._a_shape

    @property
    def in_channels(self) -> int:
        """Channels of the inputs: a generator's ``in_channels``."""
        return self.input_shape[0]

    @property
    def out_channels(self) -> int:
        """Channels of the targets: a generator's ``out_channels``."""
        return self.target_shape[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, len={len(self)}, "
                f"direction={self._direction}, input={'x'.join(map(str, self.input_shape))}, "
                f"target={'x'.join(map(str, self.target_shape))})")


def _check_resolution(resolution, width: int, height: int, where: str) -> None:
    if resolution is not None and (width, height) != (resolution, resolution):
        raise ValueError(f"resolution={resolution} expects {resolution}x{resolution} images, "
                         f"got {width}x{height} for {where}")


class SideBySidePairDataset(PairedImageDataset):
    """Pairs stored side by side in one image (pix2pix's layout): A left, B right.

    Args:
        path: a folder (searched recursively) or a .zip of PNG/JPEG images, all of one size
            with an even width (each half is one image of the pair).
        resolution: if given, each half must be ``resolution`` x ``resolution`` (a check).
        direction: ``"AtoB"`` or ``"BtoA"`` (see :class:`PairedImageDataset`).
        xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``.
        subdir: read this subfolder of ``path`` (e.g. ``"train"`` of pix2pix's datasets).
    """

    def __init__(self, path, resolution: int | None = None, direction: str = "AtoB",
                 xflip: bool = False, max_size: int | None = None, random_seed: int = 0,
                 on_bad_file: str = "raise", subdir: str | None = None):
        self._images = ImageFolderDataset(path, on_bad_file=on_bad_file, subdir=subdir)
        channels, height, width = self._images.image_shape
        first = self._images._describe_raw(0)
        if width % 2:
            raise ValueError(
                f"side-by-side pairs need an even width (A is the left half, B the right): "
                f"{first} is {width}x{height} (as are all images of {self._images.path!r})"
            )
        self._half = width // 2
        _check_resolution(resolution, self._half, height, f"each half of {first}")
        shape = (channels, height, self._half)
        super().__init__(name=self._images.name, num_pairs=len(self._images.image_names),
                         a_shape=shape, b_shape=shape, direction=direction, xflip=xflip,
                         max_size=max_size, random_seed=random_seed, on_bad_file=on_bad_file)
        self._skipped_files = self._images.skipped_files

    def _describe_raw(self, raw_index: int) -> str:
        return self._images._describe_raw(raw_index)

    def _describe_side(self, raw_index: int, side: int) -> str:
        return f"{self._describe_raw(raw_index)} ({('left', 'right')[side]} half)"

    def _load_raw_pair(self, raw_index: int) -> tuple[np.ndarray, np.ndarray]:
        image = self._images._load_raw_image(raw_index)
        return image[:, :, : self._half], image[:, :, self._half:]

    @property
    def path(self) -> str:
        return self._images.path


def _names_by_stem(names, describe) -> dict[str, str]:
    """{name without extension: name}; ValueError naming both files of a clash."""
    by_stem: dict[str, str] = {}
    for name in names:
        stem = posixpath.splitext(name)[0]
        if stem in by_stem:
            raise ValueError(f"{describe(by_stem[stem])} and {describe(name)} have the same "
                             "name; a pair is matched by name, so keep one of them")
        by_stem[stem] = name
    return by_stem


def match_pairs(sources: tuple[ImageSource, ImageSource], names=None,
                ignored=((), ())) -> list[tuple[str, str]]:
    """Pair the images of two sources by relative name without extension.

    Args:
        sources: the A and B image sources.
        names: the names to pair on each side (default: all of ``sources[i].names``).
        ignored: names on each side whose partner may be missing without an error (files
            left out as unreadable: their pair is dropped).

    Returns the ``(A name, B name)`` pairs sorted by name. Raises ValueError naming the file
    of an image without a partner, or two images of one side with the same name.
    """
    names = [src.names for src in sources] if names is None else names
    stems = [_names_by_stem(n, src.describe) for n, src in zip(names, sources, strict=True)]
    ignored_stems = [{posixpath.splitext(n)[0] for n in side} for side in ignored]
    for this, other in ((0, 1), (1, 0)):
        for stem, name in stems[this].items():
            if stem not in stems[other] and stem not in ignored_stems[other]:
                raise ValueError(
                    f"{sources[this].describe(name)} has no partner: expected an image named "
                    f"{stem!r} (any of .png, .jpg, .jpeg) in {sources[other].location}"
                )
    common = sorted(set(stems[0]) & set(stems[1]))
    return [(stems[0][s], stems[1][s]) for s in common]


class FolderPairDataset(PairedImageDataset):
    """Pairs in two aligned folders: ``A/x.png`` with ``B/x.png`` (or ``B/x.jpg``).

    Args:
        path: a folder or .zip holding the two folders (at the top of a zip).
        resolution: if given, the images must be ``resolution`` x ``resolution`` (a check).
        direction: ``"AtoB"`` or ``"BtoA"`` (see :class:`PairedImageDataset`).
        xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``. With
            ``on_bad_file="skip"`` a pair with an unreadable image is left out.
        folders: the names of the two folders (default ``("A", "B")``).

    Each folder is read recursively; names are matched on the relative path without its
    extension. Every image needs a partner, all A images one size and channel count, all B
    images too, and A and B one size (the channel counts may differ).
    """

    def __init__(self, path, resolution: int | None = None, direction: str = "AtoB",
                 xflip: bool = False, max_size: int | None = None, random_seed: int = 0,
                 on_bad_file: str = "raise", folders: tuple[str, str] = ("A", "B")):
        if not (isinstance(folders, (tuple, list)) and len(folders) == 2):
            raise TypeError(f"folders must be two folder names, got {folders!r}")
        sides = [ImageFolderDataset(path, resolution=resolution, on_bad_file=on_bad_file,
                                    subdir=folder) for folder in folders]
        pairs = match_pairs(
            (sides[0]._source, sides[1]._source), names=[s.image_names for s in sides],
            ignored=[sorted(set(s._source.names) - set(s.image_names)) for s in sides])
        a_shape, b_shape = sides[0].image_shape, sides[1].image_shape
        if a_shape[1:] != b_shape[1:]:
            raise ValueError(
                f"the images of a pair must have one size: {sides[0]._describe_raw(0)} is "
                f"{a_shape[2]}x{a_shape[1]} but {sides[1]._describe_raw(0)} is "
                f"{b_shape[2]}x{b_shape[1]} (as are all images of their folders)"
            )
        index = [{name: i for i, name in enumerate(side.image_names)} for side in sides]
        self._pairs = [(index[0][a], index[1][b]) for a, b in pairs]
        self._sides = sides
        if not self._pairs:
            raise ValueError(f"no readable pair in {os.fspath(path)!r}")
        super().__init__(name=os.path.basename(os.path.normpath(sides[0].path)),
                         num_pairs=len(self._pairs), a_shape=a_shape, b_shape=b_shape,
                         direction=direction, xflip=xflip, max_size=max_size,
                         random_seed=random_seed, on_bad_file=on_bad_file)
        self._skipped_files = sides[0].skipped_files + sides[1].skipped_files

    def _describe_raw(self, raw_index: int) -> str:
        return self._describe_side(raw_index, 0)

    def _describe_side(self, raw_index: int, side: int) -> str:
        return self._sides[side]._describe_raw(self._pairs[raw_index][side])

    def _load_raw_pair(self, raw_index: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self._pairs[raw_index]
        return self._sides[0]._load_raw_image(a), self._sides[1]._load_raw_image(b)

    @property
    def path(self) -> str:
        return self._sides[0].path

    @property
    def pair_names(self) -> list[tuple[str, str]]:
        """The (A name, B name) of every pair, relative to their folders, in raw order."""
        names = [side.image_names for side in self._sides]
        return [(names[0][a], names[1][b]) for a, b in self._pairs]
