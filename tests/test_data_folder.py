"""ImageFolderDataset over folders and zips written by the tests, labels, x-flips, errors."""

import os
import pickle
import warnings

import numpy as np
import pytest
from datautils import (
    chw,
    random_images,
    truncate_file,
    write_image,
    write_labels,
    zip_folder,
)

from gankern.data import CorruptImageError, ImageFolderDataset, open_dataset

# Nested names, written in this order; the dataset sorts them by relative path.
NAMES = ["b/img1.png", "a/img0.png", "c/deeper/img3.png", "a/img2.png", "top.png"]
SORTED = sorted(NAMES)


def _write_set(folder, images, names=NAMES):
    for name, image in zip(names, images, strict=True):
        write_image(os.path.join(folder, *name.split("/")), image)
    return {name: image for name, image in zip(names, images, strict=True)}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("as_zip", [False, True])
def test_folder_and_zip_read_back_exactly(tmp_path, channels, as_zip):
    images = random_images(len(NAMES), 8, 8, channels)
    by_name = _write_set(tmp_path / "imgs", images)
    with open(tmp_path / "imgs" / "notes.txt", "w") as f:  # not an image: ignored
        f.write("hello")
    write_image(tmp_path / "imgs" / ".hidden.png", images[0][:4])  # hidden: ignored
    path = zip_folder(tmp_path / "imgs", tmp_path / "set.zip") if as_zip else tmp_path / "imgs"
    ds = ImageFolderDataset(path, resolution=8)
    assert len(ds) == len(NAMES) and ds.image_names == SORTED
    assert (ds.resolution, ds.num_channels, ds.c_dim, ds.has_labels) == (8, channels, 0, False)
    assert ds.name == ("set" if as_zip else "imgs")
    for i, name in enumerate(SORTED):
        image, label = ds[i]
        assert image.dtype == np.uint8 and image.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(image, chw(by_name[name]))
        assert label.shape == (0,) and label.dtype == np.float32
    np.testing.assert_array_equal(ds[-1][0], ds[len(NAMES) - 1][0])
    with pytest.raises(IndexError):
        ds[len(NAMES)]


def test_jpeg_images(tmp_path):
    # Smooth images survive JPEG at quality 100 within a few levels.
    ramp = np.add.outer(np.arange(16) * 8, np.arange(16) * 4).astype(np.uint8)
    rgb = np.stack([ramp, ramp[::-1], ramp.T], axis=-1)
    write_image(tmp_path / "x.jpg", rgb, quality=100)
    write_image(tmp_path / "y.JPEG", rgb[:, ::-1], quality=100)
    ds = open_dataset(str(tmp_path))
    assert len(ds) == 2 and ds.image_shape == (3, 16, 16)
    diff = np.abs(ds[0][0].astype(int) - chw(rgb).astype(int))
    assert diff.max() <= 8, diff.max()


def test_class_labels_one_hot_and_vector_labels(tmp_path):
    images = random_images(len(NAMES), 4, 4, 3)
    _write_set(tmp_path, images)
    classes = {name: i % 3 for i, name in enumerate(NAMES)}
    write_labels(tmp_path, classes.items())
    ds = ImageFolderDataset(tmp_path, use_labels=True)
    assert ds.c_dim == 3 and ds.has_labels
    for i, name in enumerate(SORTED):
        expected = np.zeros(3, np.float32)
        expected[classes[name]] = 1
        np.testing.assert_array_equal(ds[i][1], expected)
        np.testing.assert_array_equal(ds.get_label(i), expected)
    # Labels are only read when asked for.
    assert ImageFolderDataset(tmp_path).c_dim == 0

    vectors = {name: [i * 0.5, -1.0] for i, name in enumerate(NAMES)}
    write_labels(tmp_path, vectors.items())
    ds = ImageFolderDataset(tmp_path, use_labels=True)
    assert ds.c_dim == 2
    np.testing.assert_array_equal(ds[0][1], np.float32(vectors[SORTED[0]]))


def test_label_errors(tmp_path):
    images = random_images(2, 4, 4, 1)
    _write_set(tmp_path, images, names=["p.png", "q.png"])
    with pytest.raises(ValueError, match="no labels"):
        ImageFolderDataset(tmp_path, use_labels=True)
    write_labels(tmp_path, [("p.png", 1)])
    with pytest.raises(ValueError, match="q.png"):
        ImageFolderDataset(tmp_path, use_labels=True)
    write_labels(tmp_path, [("p.png", 1), ("q.png", -2)])
    with pytest.raises(ValueError, match=">= 0"):
        ImageFolderDataset(tmp_path, use_labels=True)
    write_labels(tmp_path, [("p.png", 1), ("q.png", [0.5])])
    with pytest.raises(ValueError, match="class indices"):
        ImageFolderDataset(tmp_path, use_labels=True)
    with open(tmp_path / "dataset.json", "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="dataset.json"):
        ImageFolderDataset(tmp_path, use_labels=True)


def test_xflip_and_max_size(tmp_path):
    images = random_images(8, 4, 6, 3)
    names = [f"im{i}.png" for i in range(8)]
    _write_set(tmp_path, images, names=names)
    ds = ImageFolderDataset(tmp_path, xflip=True)
    assert len(ds) == 16 and ds.num_images == 8
    for i in range(8):
        np.testing.assert_array_equal(ds[i][0], chw(images[i]))
        np.testing.assert_array_equal(ds[8 + i][0], chw(images[i][:, ::-1]))

    sub = ImageFolderDataset(tmp_path, max_size=3, random_seed=7)
    again = ImageFolderDataset(tmp_path, max_size=3, random_seed=7)
    got = [bytes(sub[i][0]) for i in range(3)]
    assert len(sub) == 3 and got == [bytes(again[i][0]) for i in range(3)]
    originals = [bytes(chw(im)) for im in images]
    assert len(set(got)) == 3 and set(got) <= set(originals)
    flipped_subset = ImageFolderDataset(tmp_path, max_size=3, xflip=True)
    assert len(flipped_subset) == 6 and flipped_subset.num_images == 3
    assert len(ImageFolderDataset(tmp_path, max_size=100)) == 8


def test_mismatched_images_name_the_file(tmp_path):
    write_image(tmp_path / "a.png", random_images(1, 8, 8, 3)[0])
    write_image(tmp_path / "b.png", random_images(1, 8, 16, 3)[0])
    with pytest.raises(ValueError, match=r"b\.png.*16x8"):
        ImageFolderDataset(tmp_path)
    os.remove(tmp_path / "b.png")
    write_image(tmp_path / "c.png", random_images(1, 8, 8, 1)[0])
    with pytest.raises(ValueError, match=r"c\.png.*1 channel"):
        ImageFolderDataset(tmp_path)
    os.remove(tmp_path / "c.png")
    write_image(tmp_path / "d.png", random_images(1, 8, 8, 4)[0])  # RGBA
    with pytest.raises(ValueError, match=r"d\.png.*'RGBA'"):
        ImageFolderDataset(tmp_path)
    os.remove(tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"resolution=16.*8x8"):
        ImageFolderDataset(tmp_path, resolution=16)


def _corrupt_set(tmp_path):
    images = random_images(4, 8, 8, 3)
    names = [f"im{i}.png" for i in range(4)]
    _write_set(tmp_path, images, names=names)
    truncate_file(tmp_path / "im1.png")  # header intact, pixel data cut short
    with open(tmp_path / "im2.png", "wb") as f:  # not an image at all
        f.write(b"this is not a png file" * 10)
    return images


@pytest.mark.parametrize("as_zip", [False, True])
def test_corrupt_files_raise_naming_the_file(tmp_path, as_zip):
    _corrupt_set(tmp_path / "imgs")
    path = zip_folder(tmp_path / "imgs", tmp_path / "c.zip") if as_zip else tmp_path / "imgs"
    with pytest.raises(CorruptImageError, match=r"im2\.png") as info:
        ImageFolderDataset(path)
    assert "im2.png" in info.value.path
    os.remove(tmp_path / "imgs" / "im2.png")
    if as_zip:
        os.remove(path)
        path = zip_folder(tmp_path / "imgs", tmp_path / "c.zip")
    ds = ImageFolderDataset(path)  # the truncated file passes the header check ...
    assert len(ds) == 3
    ds[0]
    with pytest.raises(CorruptImageError, match=r"im1\.png"):  # ... and fails when decoded
        ds[1]


def test_corrupt_files_skipped_and_counted(tmp_path):
    images = _corrupt_set(tmp_path)
    with pytest.warns(RuntimeWarning, match=r"skipped 1 unreadable.*im2\.png"):
        ds = ImageFolderDataset(tmp_path, on_bad_file="skip")
    assert len(ds) == 3 and ds.num_skipped == 1 and ds.image_names == ["im0.png", "im1.png",
                                                                        "im3.png"]
    # Decoding im1 fails: the item is served from the next readable image (im3).
    with pytest.warns(RuntimeWarning, match=r"im1\.png"):
        image, _ = ds[1]
    np.testing.assert_array_equal(image, chw(images[3]))
    assert ds.num_skipped == 2 and any("im1.png" in p for p in ds.skipped_files)
    # A full pass never raises, and im1 is not retried.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        served = [ds[i][0] for i in range(len(ds))]
    assert len(served) == 3 and ds.num_skipped == 2


def test_all_files_bad(tmp_path):
    with open(tmp_path / "x.png", "wb") as f:
        f.write(b"junk")
    with pytest.raises(ValueError, match=r"no readable.*1 unreadable.*x\.png"):
        ImageFolderDataset(tmp_path, on_bad_file="skip")


def test_bad_paths_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    with open(tmp_path / "plain.zip", "w") as f:
        f.write("not a zip")
    with pytest.raises(ValueError, match="not a zip"):
        ImageFolderDataset(tmp_path / "plain.zip")
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match="no PNG or JPEG"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(TypeError, match="path"):
        ImageFolderDataset(42)
    write_image(tmp_path / "ok" / "a.png", random_images(1, 4, 4, 1)[0])
    with pytest.raises(ValueError, match="on_bad_file"):
        ImageFolderDataset(tmp_path / "ok", on_bad_file="ignore")
    with pytest.raises(ValueError, match="resolution"):
        ImageFolderDataset(tmp_path / "ok", resolution=0)
    with pytest.raises(TypeError, match="max_size"):
        ImageFolderDataset(tmp_path / "ok", max_size=2.5)
    ds = ImageFolderDataset(tmp_path / "ok")
    with pytest.raises(TypeError, match="index"):
        ds["0"]


def test_non_square_resolution_property(tmp_path):
    write_image(tmp_path / "a.png", random_images(1, 4, 8, 3)[0])
    ds = ImageFolderDataset(tmp_path)
    assert ds.image_shape == (3, 4, 8)
    with pytest.raises(ValueError, match="8x4"):
        _ = ds.resolution


def test_zip_dataset_pickles_after_use(tmp_path):
    images = random_images(3, 4, 4, 3)
    _write_set(tmp_path / "imgs", images, names=["a.png", "b.png", "c.png"])
    ds = ImageFolderDataset(zip_folder(tmp_path / "imgs", tmp_path / "s.zip"))
    ds[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[2][0], chw(images[2]))
