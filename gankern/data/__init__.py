"""Datasets: the built-in digits, image folders and zips, and their loaders."""

from gankern.data.builtin import (
    DIGITS_NUM_CLASSES,
    DIGITS_NUM_IMAGES,
    BuiltinDigitsDataset,
    load_digits,
)
from gankern.data.dataset import ImageDataset, ImageFolderDataset
from gankern.data.factory import BUILTIN_DATASETS, DEFAULT_DATASET, open_dataset
from gankern.data.image_files import CorruptImageError
from gankern.data.loader import InfiniteSampler, infinite_loader

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_DATASET",
    "DIGITS_NUM_CLASSES",
    "DIGITS_NUM_IMAGES",
    "BuiltinDigitsDataset",
    "CorruptImageError",
    "ImageDataset",
    "ImageFolderDataset",
    "InfiniteSampler",
    "infinite_loader",
    "load_digits",
    "open_dataset",
]
