"""`gankern dataset --layout side-by-side|folders|unpaired`: building both paired layouts and
CycleGAN's layout, read back by the datasets; bad data named."""

import json
import os
import zipfile

import numpy as np
import pytest
from datautils import chw, random_images, write_image
from PIL import Image

from gankern.cli import main
from gankern.data import (
    FolderPairDataset,
    SideBySidePairDataset,
    open_paired_dataset,
    open_unpaired_dataset,
)

NAMES = ["x/p1", "p0", "x/y/p2"]
SORTED = sorted(NAMES)


def _run(*args):
    return main(["dataset", "--quiet", *map(str, args)])


def _two_folders(root, size=8, ca=1, cb=3):
    a = random_images(len(NAMES), size, size, ca, seed=1)
    b = random_images(len(NAMES), size, size, cb, seed=2)
    for name, ia, ib in zip(NAMES, a, b, strict=True):
        write_image(os.path.join(root, "a_src", *f"{name}.png".split("/")), ia)
        write_image(os.path.join(root, "b_src", *f"{name}.png".split("/")), ib)
    return {n: (chw(ia), chw(ib)) for n, ia, ib in zip(NAMES, a, b, strict=True)}


def test_folders_layout_from_two_sources(tmp_path, capsys):
    pairs = _two_folders(tmp_path)
    assert _run("--source", tmp_path / "a_src", "--source-b", tmp_path / "b_src",
                "--dest", tmp_path / "out.zip", "--layout", "folders") == 0
    assert "wrote 3 pairs (8x8, A grayscale, B RGB, layout folders)" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        names = sorted(zf.namelist())
        assert json.loads(zf.read("dataset.json")) == {"labels": None, "layout": "folders"}
    assert names[:3] == ["A/00000/img00000000.png", "A/00000/img00000001.png",
                         "A/00000/img00000002.png"]
    ds = open_paired_dataset(tmp_path / "out.zip")
    assert isinstance(ds, FolderPairDataset) and (ds.in_channels, ds.out_channels) == (1, 3)
    for i, name in enumerate(SORTED):  # pairs keep their partners, in name order
        x, y = ds[i]
        np.testing.assert_array_equal(x, pairs[name][0])
        np.testing.assert_array_equal(y, pairs[name][1])


def test_side_by_side_layout_with_channels(tmp_path, capsys):
    pairs = _two_folders(tmp_path)
    assert _run("--source", tmp_path / "a_src", "--source-b", tmp_path / "b_src",
                "--dest", tmp_path / "sbs", "--layout", "side-by-side") == 1
    assert "one channel count" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "sbs")  # nothing left behind
    assert _run("--source", tmp_path / "a_src", "--source-b", tmp_path / "b_src",
                "--dest", tmp_path / "sbs", "--layout", "side-by-side", "--channels", 3) == 0
    ds = open_paired_dataset(tmp_path / "sbs")
    assert isinstance(ds, SideBySidePairDataset) and ds.a_shape == (3, 8, 8)
    for i, name in enumerate(SORTED):
        x, y = ds[i]
        np.testing.assert_array_equal(x, np.repeat(pairs[name][0], 3, axis=0))
        np.testing.assert_array_equal(y, pairs[name][1])


def test_converting_between_the_two_layouts(tmp_path):
    a = random_images(2, 6, 6, 3, seed=3)
    b = random_images(2, 6, 6, 3, seed=4)
    for i in range(2):
        write_image(tmp_path / "ab" / f"{i}.png", np.concatenate([a[i], b[i]], axis=1))
    assert _run("--source", tmp_path / "ab", "--dest", tmp_path / "split",
                "--layout", "folders") == 0
    split = open_paired_dataset(tmp_path / "split")
    assert isinstance(split, FolderPairDataset)
    assert _run("--source", tmp_path / "split", "--dest", tmp_path / "joined.zip",
                "--layout", "side-by-side") == 0
    joined = open_paired_dataset(tmp_path / "joined.zip")
    for i in range(2):
        for ds in (split, joined):
            np.testing.assert_array_equal(ds[i][0], chw(a[i]))
            np.testing.assert_array_equal(ds[i][1], chw(b[i]))


def test_each_half_is_resized_on_its_own(tmp_path):
    a = random_images(1, 16, 16, 3, seed=5)[0]
    b = random_images(1, 16, 16, 3, seed=6)[0]
    write_image(tmp_path / "ab" / "0.png", np.concatenate([a, b], axis=1))
    assert _run("--source", tmp_path / "ab", "--dest", tmp_path / "out",
                "--layout", "side-by-side", "--resolution", "8x8") == 0
    x, y = open_paired_dataset(tmp_path / "out")[0]
    for got, half in ((x, a), (y, b)):
        expected = Image.fromarray(half).resize((8, 8), Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(got, chw(np.asarray(expected)))


def test_bad_pairs_are_named(tmp_path, capsys):
    _two_folders(tmp_path)
    os.remove(tmp_path / "b_src" / "x" / "p1.png")
    args = ["--source", tmp_path / "a_src", "--source-b", tmp_path / "b_src", "--layout",
            "folders"]
    assert _run(*args, "--dest", tmp_path / "o1") == 1
    assert "a_src/x/p1.png has no partner" in capsys.readouterr().err.replace(os.sep, "/")
    write_image(tmp_path / "b_src" / "x" / "p1.png", random_images(1, 8, 6, 3)[0])
    assert _run(*args, "--dest", tmp_path / "o2") == 1
    err = capsys.readouterr().err.replace(os.sep, "/")
    assert "B images differ: " in err and "b_src/x/p1.png is 6x8" in err
    assert _run(*args, "--dest", tmp_path / "o3", "--resolution", "8x8") == 0  # made uniform
    write_image(tmp_path / "odd" / "x.png", random_images(1, 4, 7, 3)[0])
    assert _run("--source", tmp_path / "odd", "--dest", tmp_path / "o4", "--layout",
                "folders") == 1
    assert "odd/x.png is 7x4" in capsys.readouterr().err.replace(os.sep, "/")
    assert not any(os.path.exists(tmp_path / f"o{i}") for i in (1, 2, 4))


def test_pairs_of_different_sizes_are_refused(tmp_path, capsys):
    write_image(tmp_path / "a" / "p.png", random_images(1, 8, 8, 3)[0])
    write_image(tmp_path / "b" / "p.png", random_images(1, 6, 6, 3)[0])
    assert _run("--source", tmp_path / "a", "--source-b", tmp_path / "b", "--dest",
                tmp_path / "o", "--layout", "folders") == 1
    err = capsys.readouterr().err.replace(os.sep, "/")
    assert "a/p.png is 8x8 but" in err and "b/p.png is 6x6" in err


def test_unreadable_files_stop_or_skip_the_pair(tmp_path, capsys):
    _two_folders(tmp_path)
    with open(tmp_path / "a_src" / "p0.png", "wb") as f:
        f.write(b"garbage")
    args = ["--source", tmp_path / "a_src", "--source-b", tmp_path / "b_src", "--layout",
            "folders"]
    assert _run(*args, "--dest", tmp_path / "o1") == 1
    assert "a_src/p0.png" in capsys.readouterr().err.replace(os.sep, "/")
    assert _run(*args, "--dest", tmp_path / "o2", "--skip-bad") == 0
    captured = capsys.readouterr()
    assert "wrote 2 pairs" in captured.out and "skipped 1 unreadable" in captured.err
    assert len(open_paired_dataset(tmp_path / "o2")) == 2


def test_unpaired_layout(tmp_path, capsys):
    a = random_images(4, 12, 12, 3, seed=7)
    b = random_images(2, 16, 16, 1, seed=8)
    for i, image in enumerate(a):
        write_image(tmp_path / "horses" / f"h{i}.png", image)
    for i, image in enumerate(b):
        write_image(tmp_path / "zebras" / f"z{i}.jpg", image, quality=95)
    args = ["--source", tmp_path / "horses", "--source-b", tmp_path / "zebras", "--layout",
            "unpaired"]
    assert _run(*args, "--dest", tmp_path / "bad") == 1
    assert "one image size after conversion" in capsys.readouterr().err
    assert _run(*args, "--dest", tmp_path / "h2z.zip", "--resolution", "8x8") == 0
    assert "wrote 4 A images (8x8 RGB) and 2 B images (grayscale)" in capsys.readouterr().out
    ds = open_unpaired_dataset(tmp_path / "h2z.zip")
    assert (len(ds.a), len(ds.b), ds.in_channels, ds.out_channels) == (4, 2, 3, 1)
    expected = Image.fromarray(a[1]).resize((8, 8), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(ds[(1, 0)][0], chw(np.asarray(expected)))
    # Re-encode an existing CycleGAN dataset into the test split, grayscale.
    assert _run("--source", tmp_path / "h2z.zip", "--dest", tmp_path / "test", "--layout",
                "unpaired", "--split", "test", "--channels", 1) == 1  # no testA/ in it
    assert "must hold the folders testA/ and testB/" in capsys.readouterr().err
    os.makedirs(tmp_path / "cg")
    with zipfile.ZipFile(tmp_path / "h2z.zip") as zf:
        zf.extractall(tmp_path / "cg")
    for folder in ("trainA", "trainB"):
        os.rename(tmp_path / "cg" / folder, tmp_path / "cg" / folder.replace("train", "test"))
    assert _run("--source", tmp_path / "cg", "--dest", tmp_path / "test", "--layout",
                "unpaired", "--split", "test", "--channels", 1) == 0
    test = open_unpaired_dataset(tmp_path / "test", split="test")
    assert (test.in_channels, test.out_channels, len(test.a)) == (1, 1, 4)


def test_option_errors(tmp_path, capsys):
    write_image(tmp_path / "src" / "a.png", random_images(1, 8, 8, 3)[0])
    assert _run("--source", tmp_path / "src", "--dest", tmp_path / "o", "--source-b",
                tmp_path / "src") == 1
    assert "--source-b is for the paired and unpaired layouts" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run("--source", tmp_path / "src", "--dest", tmp_path / "o", "--layout", "grid")
    assert "invalid choice" in capsys.readouterr().err
