"""Shared helpers of the learning tests: a short fixed-seed training run on the built-in
digits, scored with the built-in digits classifier (``fid_digits`` of the untrained and
the trained generator, and how often a conditional generator draws the requested class)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from trainutils import one_thread

from gankern.data import load_digits
from gankern.metrics import compute_metrics, load_digits_extractor
from gankern.train.checkpoint import list_snapshots
from gankern.train.families import get_family
from gankern.train.loop import training_loop
from gankern.train.networks import load_generator
from gankern.train.options import TrainingOptions

NUM_FAKE = 1000  # generated images per FID (fid_digits against all 1797 digits)


@dataclass
class LearningResult:
    fid_untrained: float
    fid_trained: float
    train_seconds: float
    run_dir: Path

    @property
    def ratio(self) -> float:
        return self.fid_trained / self.fid_untrained


def fid_digits(G, model: str, resolution: int) -> float:
    """``fid_digits`` of ``G`` against the digits at the same resolution (both are scaled
    to the classifier's 32 px the same way)."""
    real = load_digits(resolution)[0]
    kwargs = dict(get_family(model).metric_kwargs)
    values = compute_metrics("fid", real=real, fake=G, num_fake=NUM_FAKE, extractor="digits",
                             device="cpu", seed=123, generator_kwargs=kwargs)
    return float(values["fid_digits"])


def train_and_score(tmp_path, model: str, kimg: float, resolution: int = 16, seed: int = 0,
                    **options) -> LearningResult:
    """Train ``model`` for ``kimg`` on the digits (one thread, no snapshot metrics) and
    score its first and last snapshots."""
    opts = TrainingOptions(
        model=model, resolution=resolution, kimg=kimg, kimg_per_tick=kimg / 2, snap=100,
        metrics=[], outdir=str(tmp_path / "runs"), tensorboard=False, device="cpu", seed=seed,
        **options,
    )  # fmt: skip
    with one_thread():
        start = time.time()
        run_dir = training_loop(opts, print_fn=lambda *a, **k: None)
        seconds = time.time() - start
        first, last = list_snapshots(run_dir)[0], list_snapshots(run_dir)[-1]
        before = fid_digits(load_generator(first), model, resolution)
        after = fid_digits(load_generator(last), model, resolution)
    return LearningResult(before, after, seconds, run_dir)


def class_accuracy(run_dir: Path, per_class: int = 50, seed: int = 0) -> float:
    """How often the built-in digits classifier recognizes the requested class in images
    of the run's final generator (``per_class`` images of each class)."""
    G = load_generator(run_dir)
    family = get_family(G.checkpoint_metadata["options"]["model"])
    classifier = load_digits_extractor(device="cpu")
    g = torch.Generator().manual_seed(seed)
    hits = []
    with one_thread(), torch.no_grad():
        for k in range(G.c_dim):
            z = torch.randn([per_class, G.z_dim], generator=g)
            c = torch.zeros([per_class, G.c_dim])
            c[:, k] = 1
            images = family.sample(G, z, c)
            uint8 = ((images + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
            probs = classifier.extract(uint8)["probs"]
            hits.append((probs.argmax(1) == k).float().numpy())
    return float(np.concatenate(hits).mean())
