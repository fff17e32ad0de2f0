"""Every model family through the command line: a short ``gankern train --model NAME`` run
on the built-in digits that snapshots, resumes where it stopped, and ``gankern generate``
from it (``--class`` for conditional models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from trainutils import one_thread

from gankern.cli import main
from gankern.train.checkpoint import list_snapshots, load_checkpoint
from gankern.train.families import family_names, get_family
from gankern.train.families._img2img import ImageToImageFamily

# StyleGAN2 has its own command-line tests (test_train_cli.py), the image-to-image models
# theirs (test_train_img2img_cli.py; SRGAN trains on images, but translates them).
MODELS = [name for name in family_names() if name != "stylegan2"
          and get_family(name).data_kind == "images"
          and not issubclass(get_family(name), ImageToImageFamily)]


def _train_args(model, outdir, *extra):
    return ["train", "--model", model, "--resolution", "16", "--batch", "8", "--kimg",
            "0.032", "--tick", "0.016", "--snap", "1", "--metrics", "none", "--device", "cpu",
            "--seed", "2", "--outdir", str(outdir), *extra]


@pytest.mark.parametrize("model", MODELS)
def test_train_resume_generate(model, tmp_path, capsys):
    conditional = get_family(model).labels == "always"
    with one_thread():
        assert main(_train_args(model, tmp_path / "runs")) == 0, capsys.readouterr().err
        (run_dir,) = (tmp_path / "runs").iterdir()
        snaps = [p.name for p in list_snapshots(run_dir)]
        assert snaps == ["snapshot-000000000.safetensors", "snapshot-000000016.safetensors",
                         "snapshot-000000032.safetensors"]
        assert (run_dir / "samples-000000032.png").is_file()
        _, meta = load_checkpoint(list_snapshots(run_dir)[-1])
        assert meta["options"]["model"] == model and meta["networks"]["model"] == model
        assert meta["networks"]["G"]["c_dim"] == (10 if conditional else 0)

        assert main(["train", "--resume", str(run_dir), "--kimg", "0.048"]) == 0
        out = capsys.readouterr()
        assert "Resumed from" in out.out and "0.032 kimg" in out.out
        assert list_snapshots(run_dir)[-1].name == "snapshot-000000048.safetensors"
        records = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
        assert [r["nimg"] for r in records] == [16, 32, 48]

        images = tmp_path / "images"
        args = ["generate", str(run_dir), "--outdir", str(images), "--seeds", "0-3", "--grid"]
        if conditional:
            args += ["--class", "7"]
        assert main(args) == 0, capsys.readouterr().err
    with Image.open(images / "grid.png") as im:
        grid = np.asarray(im)
    assert grid.shape == (16, 4 * 16)
    with Image.open(images / "seed0002.png") as im:
        np.testing.assert_array_equal(np.asarray(im), grid[:, 32:48])


def test_model_help_lists_its_own_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--model", "wgan", "--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--clip CLIP WGAN weight clipping bound of D's parameters (default 0.01)" in out
    assert "--n-critic N_CRITIC D steps per G step (default 5)" in out
    assert "--pl-weight" not in out  # StyleGAN2's options are not WGAN's
    assert "--cond-mode {concat,acgan,projection}" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "dcgan", "--pl-weight", "2"], "unrecognized arguments: --pl-weight"),
        (["--model", "nosuch"], "--model must be one of"),
        (["--model", "dcgan", "--cfg", "paper256"], "config name must be one of"),
        (["--model", "dcgan", "--cond-mode", "sideways"], "invalid choice: 'sideways'"),
    ],
)
def test_bad_model_options(args, message, tmp_path, capsys):
    try:
        code = main(["train", "--outdir", str(tmp_path), "--device", "cpu", *args])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
