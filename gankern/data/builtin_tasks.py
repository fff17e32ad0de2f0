"""Built-in image-to-image tasks made from the built-in digits (no download, deterministic).

* ``builtin:digits-edges`` (paired, :class:`BuiltinDigitsEdgesDataset`): A is the outline
  of a digit, B the digit (``"AtoB"``: edges -> digit, as pix2pix's edges2shoes; ``"BtoA"``
  the other way).
* ``builtin:digits-inverted`` (unpaired, :class:`BuiltinDigitsInvertedDataset`): A is white
  digits on black, B black digits on white, from disjoint halves of the digits.
* ``builtin:digits-color`` (unpaired, :class:`BuiltinDigitsColorDataset`): A is gray digits
  (as RGB, so that CycleGAN's identity loss applies), B digits drawn in colors, from
  disjoint halves of the digits.
* ``builtin:digits-sr`` (:class:`BuiltinDigitsSRDataset`): the high-resolution digits of a
  4x super-resolution task; the low-resolution inputs are made on the fly by the recipe
  (:class:`gankern.nn.BicubicDownsample`; 32 px digits give 8 px inputs, the size of the
  original scans).

All 1-channel except ``digits-color`` (3 channels), ``resolution`` x ``resolution`` (a power
of two from 8 to 1024, default 32), in memory.
"""

from __future__ import annotations

import colorsys

import numpy as np

from gankern.data.builtin import BuiltinDigitsDataset, InMemoryImageDataset, load_digits
from gankern.data.paired import PairedImageDataset
from gankern.data.unpaired import UnpairedImageDataset

# Digits are stroke (255) on background (0); a pixel belongs to the stroke above this level.
_STROKE_THRESHOLD = 127
# Seed of the stroke colors of builtin:digits-color (fixed: the dataset is deterministic).
_COLOR_SEED = 2017


def digit_edges(images: np.ndarray) -> np.ndarray:
    """The outlines of the strokes of uint8 ``[N, 1, H, W]`` images: 255 on the background
    pixels that touch the stroke (4-neighbourhood, ``H // 32`` pixels thick, at least 1),
    0 elsewhere."""
    from scipy import ndimage

    stroke = images > _STROKE_THRESHOLD
    cross = ndimage.generate_binary_structure(2, 1)[None, None]  # no mixing across images
    thickness = max(1, images.shape[-1] // 32)
    grown = ndimage.binary_dilation(stroke, structure=cross, iterations=thickness)
    return np.where(grown & ~stroke, 255, 0).astype(np.uint8)


def colorize_digits(images: np.ndarray, seed: int = _COLOR_SEED) -> np.ndarray:
    """uint8 ``[N, 1, H, W]`` gray digits -> ``[N, 3, H, W]`` drawn in a saturated color,
    one per image (hue uniform, drawn from ``seed``), on black."""
    hues = np.random.default_rng(seed).uniform(0.0, 1.0, size=len(images))
    colors = np.array([colorsys.hsv_to_rgb(h, 1.0, 1.0) for h in hues])  # [N, 3] in [0, 1]
    colored = images.astype(np.float64) * colors[:, :, None, None]
    return np.clip(np.rint(colored), 0, 255).astype(np.uint8)


class BuiltinDigitsEdgesDataset(PairedImageDataset):
    """``builtin:digits-edges``: pairs (outline, digit), 1 channel each.

    Args:
        resolution: image side (default 32).
        direction: ``"AtoB"`` (edges -> digit) or ``"BtoA"`` (digit -> edges).
        xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``.
    """

    in_memory = True

    def __init__(self, resolution: int = 32, direction: str = "AtoB", xflip: bool = False,
                 max_size: int | None = None, random_seed: int = 0, on_bad_file: str = "raise"):
        digits, _ = load_digits(resolution)
        self._a, self._b = digit_edges(digits), digits
        super().__init__(name="digits-edges", num_pairs=len(digits), a_shape=digits.shape[1:],
                         b_shape=digits.shape[1:], direction=direction, xflip=xflip,
                         max_size=max_size, random_seed=random_seed, on_bad_file=on_bad_file)

    def _load_raw_pair(self, raw_index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._a[raw_index], self._b[raw_index]


def _split_domains(a_images, b_images, *, name, xflip, max_size, random_seed,
                   on_bad_file) -> tuple[InMemoryImageDataset, InMemoryImageDataset]:
    """Domain A from the even-numbered digits of ``a_images``, B from the odd-numbered ones
    of ``b_images``: no digit appears in both."""
    common = dict(xflip=xflip, max_size=max_size, random_seed=random_seed,
                  on_bad_file=on_bad_file)
    return (InMemoryImageDataset(a_images[0::2], name=f"{name}/A", **common),
            InMemoryImageDataset(b_images[1::2], name=f"{name}/B", **common))


class BuiltinDigitsInvertedDataset(UnpairedImageDataset):
    """``builtin:digits-inverted``: A white-on-black digits, B black-on-white ones (899 and
    898 images of different digits), 1 channel.

    Args:
        resolution: image side (default 32).
        direction: ``"AtoB"`` or ``"BtoA"``.
        xflip, max_size, random_seed, on_bad_file: applied to each domain (see
            ``ImageDataset``).
    """

    def __init__(self, resolution: int = 32, direction: str = "AtoB", xflip: bool = False,
                 max_size: int | None = None, random_seed: int = 0, on_bad_file: str = "raise"):
        digits, _ = load_digits(resolution)
        a, b = _split_domains(digits, 255 - digits, name="digits-inverted", xflip=xflip,
                              max_size=max_size, random_seed=random_seed,
                              on_bad_file=on_bad_file)
        super().__init__(a, b, name="digits-inverted", direction=direction)


class BuiltinDigitsColorDataset(UnpairedImageDataset):
    """``builtin:digits-color``: A gray digits (3 equal channels), B digits in colors (899
    and 898 images of different digits), 3 channels.

    Args:
        resolution: image side (default 32).
        direction: ``"AtoB"`` (colorize) or ``"BtoA"`` (decolorize).
        xflip, max_size, random_seed, on_bad_file: applied to each domain.
    """

    def __init__(self, resolution: int = 32, direction: str = "AtoB", xflip: bool = False,
                 max_size: int | None = None, random_seed: int = 0, on_bad_file: str = "raise"):
        digits, _ = load_digits(resolution)
        gray = np.repeat(digits, 3, axis=1)
        a, b = _split_domains(gray, colorize_digits(digits), name="digits-color", xflip=xflip,
                              max_size=max_size, random_seed=random_seed,
                              on_bad_file=on_bad_file)
        super().__init__(a, b, name="digits-color", direction=direction)


class BuiltinDigitsSRDataset(BuiltinDigitsDataset):
    """``builtin:digits-sr``: the built-in digits as high-resolution images (default 32 px)
    for 4x super-resolution; the recipe makes the low-resolution inputs on the fly with
    :class:`gankern.nn.BicubicDownsample`. Arguments as :class:`BuiltinDigitsDataset`."""

    dataset_name = "digits-sr"
