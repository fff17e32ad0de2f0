"""A built-in dataset of real images that needs no download.

scikit-learn ships the UCI optical handwritten digits (1797 images of 8x8 pixels, 10
classes) inside its wheel, so they are on every machine that has gankern installed. They
are upscaled here to a power-of-two resolution so that a small StyleGAN2 can train on them
out of the box.
"""

from __future__ import annotations

import functools

import numpy as np

from gankern.data.dataset import ImageDataset

DIGITS_NUM_CLASSES = 10
DIGITS_NUM_IMAGES = 1797
# sklearn's digit images hold ink counts 0..16 (from 4x4 blocks of a 32x32 bitmap).
_DIGITS_MAX_VALUE = 16.0


def check_digits_resolution(resolution) -> int:
    """Validate the resolution of the built-in digits: a power of two from 8 to 1024."""
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise TypeError(f"resolution must be an int, got {type(resolution).__name__}")
    resolution = int(resolution)
    if resolution < 8 or resolution > 1024 or resolution & (resolution - 1):
        raise ValueError(
            f"resolution must be a power of two between 8 and 1024, got {resolution}"
        )
    return resolution


@functools.lru_cache(maxsize=4)
def _load_digits_cached(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from sklearn.datasets import load_digits as sklearn_load_digits

    digits = sklearn_load_digits()
    source = np.asarray(digits.images, dtype=np.float32) * (255.0 / _DIGITS_MAX_VALUE)
    images = np.empty((len(source), 1, resolution, resolution), dtype=np.uint8)
    for i, image in enumerate(source):
        if resolution == source.shape[-1]:
            upscaled = image
        else:
            # Resize in float ("F" mode) so that nothing is rounded before the filter;
            # bicubic overshoots a little around strokes, hence the clip.
            pil = Image.fromarray(image)  # float32 -> mode "F"
            upscaled = np.asarray(pil.resize((resolution, resolution), Image.Resampling.BICUBIC))
        images[i, 0] = np.clip(np.rint(upscaled), 0, 255).astype(np.uint8)
    labels = np.asarray(digits.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_digits(resolution: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled handwritten digits, upscaled to ``resolution`` x ``resolution``.

    Args:
        resolution: output side in pixels, a power of two from 8 to 1024 (8 is the native
            size; larger sizes are bicubic upscales, done with Pillow in floating point).

    Returns:
        ``(images, labels)``: ``images`` is uint8 of shape ``[1797, 1, resolution,
        resolution]``, grayscale with a white (255) digit on a black (0) background;
        ``labels`` is int64 of shape ``[1797]`` with the digit, 0..9. Both are fresh,
        writable copies of an in-memory cache, so the result is identical on every call
        and callers may modify it freely.
    """
    images, labels = _load_digits_cached(check_digits_resolution(resolution))
    return images.copy(), labels.copy()


class InMemoryImageDataset(ImageDataset):
    """Images held in a uint8 array ``[N, C, H, W]``, with the interface of
    ``ImageFolderDataset``. Nothing can be unreadable; ``on_bad_file`` is accepted for a
    uniform interface.

    Args:
        images: uint8 ``[N, C, H, W]`` (C = 1 or 3).
        name: a short name for logs.
        labels: int64 ``[N]`` class indices, float32 ``[N, K]`` vectors, or None.
        use_labels, xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``.
    """

    in_memory = True

    def __init__(self, images: np.ndarray, *, name: str, labels: np.ndarray | None = None,
                 use_labels: bool = False, xflip: bool = False, max_size: int | None = None,
                 random_seed: int = 0, on_bad_file: str = "raise"):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"images must be uint8 [N, 1 or 3, H, W], got {images.dtype} "
                             f"{tuple(images.shape)}")
        self._images = images
        super().__init__(
            name=name,
            raw_shape=images.shape,
            raw_labels=labels,
            use_labels=use_labels,
            xflip=xflip,
            max_size=max_size,
            random_seed=random_seed,
            on_bad_file=on_bad_file,
        )

    def _load_raw_image(self, raw_index: int) -> np.ndarray:
        return self._images[raw_index]


class BuiltinDigitsDataset(InMemoryImageDataset):
    """The built-in digits (see ``load_digits``) as a dataset, held in memory.

    Same interface as ``ImageFolderDataset``: items are (uint8 [1, R, R], float32 label),
    with one-hot labels of length 10 when ``use_labels`` is set. No files, so nothing can
    be unreadable; ``on_bad_file`` is accepted for a uniform interface.

    Args:
        resolution: image side, a power of two from 8 to 1024 (default 32).
        use_labels, xflip, max_size, random_seed, on_bad_file: see ``ImageDataset``.
    """

    dataset_name = "digits"

    def __init__(
        self,
        resolution: int = 32,
        use_labels: bool = False,
        xflip: bool = False,
        max_size: int | None = None,
        random_seed: int = 0,
        on_bad_file: str = "raise",
    ):
        images, labels = load_digits(resolution)
        super().__init__(
            images,
            name=self.dataset_name,
            labels=labels,
            use_labels=use_labels,
            xflip=xflip,
            max_size=max_size,
            random_seed=random_seed,
            on_bad_file=on_bad_file,
        )
