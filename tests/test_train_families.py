"""The one trainer across families: mixed precision by autocast (bfloat16, and float16 with
dynamic loss scaling), exact resume of a model with n_critic, weight clipping and batch
norm, and two gloo processes computing what one process computes."""

from __future__ import annotations

import pytest
import torch
from trainutils import assert_same_tensors, final_checkpoint, one_thread

from gankern.cli.train import _spawned
from gankern.train.checkpoint import list_snapshots
from gankern.train.distributed import spawn
from gankern.train.loop import training_loop
from gankern.train.options import TrainingOptions


def _options(tmp_path, model="wgan", **overrides) -> TrainingOptions:
    kwargs = dict(model=model, resolution=16, batch=8, kimg=0.064, kimg_per_tick=0.016,
                  snap=2, metrics=[], outdir=str(tmp_path / "runs"), tensorboard=False,
                  device="cpu", seed=4)  # fmt: skip
    kwargs.update(overrides)
    return TrainingOptions(**kwargs)


def _quiet(*args, **kwargs):
    pass


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16),
                                              ("fp16", torch.float16)])
def test_autocast_precision(tmp_path, precision, dtype):
    seen = set()

    def instrument(G, D):
        first_conv = next(m for m in D.modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_hook(lambda m, i, out: seen.add(out.dtype))

    with one_thread():
        run_dir = training_loop(_options(tmp_path, model="dcgan", precision=precision,
                                         kimg=0.032),
                                setup_hook=instrument, print_fn=_quiet)
    assert seen == {dtype}
    tensors, meta = final_checkpoint(run_dir)
    assert ("loss_scaler/_scale" in tensors) == (precision == "fp16")
    assert all(t.dtype == torch.float32 for k, t in tensors.items()
               if k.startswith(("G/", "D/")) and t.is_floating_point())
    assert meta["settings"]["precision"] == precision


def test_wgan_resume_continues_bit_identically(tmp_path):
    """n_critic 5 (G every 5th step), RMSprop, clipping, batch norm: resuming from the
    middle snapshot (step 4, before the first G step) ends where the whole run ends."""
    with one_thread():
        full = training_loop(_options(tmp_path, run_dir=str(tmp_path / "full")),
                             print_fn=_quiet)
        middle = list_snapshots(full)[1]
        resumed = training_loop(_options(tmp_path, resume=str(middle),
                                         run_dir=str(tmp_path / "resumed")), print_fn=_quiet)
    a, meta = final_checkpoint(full)
    b, _ = final_checkpoint(resumed)
    assert_same_tensors(a, b)
    assert meta["settings"]["n_critic"] == 5 and meta["settings"]["clip"] == 0.01
    assert all(float(t.abs().max()) <= 0.01 for k, t in a.items()
               if k.startswith("D/") and ("weight" in k or "bias" in k))


def test_two_gloo_processes_equal_one_process(tmp_path):
    """WGAN-GP-style objective on the DCGAN critic (gradient penalty every step, 5 critic
    steps): batch 8 as 2 processes x 4 images == 1 process x 2 rounds of 4."""
    common = dict(model="dcgan", batch_gpu=4, loss="wasserstein", d_reg="gp", gamma=10.0,
                  n_critic=5, extra={"D": {"norm": "none"}}, kimg=0.048, snap=3)
    two = _options(tmp_path, run_dir=str(tmp_path / "two"), gpus=2, **common)
    spawn(_spawned, 2, (two.to_dict(),))
    with one_thread():
        one = training_loop(_options(tmp_path, run_dir=str(tmp_path / "one"), **common),
                            print_fn=_quiet)
    a, meta_a = final_checkpoint(one)
    b, meta_b = final_checkpoint(tmp_path / "two")
    assert meta_a["settings"]["rounds"] == 2 and meta_b["settings"]["world_size"] == 2
    # Batch-norm running statistics are per process (averaged per tick): parameters and
    # optimizer states only.
    assert_same_tensors(a, b, prefixes=("G/", "D/", "G_opt/", "D_opt/"),
                        skip=("G/blocks.0.norm.running", "G/blocks.1.norm.running",
                              "G/blocks.0.norm.num_batches", "G/blocks.1.norm.num_batches"))
