"""``gankern project``, ``gankern edit`` and ``gankern generate --direction`` on the command
line, with the session's trained digits StyleGAN2 (16 px): the files each writes, and one
clear error line for each bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from editing_utils import trained_digits_run, untrained_stylegan2
from PIL import Image
from trainutils import one_thread

from gankern.cli import main
from gankern.editing import ganspace, load_direction, load_projection, save_direction

RES = 16


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    with one_thread():
        return trained_digits_run(tmp_path_factory)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _image(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"gankern {command}: error: ") and "\n" not in err, err
    return err


def test_project_writes_its_files(run_dir, tmp_path, capsys):
    assert main(["generate", str(run_dir), "--seeds", "3", "--outdir", str(tmp_path)]) == 0
    out = tmp_path / "proj"
    assert main(["project", str(run_dir), "--target", str(tmp_path / "seed0003.png"),
                 "--steps", "20", "--outdir", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "distance (digits)" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "progress.gif", "projected.png", "projected_w.npz", "side_by_side.png", "target.png"]
    np.testing.assert_array_equal(_image(out / "target.png"), _image(tmp_path / "seed0003.png"))
    side = _image(out / "side_by_side.png")
    assert side.shape == (RES, 2 * RES)
    np.testing.assert_array_equal(side[:, RES:], _image(out / "projected.png"))
    ws, noise = load_projection(out / "projected_w.npz")
    assert ws.shape == (1, 6, 64) and noise == {}
    with Image.open(out / "progress.gif") as im:
        assert im.n_frames == 3 and im.size == (2 * RES, RES)  # steps 1, 11 and 20


@pytest.mark.parametrize("method, args", [
    ("ganspace", ["--component", "2", "--num-samples", "500", "--layers", "0-2"]),
    ("sefa", ["--component", "1"]),
    ("interfacegan", ["--attribute", "class:6,8", "--condition", "thickness",
                      "--num-samples", "300"]),
    ("stylespace", ["--attribute", "thickness", "--num-samples", "4", "--candidates", "8",
                    "--top-channels", "2"]),
])
def test_edit_writes_a_grid_and_a_direction(run_dir, tmp_path, capsys, method, args):
    out = tmp_path / "edits"
    assert main(["edit", str(run_dir), "--method", method, *args, "--seeds", "0-2",
                 "--strength", "-2,0,2", "--outdir", str(out)]) == 0
    stdout = capsys.readouterr().out
    name = {"ganspace": "ganspace-2", "sefa": "sefa-1"}.get(method, method)
    assert f"wrote {out / (name + '.safetensors')}" in stdout
    assert _image(out / "edit.png").shape == (3 * RES, 3 * RES)
    d = load_direction(out / f"{name}.safetensors")
    assert d.method == method and d.space == ("style" if method == "stylespace" else "w")
    if method == "ganspace":
        assert d.layers == (0, 1, 2) and d.info["component"] == 2
    if method == "interfacegan":
        assert d.info["conditions"] == ["thickness"] and "conditioned on thickness" in stdout
    # Strength 0 draws the seeds as they are: the middle column is gankern generate's image.
    plain = tmp_path / "plain"
    assert main(["generate", str(run_dir), "--seeds", "1", "--outdir", str(plain)]) == 0
    middle = _image(out / "edit.png")[RES : 2 * RES, RES : 2 * RES]
    assert np.abs(middle.astype(int) - _image(plain / "seed0001.png")).max() <= 1


def test_edit_a_projected_latent_and_generate_along_a_direction(run_dir, tmp_path, capsys):
    assert main(["generate", str(run_dir), "--seeds", "4", "--outdir", str(tmp_path)]) == 0
    assert main(["project", str(run_dir), "--target", str(tmp_path / "seed0004.png"),
                 "--steps", "10", "--no-video", "--wplus", "--noise",
                 "--outdir", str(tmp_path / "proj")]) == 0
    assert not (tmp_path / "proj" / "progress.gif").exists()
    assert main(["edit", str(run_dir), "--method", "sefa", "--latent",
                 str(tmp_path / "proj" / "projected_w.npz"), "--strength", "0,3",
                 "--outdir", str(tmp_path / "e")]) == 0
    grid = _image(tmp_path / "e" / "edit.png")
    assert grid.shape == (RES, 2 * RES)  # one row: the projected image, unedited and edited
    np.testing.assert_allclose(grid[:, :RES], _image(tmp_path / "proj" / "projected.png"),
                               atol=1)
    out = tmp_path / "gen"
    direction = tmp_path / "e" / "sefa-0.safetensors"
    assert main(["generate", str(run_dir), "--direction", str(direction), "--seeds", "0,5",
                 "--strength", "-1.5,0,1.5", "--outdir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "seed0000.png", "seed0005.png"]
    rows = _image(out / "grid.png")
    assert rows.shape == (2 * RES, 3 * RES)
    np.testing.assert_array_equal(rows[RES:], _image(out / "seed0005.png"))
    assert main(["generate", str(run_dir), "--seeds", "5", "--outdir", str(tmp_path)]) == 0
    assert np.abs(rows[RES:, RES : 2 * RES].astype(int)
                  - _image(tmp_path / "seed0005.png")).max() <= 1


def _other_network_direction(tmp_path):
    G = untrained_stylegan2(w_dim=8)
    return save_direction(ganspace(G, num_samples=20).direction(0), tmp_path / "other.safetensors")


@pytest.mark.parametrize("command, args, message", [
    ("project", ["--target", "small.png"], "is 8x8; the generator draws 16x16 images"),
    ("project", ["--target", "missing.png"], "missing.png does not exist"),
    ("project", ["--target", "junk.png"], "junk.png is not a readable image"),
    ("edit", ["--method", "ganspace", "--component", "64", "--num-samples", "100"],
     r"component must be in [0, 63] (64 ganspace components), got 64"),
    ("edit", ["--method", "sefa", "--layers", "0,9"], "layers must be distinct ws indices"),
    ("edit", ["--method", "interfacegan"], "--method interfacegan needs --attribute"),
    ("edit", ["--method", "stylespace", "--attribute", "smile"], "attribute must be"),
    ("edit", ["--method", "sefa", "--latent", "missing.npz"], "missing.npz does not exist"),
    ("generate", ["--direction", "other.safetensors"],
     "--direction: the direction was found on another network: w_dim 8"),
    ("generate", ["--direction", "missing.safetensors"], "missing.safetensors does not exist"),
    ("generate", ["--strength", "1"], "--strength needs --direction"),
])
def test_bad_inputs_give_one_error_line(run_dir, tmp_path, capsys, command, args, message):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    _other_network_direction(tmp_path)
    args = [str(tmp_path / a) if a.endswith((".png", ".npz", ".safetensors")) else a
            for a in args]
    assert main([command, str(run_dir), *args, "--outdir", str(tmp_path / "out")]) == 2
    assert message in _error_line(capsys, command)


@pytest.mark.parametrize("command, args", [("project", ["--target", "x.png"]),
                                           ("edit", ["--method", "sefa"])])
def test_missing_checkpoint(tmp_path, capsys, command, args):
    assert main([command, str(tmp_path / "nothing"), *args]) == 2
    assert "no such file or directory" in _error_line(capsys, command)


def test_a_same_shape_direction_of_another_network_warns(run_dir, tmp_path, capsys):
    from gankern.train.networks import load_generator

    G = load_generator(run_dir)
    with torch.no_grad():
        G.mapping.fc0.weight.mul_(1.01)  # the same shape, other weights
    path = save_direction(ganspace(G, num_samples=100).direction(0), tmp_path / "d.safetensors")
    assert main(["generate", str(run_dir), "--direction", str(path), "--seeds", "0",
                 "--outdir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "gankern generate: warning:" in err and "another generator of the same shape" in err
