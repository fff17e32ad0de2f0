"""``gankern train`` and ``gankern generate`` on the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from trainutils import one_thread

from gankern.cli import main
from gankern.train.checkpoint import list_snapshots, load_checkpoint

TRAIN_ARGS = ["train", "--resolution", "16", "--kimg", "0.016", "--tick", "0.016",
              "--batch", "8", "--metrics", "none", "--aug", "noaug", "--device", "cpu",
              "--seed", "1"]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def assert_images_match(a, b):
    """Equal up to one level of rounding (batches of other sizes may differ in the last bit)."""
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run of the default configuration (16 px digits, 2 steps) made by the command line."""
    outdir = tmp_path_factory.mktemp("cli_runs")
    with one_thread():
        assert main(TRAIN_ARGS + ["--outdir", str(outdir)]) == 0
    (run,) = list(outdir.iterdir())
    return run


def test_train_command_writes_a_run(run_dir, capsys):
    assert run_dir.name == "00000-digits-digits-batch8"
    assert [p.name for p in list_snapshots(run_dir)] == [
        "snapshot-000000000.safetensors", "snapshot-000000016.safetensors"]
    _, meta = load_checkpoint(list_snapshots(run_dir)[-1])
    assert meta["options"]["cfg"] is None and meta["networks"]["cfg"] == "digits"
    assert meta["settings"]["batch"] == 8 and meta["networks"]["G"]["channel_max"] == 64
    options = json.loads((run_dir / "training_options.json").read_text())
    assert options["options"]["resolution"] == 16


def test_train_resume_extends_a_run(run_dir, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    with one_thread():
        assert main(["train", "--resume", str(copy), "--kimg", "0.032"]) == 0
    out = capsys.readouterr()
    assert "Resumed from" in out.out and "0.016 kimg" in out.out
    assert "warning" not in out.err  # --kimg does not change the trajectory
    assert list_snapshots(copy)[-1].name == "snapshot-000000032.safetensors"
    records = [json.loads(x) for x in (copy / "stats.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [16, 32]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch", "0"], "expected an integer >= 1"),
        (["--kimg", "-1"], "expected a positive finite number"),
        (["--aug", "sometimes"], "invalid choice"),
        (["--precision", "fp8"], "invalid choice"),
        (["--gamma", "nan"], "expected a finite number >= 0"),
    ],
)
def test_train_argument_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch", "12", "--batch-gpu", "8"], "batch_gpu (8) must divide"),
        (["--metrics", "fid_cats"], "metrics must be among"),
        (["--cfg", "huge"], "config name must be one of"),
        (["--data", "/nonexistent/images"], "/nonexistent/images"),
        (["--resume", "/nonexistent/run"], "no such file or directory"),
        (["--gpus", "2", "--device", "cuda"], "no CUDA device"),
    ],
)
def test_train_setup_errors_are_clear(args, message, tmp_path, capsys):
    with one_thread():
        code = main(TRAIN_ARGS + ["--outdir", str(tmp_path), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_generate_images(run_dir, tmp_path, capsys):
    out = tmp_path / "images"
    assert main(["generate", str(run_dir), "--outdir", str(out), "--seeds", "0-2,7",
                 "--trunc", "0.5", "--grid-cols", "2"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    with Image.open(out / "seed0007.png") as im:
        assert im.mode == "L" and im.size == (16, 16)
        seed7 = np.asarray(im)
    with Image.open(out / "grid.png") as im:
        grid = np.asarray(im)
    assert grid.shape == (2 * 16, 2 * 16)
    np.testing.assert_array_equal(grid[16:, 16:], seed7)  # grid cell 4 is seed 7
    # The same seed gives the same image in another call, and truncation changes it.
    again = tmp_path / "again"
    assert main(["generate", str(run_dir), "--outdir", str(again), "--seeds", "7"]) == 0
    with Image.open(again / "seed0007.png") as im:
        untruncated = np.asarray(im)
    assert main(["generate", str(run_dir), "--outdir", str(again), "--seeds", "7",
                 "--trunc", "0.5"]) == 0
    with Image.open(again / "seed0007.png") as im:
        assert_images_match(np.asarray(im), seed7)
    assert np.abs(untruncated.astype(int) - seed7).max() > 8


def test_generate_mixing_and_interpolation(run_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["generate", str(run_dir), "--outdir", str(out), "--mode", "mixing",
                 "--rows", "0-2", "--cols", "5,6", "--styles", "0,1"]) == 0
    with Image.open(out / "mixing.png") as im:
        mixing = np.asarray(im)
    assert mixing.shape == ((3 + 1) * 16, (2 + 1) * 16)
    assert (mixing[:16, :16] == 0).all()  # the empty corner
    gif = out / "walk.gif"
    assert main(["generate", str(run_dir), "--outdir", str(out), "--mode", "interp",
                 "--seeds", "1,2,3", "--frames", "5", "--video", str(gif)]) == 0
    with Image.open(out / "interp.png") as im:
        interp = np.asarray(im)
    assert interp.shape == (2 * 16, 5 * 16)
    # Ends of each row are the seeds' own images (w space interpolation, t = 0 and 1).
    images = tmp_path / "seeds"
    assert main(["generate", str(run_dir), "--outdir", str(images), "--seeds", "1-3"]) == 0
    for row, seed in ((0, 1), (0, 2), (1, 2), (1, 3)):
        col = 0 if seed == row + 1 else 4
        with Image.open(images / f"seed{seed:04d}.png") as im:
            assert_images_match(interp[row * 16 : row * 16 + 16, col * 16 : col * 16 + 16],
                                np.asarray(im))
    with Image.open(gif) as im:
        assert im.n_frames == 5 + 4  # the second row's first frame is the first's last


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "3"], "the model is unconditional"),
        (["--mode", "mixing", "--styles", "0,99"], "--styles must be in"),
        (["--mode", "interp", "--seeds", "4"], "at least two --seeds"),
        (["--mode", "interp", "--seeds", "1,2", "--video", "x.mp4"], "needs imageio"),
    ],
)
def test_generate_errors(run_dir, tmp_path, args, message, capsys):
    pytest.importorskip("PIL")
    if "x.mp4" in args:
        try:
            import imageio  # noqa: F401

            pytest.skip("imageio is installed: .mp4 works")
        except ImportError:
            pass
    assert main(["generate", str(run_dir), "--outdir", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err


def test_generate_argument_errors(tmp_path, capsys):
    assert main(["generate", str(tmp_path / "missing"), "--outdir", str(tmp_path)]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", str(tmp_path), "--seeds", "a-b"])
    assert "expected integers and ranges" in capsys.readouterr().err


def test_missing_inception_weights_fail_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.delenv("GANKERN_INCEPTION_WEIGHTS", raising=False)
    code = main(TRAIN_ARGS + ["--metrics", "fid50k", "--outdir", str(tmp_path / "runs")])
    assert code == 2
    err = capsys.readouterr().err
    assert "FID Inception weights not found" in err and "never downloads" in err
    assert not (tmp_path / "runs").exists()  # stopped before anything was written
