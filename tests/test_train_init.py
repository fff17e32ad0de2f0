"""Fine-tuning from published weights: ``gankern train --init FILE --freezed N``.

The published files are written in the official formats from their published layouts
(the helpers of test_stylegan2_convert.py: a StyleGAN2-ADA pickle, a rosinality ``.pt``),
with random tensors; a run must start from exactly those tensors, keep the first N
discriminator layers fixed, refuse data that do not fit, and resume without the file.
"""

from __future__ import annotations

import argparse

import pytest
import test_stylegan2_convert
import torch
from datautils import random_images, write_image
from test_stylegan2_convert import (
    IMG,
    RES,
    rosinality_discriminator_layout,
    rosinality_generator_layout,
    rosinality_state,
    write_official_pickle,
)
from trainutils import one_thread

from gankern.cli import main
from gankern.models import load_rosinality_checkpoint
from gankern.train.checkpoint import list_snapshots, load_checkpoint
from gankern.train.loop import training_loop
from gankern.train.options import TrainingOptions


@pytest.fixture
def official_modules(monkeypatch):
    """Stand-ins for the modules an official pickle names (see test_stylegan2_convert)."""
    return test_stylegan2_convert.official_modules.__wrapped__(monkeypatch)


# resample_filter: derived from the configuration, not saved by gankern (compared on load).
DERIVED = ("resample_filter",)


def _images(folder, channels=IMG, count=8):
    pixels = random_images(count, RES, RES, channels, seed=5)
    for i in range(count):
        write_image(folder / f"{i}.png", pixels[i])
    return folder


def _args(tmp_path, data, *extra):
    return ["train", "--data", str(data), "--kimg", "0.008", "--tick", "0.004", "--snap", "1",
            "--batch", "4", "--aug", "noaug", "--device", "cpu", "--cfg", "paper256",
            "--outdir", str(tmp_path / "runs"), *extra]  # fmt: skip


def test_init_from_an_official_pickle_with_frozen_d_layers(official_modules, tmp_path):
    pkl = tmp_path / "network-snapshot.pkl"
    g_state, d_state, g_ema_state = write_official_pickle(official_modules, pkl, c_dim=0)
    data = _images(tmp_path / "imgs")
    with one_thread():
        assert main(_args(tmp_path, data, "--init", str(pkl), "--freezed", "2")) == 0
    (run,) = (tmp_path / "runs").iterdir()
    first, *_, last = list_snapshots(run)
    start, meta = load_checkpoint(first)
    # The run starts from the file's tensors, every one of them.
    for net, state in (("G", g_state), ("D", d_state), ("G_ema", g_ema_state)):
        for name, tensor in state.items():
            if not name.endswith(DERIVED):
                assert torch.equal(start[f"{net}/{name}"], tensor), f"{net}/{name}"
    assert meta["networks"]["G"]["channel_max"] == 8  # the file's architecture, not paper256's
    assert meta["networks"]["D"]["freeze_layers"] == 2
    assert meta["settings"]["gamma"] == 1.0  # paper256's hyperparameters
    # Freeze-D: D's first two layers (b16.fromrgb, b16.conv0) never move; the others do.
    end, _ = load_checkpoint(last)
    for name in ("b16.fromrgb.weight", "b16.fromrgb.bias", "b16.conv0.weight"):
        assert torch.equal(end[f"D/{name}"], d_state[name]), name
    for name in ("b16.conv1.weight", "b8.conv0.weight", "b4.out.weight"):
        assert not torch.equal(end[f"D/{name}"], d_state[name]), name
    assert not torch.equal(
        end["G/synthesis.b16.conv0.weight"], g_state["synthesis.b16.conv0.weight"]
    )

    # Resuming needs no --init file: the architecture is in the checkpoint.
    pkl.unlink()
    with one_thread():
        assert main(["train", "--resume", str(run), "--kimg", "0.012"]) == 0
    assert list_snapshots(run)[-1].name == "snapshot-000000012.safetensors"


def test_init_from_a_rosinality_checkpoint(tmp_path):
    g_ema = rosinality_state(rosinality_generator_layout(n_mlp=2), seed=4)
    d = rosinality_state(rosinality_discriminator_layout(), seed=5)
    pt = tmp_path / "550000.pt"
    torch.save(
        {
            "g_ema": g_ema,
            "d": d,
            "latent_avg": torch.randn(8),
            "args": argparse.Namespace(size=RES),
        },
        pt,
    )
    converted = load_rosinality_checkpoint(pt, impl="ref")
    opts = TrainingOptions(data=str(_images(tmp_path / "imgs")), init=str(pt), kimg=0.004,
                           kimg_per_tick=0.004, batch=4, aug="noaug", device="cpu",
                           cfg="paper256", outdir=str(tmp_path / "runs"), tensorboard=False,
                           metrics=[])  # fmt: skip
    lines = []
    with one_thread():
        run = training_loop(opts, print_fn=lambda text, **k: lines.append(text))
    start, _ = load_checkpoint(list_snapshots(run)[0])
    # G and G_ema both start as the file's g_ema (it has no g); D from its d.
    for net, source in (("G", "G_ema"), ("G_ema", "G_ema"), ("D", "D")):
        for name, tensor in converted[source].state_dict().items():
            assert torch.equal(start[f"{net}/{name}"], tensor), f"{net}/{name}"
    assert any(f"Initialized from {pt}" in line for line in lines)


@pytest.mark.parametrize(
    "channels, resolution, message",
    [
        (1, None, "holds a model of RGB images (3 channels), but imgs has 1"),
        (IMG, 32, "holds a 16x16 model, but the training data imgs are 32x32"),
    ],
)
def test_init_refuses_data_that_do_not_fit(
    official_modules, tmp_path, channels, resolution, message
):
    pkl = tmp_path / "network-snapshot.pkl"
    write_official_pickle(official_modules, pkl, c_dim=0)
    data = _images(tmp_path / "imgs", channels=channels)
    if resolution:  # the same images, resized
        from PIL import Image

        for path in data.iterdir():
            Image.open(path).resize((resolution, resolution)).save(path)
    opts = TrainingOptions(
        data=str(data), init=str(pkl), batch=4, device="cpu", outdir=str(tmp_path / "runs")
    )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        training_loop(opts)
    assert not (tmp_path / "runs").exists()
