"""A training run killed at random moments, stopped by SIGTERM, or fed damaged files.

The runs are tiny (16 px digits, <= 16 channels) and start as forked copies of the test
process (no interpreter start-up, no imports), so that a run killed ten times still fits in
well under a minute of CI; the plot of each snapshot (matplotlib, the slowest part of a
snapshot and no part of the state) is skipped in them.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from trainutils import assert_same_tensors, final_checkpoint, one_thread, tiny_options

from gankern.train.auto_resume import find_auto_resume
from gankern.train.checkpoint import CheckpointError, list_snapshots, load_checkpoint
from gankern.train.loop import training_loop
from gankern.train.options import TrainingOptions
from gankern.train.snapshots import SnapshotWriter

KIMG = 0.24  # 15 ticks of 2 steps, a snapshot each
TICKS = 15


def _opts(tmp_path, **overrides) -> TrainingOptions:
    return tiny_options(tmp_path, kimg=KIMG, snap=1, **overrides)


def _child(opts_dict: dict, kill_at_write: int, kill_where: str, report: str) -> None:
    """A forked training process (exits with os._exit: no pytest teardown in the child).

    With ``kill_at_write = k``, the process SIGKILLs itself during its k-th snapshot write:
    ``kill_where="write"`` half-way through the bytes of the temporary file, ``"rename"``
    once they are all written and synced, just before the rename.
    """
    status = 0
    try:
        import gankern.train.checkpoint as checkpoint

        SnapshotWriter.plot = lambda self: None
        calls = {"n": 0}

        def due(path) -> bool:
            if "snapshot-" not in str(path):
                return False
            calls["n"] += 1
            return calls["n"] == kill_at_write

        class HalfWrite:
            def __init__(self, f):
                self.f = f

            def write(self, data):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            def __getattr__(self, name):
                return getattr(self.f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        def open_and_maybe_die(path, mode="r", *args, **kwargs):
            f = open(path, mode, *args, **kwargs)
            if kill_where == "write" and "w" in mode and due(path):
                return HalfWrite(f)
            return f

        real_replace = os.replace

        def replace_and_maybe_die(src, dst):
            if kill_where == "rename" and due(dst):
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst)

        if kill_at_write:
            checkpoint.open = open_and_maybe_die  # shadows the builtin in that module only
            checkpoint.os = type(os)("os_with_a_fault")
            checkpoint.os.__dict__.update(os.__dict__, replace=replace_and_maybe_die)
        with one_thread():
            training_loop(TrainingOptions.from_dict(opts_dict), print_fn=lambda *a, **k: None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent through a file
        from gankern.cli.errors import report_failure

        with open(report, "w") as f:
            sys.stderr = f
            status = report_failure("train", exc)
    os._exit(status)


def _start(
    opts: TrainingOptions, tmp_path: Path, kill_at_write: int = 0, kill_where: str = "rename"
):
    report = str(tmp_path / f"report-{time.monotonic_ns()}.txt")
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(opts.to_dict(), kill_at_write, kill_where, report))
    proc.start()
    return proc, report


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run's final checkpoint, and the seconds one tick took."""
    tmp = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch, one_thread():
        patch.setattr(SnapshotWriter, "plot", lambda self: None)
        start = time.time()
        run_dir = training_loop(
            _opts(tmp, run_dir=str(tmp / "whole")), print_fn=lambda *a, **k: None
        )
    return final_checkpoint(run_dir)[0], (time.time() - start) / TICKS


def test_ten_sigkills_then_the_same_result(tmp_path, reference):
    """Killed 10 times (at random moments, and inside snapshot writes: half-way through the
    temporary file's bytes, or before its rename), resumed each time: the end is
    bit-identical to the uninterrupted run, every snapshot on disk always loads, the stale
    temporary files are removed, and the log has each tick once."""
    reference, tick_sec = reference
    run_dir = tmp_path / "killed"
    rng = random.Random(2024)
    kills = ["timer"] * 6 + ["rename"] * 2 + ["write"] * 2
    rng.shuffle(kills)
    killed, stale_seen = 0, 0
    for how in kills:
        resume = str(run_dir) if run_dir.is_dir() and list_snapshots(run_dir) else None
        opts = _opts(tmp_path, run_dir=str(run_dir), resume=resume)
        if how == "timer":
            # A random moment: after 0 or 1 new snapshots, plus up to a tick (measured, so
            # that a faster machine does not finish the run before the tenth kill).
            before = len(list_snapshots(run_dir)) if run_dir.is_dir() else 0
            wanted = before + rng.choice([0, 1])
            proc, _ = _start(opts, tmp_path)
            deadline = time.time() + 120
            while (len(list_snapshots(run_dir)) if run_dir.is_dir() else 0) < wanted:
                assert proc.is_alive() and time.time() < deadline, "the run made no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, tick_sec))
            proc.kill()
        else:
            proc, _ = _start(opts, tmp_path, kill_at_write=rng.randint(1, 2), kill_where=how)
        proc.join(120)
        assert proc.exitcode is not None, "a training process hung"
        killed += proc.exitcode == -signal.SIGKILL
        for path in list_snapshots(run_dir):  # never a damaged checkpoint, whenever it died
            load_checkpoint(path)
            stale = list(run_dir.glob(".snapshot-*.tmp"))
        if how != "timer":
            assert stale, "a kill inside a snapshot write leaves its temporary file"
        stale_seen += len(stale)
    assert killed == 10, f"only {killed} of the 10 runs were killed before they finished"
    assert stale_seen >= 4  # the kills inside writes left temporary files ...

    proc, report = _start(_opts(tmp_path, run_dir=str(run_dir), resume=str(run_dir)), tmp_path)
    proc.join(120)
    assert proc.exitcode == 0, Path(report).read_text() if Path(report).exists() else ""
    assert not list(run_dir.glob(".*.tmp"))  # ... which the next start removed
    assert_same_tensors(final_checkpoint(run_dir)[0], reference)
    ticks = [line for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [int(t.split('"tick": ')[1].split(",")[0]) for t in ticks] == list(range(1, TICKS + 1))


def test_sigterm_writes_a_snapshot_and_resume_auto_continues(tmp_path, reference):
    """SIGTERM (what SLURM and cloud preemption send) stops the run after the current step
    with a final snapshot and a message saying how to resume; ``--resume auto`` with the
    same options continues that run to the same end."""
    reference = reference[0]
    outdir = tmp_path / "runs"
    proc, report = _start(_opts(tmp_path, outdir=str(outdir)), tmp_path)
    deadline = time.time() + 120
    while not (outdir.is_dir() and any(len(list_snapshots(d)) >= 3 for d in outdir.iterdir())):
        assert proc.is_alive() and time.time() < deadline, "the run made no progress"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    proc.join(120)
    assert proc.exitcode == 128 + signal.SIGTERM
    (run_dir,) = outdir.iterdir()
    last = list_snapshots(run_dir)[-1]
    message = Path(report).read_text().strip()
    assert message.startswith("gankern train: stopped by SIGTERM")
    assert f"--resume {last}" in message and "--resume auto" in message
    _, meta = load_checkpoint(last)  # written when the signal came, after that step
    stopped_at = float(message.split(" at ")[1].split(" kimg")[0])
    assert meta["counters"]["nimg"] == round(stopped_at * 1000)
    assert meta["counters"]["nimg"] == int(last.name.split("-")[1].split(".")[0])
    assert "stopped: TrainingInterrupted" in (run_dir / "log.txt").read_text()

    auto = _opts(tmp_path, outdir=str(outdir), resume="auto")
    assert find_auto_resume(auto, "builtin:digits") == last
    assert find_auto_resume(_opts(tmp_path, outdir=str(outdir), seed=4), None) is None
    proc, report = _start(auto, tmp_path)
    proc.join(120)
    assert proc.exitcode == 0, Path(report).read_text() if Path(report).exists() else ""
    assert [p.name for p in outdir.iterdir()] == [run_dir.name]  # the same run, continued
    assert_same_tensors(final_checkpoint(run_dir)[0], reference)
    log = (run_dir / "log.txt").read_text()
    assert "--resume auto: continuing" in log and "Resumed from" in log


def test_flipped_bytes_are_refused_and_stale_temp_files_removed(tmp_path):
    """A checkpoint with 4 KB of flipped bytes inside a tensor is refused by name, pointing
    to the previous good one (a run directory skips it with a warning); a temporary file of
    a killed write is removed when the next run starts in that directory."""
    with pytest.MonkeyPatch.context() as patch, one_thread():
        patch.setattr(SnapshotWriter, "plot", lambda self: None)
        run_dir = training_loop(
            tiny_options(tmp_path, kimg=0.032, snap=1), print_fn=lambda *a, **k: None
        )
    first, middle, last = list_snapshots(run_dir)
    data = bytearray(last.read_bytes())
    header = int.from_bytes(data[:8], "little") + 8
    for i in range(header + 64, header + 64 + 4096):
        data[i] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is corrupt") as info:
        load_checkpoint(last)
    assert str(last) in str(info.value) and f"previous good snapshot is {middle}" in str(info.value)
    from gankern.train.checkpoint import resolve_resume_path

    with pytest.warns(RuntimeWarning, match="skipping 1 damaged snapshot"):
        assert resolve_resume_path(run_dir) == middle

    stale = run_dir / f".{last.name}.999999999.tmp"  # no such process
    stale.write_bytes(b"half a checkpoint")
    lines = []
    with pytest.MonkeyPatch.context() as patch, one_thread():
        patch.setattr(SnapshotWriter, "plot", lambda self: None)
        training_loop(
            tiny_options(tmp_path, kimg=0.048, snap=1, resume=str(middle)),
            print_fn=lambda text, **k: lines.append(text),
        )
    assert not stale.exists()
    assert any("Removed 1 temporary file" in line for line in lines)
    load_checkpoint(list_snapshots(run_dir)[-1])
