"""The trainer across processes: DDP with two gloo processes, and a run killed with SIGKILL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from trainutils import assert_same_tensors, final_checkpoint, one_thread, tiny_options

from gankern.cli.train import _spawned
from gankern.train.checkpoint import list_snapshots, load_checkpoint
from gankern.train.distributed import spawn
from gankern.train.loop import training_loop

REPO = Path(__file__).resolve().parent.parent


def test_two_gloo_processes_equal_one_process(tmp_path):
    """batch 8 as 2 processes x 4 images == 1 process x 2 accumulation rounds of 4."""
    common = dict(batch=8, batch_gpu=4, aug="ada", ada_interval=1, ada_kimg=0.2,
                  r1_interval=2, pl_interval=2, kimg=0.048, snap=3)
    two = tiny_options(tmp_path, run_dir=str(tmp_path / "two"), gpus=2, **common)
    spawn(_spawned, 2, (two.to_dict(),))
    with one_thread():
        one = training_loop(tiny_options(tmp_path, run_dir=str(tmp_path / "one"), **common),
                            print_fn=lambda *a, **k: None)
    a, meta_a = final_checkpoint(one)
    b, meta_b = final_checkpoint(tmp_path / "two")
    assert meta_a["settings"]["rounds"] == 2 and meta_b["settings"]["rounds"] == 1
    assert meta_b["settings"]["world_size"] == 2
    # Two slices per step: the gradient sums g0 + g1 are the same additions in both runs.
    # Running averages of w (buffers) are per process, so parameters and states only.
    param_names = {f"{net}/{name}" for net in ("G", "D", "G_ema")
                   for name in _parameter_names(net, a, meta_a)}
    assert_same_tensors({k: a[k] for k in param_names}, {k: b[k] for k in param_names})
    assert_same_tensors(a, b, prefixes=("G_opt/", "D_opt/", "loss/", "augment_pipe/", "ada/"))


def _parameter_names(net, tensors, meta):
    """Names of ``net``'s parameters (not buffers) among a checkpoint's tensors."""
    from gankern.models.stylegan2_configs import DiscriminatorConfig, GeneratorConfig

    config = meta["networks"]["D" if net == "D" else "G"]
    module = (DiscriminatorConfig if net == "D" else GeneratorConfig)(**config).build("ref")
    return [name for name, _ in module.named_parameters()]


def _run_in_subprocess(opts_dict: dict) -> subprocess.Popen:
    code = ("import json, sys; from gankern.train.loop import training_loop; "
            "from gankern.train.options import TrainingOptions; "
            "training_loop(TrainingOptions.from_dict(json.loads(sys.argv[1])))")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(opts_dict)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_resume_loses_nothing_beyond_the_last_snapshot(tmp_path):
    run_dir = tmp_path / "killed"
    opts = tiny_options(tmp_path, run_dir=str(run_dir), kimg=0.16, snap=1)  # 10 ticks
    proc = _run_in_subprocess(opts.to_dict())
    try:
        deadline = time.time() + 240
        while len(list_snapshots(run_dir) if run_dir.is_dir() else []) < 4:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "the training subprocess made no progress"
            time.sleep(0.02)
        time.sleep(random.uniform(0.0, 0.3))  # somewhere in a step or a checkpoint write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"

    snapshots = list_snapshots(run_dir)
    for path in snapshots:  # never a corrupt checkpoint, whenever the kill came
        load_checkpoint(path)
    last_nimg = load_checkpoint(snapshots[-1])[1]["counters"]["nimg"]
    assert 0 < last_nimg < 160

    lines = []
    with one_thread():
        training_loop(tiny_options(tmp_path, run_dir=str(run_dir), kimg=0.16, snap=1,
                                   resume=str(run_dir)),
                      print_fn=lambda text, **k: lines.append(text))
        reference = training_loop(tiny_options(tmp_path, run_dir=str(tmp_path / "whole"),
                                               kimg=0.16, snap=1),
                                  print_fn=lambda *a, **k: None)
    assert any(f"at {last_nimg / 1000:.3f} kimg" in line for line in lines if "Resumed" in line)
    a, _ = final_checkpoint(run_dir)
    b, _ = final_checkpoint(reference)
    assert_same_tensors(a, b)
    records = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in records] == list(range(1, 11))  # no gap, no duplicate
