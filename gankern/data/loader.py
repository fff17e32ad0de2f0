"""Endless, seeded, rank-sharded sampling and the DataLoader built on it.

The sampler draws one global stream of indices: epoch after epoch, a permutation of the
dataset seeded by ``(seed, epoch)``. Rank ``r`` of ``world_size`` takes the positions
``r, r + world_size, r + 2 * world_size, ...`` of that stream, so within an epoch the ranks
see disjoint shards that together cover the dataset, and the union of the ranks' k-th
batches (``batch`` images each) is exactly the k-th batch of a single process drawing
``world_size * batch`` images: N processes train on the same data as one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from gankern.data.dataset import check_optional_int


def _distributed_rank_and_size() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_int(name: str, value, min_value: int) -> int:
    value = check_optional_int(name, value, min_value=min_value)
    if value is None:
        raise TypeError(f"{name} must be an int, got None")
    return value


class InfiniteSampler(torch.utils.data.Sampler):
    """Endless indices into a dataset of ``size`` items, sharded by rank (see module doc).

    Args:
        size: the dataset length (or the dataset itself).
        rank, world_size: this process's shard; None takes them from torch.distributed when
            it is initialized (else 0 and 1). Every rank must use the same ``seed``.
        shuffle: a fresh permutation each epoch; False walks 0..size-1 in order.
        seed: seed of the permutations.
        start: global stream position to start at, e.g. the number of images a resumed
            run has already consumed (over all ranks), so the data continues where it was.
    """

    def __init__(self, size, *, rank: int | None = None, world_size: int | None = None,
                 shuffle: bool = True, seed: int = 0, start: int = 0):
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            size = len(size)
        self.size = _check_int("size", size, 1)
        if (rank is None) != (world_size is None):
            raise ValueError(f"rank and world_size must be given together, got rank={rank}, "
                             f"world_size={world_size}")
        if rank is None:
            rank, world_size = _distributed_rank_and_size()
        self.world_size = _check_int("world_size", world_size, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size ({self.world_size}), got {self.rank}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be a bool, got {type(shuffle).__name__}")
        self.shuffle = shuffle
        self.seed = _check_int("seed", seed, 0)
        self.start = _check_int("start", start, 0)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The order of all indices in global epoch ``epoch`` (the same on every rank)."""
        if not self.shuffle:
            return np.arange(self.size, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def positions(self) -> Iterator[int]:
        """This rank's global stream positions: ``start`` on, those equal to rank mod W."""
        position = self.start + (self.rank - self.start) % self.world_size
        while True:
            yield position
            position += self.world_size

    def __iter__(self) -> Iterator[int]:
        stream = _EpochStream(self.size, self.epoch_order)
        for position in self.positions():
            yield stream.at(position)


class _EpochStream:
    """The index at each position of a stream that walks a fresh order every epoch of
    ``size`` positions; ``order_of(epoch)`` gives that order (cached for the current one)."""

    def __init__(self, size: int, order_of):
        self.size, self._order_of = size, order_of
        self._epoch, self._order = -1, None

    def at(self, position: int) -> int:
        epoch, offset = divmod(position, self.size)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self._order_of(epoch)
        return int(self._order[offset])


class UnpairedSampler(InfiniteSampler):
    """Endless index pairs ``(i, j)`` into two domains of ``sizes = (n_a, n_b)`` images.

    Each domain walks its own stream of seeded permutations (one per epoch of that domain's
    length), and the pair at global stream position ``p`` is ``(A-stream[p], B-stream[p])``:
    every image of each domain is seen once per epoch of that domain, and the partners are
    drawn independently, differently every epoch, reproducibly from ``seed`` and the position
    (so a resumed run given ``start`` continues the same pairs). The positions are sharded
    by rank exactly as :class:`InfiniteSampler` does; ``len`` of the dataset, the epoch of
    the trainer, is ``max(n_a, n_b)``. ``shuffle=False`` walks both domains in order.

    Args:
        sizes: ``(n_a, n_b)``, the number of images of each domain.
        rank, world_size, shuffle, seed, start: as for :class:`InfiniteSampler`.
    """

    def __init__(self, sizes, *, rank: int | None = None, world_size: int | None = None,
                 shuffle: bool = True, seed: int = 0, start: int = 0):
        if not (isinstance(sizes, (tuple, list)) and len(sizes) == 2):
            raise TypeError(f"sizes must be (n_a, n_b), got {sizes!r}")
        self.sizes = tuple(_check_int(f"sizes[{d}]", n, 1) for d, n in enumerate(sizes))
        super().__init__(max(self.sizes), rank=rank, world_size=world_size, shuffle=shuffle,
                         seed=seed, start=start)

    def domain_order(self, domain: int, epoch: int) -> np.ndarray:
        """The order of domain ``domain``'s (0: A, 1: B) indices in its epoch ``epoch``."""
        size = self.sizes[domain]
        if not self.shuffle:
            return np.arange(size, dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, domain + 1]).permutation(size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        streams = [_EpochStream(size, lambda epoch, d=d: self.domain_order(d, epoch))
                   for d, size in enumerate(self.sizes)]
        for position in self.positions():
            yield streams[0].at(position), streams[1].at(position)


def default_num_workers(dataset) -> int:
    """0 for in-memory datasets; otherwise up to 3, leaving half the cores for training."""
    if getattr(dataset, "in_memory", False):
        return 0
    return max(1, min(3, (os.cpu_count() or 1) // 2))


def infinite_loader(
    dataset,
    batch_size: int,
    *,
    rank: int | None = None,
    world_size: int | None = None,
    shuffle: bool = True,
    seed: int = 0,
    start: int = 0,
    num_workers: int | None = None,
    pin_memory: bool | None = None,
    prefetch_factor: int = 2,
    multiprocessing_context=None,
) -> Iterator:
    """An endless iterator of batches ``(images uint8 [B, C, H, W], labels float32 [B, c_dim])``.

    A paired or unpaired dataset gives batches ``(input uint8 [B, C, H, W], target uint8
    [B, C', H, W])`` instead. A dataset that draws its items in its own way has a
    ``make_sampler(rank=, world_size=, shuffle=, seed=, start=)`` method (the unpaired
    datasets return an :class:`UnpairedSampler`); the others get an :class:`InfiniteSampler`.

    Args:
        dataset: an ``ImageDataset`` (or any map-style dataset).
        batch_size: images per batch on this rank.
        rank, world_size, shuffle, seed, start: of the ``InfiniteSampler`` (``start`` counts
            images over all ranks).
        num_workers: worker processes that decode images (None: ``default_num_workers``).
            Workers are persistent.
        pin_memory: page-locked batches for faster host-to-GPU copies; None: when CUDA is
            available.
        prefetch_factor: batches each worker prepares ahead.
        multiprocessing_context: e.g. "spawn" or "forkserver" (None: the platform default).
    """
    batch_size = _check_int("batch_size", batch_size, 1)
    sampling = dict(rank=rank, world_size=world_size, shuffle=shuffle, seed=seed, start=start)
    make_sampler = getattr(dataset, "make_sampler", None)
    if make_sampler is not None:
        sampler = make_sampler(**sampling)
    else:
        sampler = InfiniteSampler(len(dataset), **sampling)
    if num_workers is None:
        num_workers = default_num_workers(dataset)
    num_workers = _check_int("num_workers", num_workers, 0)
    prefetch_factor = _check_int("prefetch_factor", prefetch_factor, 1)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    extra = {}
    if num_workers > 0:
        extra = dict(persistent_workers=True, prefetch_factor=prefetch_factor,
                     multiprocessing_context=multiprocessing_context)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        pin_memory=bool(pin_memory), **extra,
    )
    return iter(loader)
