"""The training-throughput benchmark on image-to-image models: its steps on pairs of images
are the training loop's steps, and ``--quick`` measures every image-to-image model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

from trainutils import final_checkpoint, one_thread  # noqa: E402

from benchmarks.bench_training import main  # noqa: E402
from benchmarks.training_run import build_training_run  # noqa: E402
from gankern.data import infinite_loader, open_unpaired_dataset  # noqa: E402
from gankern.train.loop import training_loop  # noqa: E402
from gankern.train.options import TrainingOptions  # noqa: E402


def test_steps_on_pairs_are_the_training_loops_steps(tmp_path):
    """Three CycleGAN steps of the benchmark's run on the loader's pairs leave the four
    networks and the image pools bit-identical to three steps of ``training_loop``."""
    steps, batch = 3, 4
    opts = TrainingOptions(model="cyclegan", cfg="digits", resolution=16, batch=batch,
                           kimg=steps * batch / 1000,
                           kimg_per_tick=steps * batch / 1000, metrics=[], seed=1,
                           model_options={"pool_size": 6}, outdir=str(tmp_path),
                           tensorboard=False, device="cpu")
    with one_thread():
        trained, _ = final_checkpoint(training_loop(opts, print_fn=lambda *a, **k: None))
        run = build_training_run(opts, resolution=16, img_channels=1)
        dataset = open_unpaired_dataset("builtin:digits-inverted", resolution=16, random_seed=1)
        loader = infinite_loader(dataset, batch, rank=0, world_size=1, seed=1, num_workers=0)
        for _ in range(steps):
            a, b = next(loader)
            run.step((a.float() / 127.5 - 1, b.float() / 127.5 - 1))
    assert run.phase_counts == {"Dboth": steps, "Gboth": steps}
    for name in ("G_AB", "G_BA", "D_A", "D_B"):
        for key, value in run.networks[name].state_dict().items():
            assert torch.equal(value, trained[f"{name}/{key}"]), f"{name}/{key}"
    for domain, pool in run.family.pools.items():
        assert torch.equal(pool.images, trained[f"image_pools/{domain}/images"])


@pytest.mark.parametrize("model", ["pix2pix", "srresnet"])  # paired; G-only
def test_quick_benchmark_measures_the_model(model, tmp_path, capsys):
    assert main(["--model", model, "--quick", "--out", str(tmp_path), "--no-write"]) == 0
    out = capsys.readouterr().out
    assert out.count("ms/step over 1 cycles") == 2  # gankern_auto and ref
