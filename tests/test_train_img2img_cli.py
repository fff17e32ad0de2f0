"""The image-to-image models through the command line: ``gankern train --model NAME`` on its
built-in task snapshots and resumes bit-identically (networks, optimizers, image pools, RNG),
``gankern translate`` writes what the checkpoint's generator makes of a folder, ``gankern
generate`` draws the input | output | target grid; bad data, checkpoints, folders and
options are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datautils import random_images, write_image
from PIL import Image
from trainutils import assert_same_tensors, final_checkpoint, one_thread

from gankern.cli import main
from gankern.data import open_dataset, open_paired_dataset, open_unpaired_dataset
from gankern.nn import BicubicDownsample
from gankern.train.checkpoint import list_snapshots, save_checkpoint
from gankern.train.networks import load_network
from gankern.train.visuals import to_uint8

# model -> (resolution of its CPU run, its built-in data, their opener)
MODELS = {
    "pix2pix": (16, "builtin:digits-edges", open_paired_dataset),
    "cyclegan": (16, "builtin:digits-inverted", open_unpaired_dataset),
    "srgan": (16, "builtin:digits-sr", open_dataset),
    "srresnet": (16, "builtin:digits-sr", open_dataset),
}


# A pool smaller than the images of a run, so that it swaps (random draws) before the resume.
EXTRA = {"cyclegan": ["--pool-size", "6"]}


def _train_args(model, outdir, kimg):
    return ["train", "--model", model, "--resolution", str(MODELS[model][0]), "--batch", "4",
            "--kimg", str(kimg), "--tick", "0.008", "--snap", "1", "--device", "cpu",
            "--seed", "2", "--outdir", str(outdir), *EXTRA.get(model, [])]


def _read(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _cells(grid: np.ndarray, side: int) -> list[np.ndarray]:
    """The cells of a grid without padding, row by row."""
    rows, cols = grid.shape[0] // side, grid.shape[1] // side
    return [grid[r * side:(r + 1) * side, c * side:(c + 1) * side]
            for r in range(rows) for c in range(cols)]


@torch.no_grad()
def _generator_output(run_dir, name: str, x: np.ndarray) -> np.ndarray:
    """``name``'s translation of uint8 images ``[N, C, H, W]``, loaded and run here."""
    tensors, meta = final_checkpoint(run_dir)
    G = load_network(meta, tensors, name, impl="ref")
    return to_uint8(G(torch.from_numpy(x).float() / 127.5 - 1))


@pytest.mark.parametrize("model", MODELS)
def test_train_resume_translate_generate(model, tmp_path, capsys):
    resolution, data, opener = MODELS[model]
    with one_thread():
        assert main(_train_args(model, tmp_path / "straight", 0.016)) == 0, capsys.readouterr()
        assert main(_train_args(model, tmp_path / "stopped", 0.008)) == 0
        (straight,) = (tmp_path / "straight").iterdir()
        (stopped,) = (tmp_path / "stopped").iterdir()
        assert main(["train", "--resume", str(stopped), "--kimg", "0.016"]) == 0
    out = capsys.readouterr().out
    assert "Resumed from" in out and "0.008 kimg" in out
    assert [p.name for p in list_snapshots(straight)] == [
        "snapshot-000000000.safetensors", "snapshot-000000008.safetensors",
        "snapshot-000000016.safetensors"]
    a, meta = final_checkpoint(straight)
    b, _ = final_checkpoint(stopped)
    assert_same_tensors(a, b)  # every tensor: networks, optimizers, pools, RNG states
    assert meta["networks"]["model"] == model
    if model == "cyclegan":
        assert any(k.startswith("image_pools/") for k in a)
    records = [json.loads(x) for x in (stopped / "stats.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [8, 16]

    # The snapshot grid: 5 triplets per row, cells 2 pixels apart (their content is checked
    # through gankern generate below).
    grid = _read(straight / "samples-000000016.png")
    assert grid.shape[1] == 15 * resolution + 14 * 2

    # gankern translate: a folder of inputs, PNGs with the same names.
    dataset = opener(data, resolution=resolution)
    inputs = _translation_inputs(model, dataset)
    folder = tmp_path / "in"
    for i, image in enumerate(inputs):
        write_image(folder / ("nested" if i % 2 else "") / f"img{i}.png", image[0])
    direction = ["--direction", "BtoA"] if model == "cyclegan" else []
    args = ["translate", str(straight), "--input", str(folder), "--output",
            str(tmp_path / "out"), "--no-progress", *direction]
    assert main(args) == 0, capsys.readouterr().err
    expected = _generator_output(straight, "G_BA" if model == "cyclegan" else "G", inputs)
    for i in range(len(inputs)):
        written = _read(tmp_path / "out" / ("nested" if i % 2 else "") / f"img{i}.png")
        np.testing.assert_array_equal(written, expected[i, 0])

    # gankern generate: the grid of items 0-3 of the data.
    assert main(["generate", str(straight), "--outdir", str(tmp_path / "gen"), "--seeds",
                 "0-3"]) == 0, capsys.readouterr().err
    cells = _cells(_read(tmp_path / "gen" / "grid.png"), resolution)
    triplets = 8 if model == "cyclegan" else 4  # CycleGAN: both directions
    assert len(cells) == 3 * triplets
    for k in range(4):
        item = dataset[k]
        if model == "pix2pix":
            np.testing.assert_array_equal(cells[3 * k], item[0][0])
            np.testing.assert_array_equal(cells[3 * k + 2], item[1][0])
            np.testing.assert_array_equal(cells[3 * k + 1],
                                          _generator_output(straight, "G", item[0][None])[0, 0])
        elif model == "cyclegan":
            np.testing.assert_array_equal(cells[3 * k], item[0][0])  # a
            np.testing.assert_array_equal(cells[3 * (k + 4)], item[1][0])  # b
        else:
            np.testing.assert_array_equal(cells[3 * k + 2], item[0][0])  # the HR image



def _translation_inputs(model, dataset) -> np.ndarray:
    """Three uint8 inputs ``[3, 1, H, W]`` the model translates."""
    if model.startswith("sr"):  # low-resolution images: the built-in HR digits made small
        hr = torch.from_numpy(np.stack([dataset[i][0] for i in range(3)])).float()
        return BicubicDownsample(4, impl="ref")(hr).round().clamp(0, 255).to(torch.uint8).numpy()
    side = 1 if model == "cyclegan" else 0  # CycleGAN BtoA: images of domain B
    return np.stack([dataset[i][side] for i in range(3)])


# --- errors ---------------------------------------------------------------------------------


def _error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"gankern {command}: error: "), err
    return err


def _run(args) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse
        return exc.code


@pytest.mark.parametrize("model, layout, message", [
    ("pix2pix", "missing-partner", "has no partner"),
    ("pix2pix", "sizes", "must have one size"),
    ("pix2pix", "empty", "contains no PNG or JPEG images"),
    ("cyclegan", "empty", "contains no PNG or JPEG images"),
    ("cyclegan", "sizes", "must have one image size"),
])
def test_bad_training_data_is_one_line_naming_the_file(model, layout, message, tmp_path,
                                                        capsys):
    root = tmp_path / "data"
    a, b = ("A", "B") if model == "pix2pix" else ("trainA", "trainB")
    images = random_images(2, 16, 16, 1)
    write_image(root / a / "x.png", images[0])
    write_image(root / b / ("y.png" if layout == "missing-partner" else "x.png"),
                random_images(1, 8, 8, 1)[0] if layout == "sizes" else images[1])
    if layout == "empty":
        (root / b / "x.png").unlink()
    code = main(["train", "--model", model, "--data", str(root), "--cfg", "digits", "--kimg",
                 "0.004", "--device", "cpu", "--outdir", str(tmp_path / "runs")])
    assert code == 2
    err = _error_line(capsys, "train")
    assert message in err and str(root) in err


@pytest.mark.parametrize("args, message", [
    (["--model", "pix2pix", "--metrics", "fid_digits"], "has no snapshot metrics"),
    (["--model", "pix2pix", "--aug", "ada"], "use --aug noaug"),
    (["--model", "cyclegan", "--data", "builtin:digits-edges"], "is a paired dataset"),
    (["--model", "pix2pix", "--pl-weight", "2"], "unrecognized arguments: --pl-weight"),
    (["--model", "srresnet", "--dlr", "1e-3"], "unrecognized arguments: --dlr"),
    (["--model", "srgan", "--hr-crop", "20"], "hr_crop must be a positive multiple of 16"),
    (["--model", "srgan", "--init-generator", "/no/such/run"], "no such file"),
])
def test_bad_options_are_one_line(args, message, tmp_path, capsys):
    code = _run(["train", *args, "--kimg", "0.064", "--device", "cpu", "--outdir",
                 str(tmp_path / "runs")])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("model, flags", [
    ("pix2pix", ["--lambda-l1 LAMBDA_L1 weight of G's L1 distance to the target (default 100)",
                 "--direction {AtoB,BtoA}", "--n-layers N_LAYERS"]),
    ("cyclegan", ["--lambda-cycle LAMBDA_CYCLE", "--lambda-identity LAMBDA_IDENTITY",
                  "--pool-size POOL_SIZE", "(default 50)", "--lr-schedule {constant,linear}"]),
    ("srgan", ["--content-loss {auto,vgg54,vgg22,mse}", "(default 0.001)", "--init-generator"]),
])
def test_model_help_lists_the_papers_options(model, flags, capsys):
    assert _run(["train", "--model", model, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for flag in flags:
        assert flag in out


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("cyclegan")
    with one_thread():
        assert main(["train", "--model", "cyclegan", "--resolution", "16", "--batch", "4",
                     "--kimg", "0.004", "--device", "cpu", "--outdir", str(outdir)]) == 0
    (run_dir,) = outdir.iterdir()
    return run_dir


def test_translate_errors(cyclegan_run, tmp_path, capsys):
    out = str(tmp_path / "out")

    def translate(checkpoint, folder, *extra):
        assert main(["translate", str(checkpoint), "--input", str(folder), "--output", out,
                     "--no-progress", *extra]) == 2
        return _error_line(capsys, "translate")

    good = tmp_path / "good"
    write_image(good / "x.png", random_images(1, 16, 16, 1)[0])
    assert "checkpoint not found: /no/such" in translate("/no/such", good)
    foreign = tmp_path / "dcgan.safetensors"
    save_checkpoint(foreign, {"x": torch.zeros(1)},
                    {"options": {"model": "dcgan"}, "networks": {"model": "dcgan"}})
    err = translate(foreign, good)
    assert "is a dcgan checkpoint" in err and "pix2pix, cyclegan, srgan, srresnet" in err
    (tmp_path / "empty").mkdir()
    assert "holds no PNG or JPEG images" in translate(cyclegan_run, tmp_path / "empty")
    rgb = tmp_path / "rgb"
    write_image(rgb / "c.png", random_images(1, 16, 16, 3)[0])
    err = translate(cyclegan_run, rgb)
    assert f"{rgb / 'c.png'} has 3 channel(s)" in err and "1-channel images" in err
    odd = tmp_path / "odd"
    write_image(odd / "o.png", random_images(1, 18, 18, 1)[0])
    assert f"{odd / 'o.png'} is 18x18" in translate(cyclegan_run, odd)
    assert "must differ from --input" in translate(cyclegan_run, good, "--output", str(good))


def test_generate_has_no_latent_modes_for_translation_models(cyclegan_run, tmp_path, capsys):
    assert main(["generate", str(cyclegan_run), "--mode", "mixing", "--outdir",
                 str(tmp_path)]) == 2
    assert "translates images" in _error_line(capsys, "generate")
