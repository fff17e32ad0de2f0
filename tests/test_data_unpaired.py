"""Unpaired datasets (trainA/ trainB/), the UnpairedSampler, and the built-in tasks."""

import itertools
import os
from collections import Counter

import numpy as np
import pytest
from datautils import chw, random_images, write_image, zip_folder

from gankern.data import (
    BuiltinDigitsEdgesDataset,
    UnpairedSampler,
    infinite_loader,
    load_digits,
    open_dataset,
    open_paired_dataset,
    open_unpaired_dataset,
)


def _write_domains(root, na=5, nb=3, ca=3, cb=1, size=(6, 6), split="train"):
    a = random_images(na, *size, ca, seed=1)
    b = random_images(nb, *size, cb, seed=2)
    for i, image in enumerate(a):
        write_image(os.path.join(root, f"{split}A", f"a{i}.png"), image)
    for i, image in enumerate(b):
        write_image(os.path.join(root, f"{split}B", "sub", f"b{i}.png"), image)
    return a, b


@pytest.mark.parametrize("as_zip", [False, True])
def test_cyclegan_layout(tmp_path, as_zip):
    a, b = _write_domains(tmp_path / "h2z")
    path = zip_folder(tmp_path / "h2z", tmp_path / "h2z.zip") if as_zip else tmp_path / "h2z"
    ds = open_unpaired_dataset(path)
    assert len(ds) == 5 and ds.name == "h2z" and (len(ds.a), len(ds.b)) == (5, 3)
    assert (ds.in_channels, ds.out_channels, ds.resolution) == (3, 1, 6)
    x, y = ds[(4, 2)]
    np.testing.assert_array_equal(x, chw(a[4]))
    np.testing.assert_array_equal(y, chw(b[2]))
    x, y = ds[4]  # a fixed pairing by position
    np.testing.assert_array_equal(x, chw(a[4]))
    np.testing.assert_array_equal(y, chw(b[4 % 3]))
    back = open_unpaired_dataset(path, direction="BtoA")
    x, y = back[(4, 2)]
    np.testing.assert_array_equal(x, chw(b[2]))
    np.testing.assert_array_equal(y, chw(a[4]))
    with pytest.raises(IndexError):
        ds[5]


def test_test_split_and_loader(tmp_path):
    a, b = _write_domains(tmp_path, split="test", cb=3)
    ds = open_unpaired_dataset(tmp_path, split="test", xflip=True)
    assert (len(ds.a), len(ds.b)) == (10, 6)
    loader = infinite_loader(ds, 4, seed=3, num_workers=0)
    sampler = ds.make_sampler(rank=0, world_size=1, shuffle=True, seed=3, start=0)
    pairs = list(itertools.islice(iter(sampler), 8))
    for batch in range(2):
        x, y = next(loader)
        assert x.shape == y.shape == (4, 3, 6, 6)
        for k in range(4):
            i, j = pairs[4 * batch + k]
            np.testing.assert_array_equal(x[k].numpy(), ds[(i, j)][0])
            np.testing.assert_array_equal(y[k].numpy(), ds[(i, j)][1])


def test_unpaired_errors_name_the_files(tmp_path):
    _write_domains(tmp_path / "one", size=(6, 6))
    write_image(tmp_path / "one" / "trainB" / "wide.png", random_images(1, 6, 8, 1)[0])
    with pytest.raises(ValueError, match=r"trainB/wide\.png is 8x6"):
        open_unpaired_dataset(tmp_path / "one")
    _write_domains(tmp_path / "two", size=(6, 6))
    for name in os.listdir(tmp_path / "two" / "trainA"):
        os.remove(tmp_path / "two" / "trainA" / name)
        write_image(tmp_path / "two" / "trainA" / name, random_images(1, 8, 8, 3)[0])
    with pytest.raises(ValueError, match=r"one image size: .*trainA/a0\.png is 8x8 but "
                                         r".*trainB/sub/b0\.png is 6x6"):
        open_unpaired_dataset(tmp_path / "two")
    os.makedirs(tmp_path / "three" / "trainA")
    os.makedirs(tmp_path / "three" / "trainB")
    write_image(tmp_path / "three" / "trainA" / "x.png", random_images(1, 4, 4, 1)[0])
    with pytest.raises(ValueError, match="trainB' contains no PNG or JPEG images"):
        open_unpaired_dataset(tmp_path / "three")
    with pytest.raises(ValueError, match="folders testA/ and testB/.*found: trainA, trainB"):
        open_unpaired_dataset(tmp_path / "three", split="test")
    with pytest.raises(ValueError, match="is a paired dataset.*open_paired_dataset"):
        open_unpaired_dataset("builtin:digits-edges")


# --- the sampler ----------------------------------------------------------------------------


def _take(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def test_each_domain_covers_each_of_its_epochs():
    sizes = (7, 4)
    pairs = _take(UnpairedSampler(sizes, rank=0, world_size=1, seed=9), 28 * 3)
    for domain, n in enumerate(sizes):
        stream = [p[domain] for p in pairs]
        for e in range(len(stream) // n):
            assert sorted(stream[e * n:(e + 1) * n]) == list(range(n))


def test_partners_are_independent_and_change_every_epoch():
    pairs = _take(UnpairedSampler((5, 5), rank=0, world_size=1, seed=0), 5 * 400)
    partners_of_0 = {j for i, j in pairs if i == 0}
    assert partners_of_0 == set(range(5))  # not a fixed pairing
    counts = Counter(pairs)
    assert len(counts) == 25 and min(counts.values()) > 50 and max(counts.values()) < 110  # 80
    ordered = _take(UnpairedSampler((3, 2), rank=0, world_size=1, shuffle=False), 6)
    assert ordered == [(0, 0), (1, 1), (2, 0), (0, 1), (1, 0), (2, 1)]


@pytest.mark.parametrize("world_size,start", [(1, 0), (3, 0), (2, 11)])
def test_sharding_and_resume_follow_one_stream(world_size, start):
    one = _take(UnpairedSampler((6, 4), rank=0, world_size=1, seed=4), 60)
    streams = [_take(UnpairedSampler((6, 4), rank=r, world_size=world_size, seed=4,
                                     start=start), 10) for r in range(world_size)]
    for r, stream in enumerate(streams):
        positions = [p for p in range(start, 60) if p % world_size == r][:10]
        assert stream == [one[p] for p in positions]
    assert one != _take(UnpairedSampler((6, 4), rank=0, world_size=1, seed=5), 60)
    with pytest.raises(TypeError, match="sizes must be"):
        UnpairedSampler(6)
    with pytest.raises(ValueError, match=r"sizes\[1\] must be >= 1"):
        UnpairedSampler((6, 0))


# --- built-in tasks -------------------------------------------------------------------------


def _outline(digits):
    """Background pixels with a 4-neighbour on the stroke (> 127), by array shifts."""
    stroke = digits > 127
    padded = np.pad(stroke, [(0, 0), (0, 0), (1, 1), (1, 1)])
    touch = (padded[:, :, :-2, 1:-1] | padded[:, :, 2:, 1:-1] | padded[:, :, 1:-1, :-2]
             | padded[:, :, 1:-1, 2:])
    return np.where(touch & ~stroke, 255, 0).astype(np.uint8)


def test_digits_edges():
    ds = open_paired_dataset("builtin:digits-edges", max_size=64)
    digits, _ = load_digits(32)
    assert isinstance(ds, BuiltinDigitsEdgesDataset) and len(ds) == 64
    edges = _outline(digits)
    for i in (0, 17, 63):
        raw = int(ds._raw_idx[i])
        x, y = ds[i]
        np.testing.assert_array_equal(x, edges[raw])
        np.testing.assert_array_equal(y, digits[raw])
        assert 0 < (x == 255).mean() < 0.3
    swapped = open_paired_dataset("builtin:digits-edges", direction="BtoA", resolution=16)
    x, y = swapped[5]
    assert x.shape == (1, 16, 16)
    np.testing.assert_array_equal(x, load_digits(16)[0][5])
    np.testing.assert_array_equal(y, _outline(load_digits(16)[0][5:6])[0])


def test_digits_inverted_and_color_are_disjoint_deterministic_domains():
    digits, _ = load_digits(32)
    inverted = open_unpaired_dataset("builtin:digits-inverted")
    assert (len(inverted.a), len(inverted.b), len(inverted)) == (899, 898, 899)
    x, y = inverted[(10, 20)]
    np.testing.assert_array_equal(x, digits[20])  # A: even-numbered digits
    np.testing.assert_array_equal(y, 255 - digits[41])  # B: odd-numbered, inverted
    color = open_unpaired_dataset("builtin:digits-color", resolution=16)
    x, y = color[(3, 4)]
    gray = load_digits(16)[0]
    np.testing.assert_array_equal(x, np.repeat(gray[6], 3, axis=0))
    # B is the digit times one saturated color: the brightest channel is the digit itself,
    # and every channel is a fixed fraction of it.
    np.testing.assert_array_equal(y.max(axis=0), gray[9][0])
    stroke = gray[9][0] > 64
    ratios = y[:, stroke] / gray[9][0][stroke]
    assert np.ptp(ratios, axis=1).max() < 0.02 and ratios.min(axis=0).max() < 0.02
    again = open_unpaired_dataset("builtin:digits-color", resolution=16)
    np.testing.assert_array_equal(again[(3, 4)][1], y)


def test_digits_sr_is_the_high_resolution_digits():
    ds = open_dataset("builtin:digits-sr")
    assert ds.name == "digits-sr" and ds.image_shape == (1, 32, 32)
    np.testing.assert_array_equal(ds[7][0], load_digits(32)[0][7])
    with pytest.raises(ValueError, match="is an unpaired dataset"):
        open_dataset("builtin:digits-inverted")


def test_grayscale_items_are_writable_arrays(tmp_path):
    _write_domains(tmp_path, ca=1, cb=1)
    x, y = open_unpaired_dataset(tmp_path)[(0, 0)]
    assert x.flags["WRITEABLE"] and y.flags["WRITEABLE"]  # torch warns on read-only arrays
