"""The training-throughput benchmark on the CPU: it trains what the trainer trains, times
whole regularization cycles, writes rows in the harness's schema and derives s/kimg right.

The benchmark measures rather than asserts; these tests check it against independent
references: the training loop itself (same networks after the same steps), a fake step of
known duration (the timing bookkeeping), and figures worked out by hand (the table).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

from trainutils import one_thread, tiny_options  # noqa: E402

from benchmarks.bench_training import (  # noqa: E402
    DEFAULT_CONFIGS,
    MeasureSettings,
    bench_options,
    build_parser,
    main,
    measure_run,
    row_params,
)
from benchmarks.environment import collect_environment, slugify  # noqa: E402
from benchmarks.results import ROW_KEYS  # noqa: E402
from benchmarks.training_run import build_training_run  # noqa: E402
from benchmarks.training_table import training_table  # noqa: E402
from gankern.data import infinite_loader, open_dataset  # noqa: E402
from gankern.train.families.stylegan2 import resolve_config  # noqa: E402
from gankern.train.loop import training_loop  # noqa: E402
from gankern.train.networks import load_generator  # noqa: E402
from gankern.train.options import TrainingOptions  # noqa: E402

CPU = torch.device("cpu")


def _rows(out: Path) -> list[dict]:
    path = out / slugify(collect_environment(CPU).device) / "train_stylegan2.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module, what: str) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys(), what
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"{what}: {len(different)} tensors differ, e.g. {different[:3]}"


def test_steps_are_the_training_loops_steps(tmp_path):
    """Six steps of the benchmark's run leave G, D and G_ema bit-identical to six steps of
    ``training_loop`` on the same images (lazy R1 every 2 steps, path length every 3)."""
    steps, batch = 6, 8
    opts = tiny_options(tmp_path, kimg=steps * batch / 1000, kimg_per_tick=steps * batch / 1000,
                        snap=1)
    trained = {}
    with one_thread():
        run_dir = training_loop(opts, setup_hook=lambda G, D: trained.update(G=G, D=D),
                                print_fn=lambda *a, **k: None)
        run = build_training_run(opts, resolution=16, img_channels=1, device=CPU)
        dataset = open_dataset(opts.data, resolution=16, random_seed=opts.seed)
        loader = infinite_loader(dataset, batch, rank=0, world_size=1, seed=opts.seed,
                                 num_workers=0)
        for _ in range(steps):
            images, _ = next(loader)
            run.step(images.to(torch.float32) / 127.5 - 1)
    assert run.regularization_cycle == 6
    assert run.phase_counts == {"Gmain": 6, "Greg": 2, "Dmain": 6, "Dreg": 3}
    assert run.nimg == steps * batch
    _assert_same_state(trained["G"], run.G, "G")
    _assert_same_state(trained["D"], run.D, "D")
    _assert_same_state(load_generator(run_dir, which="G_ema"), run.G_ema, "G_ema")


class _SleepingRun:
    """Stands in for a TrainingRun: each step sleeps a known time and is counted."""

    def __init__(self, sleep_s: float, cycle: int):
        self.sleep_s = sleep_s
        self.regularization_cycle = cycle
        self.device = CPU
        self.skipped_phases = 0
        self.seen: list[int] = []

    def step(self, images):
        self.seen.append(int(images))
        time.sleep(self.sleep_s)


@pytest.mark.parametrize(
    "settings, cycles",
    [
        (MeasureSettings(warmup_steps=2, min_cycles=3, max_cycles=5, budget_s=0.0), 3),
        (MeasureSettings(warmup_steps=0, min_cycles=1, max_cycles=2, budget_s=60.0), 2),
    ],
)
def test_measure_run_times_whole_cycles(settings, cycles):
    run = _SleepingRun(sleep_s=0.002, cycle=4)
    measured = measure_run(run, images=[0, 1, 2], settings=settings)
    total_steps = settings.warmup_steps + 4 * cycles
    assert len(run.seen) == total_steps
    assert run.seen == [i % 3 for i in range(total_steps)]  # the batches are used in turn
    assert measured.steps == 4 * cycles and len(measured.step_ms) == cycles
    assert all(2.0 <= ms < 50.0 for ms in measured.step_ms)  # per step, not per cycle
    assert measured.peak_mem_mb is None and measured.skipped_phases == 0


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("train_bench")
    code = main(["--quick", "--out", str(out),
                 "--providers", "gankern_auto", "gankern_triton", "ref"])
    return code, out


def test_quick_run_writes_rows(quick_out):
    code, out = quick_out
    assert code == 0
    rows = _rows(out)
    assert [r["provider"] for r in rows] == ["gankern_auto", "gankern_triton", "ref"]
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        assert row["op"] == "train_stylegan2" and row["mode"] == "train_step"
        assert row["case"] == "auto" and row["shape"] == "4x3x16x16"
        assert row["dtype"] == "float32" and row["layout"] == "nchw"
        assert row["torch_version"] == torch.__version__ and row["gankern_commit"]
        params = json.loads(row["params"])
        assert (params["cfg"], params["resolution"], params["batch"], params["aug"]) == (
            "auto", 16, 4, "noaug")
        assert (params["r1_interval"], params["pl_interval"]) == (16, 4)
    triton = rows[1]
    assert triton["status"] == "skipped" and "interpreter" in triton["reason"]
    for row in (rows[0], rows[2]):
        assert row["status"] == "ok", row["reason"]
        assert row["reps"] == 1 and row["median_ms"] > 0
        assert row["p20_ms"] <= row["median_ms"] <= row["p80_ms"]
        assert row["peak_mem_mb"] is None  # no GPU


def test_quick_run_tables(quick_out):
    _, out = quick_out
    rows = _rows(out)
    text = (out / "training.md").read_text()
    for row in (rows[0], rows[2]):
        line = next(ln for ln in text.splitlines() if f"| {row['provider']} |" in ln)
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert float(cells[8]) == pytest.approx(row["median_ms"] / 4, rel=5e-3)  # s/kimg
        assert float(cells[9]) == pytest.approx(4000 / row["median_ms"], rel=5e-3)  # img/s
    assert "train_stylegan2" in (out / "README.md").read_text()


def test_quick_run_with_ada_and_channels_last(tmp_path):
    code = main(["--quick", "--out", str(tmp_path), "--providers", "ref", "--aug", "ada",
                 "--ada-p", "0.5", "--channels-last"])
    assert code == 0
    (row,) = _rows(tmp_path)
    assert row["status"] == "ok", row["reason"]
    assert row["layout"] == "channels_last"
    params = json.loads(row["params"])
    assert params["aug"] == "ada" and params["ada_p"] == 0.5


def _row(provider, kind, median_ms, cfg="auto", resolution=256, batch=16, dtype="float16",
         op="train_stylegan2"):
    params = json.dumps({"cfg": cfg, "resolution": resolution, "batch": batch, "aug": "noaug"})
    return {
        "op": op, "case": cfg, "shape": f"{batch}x3x{resolution}x{resolution}", "dtype": dtype,
        "layout": "nchw", "params": params, "provider": provider, "provider_kind": kind,
        "status": "ok", "reason": None, "median_ms": median_ms, "p20_ms": median_ms * 0.9,
        "p80_ms": median_ms * 1.1, "peak_mem_mb": 3072.0,
    }  # fmt: skip


def _cells(lines, provider, resolution):
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 6 and cells[6] == provider and cells[1] == str(resolution):
            return cells
    raise AssertionError(f"no line for {provider} at {resolution}")


def test_training_table_figures_and_targets():
    rows = [
        _row("gankern_auto", "gankern", 60.0),  # 3.75 s/kimg, 2x ref: meets the target
        _row("ref", "ref", 120.0),
        _row("gankern_auto", "gankern", 2000.0, cfg="stylegan2", resolution=1024, batch=32),
        _row("ref", "ref", 2500.0, cfg="stylegan2", resolution=1024, batch=32),
    ]
    lines = training_table(rows)
    fused = _cells(lines, "gankern_auto", 256)
    assert fused[8:13] == ["3.75", "266.7", "3.00", "2.00x", "yes"]
    assert _cells(lines, "ref", 256)[8:13] == ["7.5", "133.3", "3.00", "", ""]
    # config-f at 1024 px: 2000 ms / 32 images = 62.5 s/kimg, 1.25x; the target is for 256 px.
    assert _cells(lines, "gankern_auto", 1024)[8:13] == ["62.5", "16", "3.00", "1.25x", ""]
    assert any("12.53 s/kimg" in line for line in lines)
    assert any("14.57 s/kimg" in line for line in lines)

    slow = training_table([_row("gankern_auto", "gankern", 70.0), _row("ref", "ref", 200.0)])
    assert _cells(slow, "gankern_auto", 256)[8] == "4.38"
    assert _cells(slow, "gankern_auto", 256)[12] == "NO"  # 4.375 s/kimg > 4.0
    small_gain = training_table([_row("gankern_auto", "gankern", 60.0), _row("ref", "ref", 80.0)])
    assert _cells(small_gain, "gankern_auto", 256)[12] == "NO"  # 1.33x < 1.5x
    alone = training_table([_row("gankern_auto", "gankern", 60.0)])
    assert _cells(alone, "gankern_auto", 256)[12] == "?"  # no ref to compare with
    failed = dict(_row("ref", "ref", 0.0), status="skipped", reason="out of memory (x)",
                  median_ms=None)
    lines = training_table([_row("gankern_auto", "gankern", 60.0), failed])
    assert _cells(lines, "ref", 256)[7] == "skip"
    assert any("ref skipped (1 rows): out of memory (x)" in line for line in lines)


def test_only_stylegan2_tables_state_its_target():
    def targets(op):
        rows = [_row("gankern_auto", "gankern", 60.0, op=op), _row("ref", "ref", 120.0, op=op)]
        return [line for line in training_table(rows) if line.startswith("- target:")]

    assert len(targets("train_stylegan2")) == 1 and "issue 4" in targets("train_stylegan2")[0]
    assert targets("train_dcgan") == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--resolutions", "100"], "--resolutions"),
        (["--ada-p", "0.5"], "--ada-p needs --aug ada"),
        (["--aug", "ada", "--ada-p", "2"], "--ada-p must be in [0, 1]"),
        (["--min-cycles", "3", "--max-cycles", "2"], "--max-cycles (2) must be >= --min-cycles"),
        (["--providers", "fast"], "--providers"),
        (["--budget-s", "-1"], "--budget-s"),
    ],
)
def test_bad_arguments(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--no-write", "--out", str(tmp_path), *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_images_and_ada_p():
    opts = TrainingOptions(data="synthetic", cfg="auto", batch=2, aug="noaug", metrics=[],
                           device="cpu", extra={"G": {"channel_base": 64, "channel_max": 8,
                                                      "z_dim": 8, "w_dim": 8},
                                                "D": {"channel_base": 64, "channel_max": 8}})
    with pytest.raises(ValueError, match="ada_p is only used with aug='ada'"):
        build_training_run(opts, 8, 3, CPU, ada_p=0.3)
    run = build_training_run(opts, 8, 3, CPU)
    with pytest.raises(ValueError, match=r"images must have shape \(2, 3, 8, 8\), got \(2, 3, 16"):
        run.step(torch.zeros(2, 3, 16, 16))
    assert run.step_index == 0 and run.nimg == 0


@pytest.mark.parametrize(
    "resolution, cfg, batch, batch_gpu",
    [(64, "auto", 32, 32), (256, "auto", 16, 16), (1024, "stylegan2", 32, 4)],
)
def test_default_configurations_are_the_issues(resolution, cfg, batch, batch_gpu):
    """What a GPU run measures by default (issue 4): the auto config at 64 and 256 px
    (channel base 16384, mapping depth 2, batch 16 at 256 px) and config-f at 1024 px with
    its published batch of 32 (4 per GPU pass); fp16 in the 4 highest resolutions with
    conv clamping at 256, as configured."""
    cuda = torch.device("cuda")  # only resolved, nothing is allocated
    assert DEFAULT_CONFIGS[resolution] == cfg
    args = build_parser().parse_args([])
    args.device_obj, args.quick = cuda, False
    opts = bench_options(args, cfg, "auto")
    params = row_params(opts, resolution, cuda, None)
    assert (params["cfg"], params["batch"], params["batch_gpu"]) == (cfg, batch, batch_gpu)
    assert (params["precision"], params["aug"], params["tf32"]) == ("fp16", "noaug", False)
    assert (params["r1_interval"], params["pl_interval"]) == (16, 4)
    config = resolve_config(opts, resolution, 3, 0, 1, cuda)
    for net in (config.G, config.D):
        assert (net.num_fp16_res, net.conv_clamp) == (4, 256)
        assert net.channel_base == (32768 if cfg == "stylegan2" else 16384)
    assert config.G.mapping_layers == (8 if cfg == "stylegan2" else 2)
