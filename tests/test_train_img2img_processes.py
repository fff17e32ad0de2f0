"""CycleGAN on the trainer's machinery: across processes the image pools are gathered and
applied in slice order, so two gloo processes compute what one process computes with two
accumulation rounds, pools included; under bfloat16 autocast the pools hold bfloat16 images
and the run resumes exactly."""

from __future__ import annotations

import torch
from trainutils import assert_same_tensors, final_checkpoint, one_thread

from gankern.cli.train import _spawned
from gankern.train.distributed import spawn
from gankern.train.loop import training_loop
from gankern.train.options import TrainingOptions


def _options(tmp_path, name: str, **overrides) -> TrainingOptions:
    # A pool of 6 images fills within the first step, so later steps swap (random draws).
    kwargs = dict(model="cyclegan", resolution=16, batch=8, batch_gpu=4, kimg=0.032,
                  kimg_per_tick=0.016, snap=2, metrics=[], seed=4,
                  model_options={"pool_size": 6}, run_dir=str(tmp_path / name),
                  tensorboard=False, device="cpu")  # fmt: skip
    kwargs.update(overrides)
    return TrainingOptions(**kwargs)


def test_two_gloo_processes_equal_one_process_pools_included(tmp_path):
    spawn(_spawned, 2, (_options(tmp_path, "two", gpus=2).to_dict(),))
    with one_thread():
        one = training_loop(_options(tmp_path, "one"), print_fn=lambda *a, **k: None)
    a, meta_a = final_checkpoint(one)
    b, meta_b = final_checkpoint(tmp_path / "two")
    assert meta_a["settings"]["rounds"] == 2 and meta_b["settings"]["world_size"] == 2
    assert meta_a["counters"]["nimg"] == meta_b["counters"]["nimg"] == 32
    # Instance norm keeps no statistics: every tensor but the processes' own RNG states.
    assert_same_tensors(a, b, prefixes=("G_AB/", "G_BA/", "D_A/", "D_B/", "G_opt/", "D_opt/",
                                        "image_pools/"))
    assert int(a["image_pools/A/num_images"]) == 6


def test_bfloat16_autocast_with_pools(tmp_path):
    """bf16 autocast: the generators make bfloat16 images (as the pools store them), the
    parameters stay float32, the run resumes bit-identically."""
    common = dict(precision="bf16", batch_gpu=8)
    with one_thread():
        straight = training_loop(_options(tmp_path, "straight", **common),
                                 print_fn=lambda *a, **k: None)
        stopped = training_loop(_options(tmp_path, "stopped", **dict(common, kimg=0.016)),
                                print_fn=lambda *a, **k: None)
        resumed = _options(tmp_path, "stopped", **common)
        resumed.resume = str(stopped)
        training_loop(resumed, print_fn=lambda *a, **k: None)
    a, meta = final_checkpoint(straight)
    assert meta["settings"]["precision"] == "bf16"
    assert a["image_pools/B/images"].dtype == torch.bfloat16
    assert all(t.dtype == torch.float32 for k, t in a.items()
               if k.startswith(("G_AB/", "D_B/")) and t.is_floating_point())
    assert_same_tensors(a, final_checkpoint(stopped)[0])
