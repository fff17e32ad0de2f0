"""The benchmark harness on the CPU: reference providers, tiny shapes, rows and tables.

The harness measures rather than asserts, so these tests check its bookkeeping against
figures worked out by hand: rows carry every key, derived rates follow from the bytes and
flop models, unavailable providers are skipped with gankern's reason, failures become
error rows, and the markdown table regenerates from the rows alone.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import sys
import time
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import (  # noqa: E402
    bench_bias_act,
    bench_upfirdn2d,
    timing,  # noqa: E402
)
from benchmarks.environment import collect_environment, slugify  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    Baselines,
    BenchCase,
    Config,
    Provider,
    RunOptions,
    Target,
    Variant,
    config_from_row,
    discover,
    rotation_copies,
    run_case,
    select_configs,
)
from benchmarks.report import latest_rows, op_table, render_markdown, write_markdown  # noqa: E402
from benchmarks.results import ROW_KEYS, append_rows, load_rows  # noqa: E402
from benchmarks.run_all import main as run_all  # noqa: E402
from benchmarks.timing import QUICK_TIMING, summarize  # noqa: E402
from gankern.ops import OP_BACKENDS, backend_report  # noqa: E402

CPU = torch.device("cpu")


def _jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick CPU run of bias_act and upfirdn2d (float32, both layouts, all modes)."""
    out = tmp_path_factory.mktemp("bench")
    code = run_all([
        "--quick", "--device", "cpu", "--ops", "bias_act", "upfirdn2d", "--dtypes", "float32",
        "--out", str(out), "--providers", "ref", "gankern_cuda", "gankern_triton",
    ])
    return code, out


def test_quick_run_writes_complete_rows(quick_run):
    code, out = quick_run
    assert code == 0
    slug = slugify(collect_environment(CPU).device)
    assert sorted(p.name for p in (out / slug).iterdir()) == [
        "bias_act.csv", "bias_act.jsonl", "upfirdn2d.csv", "upfirdn2d.jsonl"
    ]
    for op in ("bias_act", "upfirdn2d"):
        jsonl = out / slug / f"{op}.jsonl"
        rows = _jsonl_rows(jsonl)
        assert rows, f"no rows for {op}"
        for row in rows:
            assert set(row) == set(ROW_KEYS)
            assert row["op"] == op and row["device"] == collect_environment(CPU).device
            assert row["torch_version"] == torch.__version__
            assert row["gankern_commit"]
        with (out / slug / f"{op}.csv").open(newline="") as fh:
            table = list(csv.DictReader(fh))
        assert len(table) == len(rows)
        assert list(table[0]) == list(ROW_KEYS)
        # 1 variant x 2 layouts (bias_act), 2 x 2 (upfirdn2d); 3 modes; ref only runs
        configs = {"bias_act": 2, "upfirdn2d": 4}[op]
        ok = [r for r in rows if r["status"] == "ok"]
        assert len(ok) == configs * 3, [r["reason"] for r in rows if r not in ok]
        assert len(rows) == configs * 3 * 3  # and the two gankern providers, skipped
        assert {r["mode"] for r in ok} == {"forward", "backward", "double_backward"}
        assert {r["layout"] for r in ok} == {"nchw", "channels_last"}


def test_unavailable_providers_are_skipped_with_gankerns_reason(quick_run):
    _, out = quick_run
    rows = load_rows(out)
    for provider, words in (("gankern_cuda", "CUDA"), ("gankern_triton", "Triton")):
        mine = [r for r in rows if r["provider"] == provider]
        assert mine and all(r["status"] == "skipped" for r in mine)
        assert all(words in r["reason"] and r["median_ms"] is None for r in mine)
    # Without the interpreter the reason is gankern's own check; with it, the harness's.
    triton = [r["reason"] for r in rows if r["provider"] == "gankern_triton"]
    assert all("TRITON_INTERPRET" in reason for reason in triton)
    cuda = [r["reason"] for r in rows if r["provider"] == "gankern_cuda"]
    assert all("impl='cuda' unavailable" in reason for reason in cuda)


def test_rates_follow_from_the_models(quick_run):
    _, out = quick_run
    rows = [r for r in load_rows(out) if r["status"] == "ok"]
    bias = [r for r in rows if r["op"] == "bias_act"]
    # Shape 2x8x6x5 float32: n = 480 elements, c = 8 channels, 4 bytes each.
    expected = {"forward": (2 * 480 + 8) * 4, "backward": (3 * 480 + 16) * 4,
                "double_backward": 3 * 480 * 4}
    for row in bias:
        assert row["bytes_moved"] == expected[row["mode"]]
    for row in rows:
        assert 0 < row["p20_ms"] <= row["median_ms"] <= row["p80_ms"]
        assert row["reps"] >= QUICK_TIMING.min_reps and row["copies"] == 1
        assert row["peak_mem_mb"] is None  # not measured on the CPU
        if row["bytes_moved"] is not None:
            gbps = row["bytes_moved"] / (row["median_ms"] / 1000) / 1e9
            assert row["gbps"] == pytest.approx(gbps)
            assert row["pct_of_copy_bw"] == pytest.approx(100 * gbps / row["copy_bw_gbps"])
        if row["flops"] is not None:
            tflops = row["flops"] / (row["median_ms"] / 1000) / 1e12
            assert row["tflops"] == pytest.approx(tflops)
            assert row["pct_of_matmul"] == pytest.approx(100 * tflops / row["matmul_tflops"])
    up = [r for r in rows if r["op"] == "upfirdn2d" and r["case"] == "up2"]
    # 2x3x8x7 upsampled 2x: 336 + 1344 elements of 4 bytes, in every mode.
    assert up and all(r["bytes_moved"] == (336 + 1344) * 4 for r in up)
    down = [r for r in rows if r["op"] == "upfirdn2d" and r["case"] == "down2"]
    # 2x3x8x10 downsampled 2x: 480 + 120 elements.
    assert down and all(r["bytes_moved"] == (480 + 120) * 4 for r in down)


def test_markdown_regenerates_from_the_rows(quick_run):
    _, out = quick_run
    readme = out / "README.md"
    text = readme.read_text()
    for op in ("bias_act", "upfirdn2d"):
        assert f"### {op}" in text
    assert "| case | shape | dtype | layout | mode |" in text
    assert "gankern_cuda skipped" in text
    readme.unlink()
    assert write_markdown(out).read_text() == text


def test_bytes_model_output_shapes_match_the_op():
    for variant in bench_upfirdn2d.variants(quick=True):
        config = Config(variant.label, variant.shape, torch.float32, "nchw", variant.params)
        x, f = bench_upfirdn2d.make_inputs(config, CPU)
        y = bench_upfirdn2d._provider("ref")(config)(x, f)
        assert tuple(y.shape) == bench_upfirdn2d.output_shape(config)


def test_bench_files_register_their_cases():
    cases = discover()
    assert {"bias_act", "upfirdn2d"} <= set(cases)
    for case in cases.values():
        kinds = {p.kind for p in case.providers}
        assert "ref" in kinds and "gankern" in kinds, case.op


def test_full_shapes_reach_the_issue_sizes():
    """The issue's targets are for tensors of 64 MiB and more, in every dtype."""
    mib64 = 64 * 2**20
    bias = [math.prod(v.shape) for v in bench_bias_act.variants(quick=False)]
    assert all(n * 4 >= mib64 for n in bias)  # every shape qualifies in float32
    assert sum(n * 2 >= mib64 for n in bias) >= 2  # and most in float16/bfloat16
    for variant in bench_upfirdn2d.variants(quick=False):
        config = Config(variant.label, variant.shape, torch.float16, "nchw", variant.params)
        largest = max(math.prod(variant.shape), math.prod(bench_upfirdn2d.output_shape(config)))
        assert largest * 2 >= mib64
    labels = {v.label for v in bench_upfirdn2d.variants(quick=False)}
    assert labels == {"up2", "down2"}


def test_rotation_copies():
    mib = 2**20
    assert rotation_copies(200 * mib, 50 * mib, 16) == 1  # far larger than L2
    assert rotation_copies(100 * mib, 50 * mib, 16) == 1
    assert rotation_copies(25 * mib, 50 * mib, 16) == 5  # 4 others stream 100 MiB
    assert rotation_copies(1 * mib, 50 * mib, 16) == 16  # capped
    assert rotation_copies(1 * mib, 0, 16) == 1  # no cache to defeat (CPU)


def test_summarize_percentiles():
    t = summarize([float(v) for v in range(10, 0, -1)], host_ms=0.5)
    # Sorted 1..10, linear interpolation: p20 at index 1.8, median at 4.5, p80 at 7.2.
    assert (t.p20_ms, t.median_ms, t.p80_ms, t.reps) == pytest.approx((2.8, 5.5, 8.2, 10))
    with pytest.raises(ValueError, match="times_ms"):
        summarize([], host_ms=0.0)


class _HostEvent:
    """Stands in for torch.cuda.Event on the CPU: records the host clock."""

    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, other):
        return (other.t - self.t) * 1e3


def test_cuda_timer_bookkeeping_with_host_events(monkeypatch):
    """The GPU timer's estimate, warm-up, batching and spin lengths, run on host events.

    This checks the timer's logic, not CUDA itself (that needs the GPU test below).
    """
    sleeps = []
    monkeypatch.setattr(torch.cuda, "Event", _HostEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *args: None)
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: sleeps.append(cycles))
    monkeypatch.setattr(timing, "_sleep_cycles_per_ms", {})
    calls = []

    def fn():
        calls.append(None)
        time.sleep(0.002)

    settings = timing.TimingSettings(warmup_ms=4.0, rep_ms=30.0, min_reps=3, max_reps=40)
    result = timing.time_cuda(fn, settings, torch.device("cuda", 0))
    assert settings.min_reps <= result.reps <= 15  # ~30 ms of 2 ms calls
    assert 2.0 <= result.p20_ms <= result.median_ms <= result.p80_ms
    assert result.host_ms >= 2.0
    # 1 first call + 5 estimating calls + warm-up (at least 1) + the timed repetitions
    assert len(calls) >= 1 + 5 + 1 + result.reps
    # Calibration spins twice, then one spin per batch (20 ms of ~2 ms issues per batch).
    batch = max(1, min(64, int(20.0 / result.host_ms)))
    assert len(sleeps) == 2 + math.ceil(result.reps / batch)
    assert all(isinstance(c, int) and c > 0 for c in sleeps)


def _tiny_case(providers, modes=("forward",)):
    def make_inputs(config, device):
        return [torch.randn(config.shape, device=device).requires_grad_()]

    return BenchCase(
        op="tiny", description="test case",
        variants=lambda quick: [Variant("v", (4, 4), {})],
        make_inputs=make_inputs, providers=providers,
        bytes_moved=lambda config, mode: 128, flops=lambda config, mode: 1000, modes=modes,
        layouts=("nchw",),
    )


def _run(case, **kwargs):
    options = RunOptions(device=CPU, quick=True, dtypes=["float32"], **kwargs)
    baselines = Baselines(copy_bw_gbps=10.0, matmul_tflops=1.0, matmul_dtype="float32")
    return run_case(case, options, collect_environment(CPU), baselines, "test-run")


def test_failing_provider_becomes_an_error_row():
    def broken(config):
        def run(x):
            raise RuntimeError("kernel exploded")

        return run

    case = _tiny_case([
        Provider("fine", "ref", lambda config: torch.tanh),
        Provider("broken", "gankern", broken),
    ])
    rows = {r["provider"]: r for r in _run(case)}
    fine = rows["fine"]
    assert fine["status"] == "ok" and fine["reason"] is None
    seconds = fine["median_ms"] / 1000  # baselines: 10 GB/s copy, 1 TFLOP/s matmul
    assert fine["gbps"] == pytest.approx(128 / seconds / 1e9)
    assert fine["pct_of_copy_bw"] == pytest.approx(100 * 128 / seconds / 1e9 / 10)
    assert fine["tflops"] == pytest.approx(1000 / seconds / 1e12)
    assert fine["pct_of_matmul"] == pytest.approx(100 * 1000 / seconds / 1e12)
    assert (fine["copy_bw_gbps"], fine["matmul_tflops"], fine["run_id"]) == (10, 1, "test-run")
    assert rows["broken"]["status"] == "error"
    assert rows["broken"]["reason"] == "RuntimeError: kernel exploded"


def test_compile_provider_and_its_double_backward_limit():
    case = _tiny_case(
        [Provider("compiled", "compile", lambda config: lambda x: torch.tanh(x) * 2)],
        modes=("forward", "double_backward"),
    )
    rows = {r["mode"]: r for r in _run(case, compile_backend="aot_eager")}
    assert rows["forward"]["status"] == "ok"
    # AOTAutograd has no double backward: reported as skipped, not as an error.
    assert rows["double_backward"]["status"] == "skipped"
    assert "double backward" in rows["double_backward"]["reason"]


def _row(provider, kind, median, pct=None, mode="forward", stamp="2025-01-01T00:00:00Z"):
    row = {k: None for k in ROW_KEYS}
    row.update(
        op="tiny", case="v", provider=provider, provider_kind=kind, mode=mode, shape="4x4",
        dtype="float16", layout="nchw", params="{}", status="ok", median_ms=median,
        pct_of_copy_bw=pct, device="Dev", run_id="r1", timestamp=stamp, torch_version="t",
        triton_version="tr", cuda_version="c", gankern_commit="abc", copy_bw_gbps=100.0,
        matmul_tflops=1.0, matmul_dtype="bfloat16",
    )
    return row


def test_table_speedups_and_targets():
    rows = [
        _row("fast", "gankern", 1.0, pct=90.0),
        _row("slow", "gankern", 4.0, pct=22.5),
        _row("ref", "ref", 3.0, pct=30.0),
        _row("compiled", "compile", 1.5, pct=60.0),
    ]
    skipped = _row("cuda", "gankern", None)
    skipped.update(status="skipped", reason="no GPU here")
    rows.append(skipped)
    passes = Target("fast enough", lambda c, m: True, min_pct_copy_bw=85.0,
                    min_speedup_vs_compile=1.2)
    fails = Target("too ambitious", lambda c, m: True, min_speedup_vs_ref=3.5)
    lines = op_table(rows, [passes])
    body = [line for line in lines if line.startswith("| v ")]
    assert len(body) == 1
    cells = [c.strip() for c in body[0].strip("|").split("|")]
    # providers in order of appearance, then best, vs ref (3/1), vs compile (1.5/1), target
    assert cells[5:] == ["1.000 · 90%", "4.000 · 22%", "3.000 · 30%", "1.500 · 60%", "skip",
                         "fast", "3.00x", "1.50x", "yes"]
    assert "- cuda skipped (1 rows): no GPU here" in lines
    assert op_table(rows, [passes, fails])[2].rstrip().endswith("| NO |")
    missing = Target("needs matmul", lambda c, m: True, min_pct_matmul=50.0)
    assert op_table(rows, [missing])[2].rstrip().endswith("| ? |")


def test_latest_rows_keep_the_newest_measurement():
    old = _row("ref", "ref", 3.0, stamp="2025-01-01T00:00:00Z")
    new = _row("ref", "ref", 2.0, stamp="2025-02-01T00:00:00Z")
    other = _row("ref", "ref", 5.0, mode="backward")
    assert [r["median_ms"] for r in latest_rows([new, old, other])] == [2.0, 5.0]
    text = render_markdown([old, new], {})
    assert "| v | 4x4 | float16 | nchw | forward | 2.000 |" in text
    assert "3.000" not in text
    assert "No results yet" in render_markdown([], {})
    assert "1 rows in other formats were ignored" in render_markdown([{"x": 1}], {})


def test_config_round_trips_through_a_row():
    rows = _run(_tiny_case([Provider("fine", "ref", lambda config: torch.tanh)]))
    config = config_from_row(rows[0])
    assert (config.case, config.shape, config.dtype, config.layout, config.params) == (
        "v", (4, 4), torch.float32, "nchw", {}
    )


def test_bad_input_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="dtypes"):
        RunOptions(device=CPU, dtypes=["float64"])
    with pytest.raises(ValueError, match="modes"):
        RunOptions(device=CPU, modes=["sideways"])
    with pytest.raises(ValueError, match="kind"):
        Provider("p", "fast", lambda config: torch.tanh)
    with pytest.raises(ValueError, match="ROW_KEYS"):
        append_rows(tmp_path, "dev", "op", [{"op": "x"}])
    assert run_all(["--quick", "--device", "cpu", "--providers", "nope", "--no-write"]) == 2
    with pytest.raises(SystemExit):
        run_all(["--ops", "no_such_op"])
    assert select_configs(
        _tiny_case([]), RunOptions(device=CPU, quick=True, cases=["nomatch*"])
    ) == []


def test_csv_header_grows_with_new_keys(tmp_path):
    old_header = list(ROW_KEYS[:-1])  # a file written before the last key existed
    path = tmp_path / "dev" / "tiny.csv"
    path.parent.mkdir()
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(old_header)
        writer.writerow(["old"] + [""] * (len(old_header) - 1))
    append_rows(tmp_path, "dev", "tiny", [_row("ref", "ref", 1.0)])
    with path.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == list(ROW_KEYS)
    assert table[0]["op"] == "old" and table[1]["op"] == "tiny"


@pytest.mark.cuda
def test_quick_gpu_run_measures_every_gankern_provider(tmp_path):
    code = run_all([
        "--quick", "--device", "cuda", "--dtypes", "float16", "--out", str(tmp_path),
        "--providers", "gankern_cuda", "gankern_triton", "ref", "ref_scaling",
    ])
    assert code == 0
    rows = load_rows(tmp_path)
    gankern = [r for r in rows if r["provider_kind"] == "gankern"]
    assert {r["op"] for r in gankern} == set(OP_BACKENDS)
    # A provider is skipped only where gankern's own report says its backend cannot run
    # here; Triton always can on a GPU machine. Everything else must have been measured.
    report = backend_report(OP_BACKENDS, torch.device("cuda"))
    assert all(report[op]["triton"] is None for op in OP_BACKENDS), report
    backend_of = {"gankern_cuda": "cuda", "gankern_triton": "triton"}
    for row in gankern:
        available = report[row["op"]][backend_of[row["provider"]]] is None
        assert row["status"] == ("ok" if available else "skipped"), row
    assert all(r["peak_mem_mb"] is not None for r in rows if r["status"] == "ok")
