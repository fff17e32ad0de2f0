"""The training data of a run, opened as its model family needs them.

Image models train on images (with labels when conditional), image-to-image models on
paired or unpaired images (see :mod:`gankern.data`); the family says which
(:attr:`gankern.train.family.GANFamily.data_kind`) and may add options of its own (the
translation direction). The trainer only sees the loader's batches: tuples of tensors,
uint8 images and float labels.
"""

from __future__ import annotations

import os

from gankern.data import open_dataset, open_paired_dataset, open_unpaired_dataset
from gankern.data.factory import BUILTIN_PREFIX
from gankern.data.image_files import CorruptImageError
from gankern.train.family import DataInfo, GANFamily
from gankern.train.options import TrainingOptions


def open_training_data(opts: TrainingOptions, family: GANFamily, check: bool = False,
                       progress: bool = False):
    """The dataset of a run: ``opts.data`` opened as ``family`` trains on it.

    With ``check``, every image is decoded once now (:meth:`gankern.data.ImageDataset.verify`),
    so that a truncated or corrupt file stops the run before anything is written, with the
    first bad files named (or, with ``opts.on_bad_file="skip"``, they are left out).
    """
    dataset = _open(opts, family)
    if check and hasattr(dataset, "verify"):
        try:
            dataset.verify(progress=progress)
        except CorruptImageError as exc:
            raise CorruptImageError(
                f"{exc}. Replace or remove these files, or train without them with "
                "--skip-bad-files (on_bad_file='skip')", path=exc.path) from None
    return dataset


def _open(opts: TrainingOptions, family: GANFamily):
    if not opts.data.startswith(BUILTIN_PREFIX) and not os.path.exists(opts.data):
        raise ValueError(f"--data {opts.data!r} does not exist (expected a folder or .zip of "
                         f"images, or {BUILTIN_PREFIX}NAME)")
    common = dict(
        resolution=opts.resolution, xflip=opts.mirror, max_size=opts.max_images,
        random_seed=opts.seed, on_bad_file=opts.on_bad_file,
    )  # fmt: skip
    kind = family.data_kind
    if opts.cond and family.labels == "never":
        raise ValueError(f"model {family.name!r} has no conditional variant (--cond)")
    if kind == "paired":
        return open_paired_dataset(opts.data, **family.data_options(), **common)
    if kind == "unpaired":
        return open_unpaired_dataset(opts.data, **family.data_options(), **common)
    use_labels = opts.cond or family.labels == "always"
    try:
        dataset = open_dataset(opts.data, use_labels=use_labels, **family.data_options(),
                               **common)
    except ValueError as exc:
        if use_labels and "has no labels" in str(exc):
            needs = "--cond" if opts.cond else f"model {family.name!r}"
            raise ValueError(f"{needs} needs labels, but {opts.data} has none (no dataset.json "
                             "with labels; gankern dataset copies them from its source)") from exc
        raise
    if family.labels == "always" and dataset.c_dim == 0:
        raise ValueError(f"model {family.name!r} is conditional, but {dataset.name} has no "
                         "labels (dataset.json)")
    return dataset


def describe_data(dataset, kind: str) -> DataInfo:
    """The :class:`DataInfo` of an opened dataset."""
    if kind == "images":
        return DataInfo(name=dataset.name, kind="images", resolution=dataset.resolution,
                        channels=dataset.num_channels, c_dim=dataset.c_dim,
                        num_images=len(dataset))
    return DataInfo(name=dataset.name, kind=kind, resolution=dataset.resolution,
                    channels=dataset.in_channels, channels_b=dataset.out_channels,
                    num_images=len(dataset))
