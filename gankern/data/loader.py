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

    def __iter__(self) -> Iterator[int]:
        # First global position >= start that belongs to this rank.
        position = self.start + (self.rank - self.start) % self.world_size
        epoch, order = -1, None
        while True:
            this_epoch, offset = divmod(position, self.size)
            if this_epoch != epoch:
                epoch, order = this_epoch, self.epoch_order(this_epoch)
            yield int(order[offset])
            position += self.world_size


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
    sampler = InfiniteSampler(len(dataset), rank=rank, world_size=world_size,
                              shuffle=shuffle, seed=seed, start=start)
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
