"""InfiniteSampler sharding (disjoint, covering, equal to one process) and infinite_loader."""

import itertools

import numpy as np
import pytest
import torch
from datautils import chw, random_images, truncate_file, write_image, zip_folder

from gankern.data import (
    CorruptImageError,
    ImageFolderDataset,
    InfiniteSampler,
    infinite_loader,
    open_dataset,
)


def _take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_are_disjoint_and_cover_each_epoch(world_size):
    size, epochs = 10, 3
    per_rank = epochs * size // world_size + 1
    streams = [_take(InfiniteSampler(size, rank=r, world_size=world_size, seed=5), per_rank)
               for r in range(world_size)]
    # Rank r holds global positions r, r + W, ...: interleave them back into one stream.
    merged = [streams[p % world_size][p // world_size] for p in range(epochs * size)]
    for e in range(epochs):
        epoch = merged[e * size:(e + 1) * size]
        assert sorted(epoch) == list(range(size))
        shards = [set(epoch[r::world_size]) for r in range(world_size)]
        for a, b in itertools.combinations(shards, 2):
            assert not a & b
        assert set().union(*shards) == set(range(size))
    # N processes draw exactly what one process draws: the same global stream.
    assert merged == _take(InfiniteSampler(size, rank=0, world_size=1, seed=5), epochs * size)


def test_epochs_are_reshuffled_and_seeded():
    stream = _take(InfiniteSampler(50, rank=0, world_size=1, seed=1), 100)
    assert stream[:50] != stream[50:] and sorted(stream[50:]) == list(range(50))
    assert stream == _take(InfiniteSampler(50, rank=0, world_size=1, seed=1), 100)
    assert stream != _take(InfiniteSampler(50, rank=0, world_size=1, seed=2), 100)
    ordered = _take(InfiniteSampler(4, rank=0, world_size=1, shuffle=False), 10)
    assert ordered == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("start", [0, 7, 23])
def test_start_resumes_the_same_stream(start):
    full = [_take(InfiniteSampler(9, rank=r, world_size=2, seed=3), 30) for r in range(2)]
    merged = [full[p % 2][p // 2] for p in range(60)]
    resumed = [_take(InfiniteSampler(9, rank=r, world_size=2, seed=3, start=start), 10)
               for r in range(2)]
    # After `start` global positions, rank r continues with positions >= start that are r mod 2.
    for r in range(2):
        positions = [p for p in range(start, 60) if p % 2 == r][:10]
        assert resumed[r] == [merged[p] for p in positions]


def test_sampler_bad_arguments():
    with pytest.raises(ValueError, match="rank must be < world_size"):
        InfiniteSampler(5, rank=2, world_size=2)
    with pytest.raises(ValueError, match="rank and world_size"):
        InfiniteSampler(5, rank=1)
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        InfiniteSampler(5, rank=0, world_size=0)
    with pytest.raises(ValueError, match="size must be >= 1"):
        InfiniteSampler(0)
    with pytest.raises(TypeError, match="seed"):
        InfiniteSampler(5, seed=1.5)
    with pytest.raises(ValueError, match="start"):
        InfiniteSampler(5, start=-1)
    with pytest.raises(ValueError, match="batch_size"):
        infinite_loader(open_dataset(resolution=8), 0)


def test_loader_with_two_workers_over_a_zip(tmp_path):
    images = random_images(6, 8, 8, 3, seed=4)
    names = [f"d/im{i}.png" for i in range(6)]
    for name, image in zip(names, images, strict=True):
        write_image(tmp_path / "src" / name, image)
    ds = ImageFolderDataset(zip_folder(tmp_path / "src", tmp_path / "set.zip"), xflip=True)
    ds[0]  # open the zip in the parent first: forked workers must not share its handle
    expected = [chw(im) for im in images] + [chw(im[:, ::-1]) for im in images]
    batches = infinite_loader(ds, 4, shuffle=False, num_workers=2)
    seen = []
    for _ in range(6):  # 24 images: two passes over the 12 items
        x, c = next(batches)
        assert x.shape == (4, 3, 8, 8) and x.dtype == torch.uint8 and c.shape == (4, 0)
        seen.extend(x.numpy())
    for k, image in enumerate(seen):
        np.testing.assert_array_equal(image, expected[k % 12])


def test_loader_ranks_union_equals_single_process():
    ds = open_dataset("builtin:digits", resolution=8, use_labels=True, max_size=20)
    single = infinite_loader(ds, 6, seed=9, num_workers=0)
    ranks = [infinite_loader(ds, 2, rank=r, world_size=3, seed=9, num_workers=0)
             for r in range(3)]
    for _ in range(5):  # crosses epoch boundaries (20 images per epoch)
        x, c = next(single)
        parts = [next(it) for it in ranks]
        union = sorted(bytes(im.numpy()) + bytes(lb.numpy()) for p in parts
                       for im, lb in zip(*p, strict=True))
        assert union == sorted(bytes(im.numpy()) + bytes(lb.numpy())
                               for im, lb in zip(x, c, strict=True))
        assert c.shape == (6, 10)


def _zip_with_truncated_file(tmp_path):
    images = random_images(4, 8, 8, 1, seed=2)
    for i, image in enumerate(images):
        write_image(tmp_path / "src" / f"im{i}.png", image)
    truncate_file(tmp_path / "src" / "im2.png")
    return zip_folder(tmp_path / "src", tmp_path / "set.zip"), images


def test_worker_errors_name_the_bad_file(tmp_path):
    path, _ = _zip_with_truncated_file(tmp_path)
    batches = infinite_loader(ImageFolderDataset(path), 4, shuffle=False, num_workers=2)
    with pytest.raises(CorruptImageError, match=r"set\.zip:im2\.png"):
        next(batches)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_workers_skip_bad_files_and_keep_going(tmp_path):
    path, images = _zip_with_truncated_file(tmp_path)
    ds = ImageFolderDataset(path, on_bad_file="skip")
    # Spawned workers receive the dataset pickled (no inherited zip handle or state).
    batches = infinite_loader(ds, 4, shuffle=False, num_workers=1,
                              multiprocessing_context="spawn")
    for _ in range(3):
        x, _ = next(batches)
        # Item 2 (the truncated im2.png) is served from im3 instead.
        for k, i in enumerate([0, 1, 3, 3]):
            np.testing.assert_array_equal(x[k].numpy(), chw(images[i]))
