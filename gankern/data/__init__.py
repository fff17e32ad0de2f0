"""Datasets: the built-in digits and tasks made from them, image folders and zips (single
images, pairs, two unpaired domains), and their loaders."""

from gankern.data.builtin import (
    DIGITS_NUM_CLASSES,
    DIGITS_NUM_IMAGES,
    BuiltinDigitsDataset,
    InMemoryImageDataset,
    load_digits,
)
from gankern.data.builtin_tasks import (
    BuiltinDigitsColorDataset,
    BuiltinDigitsEdgesDataset,
    BuiltinDigitsInvertedDataset,
    BuiltinDigitsSRDataset,
)
from gankern.data.dataset import ImageDataset, ImageFolderDataset
from gankern.data.factory import (
    BUILTIN_DATASETS,
    BUILTIN_PAIRED_DATASETS,
    BUILTIN_UNPAIRED_DATASETS,
    DEFAULT_DATASET,
    open_dataset,
    open_paired_dataset,
    open_unpaired_dataset,
)
from gankern.data.image_files import CorruptImageError
from gankern.data.loader import InfiniteSampler, UnpairedSampler, infinite_loader
from gankern.data.paired import FolderPairDataset, PairedImageDataset, SideBySidePairDataset
from gankern.data.unpaired import UnpairedImageDataset

__all__ = [
    "BUILTIN_DATASETS",
    "BUILTIN_PAIRED_DATASETS",
    "BUILTIN_UNPAIRED_DATASETS",
    "DEFAULT_DATASET",
    "DIGITS_NUM_CLASSES",
    "DIGITS_NUM_IMAGES",
    "BuiltinDigitsColorDataset",
    "BuiltinDigitsDataset",
    "BuiltinDigitsEdgesDataset",
    "BuiltinDigitsInvertedDataset",
    "BuiltinDigitsSRDataset",
    "CorruptImageError",
    "FolderPairDataset",
    "ImageDataset",
    "ImageFolderDataset",
    "InMemoryImageDataset",
    "InfiniteSampler",
    "PairedImageDataset",
    "SideBySidePairDataset",
    "UnpairedImageDataset",
    "UnpairedSampler",
    "infinite_loader",
    "load_digits",
    "open_dataset",
    "open_paired_dataset",
    "open_unpaired_dataset",
]
