"""Paired datasets: side by side (A|B) and aligned A/ B/ folders, folders and zips, errors."""

import os

import numpy as np
import pytest
import torch
from datautils import chw, random_images, truncate_file, write_image, zip_folder

from gankern.data import (
    CorruptImageError,
    FolderPairDataset,
    SideBySidePairDataset,
    infinite_loader,
    open_paired_dataset,
)

NAMES = ["b/img1", "a/img0", "top", "a/img2"]  # without extension; nested on purpose
SORTED = sorted(NAMES)


def _pairs(count, h=8, w=6, ca=3, cb=3, seed=0):
    return random_images(count, h, w, ca, seed=seed), random_images(count, h, w, cb, seed=seed + 1)


def _write_side_by_side(folder, a_images, b_images, names=NAMES):
    for name, a, b in zip(names, a_images, b_images, strict=True):
        write_image(os.path.join(folder, *f"{name}.png".split("/")), np.concatenate([a, b], 1))
    return {n: (a, b) for n, a, b in zip(names, a_images, b_images, strict=True)}


def _write_folders(root, a_images, b_images, names=NAMES, b_ext=".png"):
    for name, a, b in zip(names, a_images, b_images, strict=True):
        write_image(os.path.join(root, "A", *f"{name}.png".split("/")), a)
        write_image(os.path.join(root, "B", *f"{name}{b_ext}".split("/")), b)
    return {n: (a, b) for n, a, b in zip(names, a_images, b_images, strict=True)}


@pytest.mark.parametrize("as_zip", [False, True])
def test_side_by_side_reads_both_halves(tmp_path, as_zip):
    a_images, b_images = _pairs(len(NAMES))
    by_name = _write_side_by_side(tmp_path / "data" / "train", a_images, b_images)
    path = zip_folder(tmp_path / "data", tmp_path / "set.zip") if as_zip else tmp_path / "data"
    ds = SideBySidePairDataset(path, subdir="train")
    assert len(ds) == len(NAMES)
    assert (ds.a_shape, ds.b_shape, ds.in_channels, ds.out_channels) == (
        (3, 8, 6), (3, 8, 6), 3, 3)
    for i, name in enumerate(SORTED):
        x, y = ds[i]
        assert x.dtype == np.uint8 and x.flags["C_CONTIGUOUS"] and y.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(x, chw(by_name[name][0]))
        np.testing.assert_array_equal(y, chw(by_name[name][1]))
    if not as_zip:  # the auto layout: no A/ and B/ at the top, so side by side
        assert isinstance(open_paired_dataset(path / "train"), SideBySidePairDataset)


def test_side_by_side_direction_xflip_and_auto_layout(tmp_path):
    a_images, b_images = _pairs(len(NAMES), h=6, w=6)
    by_name = _write_side_by_side(tmp_path, a_images, b_images)
    ds = open_paired_dataset(tmp_path, direction="BtoA", xflip=True, resolution=6)
    assert isinstance(ds, SideBySidePairDataset) and len(ds) == 2 * len(NAMES)
    for i, name in enumerate(SORTED):
        a, b = (chw(image) for image in by_name[name])
        x, y = ds[i]
        np.testing.assert_array_equal(x, b)
        np.testing.assert_array_equal(y, a)
        fx, fy = ds[len(NAMES) + i]  # each half mirrored on its own
        np.testing.assert_array_equal(fx, b[:, :, ::-1])
        np.testing.assert_array_equal(fy, a[:, :, ::-1])


@pytest.mark.parametrize("as_zip", [False, True])
def test_aligned_folders_match_names(tmp_path, as_zip):
    a_images = random_images(len(NAMES), 8, 8, 1)
    b_images = random_images(len(NAMES), 8, 8, 3, seed=5)
    by_name = _write_folders(tmp_path / "set", a_images, b_images)
    path = zip_folder(tmp_path / "set", tmp_path / "set.zip") if as_zip else tmp_path / "set"
    ds = open_paired_dataset(path)  # auto: A/ and B/ at the top
    assert isinstance(ds, FolderPairDataset)
    assert (ds.in_channels, ds.out_channels, ds.resolution) == (1, 3, 8)
    assert ds.pair_names == [(f"{n}.png", f"{n}.png") for n in SORTED]
    for i, name in enumerate(SORTED):
        x, y = ds[i]
        np.testing.assert_array_equal(x, chw(by_name[name][0]))
        np.testing.assert_array_equal(y, chw(by_name[name][1]))
    back = open_paired_dataset(path, layout="folders", direction="BtoA")
    assert (back.in_channels, back.out_channels) == (3, 1)
    np.testing.assert_array_equal(back[0][0], ds[0][1])


def test_aligned_folders_match_across_extensions(tmp_path):
    a = np.full((len(NAMES), 4, 4), 10, np.uint8)
    b = np.full((len(NAMES), 4, 4), 128, np.uint8)  # constant: exact through JPEG
    _write_folders(tmp_path, a, b, b_ext=".jpg")
    ds = FolderPairDataset(tmp_path)
    assert ds.pair_names[0] == ("a/img0.png", "a/img0.jpg")
    assert (ds[0][1] == 128).all()


def test_loader_batches_pairs(tmp_path):
    a_images, b_images = _pairs(len(NAMES))
    _write_folders(tmp_path, a_images, b_images)
    ds = open_paired_dataset(tmp_path)
    x, y = next(infinite_loader(ds, 3, seed=0, num_workers=0))
    assert x.shape == y.shape == (3, 3, 8, 6) and x.dtype == y.dtype == torch.uint8
    a_of_b = {chw(b).tobytes(): chw(a) for a, b in zip(a_images, b_images, strict=True)}
    for xi, yi in zip(x.numpy(), y.numpy(), strict=True):  # still paired after batching
        np.testing.assert_array_equal(xi, a_of_b[yi.tobytes()])


# --- bad data: one clear error naming the file ------------------------------------------


def test_missing_partner_names_the_file(tmp_path):
    a_images, b_images = _pairs(len(NAMES))
    _write_folders(tmp_path, a_images, b_images)
    os.remove(tmp_path / "B" / "a" / "img2.png")
    with pytest.raises(ValueError, match=r"A/a/img2\.png has no partner.*'a/img2'.*B"):
        open_paired_dataset(tmp_path)
    write_image(tmp_path / "B" / "a" / "img2.png", b_images[0])
    write_image(tmp_path / "B" / "extra.png", b_images[0])
    with pytest.raises(ValueError, match=r"B/extra\.png has no partner"):
        open_paired_dataset(tmp_path)


def test_pairs_of_different_sizes_name_both_files(tmp_path):
    a_images = random_images(len(NAMES), 8, 8, 3)
    b_images = random_images(len(NAMES), 8, 6, 3)
    _write_folders(tmp_path, a_images, b_images)
    with pytest.raises(ValueError, match=r"one size: .*A/a/img0\.png is 8x8 but "
                                         r".*B/a/img0\.png is 6x8"):
        open_paired_dataset(tmp_path)


def test_images_of_different_sizes_in_one_folder_name_the_file(tmp_path):
    a_images, b_images = _pairs(len(NAMES))
    _write_folders(tmp_path, a_images, b_images)
    write_image(tmp_path / "B" / "top.png", random_images(1, 8, 4, 3)[0])
    with pytest.raises(ValueError, match=r"B/top\.png is 4x8"):
        open_paired_dataset(tmp_path)


def test_empty_and_missing_folders(tmp_path):
    os.makedirs(tmp_path / "A")
    os.makedirs(tmp_path / "B")
    write_image(tmp_path / "B" / "x.png", random_images(1, 4, 4, 1)[0])
    with pytest.raises(ValueError, match=r"A' contains no PNG or JPEG images"):
        open_paired_dataset(tmp_path)
    os.rmdir(tmp_path / "A")
    with pytest.raises(ValueError, match="has no subfolder 'A'"):
        open_paired_dataset(tmp_path, layout="folders")
    zipped = zip_folder(tmp_path, tmp_path / "only_b.zip")
    with pytest.raises(ValueError, match="has no folder 'A' at its top"):
        open_paired_dataset(zipped, layout="folders")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="empty' contains no PNG or JPEG images"):
        open_paired_dataset(tmp_path / "empty")


def test_same_name_twice_in_a_folder(tmp_path):
    a_images, b_images = _pairs(len(NAMES))
    _write_folders(tmp_path, a_images, b_images)
    write_image(tmp_path / "A" / "top.jpg", a_images[0])
    with pytest.raises(ValueError, match=r"A/top\.jpg and .*A/top\.png have the same name"):
        open_paired_dataset(tmp_path)


def test_side_by_side_needs_an_even_width(tmp_path):
    write_image(tmp_path / "x.png", random_images(1, 8, 9, 3)[0])
    with pytest.raises(ValueError, match=r"even width.*x\.png is 9x8"):
        open_paired_dataset(tmp_path)
    os.remove(tmp_path / "x.png")
    write_image(tmp_path / "x.png", random_images(1, 8, 12, 3)[0])
    with pytest.raises(ValueError, match=r"expects 8x8 images, got 6x8 for each half of .*x\.png"):
        open_paired_dataset(tmp_path, resolution=8)


def test_corrupt_files_are_named_or_skipped_with_their_pair(tmp_path):
    a_images, b_images = _pairs(len(NAMES))
    _write_folders(tmp_path, a_images, b_images)
    with open(tmp_path / "A" / "top.png", "wb") as f:
        f.write(b"not an image")
    with pytest.raises(CorruptImageError, match=r"A/top\.png"):
        open_paired_dataset(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipped 1 unreadable"):
        ds = open_paired_dataset(tmp_path, on_bad_file="skip")
    assert len(ds) == len(NAMES) - 1 and ds.num_skipped == 1
    assert all(pair != ("top.png", "top.png") for pair in ds.pair_names)
    # A file that only fails when decoded (truncated pixel data) is named when read.
    truncate_file(tmp_path / "B" / "a" / "img0.png")
    with pytest.warns(RuntimeWarning, match="skipped 1 unreadable"):
        ds = open_paired_dataset(tmp_path, on_bad_file="skip")
    os.remove(tmp_path / "A" / "top.png")
    os.remove(tmp_path / "B" / "top.png")
    with pytest.raises(CorruptImageError, match=r"B/a/img0\.png"):
        open_paired_dataset(tmp_path)[0]
    with pytest.warns(RuntimeWarning, match="skipping unreadable image"):
        x, _ = ds[0]  # served from the next readable pair
    np.testing.assert_array_equal(x, chw(a_images[NAMES.index("a/img2")]))


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction must be one of"):
        open_paired_dataset(direction="up")
    with pytest.raises(ValueError, match="layout must be one of"):
        open_paired_dataset(layout="grid")
    with pytest.raises(ValueError, match="is an unpaired dataset.*open_unpaired_dataset"):
        open_paired_dataset("builtin:digits-color")
    with pytest.raises(ValueError, match="one of builtin:digits-edges, got 'builtin:x'"):
        open_paired_dataset("builtin:x")
