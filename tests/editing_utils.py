"""Shared helpers of the editing tests: a small StyleGAN2 trained on the built-in digits
(once per test session, shared by pytest-xdist workers through a lock), and small untrained
generators of both StyleGAN families."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from filelock import FileLock
from trainutils import one_thread

from gankern.models import get_config
from gankern.train.checkpoint import list_snapshots
from gankern.train.loop import training_loop
from gankern.train.networks import load_generator
from gankern.train.options import TrainingOptions

# The default digits configuration at 16 px (64-d w, 64/64/32 feature maps), 6 kimg: blurry
# digits of several classes, enough to give the methods something to find. About 40 s on
# one idle core (deterministic for a given torch build).
TRAIN_KIMG = 6
TRAIN_OPTIONS = dict(model="stylegan2", cfg="digits", resolution=16, kimg=TRAIN_KIMG,
                     kimg_per_tick=TRAIN_KIMG, snap=100, metrics=[], tensorboard=False,
                     device="cpu", seed=0)


def trained_digits_run(tmp_path_factory) -> Path:
    """The run directory of the session's trained digits StyleGAN2 (trained on first use).

    Under pytest-xdist the workers share one run: the first to take the lock trains it.
    ``$GANKERN_EDITING_TEST_RUN`` names an existing run to use instead (for iterating on
    these tests; it must have been trained with ``TRAIN_OPTIONS``).
    """
    if os.environ.get("GANKERN_EDITING_TEST_RUN"):
        return Path(os.environ["GANKERN_EDITING_TEST_RUN"])
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session only
    outdir = base / "editing_digits_run"
    with FileLock(str(base / "editing_digits_run.lock")):
        done = outdir / "done"
        if not done.is_file():
            opts = TrainingOptions(outdir=str(outdir), **TRAIN_OPTIONS)
            with one_thread():
                run_dir = training_loop(opts, print_fn=lambda *a, **k: None)
            done.write_text(str(run_dir))
    return Path(done.read_text())


def trained_generator(run_dir: Path):
    """The EMA generator of the run's last snapshot."""
    return load_generator(list_snapshots(run_dir)[-1])


def untrained_stylegan2(seed: int = 0, w_dim: int = 8, resolution: int = 8):
    """A tiny random StyleGAN2 generator (fast; for exact comparisons)."""
    torch.manual_seed(seed)
    cfg = get_config("tiny", resolution=resolution, img_channels=1)
    G = dataclasses.replace(cfg.G, z_dim=w_dim, w_dim=w_dim, channel_base=64,
                            channel_max=8).build()
    _random_noise_strengths(G)
    return G.eval().requires_grad_(False)


def _random_noise_strengths(G) -> None:
    """Nonzero noise strengths (they start at 0), so that the noise maps matter."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_()


def untrained_stylegan1(seed: int = 0):
    """A tiny random StyleGAN v1 generator at 8 px (fixed resolution)."""
    from gankern.models.stylegan import Generator

    torch.manual_seed(seed)
    G = Generator(img_resolution=8, img_channels=1, z_dim=8, w_dim=8, mapping_layers=2,
                  mapping_fmaps=8, fmap_base=32, fmap_max=8, progressive=False)
    _random_noise_strengths(G)
    return G.eval().requires_grad_(False)
