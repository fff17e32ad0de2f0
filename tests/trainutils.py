"""Shared helpers of the trainer tests: tiny runs and checkpoint comparisons."""

from __future__ import annotations

import contextlib

import torch

from gankern.train.checkpoint import list_snapshots, load_checkpoint
from gankern.train.options import TrainingOptions

# A StyleGAN2 small enough for a step to take milliseconds: 16x16 digits, <= 16 channels.
TINY_NETWORKS = {
    "G": {"channel_base": 128, "channel_max": 16, "z_dim": 16, "w_dim": 16},
    "D": {"channel_base": 128, "channel_max": 16},
}


def tiny_options(tmp_path, **overrides) -> TrainingOptions:
    """Options of a few-second run on the built-in digits at 16x16 (ticks of 2 steps)."""
    kwargs = dict(
        data="builtin:digits", resolution=16, cfg="tiny", batch=8, aug="noaug",
        kimg=0.064, kimg_per_tick=0.016, snap=2, metrics=[], outdir=str(tmp_path / "runs"),
        r1_interval=2, pl_interval=3, pl_weight=2.0, tensorboard=False, seed=3,
        extra={k: dict(v) for k, v in TINY_NETWORKS.items()}, device="cpu",
    )  # fmt: skip
    kwargs.update(overrides)
    return TrainingOptions(**kwargs)


@contextlib.contextmanager
def one_thread():
    """One intra-op thread: tiny convolutions are much faster without thread hand-offs
    (and the CI machine's two cores are shared by two test workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def final_checkpoint(run_dir):
    """``(tensors, metadata)`` of a run directory's newest snapshot."""
    return load_checkpoint(list_snapshots(run_dir)[-1])


def assert_same_tensors(a: dict, b: dict, prefixes=None, skip=()):
    """Bitwise equality of two checkpoints' tensors (those starting with ``prefixes``)."""
    def selected(keys):
        return {k for k in keys
                if (prefixes is None or k.startswith(prefixes)) and not k.startswith(skip)}

    keys_a, keys_b = selected(a), selected(b)
    assert keys_a == keys_b, sorted(keys_a ^ keys_b)
    assert keys_a, "nothing to compare"
    different = [k for k in sorted(keys_a) if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"
