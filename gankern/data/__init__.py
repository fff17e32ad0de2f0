"""Datasets: the built-in digits, image folders and zips, and their loaders."""

from gankern.data.builtin import DIGITS_NUM_CLASSES, DIGITS_NUM_IMAGES, load_digits

__all__ = ["DIGITS_NUM_CLASSES", "DIGITS_NUM_IMAGES", "load_digits"]
