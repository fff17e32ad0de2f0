"""One command for a GPU session: environment, extension build, GPU tests, headline benchmarks.

    python -m benchmarks.gpu_session --out DIR [--budget-s 480] [--dry-run]
    python -m benchmarks.gpu_session --import DIR      # afterwards: into benchmarks/results

Within a wall-clock budget (default 8 minutes, so that a 15-minute GPU lease leaves room to
run it again), in this order:

1. the environment: GPU, driver, torch / Triton / CUDA / cuDNN versions, the commit;
2. the CUDA extension's build (in a child process, timed; a failure is recorded, and the
   rest runs on whatever backends remain);
3. the GPU tests (``pytest -m cuda``), most important files first, until
   :data:`TESTS_END` of the budget has passed: tests not started by then are skipped with
   the reason "session budget" (this module is also the pytest plugin that does it);
4. the headline benchmarks, each side by side with the reference and ``torch.compile`` of
   the reference where they apply (:data:`BENCH_ITEMS`, a first round with one of each,
   then the other dtypes and shapes), through the harness of :mod:`benchmarks.harness` and
   :mod:`benchmarks.bench_training`; an item starts only if its estimated time still fits.

Everything lands in DIR, in at most :data:`OUT_FILES` files (written as the session goes,
so an interrupted session keeps what it did): ``session.log`` (all that was printed),
``environment.json`` (environment, build, test counts, phase times), ``build.log``,
``tests.log``, ``tests.xml`` (JUnit), ``rows.jsonl`` (every benchmark row, the harness's
schema) and ``summary.md`` (the tables). ``--import DIR`` appends the rows to
``benchmarks/results/<device>/<op>.{csv,jsonl}``, copies the other files to
``benchmarks/results/<device>/sessions/<run id>/`` and regenerates the results' tables.

``--dry-run`` does all of it on the CPU with tiny shapes and float32, without the compile
providers (a CPU ``torch.compile`` costs ~20 s per graph), collecting the GPU tests
instead of running them: a check, in seconds, that the command has not rotted.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUDGET_S = 480.0
# The phases' shares of the budget: the build may use up to BUILD_SHARE of it; the tests run
# until TESTS_END of it has passed; the benchmarks take the rest but RESERVE_S.
BUILD_SHARE = 0.4
TESTS_END = 0.45
RESERVE_S = 10.0
OUT_FILES = ("session.log", "environment.json", "build.log", "tests.log", "tests.xml",
             "rows.jsonl", "summary.md")
DEADLINE_ENV = "GANKERN_SESSION_TEST_DEADLINE"

# The GPU test files, most important first: the ops against their references, then the
# coverage of the remaining GPU paths, then the layers and models built on them.
TEST_FILES = (
    "tests/test_bias_act.py",
    "tests/test_upfirdn2d.py",
    "tests/test_modulated_conv2d_cuda.py",
    "tests/test_gpu_coverage.py",
    "tests/test_conv2d.py",
    "tests/test_conv2d_resample.py",
    "tests/test_stylegan2.py",
    "tests/test_augment.py",
    "tests/test_metrics_compute.py",
    "tests/test_benchmarks.py",
)


# ------------------------------------------------------------------------------------------
# The pytest plugin (``-p benchmarks.gpu_session``): skip tests once the deadline has passed.


def pytest_runtest_setup(item):
    """Skip a test that would start after the session's test deadline (if one is set)."""
    deadline = os.environ.get(DEADLINE_ENV)
    if deadline and time.time() > float(deadline):
        import pytest

        pytest.skip("session budget: the GPU tests' share of the time was spent")


# ------------------------------------------------------------------------------------------
# What to benchmark.


@dataclasses.dataclass(frozen=True)
class BenchItem:
    """One configuration of a registered benchmark (or a training step) to measure.

    ``shape`` picks the full-size variant of ``label`` (the quick variant with that label
    in a dry run); ``estimate_s`` is the time it is expected to take on an H100, compile
    included: an item starts only when that much of the budget remains.
    """

    op: str
    label: str
    shape: tuple[int, ...] | None
    dtype: str
    modes: tuple[str, ...] = ("forward", "backward")
    providers: tuple[str, ...] | None = None
    estimate_s: float = 30.0

    @property
    def name(self) -> str:
        shape = "x".join(map(str, self.shape)) if self.shape else ""
        return f"{self.op} {self.label} {shape} {self.dtype}".replace("  ", " ")


TRAIN = "train_stylegan2"
R1_PROVIDERS = ("gankern_auto", "ref")
TRAIN_PROVIDERS = ("gankern_auto", "ref")
_UP = (32, 256, 64, 64)  # 2x up to 128 px: 128 MiB in, 512 MiB out in float32
_DOWN = (32, 256, 128, 128)  # 2x down from 128 px: 512 MiB in float32
_ACT = (32, 512, 64, 64)  # 256 MiB in float32, 128 MiB in half
_CONV32, _CONV256 = (32, 512, 32, 32), (32, 128, 256, 256)
BENCH_ITEMS = (
    # Round 1: one of each headline, in half precision (the targets' dtype).
    BenchItem("bias_act", "lrelu", _ACT, "float16", estimate_s=25),
    BenchItem("upfirdn2d", "up2", _UP, "float16", estimate_s=25),
    BenchItem("upfirdn2d", "down2", _DOWN, "float16", estimate_s=25),
    BenchItem("stylegan2_r1", "r1_step", None, "float16", ("forward",), R1_PROVIDERS, 30),
    BenchItem("modulated_conv2d", "conv", _CONV32, "float16", estimate_s=90),
    BenchItem(TRAIN, "auto", (256,), "auto", ("train_step",), TRAIN_PROVIDERS, 90),
    # Round 2: the other dtypes and layer shapes.
    BenchItem("bias_act", "lrelu", _ACT, "bfloat16", estimate_s=25),
    BenchItem("bias_act", "lrelu", _ACT, "float32", estimate_s=25),
    BenchItem("modulated_conv2d", "up2", _CONV32, "float16", estimate_s=90),
    BenchItem("modulated_conv2d", "conv", _CONV256, "float16", estimate_s=90),
    BenchItem("upfirdn2d", "up2", _UP, "bfloat16", estimate_s=25),
    BenchItem("upfirdn2d", "down2", _DOWN, "bfloat16", estimate_s=25),
    BenchItem("modulated_conv2d", "conv", _CONV32, "bfloat16", estimate_s=90),
    BenchItem("stylegan2_r1", "r1_step", None, "bfloat16", ("forward",), R1_PROVIDERS, 30),
    BenchItem("modulated_conv2d", "torgb", _CONV256, "float16", estimate_s=45),
    BenchItem("upfirdn2d", "up2", _UP, "float32", estimate_s=25),
    BenchItem("upfirdn2d", "down2", _DOWN, "float32", estimate_s=25),
)


# ------------------------------------------------------------------------------------------
# The session.


class Session:
    """The output folder, the clock and the log of one session."""

    def __init__(self, out: Path, budget_s: float, dry_run: bool):
        self.out = out
        self.budget_s = budget_s
        self.dry_run = dry_run
        self.start = time.monotonic()
        self.run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        out.mkdir(parents=True, exist_ok=True)
        for name in OUT_FILES:  # a fresh session: nothing left from an earlier one
            (out / name).unlink(missing_ok=True)
        self._log = (out / "session.log").open("a")
        self.record: dict = {"run_id": self.run_id, "budget_s": budget_s, "dry_run": dry_run,
                             "phases": {}}
        self.rows: list[dict] = []
        self.tables: list[str] = []
        self.not_run: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, text: str = "") -> None:
        """Print, and append to session.log."""
        print(text, flush=True)
        self._log.write(text + "\n")
        self._log.flush()

    def phase_done(self, name: str, started: float) -> None:
        self.record["phases"][name] = round(time.monotonic() - started, 2)
        self.write_record()
        write_summary(self)

    def write_record(self) -> None:
        text = json.dumps(self.record, indent=2, default=str)
        (self.out / "environment.json").write_text(text + "\n")

    def close(self) -> None:
        self._log.close()


def _run(cmd: Sequence[str], timeout: float | None = None, env: dict | None = None):
    """``(returncode, output)`` of a command (stdout and stderr together); ``(None, output)``
    when it cannot start or runs past ``timeout``, in which case its whole process group
    (ninja and nvcc under a build, too) is stopped."""
    try:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, cwd=REPO_ROOT, start_new_session=True)
    except FileNotFoundError:
        return None, f"{cmd[0]}: not found"
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, (out or "") + f"\n[stopped after {timeout:.0f} s]"
    return proc.returncode, out


def _child_env(extra: dict | None = None) -> dict:
    """The environment of child processes: the checkout importable without an install."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def environment(session: Session, device: torch.device) -> dict:
    """Versions, device and driver (nothing here builds or loads the extension)."""
    from benchmarks.environment import collect_environment

    env = collect_environment(device)
    info = {
        "device": env.device, "device_slug": env.device_slug, "gankern_commit": env.gankern_commit,
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "triton": env.triton_version,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "tf32": {"cudnn_conv": torch.backends.cudnn.allow_tf32,
                 "matmul": torch.backends.cuda.matmul.allow_tf32},
        "variables": {k: os.environ[k] for k in (
            "GANKERN_IMPL", "GANKERN_COMMIT", "TRITON_INTERPRET", "CUDA_HOME",
            "TORCH_CUDA_ARCH_LIST", "CUDA_VISIBLE_DEVICES") if k in os.environ},
    }  # fmt: skip
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu"] = {
            "name": props.name, "capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "l2_mib": round(getattr(props, "L2_cache_size", 0) / 2**20, 1),
        }  # fmt: skip
        code, text = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,"
                           "clocks.max.sm,power.limit", "--format=csv,noheader"], timeout=30)
        info["nvidia_smi"] = text.strip() if code == 0 else f"unavailable ({text.strip()[:200]})"
    code, text = _run(["nvcc", "--version"], timeout=30)
    info["nvcc"] = text.strip().splitlines()[-1] if code == 0 and text.strip() else "not found"
    return info


BUILD_CHILD = """
import json, time
t = time.perf_counter()
from gankern._ext import cuda_extension_status
module, reason = cuda_extension_status()
print(json.dumps({"built": module is not None, "reason": reason,
                  "seconds": round(time.perf_counter() - t, 2)}))
"""


def build_extension(session: Session) -> dict:
    """Build (or find) the CUDA extension in a child process; time it; log its output."""
    timeout = max(5.0, min(BUILD_SHARE * session.budget_s, session.remaining() - RESERVE_S))
    started = time.monotonic()
    code, text = _run([sys.executable, "-c", BUILD_CHILD], timeout=timeout,
                      env=_child_env({"GANKERN_VERBOSE_BUILD": "1"}))
    wall = round(time.monotonic() - started, 2)
    (session.out / "build.log").write_text(text)
    result = {"built": False, "reason": None, "wall_s": wall}
    answers = [line for line in text.splitlines() if line.startswith('{"built"')]
    if answers:
        result.update(json.loads(answers[-1]))
    else:
        tail = " | ".join(text.strip().splitlines()[-3:])
        result["reason"] = f"build process failed (exit {code}): {tail[:400]}"
    if not result["built"]:
        # No second try, in this process or the tests': it would take the budget again.
        os.environ["GANKERN_CUDA_JIT"] = "0"
        return result
    # Load it here too (from torch's extension cache: no rebuild), for the benchmarks.
    from gankern._ext import cuda_extension_status

    t = time.perf_counter()
    module, reason = cuda_extension_status()
    result["load_in_session_s"] = round(time.perf_counter() - t, 2)
    if module is None:
        result.update(built=False, reason=f"built, but did not load here: {reason}")
    return result


def _pytest_timeout_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pytest_timeout") is not None


def run_tests(session: Session) -> dict:
    """``pytest -m cuda`` over :data:`TEST_FILES` until the tests' deadline (a dry run
    collects them only); counts from the JUnit report."""
    deadline_s = max(0.0, TESTS_END * session.budget_s - session.elapsed())
    files = [f for f in TEST_FILES if (REPO_ROOT / f).exists()]
    missing = sorted(set(TEST_FILES) - set(files))
    xml = session.out / "tests.xml"
    cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "benchmarks.gpu_session",
           "-p", "no:xdist", "-q", "-rfE", f"--junitxml={xml}"]
    if session.dry_run:
        # Every file must exist (above); collecting them all would take half a minute on a
        # busy CPU, so the dry run collects the first one, through this same command.
        cmd += ["--collect-only", files[0]] if files else ["--collect-only"]
    else:
        if _pytest_timeout_available():
            cmd += ["--timeout", "120"]  # a hung test fails alone
        cmd += files
    env = _child_env({DEADLINE_ENV: str(time.time() + deadline_s)})
    # Tests past the deadline are skipped by the plugin; the child gets a minute more to
    # finish the test in flight and write its report before it is stopped.
    code, text = _run(cmd, timeout=deadline_s + 60, env=env)
    (session.out / "tests.log").write_text(" ".join(cmd) + "\n\n" + text)
    result = {"exit_code": code, "files": files, "missing_files": missing,
              "deadline_s": round(deadline_s, 1)}
    result.update(junit_counts(xml))
    if session.dry_run:
        result["collected"] = sum(line.count("::") > 0 for line in text.splitlines())
    return result


def junit_counts(path: Path) -> dict:
    """Tests, failures, errors, skips (and those for the budget) and the failed test ids."""
    if not path.exists():
        return {"junit": "no report"}
    root = ET.parse(path).getroot()
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0, "skipped_for_budget": 0}
    failed = []
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failed.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failed.append(name)
        elif (skip := case.find("skipped")) is not None:
            counts["skipped"] += 1
            counts["skipped_for_budget"] += "session budget" in (skip.get("message") or "")
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    counts["failed_tests"] = failed
    return counts


# ------------------------------------------------------------------------------------------
# Benchmarks.


def session_timing(dry_run: bool):
    """Shorter measurements than the harness's defaults (the median of 100 ms of calls is
    stable for these sizes; the spread is reported with every row)."""
    from benchmarks.timing import QUICK_TIMING, TimingSettings

    if dry_run:
        return QUICK_TIMING
    return TimingSettings(warmup_ms=25.0, rep_ms=100.0, min_reps=10, max_reps=100)


def _variant(case, item: BenchItem, quick: bool):
    matches = [v for v in case.variants(quick) if v.label == item.label]
    if not quick and item.shape is not None:
        matches = [v for v in matches if tuple(v.shape) == item.shape]
    if not matches:
        raise ValueError(f"{case.op} has no variant {item.label!r} of shape {item.shape}")
    return matches[0]


def bench_op(session: Session, item: BenchItem, device, env, baselines, cases) -> list[dict]:
    """One :class:`BenchItem` of a registered op through the harness; its rows."""
    from benchmarks.harness import RunOptions, run_case

    case = cases[item.op]
    variant = _variant(case, item, session.dry_run)
    only = dataclasses.replace(case, variants=lambda quick: [variant])
    providers = item.providers
    if session.dry_run:  # no CPU torch.compile (about 20 s a graph)
        names = providers or tuple(p.name for p in case.providers)
        providers = tuple(n for n in names if not n.startswith("compile"))
    options = RunOptions(
        device=device, quick=session.dry_run, dtypes=["float32" if session.dry_run else item.dtype],
        layouts=["nchw"], modes=list(item.modes), providers=providers,
        timing=session_timing(session.dry_run),
    )
    return run_case(only, options, env, baselines, session.run_id)


def bench_training_item(session: Session, item: BenchItem, device, env, baselines) -> list[dict]:
    """The 256 px StyleGAN2 training step of :mod:`benchmarks.bench_training`, per provider."""
    from benchmarks import bench_training as bt

    argv = ["--providers", *(item.providers or TRAIN_PROVIDERS)]
    if session.dry_run:
        argv += ["--quick"]  # 16 px, one warm-up step, one timed cycle
    else:
        argv += ["--resolutions", str(item.shape[0]), "--warmup-steps", "3",
                 "--min-cycles", "1", "--max-cycles", "3", "--budget-s", "15"]
    args = bt.build_parser().parse_args(argv)
    args.measure = bt._measure_settings(args)
    args.device_obj = device
    resolution = bt.QUICK_RESOLUTION if session.dry_run else item.shape[0]
    cfg = bt.DEFAULT_CONFIGS.get(resolution, "auto")
    base = bt._base_row(env, baselines, session.run_id)
    rows = []
    with bt.trainer_backend_flags(args.tf32, device):
        for provider in args.providers:
            rows.append(bt.bench_provider(args, provider, resolution, cfg, base))
    return rows


def run_benchmarks(session: Session, device: torch.device) -> dict:
    """Every :data:`BENCH_ITEMS` entry that still fits the budget; rows to rows.jsonl."""
    from benchmarks.environment import collect_environment
    from benchmarks.harness import discover, measure_baselines
    from benchmarks.report import op_table
    from benchmarks.training_table import training_table

    env = collect_environment(device)
    timing = session_timing(session.dry_run)
    baselines = measure_baselines(device, session.dry_run, timing)
    session.say(f"copy bandwidth {baselines.copy_bw_gbps:.4g} GB/s, {baselines.matmul_dtype} "
                f"matmul {baselines.matmul_tflops:.3g} TFLOP/s (measured now)")
    cases = discover()
    done, errors = [], 0
    items = BENCH_ITEMS
    if session.dry_run:  # float32 tiny shapes: the first item of each op and label is enough
        first: dict[tuple[str, str], BenchItem] = {}
        for item in BENCH_ITEMS:
            first.setdefault((item.op, item.label), item)
        items = tuple(first.values())
    for item in items:
        needed = 1.0 if session.dry_run else item.estimate_s
        if session.remaining() - RESERVE_S < needed:
            session.not_run.append(f"{item.name} (needs ~{item.estimate_s:.0f} s)")
            continue
        session.say(f"\n## {item.name} [{session.elapsed():.0f} s]")
        started = time.monotonic()
        try:
            if item.op == TRAIN:
                rows = bench_training_item(session, item, device, env, baselines)
                table = training_table(rows)
            else:
                rows = bench_op(session, item, device, env, baselines, cases)
                table = op_table(rows, cases[item.op].targets)
        except Exception as exc:  # an item must never end the session
            session.say(f"failed: {type(exc).__name__}: {exc}")
            errors += 1
            continue
        with (session.out / "rows.jsonl").open("a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        session.rows.extend(rows)
        errors += sum(row["status"] == "error" for row in rows)
        heading = f"### {item.name} ({time.monotonic() - started:.0f} s)"
        session.tables += [heading, "", *table, ""]
        session.say("\n".join(table))
        done.append(item.name)
        write_summary(session)  # a session stopped from outside keeps its tables
    return {"items_done": done, "items_not_run": list(session.not_run), "errors": errors,
            "copy_bw_gbps": baselines.copy_bw_gbps, "matmul_tflops": baselines.matmul_tflops}


# ------------------------------------------------------------------------------------------
# Summary and import.


def write_summary(session: Session) -> Path:
    """summary.md: the environment, the build, the tests and every table."""
    r = session.record
    env, build, tests = r.get("environment", {}), r.get("build", {}), r.get("tests", {})
    lines = [f"# GPU session {session.run_id}", ""]
    if session.dry_run:
        lines += ["Dry run (CPU, tiny shapes): a check of the command, not a measurement.", ""]
    lines += [
        f"- device: {env.get('device')} ({env.get('nvidia_smi', 'no nvidia-smi')})",
        f"- torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN {env.get('cudnn')}), "
        f"Triton {env.get('triton')}, Python {env.get('python')}, {env.get('nvcc')}",
        f"- gankern commit {env.get('gankern_commit')}; budget {session.budget_s:.0f} s, "
        f"phases (s): {r.get('phases')}",
        f"- CUDA extension: {'built' if build.get('built') else 'NOT built'} in "
        f"{build.get('wall_s')} s" + (f" ({build.get('reason')})" if build.get("reason") else ""),
        f"- GPU tests: {tests.get('passed', '?')} passed, {tests.get('failed', '?')} failed, "
        f"{tests.get('errors', '?')} errors, {tests.get('skipped', '?')} skipped "
        f"({tests.get('skipped_for_budget', '?')} for the budget) of {tests.get('tests', '?')}",
    ]
    for name in tests.get("failed_tests", []):
        lines.append(f"  - FAILED {name}")
    lines.append("")
    lines += session.tables
    if session.not_run:
        lines += ["Not run (budget):", *[f"- {name}" for name in session.not_run], ""]
    path = session.out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def import_session(folder: Path, results: Path) -> list[Path]:
    """Append a session's rows to ``results`` and copy its logs next to them.

    Returns the paths written (rows files, the sessions folder, the regenerated tables).
    """
    from benchmarks.environment import slugify
    from benchmarks.report import write_markdown
    from benchmarks.results import append_rows, results_paths
    from benchmarks.training_table import write_training_markdown

    rows_path = folder / "rows.jsonl"
    rows = [json.loads(line) for line in rows_path.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{rows_path} holds no rows")
    record = json.loads((folder / "environment.json").read_text())
    if record.get("dry_run"):
        raise ValueError(f"{folder} is a dry run: its rows are not measurements")
    written = []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((slugify(row["device"]), row["op"]), []).append(row)
    for (slug, op), op_rows in groups.items():
        append_rows(results, slug, op, op_rows)
        written += list(results_paths(results, slug, op))
    slug = slugify(rows[0]["device"])
    logs = results / slug / "sessions" / record["run_id"]
    logs.mkdir(parents=True, exist_ok=True)
    for name in OUT_FILES:
        if name != "rows.jsonl" and (folder / name).exists():
            shutil.copy2(folder / name, logs / name)
    written += [logs, write_markdown(results), write_training_markdown(results)]
    return written


# ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_session",
        description="A whole GPU session in one command: environment, CUDA extension build, "
        "GPU tests and headline benchmarks within a time budget, written to --out.",
    )
    parser.add_argument("--out", type=Path, help="the session's folder (at most 7 files)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                        help=f"wall-clock budget in seconds (default {DEFAULT_BUDGET_S:g})")
    parser.add_argument("--dry-run", action="store_true",
                        help="the CPU, tiny shapes, tests collected only: checks the command")
    parser.add_argument("--import", dest="import_dir", type=Path, metavar="DIR",
                        help="append a finished session's rows and logs to --results")
    parser.add_argument("--results", type=Path, default=None,
                        help="results folder for --import (default: benchmarks/results)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.import_dir is not None:
        from benchmarks.results import DEFAULT_RESULTS_DIR

        try:
            written = import_session(args.import_dir, args.results or DEFAULT_RESULTS_DIR)
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"--import {args.import_dir}: {exc}")
        print("written:\n" + "\n".join(f"  {p}" for p in written))
        print("then: git add benchmarks/results && git commit -m 'benchmarks: GPU session' "
              "-- benchmarks/results")
        return 0
    if args.out is None:
        parser.error("--out is required (or --import DIR)")
    if not args.budget_s > 0:
        parser.error(f"--budget-s must be > 0, got {args.budget_s}")
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA device is available (use --dry-run to check the command)")
    device = torch.device("cpu" if args.dry_run else "cuda")
    session = Session(args.out, args.budget_s, args.dry_run)
    saved_jit = os.environ.get("GANKERN_CUDA_JIT")
    try:
        return _session(session, device)
    finally:
        write_summary(session)
        session.write_record()
        session.close()
        if saved_jit is None:  # build_extension may have turned the JIT build off
            os.environ.pop("GANKERN_CUDA_JIT", None)
        else:
            os.environ["GANKERN_CUDA_JIT"] = saved_jit


def _session(session: Session, device: torch.device) -> int:
    started = time.monotonic()
    info = environment(session, device)
    session.record["environment"] = info
    session.say(f"# GPU session {session.run_id}{' (dry run)' if session.dry_run else ''}")
    for key in ("device", "nvidia_smi", "gpu", "torch", "torch_cuda", "cudnn", "triton",
                "nvcc", "python", "gankern_commit", "tf32"):
        if key in info:
            session.say(f"{key}: {info[key]}")
    session.phase_done("environment", started)

    started = time.monotonic()
    session.say("\n# CUDA extension build")
    build = build_extension(session)
    session.record["build"] = build
    session.say(f"built: {build['built']} in {build['wall_s']} s"
                + (f" ({build['reason']})" if build.get("reason") else ""))
    from gankern.cli.info import collect_info

    session.record["backends"] = collect_info()["backends"]
    session.say(f"backends: {json.dumps(session.record['backends'])}")
    session.phase_done("build", started)

    started = time.monotonic()
    session.say(f"\n# GPU tests (until {TESTS_END * session.budget_s:.0f} s)")
    tests = run_tests(session)
    session.record["tests"] = tests
    session.say(json.dumps({k: v for k, v in tests.items() if k != "files"}))
    session.phase_done("tests", started)

    started = time.monotonic()
    session.say("\n# Benchmarks")
    bench = run_benchmarks(session, device)
    session.record["benchmarks"] = bench
    session.phase_done("benchmarks", started)
    session.say(f"\nsession done in {session.elapsed():.0f} s; files in {session.out}")
    failed = tests.get("failed", 0) + tests.get("errors", 0) + bench["errors"]
    if session.dry_run:  # every test file must exist and collect
        failed += bool(tests["missing_files"]) or tests.get("exit_code") != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
