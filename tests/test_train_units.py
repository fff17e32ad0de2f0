"""Trainer building blocks: checkpoint files, state codec, RNG streams, EMA, options, logs."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from gankern.train.checkpoint import (
    CheckpointError,
    list_snapshots,
    load_checkpoint,
    resolve_resume_path,
    save_checkpoint,
    snapshot_name,
)
from gankern.train.distributed import DistributedContext
from gankern.train.ema import ema_beta, update_ema
from gankern.train.options import TrainingOptions, check_options, split_batch
from gankern.train.rng import capture_rng_state, derive_seed, restore_rng_state
from gankern.train.state_codec import decode_state, encode_state
from gankern.train.training_log import TickStats
from gankern.train.visuals import plot_training_curves, tile_images

# --- checkpoint files -------------------------------------------------------------------


def test_checkpoint_round_trip_is_exact(tmp_path):
    tensors = {
        "G/w": torch.randn(3, 4),
        "G/b": torch.arange(5, dtype=torch.int64),
        "opt/step": torch.tensor(7.0),
        "half": torch.randn(2, 2).to(torch.bfloat16),
    }
    meta = {"counters": {"nimg": 123}, "name": "x", "list": [1, 2.5, None]}
    path = tmp_path / snapshot_name(123)
    save_checkpoint(path, tensors, meta)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == meta
    assert set(loaded) == set(tensors)
    for k, t in tensors.items():
        assert loaded[k].dtype == t.dtype
        assert torch.equal(loaded[k], t), k
    # Atomic write leaves no temporary file behind.
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot-000000123.safetensors"]


def test_checkpoint_shared_memory_tensors_are_stored(tmp_path):
    base = torch.randn(4)
    save_checkpoint(tmp_path / "a.safetensors", {"x": base, "y": base, "z": base[:2]}, {})
    loaded, _ = load_checkpoint(tmp_path / "a.safetensors")
    assert torch.equal(loaded["z"], base[:2]) and torch.equal(loaded["y"], base)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.safetensors")
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, {"x": torch.randn(100)}, {"a": 1})
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 17])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a gankern checkpoint"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_checkpoint(garbage)
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        save_checkpoint(tmp_path / "bad.safetensors", {"x": [1, 2]}, {})
    with pytest.raises(ValueError):  # JSON has no NaN: metadata must be clean
        save_checkpoint(tmp_path / "bad.safetensors", {}, {"x": math.nan})


def test_resume_path_skips_a_damaged_newest_snapshot(tmp_path):
    for nimg in (0, 64, 128):
        save_checkpoint(tmp_path / snapshot_name(nimg), {"x": torch.full([3], float(nimg))}, {})
    (tmp_path / ".snapshot-000000192.safetensors.123.tmp").write_bytes(b"partial")
    assert [p.name for p in list_snapshots(tmp_path)] == [snapshot_name(n) for n in (0, 64, 128)]
    assert resolve_resume_path(tmp_path).name == snapshot_name(128)
    newest = tmp_path / snapshot_name(128)
    newest.write_bytes(newest.read_bytes()[:40])
    assert resolve_resume_path(tmp_path).name == snapshot_name(64)
    assert resolve_resume_path(tmp_path / snapshot_name(0)).name == snapshot_name(0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no snapshot"):
        resolve_resume_path(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve_resume_path(tmp_path / "nope")


# --- state codec: optimizer states survive the trip exactly ------------------------------


def test_optimizer_state_round_trip_continues_identically(tmp_path):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, betas=(0.0, 0.99))
    x = torch.randn(8, 3)
    for _ in range(3):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    tensors: dict = {}
    skeleton = encode_state(opt.state_dict(), "opt", tensors)
    save_checkpoint(tmp_path / "opt.safetensors", tensors, {"opt": skeleton})
    tensors, meta = load_checkpoint(tmp_path / "opt.safetensors")
    state = decode_state(meta["opt"], tensors)
    assert set(state["state"]) == {0, 1, 2, 3}  # integer keys survive JSON
    assert isinstance(state["param_groups"][0]["betas"], tuple)

    twin = copy_module(net)
    twin_opt = torch.optim.Adam(twin.parameters(), lr=0.5)
    twin_opt.load_state_dict(state)
    for a, b in ((net, opt), (twin, twin_opt)):
        b.zero_grad()
        a(x).square().mean().backward()
        b.step()
    for p, q in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)


def copy_module(module):
    import copy

    return copy.deepcopy(module)


def test_state_codec_special_values():
    tensors: dict = {}
    obj = {"a": (1, 2.5), 3: [math.inf, -math.inf, None, "s"], "t": torch.ones(2), "b": True}
    skeleton = json.loads(json.dumps(encode_state(obj, "x", tensors), allow_nan=False))
    back = decode_state(skeleton, tensors)
    assert back["a"] == (1, 2.5) and back[3][:2] == [math.inf, -math.inf]
    assert back[3][2:] == [None, "s"] and back["b"] is True
    assert torch.equal(back["t"], torch.ones(2))
    with pytest.raises(TypeError, match="cannot store a set"):
        encode_state({"s": {1, 2}}, "x", {})


# --- RNG streams --------------------------------------------------------------------------


def test_rng_state_restores_every_generator():
    torch.manual_seed(3)
    np.random.seed(3)  # noqa: NPY002 (the legacy global generator is what we restore)
    random.seed(3)
    tensors, meta = capture_rng_state()
    meta = json.loads(json.dumps(meta))
    first = (torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)])  # noqa: NPY002
    torch.manual_seed(99)
    np.random.seed(99)  # noqa: NPY002
    random.seed(99)
    restore_rng_state(tensors, meta)
    second = (torch.rand(5), np.random.rand(5), [random.random() for _ in range(5)])  # noqa: NPY002
    assert torch.equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_derived_seeds_are_deterministic_and_distinct():
    assert derive_seed(0, 1, 2) == derive_seed(0, 1, 2)
    seeds = {derive_seed(s, a, b) for s in range(3) for a in range(5) for b in range(5)}
    assert len(seeds) == 75
    assert all(0 <= s < 2**63 for s in seeds)


# --- EMA ------------------------------------------------------------------------------------


def test_ema_beta_formula():
    # Half-life of ema_kimg thousand images: after ema_kimg * 1000 / batch steps, weight 1/2.
    beta = ema_beta(32, 10**6, ema_kimg=10, ema_rampup=None)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    # Ramp-up: the half-life is at most rampup * images seen (here 0.05 * 1000 = 50 images).
    assert ema_beta(32, 1000, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    assert ema_beta(32, 0, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.0)


def test_update_ema_averages_parameters_and_copies_buffers():
    model = torch.nn.BatchNorm1d(3)
    ema = copy_module(model)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.running_mean.fill_(5.0)
        ema.weight.fill_(1.0)
    update_ema(ema, model, beta=0.75)
    assert torch.allclose(ema.weight, torch.full([3], 0.75 * 1.0 + 0.25 * 2.0))
    assert torch.equal(ema.running_mean, model.running_mean)


# --- options ----------------------------------------------------------------------------------


def test_options_round_trip_and_validation():
    o = TrainingOptions(batch=16, metrics=["fid_digits"], betas=(0.0, 0.9),
                        extra={"G": {"z_dim": 8}})
    back = TrainingOptions.from_dict(json.loads(json.dumps(o.to_dict())))
    assert back == o
    check_options(o)
    bad = [
        (dict(aug="sometimes"), ValueError, "aug must be one of"),
        (dict(batch=0), ValueError, "batch must be >= 1"),
        (dict(batch=2.5), TypeError, "batch must be an integer"),
        (dict(gamma=-1.0), ValueError, "gamma must be >= 0"),
        (dict(glr=0.0), ValueError, "glr must be > 0"),
        (dict(kimg=float("nan")), ValueError, "kimg must be finite"),
        (dict(precision="fp8"), ValueError, "precision must be one of"),
        (dict(betas=(0.0,)), TypeError, "betas must be a pair"),
        (dict(metrics="fid"), TypeError, "metrics must be a list"),
        (dict(mirror=1), TypeError, "mirror must be a bool"),
        (dict(device="tpu"), ValueError, "device must be one of"),
    ]
    for kwargs, exc, msg in bad:
        with pytest.raises(exc, match=msg):
            check_options(TrainingOptions(**kwargs))
    with pytest.raises(ValueError, match="unknown training options"):
        TrainingOptions.from_dict({"batch": 4, "warp_speed": True})


def test_augmentation_default_depends_on_the_data():
    from gankern.train.options import augmentation_mode

    assert augmentation_mode(TrainingOptions()) == "noaug"
    assert augmentation_mode(TrainingOptions(data="photos.zip")) == "ada"
    assert augmentation_mode(TrainingOptions(aug="diffaugment")) == "diffaugment"


def test_split_batch():
    assert split_batch(32, None, 1) == (32, 1)
    assert split_batch(32, 8, 1) == (8, 4)
    assert split_batch(32, 8, 2) == (8, 2)
    with pytest.raises(ValueError, match="divisible by the number of processes"):
        split_batch(30, None, 4)
    with pytest.raises(ValueError, match="batch_gpu \\(5\\) must divide"):
        split_batch(32, 5, 1)
    with pytest.raises(ValueError, match="batch_gpu \\(32\\) must divide"):
        split_batch(32, 32, 2)


# --- statistics, grids, plots ---------------------------------------------------------------


def test_tick_stats_means():
    stats = TickStats(torch.device("cpu"))
    stats.add("a", torch.tensor([1.0, 2.0, 3.0]))
    stats.add("a", torch.tensor([[10.0]]))
    stats.add("b", 4.0)
    means = stats.reduce(DistributedContext())
    assert means == {"a": pytest.approx(4.0), "b": pytest.approx(4.0)}
    assert stats.reduce(DistributedContext()) == {}


def test_tile_images_layout():
    images = np.arange(5 * 1 * 2 * 3, dtype=np.uint8).reshape(5, 1, 2, 3)
    grid = tile_images(images, cols=2)
    assert grid.shape == (3 * 2, 2 * 3, 1)
    for i in range(5):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(grid[r * 2 : r * 2 + 2, c * 3 : c * 3 + 3, 0], images[i, 0])
    assert not grid[4:, 3:].any()  # the missing sixth cell is black
    padded = tile_images(images, cols=2, pad=1, pad_value=7)
    assert padded.shape == (3 * 2 + 2, 2 * 3 + 1, 1)
    np.testing.assert_array_equal(padded[3:5, 4:7, 0], images[3, 0])  # row 1, col 1
    assert (padded[2, :, 0] == 7).all() and (padded[:, 3, 0] == 7).all()


def test_plot_training_curves(tmp_path):
    stats = tmp_path / "stats.jsonl"
    assert not plot_training_curves(stats, tmp_path / "plot.png")  # nothing yet
    lines = [{"nimg": i * 64, "kimg": i * 0.064, "Loss/G/loss": 1.0 / (i + 1),
              "Loss/D/loss": 0.5, "Metrics/fid_digits": 10.0 - i} for i in range(1, 5)]
    stats.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"cut off')
    assert plot_training_curves(stats, tmp_path / "plot.png")
    with Image.open(tmp_path / "plot.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
