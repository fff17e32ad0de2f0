"""The training loop: short runs with every option, exact resume, NaN handling."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from trainutils import assert_same_tensors, final_checkpoint, one_thread, tiny_options

from gankern.train.checkpoint import list_snapshots, load_checkpoint
from gankern.train.loop import NonFiniteTrainingError, training_loop
from gankern.train.networks import load_generator
from gankern.train.state_codec import decode_state


def read_stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def adam_steps(meta, tensors, opt):
    """Adam's step count for the first parameter of optimizer ``opt`` in a checkpoint."""
    state = decode_state(meta["states"][opt], tensors)
    return int(state["state"][0]["step"])


def test_every_option_trains(tmp_path):
    """ADA, lazy R1 and path length, accumulation, labels, x-flips, bf16 blocks, channels_last."""
    seen = {"half": set(), "channels_last": []}

    def instrument(G, D):
        G.synthesis.b16.register_forward_hook(lambda m, i, out: seen["half"].add(out[0].dtype))
        D.register_forward_pre_hook(lambda m, args: seen["channels_last"].append(
            args[0].is_contiguous(memory_format=torch.channels_last)))

    opts = tiny_options(
        tmp_path, aug="ada", ada_interval=1, ada_kimg=0.1, batch_gpu=4, cond=True, mirror=True,
        precision="bf16", channels_last=True, tensorboard=True,
        extra={"G": {**tiny_options(tmp_path).extra["G"], "num_fp16_res": 1},
               "D": {**tiny_options(tmp_path).extra["D"], "num_fp16_res": 1}},
    )  # fmt: skip
    with one_thread():
        run_dir = training_loop(opts, setup_hook=instrument, print_fn=lambda *a, **k: None)

    assert seen["half"] == {torch.bfloat16}
    assert seen["channels_last"] and all(seen["channels_last"])
    # Files of a run: 3 snapshots (start, tick 2, tick 4) with their sample grids, logs, plot.
    names = sorted(p.name for p in run_dir.iterdir())
    snaps = [p.name for p in list_snapshots(run_dir)]
    assert snaps == ["snapshot-000000000.safetensors", "snapshot-000000032.safetensors",
                     "snapshot-000000064.safetensors"]
    for nimg in (0, 32, 64):
        with Image.open(run_dir / f"samples-{nimg:09d}.png") as im:
            # 16x16 cells of 16 px, 2 px apart
            assert im.mode == "L" and im.size == (16 * 16 + 15 * 2, 16 * 16 + 15 * 2)
    assert "plot.png" in names and "training_options.json" in names
    assert any(n.startswith("events.out.tfevents") for n in names)

    records = read_stats(run_dir)
    assert [r["tick"] for r in records] == [1, 2, 3, 4]
    assert [r["nimg"] for r in records] == [16, 32, 48, 64]
    for key in ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "Loss/scores/real",
                "Progress/augment", "Timing/sec_per_kimg"):
        assert all(key in r and r[key] is not None for r in records), key
    # Path length at steps 0, 3, 6: ticks 1, 2 and 4, not 3.
    assert ["Loss/pl_penalty" in r for r in records] == [True, True, False, True]
    assert records[-1]["Progress/skipped_total"] == 0

    tensors, meta = final_checkpoint(run_dir)
    assert meta["counters"]["nimg"] == 64 and meta["counters"]["step"] == 8
    assert meta["settings"]["rounds"] == 2 and meta["networks"]["G"]["c_dim"] == 10
    assert meta["dataset"]["size"] == 2 * 1797  # x-flips double the digits
    # ADA raised p (D is confident on reals early on) and the checkpoint holds the logged value.
    p = float(tensors["augment_pipe/p"])
    assert p > 0 and p == pytest.approx(records[-1]["Progress/augment"])
    # Lazy regularization: Adam's lr and betas scaled by interval / (interval + 1).
    G_groups = decode_state(meta["states"]["G_opt"], tensors)["param_groups"]
    D_groups = decode_state(meta["states"]["D_opt"], tensors)["param_groups"]
    assert G_groups[0]["lr"] == pytest.approx(0.0025 * 3 / 4)
    assert G_groups[0]["betas"][1] == pytest.approx(0.99 ** (3 / 4))
    assert D_groups[0]["lr"] == pytest.approx(0.0025 * 2 / 3)
    # Steps 0..7: Gmain 8 + Greg at 0, 3, 6; Dmain 8 + Dreg at 0, 2, 4, 6.
    assert adam_steps(meta, tensors, "G_opt") == 8 + 3
    assert adam_steps(meta, tensors, "D_opt") == 8 + 4


def test_diffaugment_and_regularization_in_the_main_phase(tmp_path):
    opts = tiny_options(tmp_path, aug="diffaugment", r1_interval=0, pl_interval=0, kimg=0.032,
                        snap=1)
    with one_thread():
        run_dir = training_loop(opts, print_fn=lambda *a, **k: None)
    tensors, meta = final_checkpoint(run_dir)
    groups = decode_state(meta["states"]["G_opt"], tensors)["param_groups"]
    assert groups[0]["lr"] == 0.0025 and tuple(groups[0]["betas"]) == (0.0, 0.99)
    assert adam_steps(meta, tensors, "G_opt") == 4 and adam_steps(meta, tensors, "D_opt") == 4
    records = read_stats(run_dir)
    assert all(r["Loss/r1_penalty"] is not None and r["Loss/pl_penalty"] is not None
               for r in records)


def test_resume_continues_bit_identically(tmp_path):
    """Resuming from the middle snapshot gives exactly the uninterrupted run's final state."""
    opts = tiny_options(tmp_path, aug="ada", ada_interval=1, ada_kimg=0.2, batch_gpu=4,
                        pl_interval=3, r1_interval=2)
    with one_thread():
        full = training_loop(opts, print_fn=lambda *a, **k: None)
        middle = list_snapshots(full)[1]
        assert middle.name == "snapshot-000000032.safetensors"
        lines = []
        resumed = training_loop(
            tiny_options(tmp_path, aug="ada", ada_interval=1, ada_kimg=0.2, batch_gpu=4,
                         pl_interval=3, r1_interval=2, resume=str(middle),
                         run_dir=str(tmp_path / "resumed")),
            print_fn=lambda text, **k: lines.append(text),
        )
    assert any("Resumed from" in line and "0.032 kimg" in line for line in lines)
    a, meta_a = final_checkpoint(full)
    b, meta_b = final_checkpoint(resumed)
    # Everything: networks, EMA, optimizers, path length mean, ADA, RNG states.
    assert_same_tensors(a, b)
    assert meta_a["counters"]["nimg"] == meta_b["counters"]["nimg"] == 64
    assert meta_a["states"] == meta_b["states"]
    assert [r["nimg"] for r in read_stats(resumed)] == [48, 64]


def test_injected_nan_step_is_skipped_and_counted(tmp_path):
    calls = {"n": 0}

    def poison_fifth_d_call(G, D):
        def hook(module, args, out):
            calls["n"] += 1
            return out * float("nan") if calls["n"] == 5 else out

        D.register_forward_hook(hook)

    # One slice per step: D runs in Gmain (1 call), Dmain (2), Dreg (1, even steps). Call 5
    # is step 1's Gmain.
    opts = tiny_options(tmp_path, kimg=0.032, snap=1, r1_interval=2, pl_interval=2)
    lines = []
    with one_thread():
        run_dir = training_loop(opts, setup_hook=poison_fifth_d_call,
                                print_fn=lambda text, **k: lines.append(text))
    assert any("Skipped a Gmain step" in line for line in lines)
    records = read_stats(run_dir)
    assert records[0]["Progress/skipped_steps"] == 1 and records[-1]["Progress/skipped_total"] == 1
    assert all(r["Loss/G/loss"] is not None for r in records)  # NaN kept out of the means
    tensors, meta = final_checkpoint(run_dir)
    # 4 steps: Gmain 4 - 1 skipped + Greg at 0, 2; D untouched: Dmain 4 + Dreg at 0, 2.
    assert adam_steps(meta, tensors, "G_opt") == 3 + 2
    assert adam_steps(meta, tensors, "D_opt") == 4 + 2
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if t.is_floating_point())


def test_repeated_nonfinite_steps_stop_with_a_usable_checkpoint(tmp_path):
    def always_nan(G, D):
        D.register_forward_hook(lambda module, args, out: out * float("nan"))

    opts = tiny_options(tmp_path, max_nonfinite_steps=3, kimg=0.5)
    with one_thread(), pytest.raises(NonFiniteTrainingError, match="3 consecutive") as info:
        training_loop(opts, setup_hook=always_nan, print_fn=lambda *a, **k: None)
    run_dir = next((tmp_path / "runs").iterdir())
    last = list_snapshots(run_dir)[-1]
    assert str(last) in str(info.value)
    load_checkpoint(last)
    G = load_generator(last)
    assert torch.isfinite(G(torch.randn(2, G.z_dim), torch.zeros(2, 0))).all()
    assert "stopped" in read_stats(run_dir)[-1]


def test_resume_into_other_networks_is_a_clear_error(tmp_path):
    with one_thread():
        run_dir = training_loop(tiny_options(tmp_path, kimg=0.016, snap=1),
                                print_fn=lambda *a, **k: None)
        other = tiny_options(tmp_path, kimg=0.032, resume=str(run_dir),
                             extra={"G": {"channel_base": 128, "channel_max": 8, "z_dim": 16,
                                          "w_dim": 16}, "D": {"channel_base": 128}})
        with pytest.raises(ValueError, match="checkpoint's D does not fit this run"):
            training_loop(other, print_fn=lambda *a, **k: None)
        with pytest.raises(ValueError, match="missing \\['ada', 'augment_pipe'\\]"):
            training_loop(tiny_options(tmp_path, kimg=0.032, resume=str(run_dir), aug="ada"),
                          print_fn=lambda *a, **k: None)
