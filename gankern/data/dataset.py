"""Image datasets with StyleGAN2-ADA's semantics: ``ImageDataset`` (the common base) and
``ImageFolderDataset`` (a folder or zip of PNG/JPEG images).

An item is ``(image, label)``: ``image`` is a uint8 numpy array [C, H, W] (C = 1 or 3),
``label`` a float32 numpy array [c_dim] (one-hot for class labels; shape [0] without
labels). The default DataLoader collation turns a batch into tensors [B, C, H, W] uint8
and [B, c_dim] float32.
"""

from __future__ import annotations

import numbers
import os
import sys
import warnings

import numpy as np
import torch

from gankern.data.image_files import (
    LABELS_FILE,
    CorruptImageError,
    ImageSource,
    decode_image,
    image_to_chw,
    read_image_header,
)
from gankern.data.labels import labels_to_array, one_hot, read_label_map

ON_BAD_FILE_CHOICES = ("raise", "skip")
_CHANNELS_OF_MODE = {"L": 1, "RGB": 3}


def check_optional_int(name: str, value, *, min_value: int) -> int | None:
    """``value`` as an int >= min_value, or None; TypeError/ValueError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return int(value)


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


class ImageDataset(torch.utils.data.Dataset):
    """Base class: subset selection (``max_size``), x-flips and labels over raw images.

    Subclasses pass the raw image count, shape and labels, and implement
    ``_load_raw_image(raw_index) -> uint8 [C, H, W]`` (raising CorruptImageError for a file
    that cannot be decoded).

    Args:
        name: a short name for logs (the folder or zip name, without extension).
        raw_shape: [N, C, H, W] of all raw images.
        raw_labels: int64 [N] class indices, float32 [N, K] vectors, or None.
        use_labels: return labels (requires ``raw_labels``); otherwise labels have shape [0].
        xflip: append a horizontally mirrored copy of every image (doubles the length).
        max_size: keep a random subset of at most this many raw images (before x-flips),
            drawn with ``random_seed``; None keeps all.
        random_seed: seed of that subset.
        on_bad_file: "raise" (an image that cannot be decoded raises CorruptImageError naming
            it) or "skip" (it is skipped, counted in ``num_skipped`` and reported by a
            warning; the item is served from the next readable image instead).
    """

    def __init__(
        self,
        *,
        name: str,
        raw_shape,
        raw_labels: np.ndarray | None,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        random_seed: int = 0,
        on_bad_file: str = "raise",
    ):
        for flag_name, flag in (("use_labels", use_labels), ("xflip", xflip)):
            if not isinstance(flag, bool):
                raise TypeError(f"{flag_name} must be a bool, got {type(flag).__name__}")
        max_size = check_optional_int("max_size", max_size, min_value=1)
        random_seed = check_optional_int("random_seed", random_seed, min_value=0)
        if random_seed is None:
            raise TypeError("random_seed must be an int, got None")
        self._on_bad_file = check_choice("on_bad_file", on_bad_file, ON_BAD_FILE_CHOICES)
        self._name = name
        self._raw_shape = tuple(int(s) for s in raw_shape)
        num_raw = self._raw_shape[0]

        self._raw_idx = np.arange(num_raw, dtype=np.int64)
        if max_size is not None and max_size < num_raw:
            rng = np.random.RandomState(random_seed % 2**32)
            self._raw_idx = np.sort(rng.permutation(num_raw)[:max_size])
        self._xflip = np.zeros(len(self._raw_idx), dtype=bool)
        if xflip:
            self._raw_idx = np.concatenate([self._raw_idx, self._raw_idx])
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

        if use_labels and raw_labels is None:
            raise ValueError(f"use_labels=True but dataset {name!r} has no labels "
                             f"(no {LABELS_FILE} with labels)")
        if not use_labels:
            self._label_matrix = np.zeros((num_raw, 0), dtype=np.float32)
        elif raw_labels.dtype == np.int64:
            self._label_matrix = one_hot(raw_labels, int(raw_labels.max()) + 1)
        else:
            self._label_matrix = np.asarray(raw_labels, dtype=np.float32).reshape(num_raw, -1)
        self._bad_raw = set()  # raw indices found undecodable in this process
        self._skipped_files: list[str] = []

    # --- to be provided by subclasses -------------------------------------------------------

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        raise NotImplementedError

    def _describe_raw(self, raw_index: int) -> str:
        return f"{self._name}[{raw_index}]"

    # --- the Dataset protocol ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._raw_idx)

    def _check_index(self, idx) -> int:
        if isinstance(idx, bool) or not isinstance(idx, (numbers.Integral, np.integer)):
            raise TypeError(f"index must be an int, got {type(idx).__name__}")
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a dataset of {n} items")
        return int(idx) % n

    def __getitem__(self, idx):
        idx = self._check_index(idx)
        raw, image = self._load_readable(int(self._raw_idx[idx]))
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return np.ascontiguousarray(image), self._label_matrix[raw].copy()

    def _load_readable(self, raw: int) -> tuple[int, np.ndarray]:
        """Load raw image ``raw``; under on_bad_file="skip", the next readable one instead."""
        num_raw = self._raw_shape[0]
        for step in range(num_raw):
            candidate = (raw + step) % num_raw
            if candidate in self._bad_raw:
                continue
            try:
                image = self._load_raw_image(candidate)
                if image.shape != self._raw_shape[1:]:
                    where = self._describe_raw(candidate)
                    raise CorruptImageError(f"image {where} has shape {image.shape}, "
                                            f"expected {self._raw_shape[1:]}", path=where)
                return candidate, image
            except CorruptImageError as exc:
                if self._on_bad_file == "raise":
                    raise
                self._bad_raw.add(candidate)
                self._skipped_files.append(exc.path or self._describe_raw(candidate))
                warnings.warn(
                    f"skipping unreadable image ({self.num_skipped} skipped so far in this "
                    f"process): {exc}", RuntimeWarning, stacklevel=3,
                )
        raise ValueError(f"dataset {self._name!r} has no readable image left "
                         f"(all {num_raw} failed to decode)")

    def verify(self, *, progress: bool = False, max_reported: int = 5,
               threads: int | None = None) -> list[str]:
        """Decode every image in use once, before training, instead of failing mid-run.

        Each image is decoded and checked against the dataset's shape (a truncated PNG, a
        corrupt JPEG, an image of another size or channel count). With
        ``on_bad_file="raise"`` the first bad files found (up to ``max_reported``) are
        reported together in one :class:`CorruptImageError`; with ``"skip"`` every bad file
        is left out of the dataset (``len`` shrinks; ``skipped_files`` lists them) and
        reported by one warning.

        Args:
            progress: show a progress bar on stderr.
            max_reported: how many bad files the error lists.
            threads: decoding threads (None: up to 8, from the cores available).

        Returns:
            The paths of the bad files found (empty when all decode).

        Raises:
            CorruptImageError: with ``on_bad_file="raise"``, listing the bad files found.
            ValueError: with ``"skip"``, when no image is readable.
        """
        if getattr(self, "in_memory", False):
            return []
        raw_indices = [int(i) for i in np.unique(self._raw_idx) if int(i) not in self._bad_raw]
        stop_early = self._on_bad_file == "raise"
        bad: dict[int, str] = {}

        def check(raw: int) -> tuple[int, str | None]:
            try:
                image = self._load_raw_image(raw)
            except CorruptImageError as exc:
                return raw, str(exc)
            if image.shape != self._raw_shape[1:]:
                return raw, (f"image {self._describe_raw(raw)} has shape {image.shape}, "
                             f"expected {self._raw_shape[1:]}")
            return raw, None

        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        workers = threads or max(1, min(8, len(os.sched_getaffinity(0))
                                        if hasattr(os, "sched_getaffinity") else 1))
        with ThreadPoolExecutor(workers) as pool, tqdm(
            total=len(raw_indices), unit="img", desc=f"checking {self._name}",
            disable=None if progress else True, file=sys.stderr, leave=False,  # None: TTYs only
        ) as bar:
            # Bounded windows, so that a "raise" run stops soon after its first bad files.
            window = 64 * workers
            for start in range(0, len(raw_indices), window):
                for raw, problem in pool.map(check, raw_indices[start : start + window]):
                    if problem is not None:
                        bad[raw] = problem
                    bar.update(1)
                if stop_early and len(bad) >= max_reported:
                    break
        if not bad:
            return []
        paths = [self._describe_raw(raw) for raw in sorted(bad)]
        if stop_early:
            shown = "; ".join(bad[raw] for raw in sorted(bad)[:max_reported])
            more = "at least " if len(bad) >= max_reported else ""
            raise CorruptImageError(
                f"{more}{len(bad)} of the images of {self._name} cannot be used: {shown}",
                path=paths[0])
        keep = ~np.isin(self._raw_idx, np.array(sorted(bad), dtype=np.int64))
        if not keep.any():
            raise ValueError(f"dataset {self._name!r} has no readable image (all "
                             f"{len(bad)} failed to decode)")
        self._raw_idx, self._xflip = self._raw_idx[keep], self._xflip[keep]
        self._bad_raw.update(bad)
        self._skipped_files.extend(paths)
        warnings.warn(f"skipping {len(bad)} unreadable image file(s) of {self._name} (first: "
                      f"{paths[0]}); {self.num_images} images remain", RuntimeWarning,
                      stacklevel=2)
        return paths

    def get_label(self, idx) -> np.ndarray:
        """The label of item ``idx`` (float32 [c_dim]) without loading its image."""
        return self._label_matrix[int(self._raw_idx[self._check_index(idx)])].copy()

    # --- properties -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_images(self) -> int:
        """The number of distinct images: ``len`` without the x-flipped copies."""
        return int(np.count_nonzero(~self._xflip))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """[C, H, W] of every image."""
        return self._raw_shape[1:]

    @property
    def num_channels(self) -> int:
        return self._raw_shape[1]

    @property
    def resolution(self) -> int:
        """The side of the (square) images; ValueError if they are not square."""
        _, height, width = self.image_shape
        if height != width:
            raise ValueError(f"dataset {self._name!r} has non-square images ({width}x{height}); "
                             "StyleGAN2 needs square ones (see `gankern dataset --resolution`)")
        return height

    @property
    def c_dim(self) -> int:
        """Length of the label vectors (0 without labels)."""
        return self._label_matrix.shape[1]

    @property
    def label_shape(self) -> tuple[int]:
        return (self.c_dim,)

    @property
    def has_labels(self) -> bool:
        return self.c_dim > 0

    @property
    def num_skipped(self) -> int:
        """How many image files were skipped as unreadable (on_bad_file="skip").

        Files found bad when the dataset was built count everywhere; files that fail to
        decode later count in the process that read them (a DataLoader worker reports
        its own with a warning).
        """
        return len(self._skipped_files)

    @property
    def skipped_files(self) -> list[str]:
        """The paths of the skipped files (see ``num_skipped``)."""
        return list(self._skipped_files)

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return (f"{type(self).__name__}(name={self._name!r}, len={len(self)}, "
                f"shape={c}x{h}x{w}, c_dim={self.c_dim})")


class ImageFolderDataset(ImageDataset):
    """The PNG/JPEG images of a folder (searched recursively) or of a zip archive.

    All images must have the same size and the same channel count: Pillow mode "L"
    (1 channel) or "RGB" (3 channels). ``gankern dataset`` converts other collections into
    that form. Every file's header is checked when the dataset is built (cheap: nothing
    is decoded), so a file that is not a PNG/JPEG, an image of another size or mode is
    reported at once, naming the file; a file whose pixel data is corrupt (a truncated
    PNG, say) is found when it is first decoded. Labels come from ``dataset.json`` at the
    top of the folder or zip (the layout StyleGAN2-ADA writes).

    Args:
        path: a folder or a .zip file.
        resolution: if given, the images must be ``resolution`` x ``resolution`` (a check:
            this class never resizes).
        subdir: read only this subfolder of ``path`` (e.g. ``"trainA"``; in a zip, the
            members under ``subdir/``); its ``dataset.json``, if any, holds the labels.
        use_labels, xflip, max_size, random_seed: see ``ImageDataset``.
        on_bad_file: "raise" (default) or "skip". With "skip", unreadable files found at
            construction are left out and counted, with one warning giving the count;
            files that fail to decode later are skipped as ``ImageDataset`` describes.

    A zip archive is opened lazily once per process, so the dataset works with DataLoader
    worker processes (fork or spawn).
    """

    def __init__(
        self,
        path,
        resolution: int | None = None,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        random_seed: int = 0,
        on_bad_file: str = "raise",
        subdir: str | None = None,
    ):
        resolution = check_optional_int("resolution", resolution, min_value=1)
        check_choice("on_bad_file", on_bad_file, ON_BAD_FILE_CHOICES)
        self._source = ImageSource(path, subdir=subdir)
        if not self._source.names:
            raise ValueError(f"path {self._source.location!r} contains no PNG or JPEG images")
        names, shape, skipped = self._scan(resolution, on_bad_file)
        self._names = names
        raw_labels = None
        if use_labels:
            label_map = read_label_map(self._source)
            if label_map is not None:
                raw_labels = labels_to_array(label_map, names,
                                             self._source.describe(LABELS_FILE))
        base = os.path.basename(os.path.normpath(self._source.path))
        name = os.path.splitext(base)[0] if self._source.is_zip else base
        super().__init__(
            name=name if subdir is None else f"{name}/{subdir.strip('/')}",
            raw_shape=(len(names), *shape),
            raw_labels=raw_labels,
            use_labels=use_labels,
            xflip=xflip,
            max_size=max_size,
            random_seed=random_seed,
            on_bad_file=on_bad_file,
        )
        self._skipped_files = skipped
        if skipped:
            warnings.warn(
                f"skipped {len(skipped)} unreadable image file(s) in {self._source.location} "
                f"(first: {skipped[0]}); {len(names)} images remain",
                RuntimeWarning, stacklevel=2,
            )

    def _scan(self, resolution, on_bad_file):
        """Check every header; returns (readable names, [C, H, W], skipped paths)."""
        names, skipped = [], []
        shape = first = None
        for name in self._source.names:
            try:
                header = read_image_header(self._source, name)
            except CorruptImageError as exc:
                if on_bad_file == "raise":
                    raise
                skipped.append(exc.path)
                continue
            where = self._source.describe(name)
            channels = _CHANNELS_OF_MODE.get(header.mode)
            if channels is None:
                raise ValueError(
                    f"image {where} has Pillow mode {header.mode!r}, expected 'L' (1 channel) "
                    "or 'RGB' (3 channels); convert the images with "
                    "`gankern dataset --channels 1|3`"
                )
            this = (channels, header.height, header.width)
            if resolution is not None and (header.width, header.height) != (resolution,) * 2:
                raise ValueError(
                    f"resolution={resolution} expects {resolution}x{resolution} images, got "
                    f"{header.width}x{header.height} for {where}; resize them with "
                    f"`gankern dataset --resolution {resolution}x{resolution}`"
                )
            if shape is None:
                shape, first = this, where
            elif this != shape:
                raise ValueError(
                    f"all images must have the same size and channel count: {where} is "
                    f"{this[2]}x{this[1]} with {this[0]} channel(s), but {first} is "
                    f"{shape[2]}x{shape[1]} with {shape[0]} channel(s); make them uniform "
                    "with `gankern dataset --resolution WxH --channels 1|3`"
                )
            names.append(name)
        if not names:
            raise ValueError(f"no readable PNG or JPEG image in {self._source.location!r} "
                             f"({len(skipped)} unreadable file(s) skipped, first: {skipped[0]})")
        self._source.close()  # reopened lazily by whichever process reads next
        return names, shape, skipped

    @property
    def path(self) -> str:
        return self._source.path

    @property
    def image_names(self) -> list[str]:
        """The relative names of the readable images, in raw-index order."""
        return list(self._names)

    def _describe_raw(self, raw_index: int) -> str:
        return self._source.describe(self._names[raw_index])

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        name = self._names[raw_index]
        image = decode_image(self._source, name)
        if _CHANNELS_OF_MODE.get(image.mode) != self.num_channels:
            where = self._source.describe(name)
            raise CorruptImageError(f"image {where} decoded to mode {image.mode!r}, expected "
                                    f"{self.num_channels} channel(s)", path=where)
        return image_to_chw(image)
