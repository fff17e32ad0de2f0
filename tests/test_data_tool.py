"""`gankern dataset` end to end: crop, resize, channels, labels, bad files, bad arguments."""

import json
import os
import zipfile

import numpy as np
import pytest
from datautils import chw, random_images, truncate_file, write_image, write_labels, zip_folder

from gankern.cli import main
from gankern.data import ImageFolderDataset


def _run(*args):
    return main(["dataset", "--quiet", *map(str, args)])


def _banded(height=40, width=60, seed=0):
    """An RGB image whose centered square is random and whose side bands are pure red."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 255
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    image[top:top + side, left:left + side] = random_images(1, side, side, 3, seed)[0]
    return image, image[top:top + side, left:left + side]


def test_center_crop_keeps_exactly_the_center(tmp_path):
    centers = []
    for i in range(3):
        image, center = _banded(seed=i)
        write_image(tmp_path / "src" / f"p{i}.png", image)
        centers.append(center)
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "out.zip",
                "--transform", "center-crop") == 0
    ds = ImageFolderDataset(tmp_path / "out.zip")
    assert len(ds) == 3 and ds.image_shape == (3, 40, 40)
    for i in range(3):
        np.testing.assert_array_equal(ds[i][0], chw(centers[i]))
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert sorted(zf.namelist()) == ["00000/img00000000.png", "00000/img00000001.png",
                                         "00000/img00000002.png", "dataset.json"]
        assert json.loads(zf.read("dataset.json")) == {"labels": None}


def test_resize_channels_and_labels_carried_over(tmp_path):
    colors = [(200, 30, 90), (10, 250, 40), (90, 90, 250), (255, 255, 255)]
    names = ["x/c0.png", "c1.jpg", "x/y/c2.png", "c3.png"]
    for name, color in zip(names, colors, strict=True):
        write_image(tmp_path / "src" / name, np.full((24, 36, 3), color, np.uint8), quality=100)
    write_labels(tmp_path / "src", [(n, i * 2) for i, n in enumerate(names)])
    source = zip_folder(tmp_path / "src", tmp_path / "src.zip")
    assert _run("--source", source, "--dest", tmp_path / "out", "--resolution", "16x16",
                "--transform", "center-crop", "--channels", "1") == 0
    ds = ImageFolderDataset(tmp_path / "out", use_labels=True)
    assert len(ds) == 4 and ds.image_shape == (1, 16, 16) and ds.c_dim == 7
    order = sorted(range(4), key=lambda i: names[i])  # the tool reads names in sorted order
    for k, i in enumerate(order):
        image, label = ds[k]
        r, g, b = colors[i]
        gray = 0.299 * r + 0.587 * g + 0.114 * b  # ITU-R 601 luma
        assert np.abs(image.astype(float) - gray).max() <= 2, (names[i], image.mean(), gray)
        assert int(np.argmax(label)) == 2 * i


def test_plain_resize_and_center_crop_wide(tmp_path):
    write_image(tmp_path / "src" / "w.png", np.full((40, 60, 3), 255, np.uint8))
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "a.zip",
                "--resolution", "20x8") == 0
    assert ImageFolderDataset(tmp_path / "a.zip").image_shape == (3, 8, 20)
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "b.zip",
                "--resolution", "32x16", "--transform", "center-crop-wide") == 0
    image = ImageFolderDataset(tmp_path / "b.zip")[0][0]
    assert image.shape == (3, 32, 32)
    assert (image[:, :8] == 0).all() and (image[:, 24:] == 0).all()  # black bars
    assert (image[:, 8:24] == 255).all()  # the 32x16 picture in the middle


def test_mode_conversions(tmp_path):
    from PIL import Image

    src = tmp_path / "src"
    os.makedirs(src)
    sixteen = np.array([[0, 257 * 100], [65535, 257 * 7]], np.uint16)
    Image.fromarray(sixteen).save(src / "a16.png")  # 16-bit grayscale
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    write_image(src / "b_rgba.png", rgba)
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([40, 50, 60] + [0] * 765)
    palette.save(src / "c_pal.png")
    assert _run("--source", src, "--dest", tmp_path / "o.zip", "--channels", "3") == 0
    ds = ImageFolderDataset(tmp_path / "o.zip")
    np.testing.assert_array_equal(ds[0][0][0], [[0, 100], [255, 7]])
    np.testing.assert_array_equal(ds[1][0][:, 0, 0], [10, 20, 30])
    np.testing.assert_array_equal(ds[2][0][:, 0, 0], [40, 50, 60])


def test_mismatched_images_refused_without_resolution(tmp_path):
    write_image(tmp_path / "src" / "a.png", random_images(1, 8, 8, 3)[0])
    write_image(tmp_path / "src" / "b.png", random_images(1, 8, 12, 3)[0])
    write_image(tmp_path / "src" / "c.png", random_images(1, 8, 8, 1)[0])
    dest = tmp_path / "o.zip"
    assert _run("--source", tmp_path / "src", "--dest", dest) == 1
    assert not dest.exists() and not [p for p in os.listdir(tmp_path) if ".tmp" in p]
    assert _run("--source", tmp_path / "src", "--dest", dest, "--resolution", "8x8") == 1
    assert _run("--source", tmp_path / "src", "--dest", dest, "--resolution", "8x8",
                "--channels", "3", "--max-images", "2") == 0
    assert len(ImageFolderDataset(dest)) == 2


def test_mismatch_message_names_the_file(tmp_path, capsys):
    write_image(tmp_path / "src" / "a.png", random_images(1, 8, 8, 3)[0])
    write_image(tmp_path / "src" / "b.png", random_images(1, 8, 12, 3)[0])
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o.zip") == 1
    err = capsys.readouterr().err
    assert "b.png is 12x8" in err and "--resolution" in err


def test_bad_files_error_or_skip(tmp_path, capsys):
    for i in range(3):
        write_image(tmp_path / "src" / f"i{i}.png", random_images(1, 8, 8, 3, seed=i)[0])
    truncate_file(tmp_path / "src" / "i1.png")
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o.zip") == 1
    err = capsys.readouterr().err
    assert "i1.png" in err and "--skip-bad" in err
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o.zip", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "wrote 2 images" in captured.out and "skipped 1" in captured.err
    assert len(ImageFolderDataset(tmp_path / "o.zip")) == 2


@pytest.mark.parametrize("args,message", [
    (["--resolution", "0x5"], "--resolution"),
    (["--resolution", "big"], "--resolution"),
    (["--channels", "2"], "--channels"),
    (["--transform", "stretch"], "--transform"),
    (["--max-images", "0"], "--max-images"),
])
def test_bad_arguments_are_usage_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as info:
        _run("--source", tmp_path, "--dest", tmp_path / "o.zip", *args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_bad_paths_are_clear_errors(tmp_path, capsys):
    write_image(tmp_path / "src" / "a.png", random_images(1, 8, 8, 3)[0])
    cases = [
        (["--source", tmp_path / "nope", "--dest", tmp_path / "o.zip"], "--source"),
        (["--source", tmp_path / "src", "--dest", tmp_path / "src" / "o"], "inside --source"),
        (["--source", tmp_path / "src", "--dest", tmp_path / "src" / "a.png"], "existing file"),
        (["--source", tmp_path / "src", "--dest", tmp_path / "o.zip",
          "--transform", "center-crop-wide"], "needs --resolution"),
        (["--source", tmp_path / "src", "--dest", tmp_path / "o.zip",
          "--transform", "center-crop-wide", "--resolution", "16x32"], "W >= H"),
    ]
    for args, message in cases:
        assert _run(*args) == 1
        assert message in capsys.readouterr().err
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o.zip") == 0
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o.zip") == 1
    assert "already exists" in capsys.readouterr().err
    os.makedirs(tmp_path / "empty")
    assert _run("--source", tmp_path / "empty", "--dest", tmp_path / "e.zip") == 1
    assert "no PNG or JPEG" in capsys.readouterr().err
