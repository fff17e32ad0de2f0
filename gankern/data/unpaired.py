"""Unpaired image datasets (CycleGAN): two domains of images drawn independently.

On disk, CycleGAN's layout: a folder or zip with ``trainA/`` and ``trainB/`` (and
``testA/``, ``testB/`` for ``split="test"``), each any number of PNG/JPEG images of one size.
An item is a pair of uint8 arrays ``(a, b)`` (``(b, a)`` for ``direction="BtoA"``), one
image of each domain. The pairing is random and independent of the images' order: the
loader (:func:`~gankern.data.infinite_loader`) draws index pairs with an
:class:`~gankern.data.UnpairedSampler`, which walks each domain through its own seeded
permutations, so the pairs change every epoch, each image of each domain is used equally
often, and the stream is reproducible from the seed and the step (a resumed run continues
it). Indexing with one int ``k`` gives the fixed pair ``(A[k % n_A], B[k % n_B])``.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from gankern.data.dataset import ImageDataset, check_choice
from gankern.data.loader import UnpairedSampler
from gankern.data.paired import DIRECTIONS


class UnpairedImageDataset(torch.utils.data.Dataset):
    """Images of two domains, A and B; items ``(input, target)`` of uint8 ``[C, H, W]``.

    Args:
        a, b: the images of each domain (e.g. :class:`~gankern.data.ImageFolderDataset`,
            built with their own ``xflip``, ``max_size``...). They must have one image size;
            the channel counts may differ.
        name: a short name for logs.
        direction: ``"AtoB"`` (items ``(a, b)``) or ``"BtoA"`` (items ``(b, a)``).

    ``len`` is ``max(len(a), len(b))`` (CycleGAN's epoch).
    """

    def __init__(self, a: ImageDataset, b: ImageDataset, *, name: str,
                 direction: str = "AtoB"):
        for arg, domain in (("a", a), ("b", b)):
            if not isinstance(domain, ImageDataset):
                raise TypeError(f"{arg} must be an ImageDataset, got {type(domain).__name__}")
        if a.image_shape[1:] != b.image_shape[1:]:
            _, ha, wa = a.image_shape
            _, hb, wb = b.image_shape
            raise ValueError(
                f"the two domains must have one image size: {_first(a)} is {wa}x{ha} but "
                f"{_first(b)} is {wb}x{hb} (as are all images of their domains)"
            )
        self._domains = (a, b)
        self._name = name
        self._direction = check_choice("direction", direction, DIRECTIONS)
        self.in_memory = all(getattr(d, "in_memory", False) for d in self._domains)

    def __len__(self) -> int:
        return max(len(d) for d in self._domains)

    def __getitem__(self, idx):
        """``dataset[(i, j)]``: ``(A[i], B[j])``; ``dataset[k]``: ``(A[k % n_A], B[k % n_B])``
        (both swapped for ``"BtoA"``)."""
        if isinstance(idx, (tuple, list)):
            if len(idx) != 2:
                raise TypeError(f"index must be an int or a pair (i, j), got {idx!r}")
            i, j = idx
        else:
            if isinstance(idx, bool) or not isinstance(idx, (numbers.Integral, np.integer)):
                raise TypeError(f"index must be an int or a pair (i, j), got "
                                f"{type(idx).__name__}")
            n = len(self)
            if not -n <= idx < n:
                raise IndexError(f"index {idx} is out of range for a dataset of {n} items")
            idx = int(idx) % n
            i, j = idx % len(self._domains[0]), idx % len(self._domains[1])
        a, _ = self._domains[0][i]
        b, _ = self._domains[1][j]
        return (a, b) if self._direction == "AtoB" else (b, a)

    def make_sampler(self, **sampling) -> UnpairedSampler:
        """The sampler :func:`~gankern.data.infinite_loader` uses: independent pairs."""
        return UnpairedSampler((len(self._domains[0]), len(self._domains[1])), **sampling)

    # --- properties -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def direction(self) -> str:
        return self._direction

    @property
    def a(self) -> ImageDataset:
        """The images of domain A."""
        return self._domains[0]

    @property
    def b(self) -> ImageDataset:
        """The images of domain B."""
        return self._domains[1]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the first image of an item (A for ``"AtoB"``)."""
        return self._ordered()[0].image_shape

    @property
    def target_shape(self) -> tuple[int, int, int]:
        """``[C, H, W]`` of the second image of an item (B for ``"AtoB"``)."""
        return self._ordered()[1].image_shape

    @property
    def in_channels(self) -> int:
        return self.input_shape[0]

    @property
    def out_channels(self) -> int:
        return self.target_shape[0]

    @property
    def resolution(self) -> int:
        """The side of the (square) images; ValueError if they are not square."""
        return self._domains[0].resolution

    @property
    def num_skipped(self) -> int:
        return sum(d.num_skipped for d in self._domains)

    @property
    def skipped_files(self) -> list[str]:
        return self._domains[0].skipped_files + self._domains[1].skipped_files

    def verify(self, **kwargs) -> list[str]:
        """Decode every image of both domains once (see :meth:`ImageDataset.verify`)."""
        return [path for domain in self._domains for path in domain.verify(**kwargs)]

    def _ordered(self):
        return self._domains if self._direction == "AtoB" else self._domains[::-1]

    def __repr__(self) -> str:
        a, b = self._domains
        return (f"{type(self).__name__}(name={self._name!r}, len={len(self)}, "
                f"direction={self._direction}, A={len(a)}x{'x'.join(map(str, a.image_shape))}, "
                f"B={len(b)}x{'x'.join(map(str, b.image_shape))})")


def _first(dataset: ImageDataset) -> str:
    """A name for the first image of ``dataset`` in messages."""
    return dataset._describe_raw(int(dataset._raw_idx[0]))
