"""``python -m benchmarks.gpu_session``: the one command of a GPU session, checked on the CPU.

The dry run does everything the real session does (environment, the build in a child
process, pytest with the budget plugin, every headline benchmark through the harness and the
training benchmark, the summary) on tiny float32 shapes, so the command cannot rot between
GPU sessions. The budget plugin, the JUnit counting and ``--import`` are checked on their own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks/ is a folder of the checkout, not installed
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import gpu_session  # noqa: E402
from benchmarks.results import ROW_KEYS  # noqa: E402


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("session")
    code = gpu_session.main(["--out", str(out), "--dry-run", "--budget-s", "300"])
    return code, out


def test_dry_run_writes_its_files_and_measures_every_headline(dry_run):
    code, out = dry_run
    assert code == 0, (out / "session.log").read_text()[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and set(files) <= set(gpu_session.OUT_FILES), files
    record = json.loads((out / "environment.json").read_text())
    assert record["dry_run"] and set(record["phases"]) == {
        "environment", "build", "tests", "benchmarks"
    }
    assert record["environment"]["torch"] and record["environment"]["gankern_commit"]
    assert record["build"]["built"] is False and "CPU-only" in record["build"]["reason"]
    assert record["tests"]["missing_files"] == [] and record["tests"]["exit_code"] == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert all(set(row) == set(ROW_KEYS) for row in rows)
    ok = {(row["op"], row["provider"]) for row in rows if row["status"] == "ok"}
    for op in ("bias_act", "upfirdn2d", "modulated_conv2d"):
        assert (op, "ref") in ok or (op, "ref_scaling") in ok, op
    assert {("stylegan2_r1", "gankern_auto"), ("stylegan2_r1", "ref")} <= ok
    assert {("train_stylegan2", "gankern_auto"), ("train_stylegan2", "ref")} <= ok
    summary = (out / "summary.md").read_text()
    assert "Dry run" in summary and "| case | shape |" in summary and "s/kimg" in summary


def test_import_appends_rows_and_copies_logs(dry_run, tmp_path):
    _, out = dry_run
    with pytest.raises(ValueError, match="dry run"):
        gpu_session.import_session(out, tmp_path / "results")
    session = tmp_path / "session"
    session.mkdir()
    for name in gpu_session.OUT_FILES:
        if (out / name).exists():
            (session / name).write_bytes((out / name).read_bytes())
    record = json.loads((session / "environment.json").read_text())
    record["dry_run"] = False  # as a real session writes it
    (session / "environment.json").write_text(json.dumps(record))
    results = tmp_path / "results"
    written = gpu_session.import_session(session, results)
    rows = (session / "rows.jsonl").read_text().splitlines()
    device = next(p for p in results.iterdir() if p.is_dir())
    imported = sum(len(p.read_text().splitlines()) for p in device.glob("*.jsonl"))
    assert imported == len(rows)
    assert (device / "bias_act.csv").exists() and (device / "train_stylegan2.csv").exists()
    logs = device / "sessions" / record["run_id"]
    assert (logs / "summary.md").exists() and (logs / "tests.log").exists()
    assert results / "README.md" in written and results / "training.md" in written


def test_budget_plugin_skips_tests_after_the_deadline(monkeypatch):
    monkeypatch.delenv(gpu_session.DEADLINE_ENV, raising=False)
    gpu_session.pytest_runtest_setup(None)  # no deadline: runs
    monkeypatch.setenv(gpu_session.DEADLINE_ENV, str(time.time() + 60))
    gpu_session.pytest_runtest_setup(None)
    monkeypatch.setenv(gpu_session.DEADLINE_ENV, str(time.time() - 1))
    with pytest.raises(pytest.skip.Exception, match="session budget"):
        gpu_session.pytest_runtest_setup(None)


def test_junit_counts(tmp_path):
    xml = tmp_path / "tests.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="test_ok"/>'
        '<testcase classname="tests.test_a" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_b" name="test_err"><error message="y"/></testcase>'
        '<testcase classname="tests.test_b" name="test_late">'
        '<skipped message="session budget: the GPU tests\' share of the time was spent"/>'
        "</testcase>"
        '<testcase classname="tests.test_b" name="test_two_gpus"><skipped message="needs two"/>'
        "</testcase></testsuite></testsuites>"
    )
    counts = gpu_session.junit_counts(xml)
    assert counts == {
        "tests": 5, "failed": 1, "errors": 1, "skipped": 2, "skipped_for_budget": 1,
        "passed": 1, "failed_tests": ["tests.test_a::test_bad", "tests.test_b::test_err"],
    }
    assert gpu_session.junit_counts(tmp_path / "missing.xml") == {"junit": "no report"}


def test_items_name_registered_variants_and_the_tests_exist():
    """Every benchmark item names a full-size variant its op registers; every test file is
    there (the dry run uses the tiny variants and collects one file)."""
    from benchmarks.harness import discover

    cases = discover()
    for item in gpu_session.BENCH_ITEMS:
        if item.op == gpu_session.TRAIN:
            continue
        variant = gpu_session._variant(cases[item.op], item, quick=False)
        assert variant.label == item.label
    for name in gpu_session.TEST_FILES:
        assert (REPO_ROOT / name).exists(), name


def test_bad_arguments(capsys, tmp_path):
    with pytest.raises(SystemExit):
        gpu_session.main([])
    assert "--out is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_session.main(["--out", str(tmp_path), "--dry-run", "--budget-s", "0"])
    assert "--budget-s must be > 0" in capsys.readouterr().err


def test_child_commands_are_stopped_at_their_timeout():
    start = time.monotonic()
    code, out = gpu_session._run(
        [sys.executable, "-c", "print('started', flush=True); import time; time.sleep(60)"],
        timeout=2,
    )
    assert code is None and "started" in out and "stopped after 2 s" in out
    assert time.monotonic() - start < 30
    assert gpu_session._run(["no-such-command-here"]) == (None, "no-such-command-here: not found")
