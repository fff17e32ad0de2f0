"""Bad command lines, all commands: one line on stderr, a non-zero exit, nothing left behind.

Every case runs ``gankern`` in-process in an empty folder, with the shared inputs (images,
a trained run, damaged files) in another; afterwards stderr must hold exactly one line, of
the form ``gankern <command>: error: ...`` and naming the problem, no traceback, and
neither folder may have changed (a case that legitimately keeps a run directory checks what
it keeps). Read-only folders and full disks are simulated by :mod:`faults`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from datautils import random_images, truncate_file, write_image, write_labels
from faults import failing_writes, tree_state
from trainutils import one_thread

from gankern.cli import main
from gankern.train.checkpoint import list_snapshots, load_checkpoint

REPO = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--resolution", "16", "--kimg", "0.016", "--tick", "0.016", "--batch", "8",
         "--metrics", "none", "--aug", "noaug", "--device", "cpu", "--seed", "1",
         "--outdir", "runs"]  # fmt: skip


def _images(folder: Path, count=8, size=(16, 16), seed=0, ext="png") -> list[Path]:
    pixels = random_images(count, size[1], size[0], 3, seed)
    return [Path(write_image(folder / f"img{i}.{ext}", pixels[i])) for i in range(count)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The inputs every case may read: image folders (good and damaged), a trained run."""
    w = tmp_path_factory.mktemp("world")
    _images(w / "imgs")
    truncate_file(_images(w / "bad")[3], 0.6)  # a truncated PNG
    jpgs = _images(w / "badjpg", ext="jpg")
    data = bytearray(jpgs[2].read_bytes())
    data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)  # a corrupt JPEG scan
    jpgs[2].write_bytes(bytes(data[: len(data) * 3 // 4]))
    for name, label in (("strlabels", "cat"), ("neglabels", -1)):
        names = [p.name for p in _images(w / name)]
        write_labels(w / name, [(n, label if i == 2 else 1) for i, n in enumerate(names)])
    _images(w / "nonsquare", size=(16, 8))
    (w / "notimages.txt").write_text("hello")
    (w / "junk.pth").write_text("junk")
    (w / "exists.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    with one_thread():  # --aug left at its default (noaug on the built-in digits)
        args = [a for a in TRAIN[:-1] if a not in ("--aug", "noaug")]
        assert main(args + [str(w / "runs")]) == 0
    (run,) = (w / "runs").iterdir()
    run.rename(w / "run")
    (w / "runs").rmdir()
    flipped = w / "flipped_run"
    shutil.copytree(w / "run", flipped)
    last = list_snapshots(flipped)[-1]
    data = bytearray(last.read_bytes())
    for i in range(len(data) - 4096, len(data) - 8):  # 4 KB of flipped bytes in a tensor
        data[i] ^= 0xFF
    last.write_bytes(bytes(data))
    return w


# (id, argv, message, options). Placeholders: {w} the inputs' folder. Options: env (dict),
# fault ((kind, folder, name pattern)), warns (warning lines allowed before the error),
# status (the exit status expected, when it matters), keeps (the case writes, and checks what
# it keeps).
CASES = [
    # --- gankern (top level) and info --------------------------------------------------------
    ("no-such-command", ["nosuch"], "invalid choice", {}),
    (
        "info-bogus-impl",
        ["info"],
        "GANKERN_IMPL must be one of",
        {"env": {"GANKERN_IMPL": "bogus"}, "status": 1},
    ),
    # --- dataset ----------------------------------------------------------------------------
    (
        "dataset-missing-source",
        ["dataset", "--source", "nope", "--dest", "o.zip"],
        "does not exist",
        {},
    ),
    (
        "dataset-source-not-images",
        ["dataset", "--source", "{w}/notimages.txt", "--dest", "o.zip"],
        "not a zip archive",
        {},
    ),
    (
        "dataset-dest-exists",
        ["dataset", "--source", "{w}/imgs", "--dest", "{w}/exists.zip"],
        "already exists",
        {},
    ),
    (
        "dataset-bad-resolution",
        ["dataset", "--source", "{w}/imgs", "--dest", "o.zip", "--resolution", "0x5"],
        "between 1 and",
        {},
    ),
    (
        "dataset-bad-channels",
        ["dataset", "--source", "{w}/imgs", "--dest", "o.zip", "--channels", "2"],
        "invalid choice",
        {},
    ),
    (
        "dataset-string-label",
        ["dataset", "--source", "{w}/strlabels", "--dest", "o.zip"],
        "got 'cat' for 'img2.png'",
        {},
    ),
    (
        "dataset-negative-label",
        ["dataset", "--source", "{w}/neglabels", "--dest", "o.zip"],
        "class labels must be >= 0",
        {},
    ),
    (
        "dataset-dest-read-only",
        ["dataset", "--source", "{w}/imgs", "--dest", "ro/o.zip"],
        "cannot write --dest ro/o.zip",
        {"fault": ("read-only", "ro", "*")},
    ),
    (
        "dataset-dest-full",
        ["dataset", "--source", "{w}/imgs", "--dest", "full/o.zip"],
        "No space left on device",
        {"fault": ("full", "full", "*")},
    ),
    (
        "dataset-truncated",
        ["dataset", "--source", "{w}/bad", "--dest", "o.zip"],
        "use --skip-bad",
        {},
    ),
    # --- train: options ---------------------------------------------------------------------
    ("train-batch-zero", TRAIN + ["--batch", "0"], "expected an integer >= 1", {}),
    ("train-unknown-model", ["train", "--model", "nosuch"], "--model must be one of", {}),
    (
        "train-option-of-other-model",
        TRAIN + ["--model", "dcgan", "--freezed", "2"],
        "unrecognized arguments: --freezed",
        {},
    ),
    ("train-freezed-negative", TRAIN + ["--freezed", "-1"], "expected an integer >= 0", {}),
    (
        "train-batch-over-kimg",
        ["train", "--kimg", "0.1", "--batch", "100000", "--metrics", "none", "--outdir", "runs"],
        "larger than the whole training",
        {},
    ),
    (
        "train-batch-gpus",
        TRAIN + ["--batch", "33", "--gpus", "2"],
        "must be divisible by the number of processes (2)",
        {},
    ),
    (
        "train-batch-gpu-split",
        TRAIN + ["--batch", "12", "--batch-gpu", "8"],
        "batch_gpu (8) must divide",
        {},
    ),
    (
        "train-impl-triton-cpu",
        TRAIN + ["--impl", "triton"],
        "--impl triton cannot run on cpu",
        {"env": {"TRITON_INTERPRET": "0"}, "status": 1},
    ),
    (
        "train-env-impl-cuda",
        TRAIN,
        "GANKERN_IMPL=cuda cannot run on cpu",
        {"env": {"GANKERN_IMPL": "cuda"}, "status": 1},
    ),
    (
        "train-env-impl-bogus",
        TRAIN,
        "GANKERN_IMPL must be one of",
        {"env": {"GANKERN_IMPL": "bogus"}},
    ),
    ("train-device-cuda", TRAIN + ["--device", "cuda"], "no CUDA device", {}),
    (
        "train-metrics-weights-missing",
        TRAIN + ["--metrics", "fid50k"],
        "never downloads",
        {"env": {"GANKERN_CACHE": "{tmp}/cache", "GANKERN_INCEPTION_WEIGHTS": None}},
    ),
    ("train-unknown-metric", TRAIN + ["--metrics", "fid_cats"], "metrics must be among", {}),
    ("train-unknown-cfg", TRAIN + ["--cfg", "huge"], "config name must be one of", {}),
    (
        "train-outdir-read-only",
        TRAIN[:-1] + ["ro/runs"],
        "cannot write --outdir ro/runs",
        {"fault": ("read-only", "ro", "*")},
    ),
    # --- train: data --------------------------------------------------------------------------
    ("train-data-missing", TRAIN + ["--data", "nope"], "--data 'nope' does not exist", {}),
    ("train-data-truncated-png", TRAIN + ["--data", "{w}/bad"], "--skip-bad-files", {}),
    ("train-data-corrupt-jpeg", TRAIN + ["--data", "{w}/badjpg"], "img2.jpg", {}),
    (
        "train-data-non-square",
        ["train", "--data", "{w}/nonsquare", "--outdir", "runs"],
        "non-square",
        {},
    ),
    (
        "train-data-resolution",
        TRAIN[:1] + ["--data", "{w}/imgs", "--resolution", "32", "--outdir", "runs"],
        "expects 32x32 images",
        {},
    ),
    ("train-cond-unlabeled", TRAIN + ["--data", "{w}/imgs", "--cond"], "--cond needs labels", {}),
    # --- train: resume and init ---------------------------------------------------------------
    ("train-resume-missing", TRAIN + ["--resume", "nope"], "no such file or directory", {}),
    (
        "train-resume-flipped-bytes",
        TRAIN + ["--resume", "{w}/flipped_run/snapshot-000000016.safetensors"],
        "previous good snapshot is {w}/flipped_run/snapshot-000000000.safetensors",
        {},
    ),
    (
        "train-resume-other-cfg",
        ["train", "--resume", "{w}/run", "--cfg", "tiny"],
        "its networks are --cfg digits, this run builds --cfg tiny",
        {"warns": 1},
    ),
    (
        "train-resume-other-data",
        ["train", "--resume", "{w}/run", "--data", "{w}/imgs"],
        "missing ['ada', 'augment_pipe']",
        {"warns": 1},
    ),
    ("train-init-missing", TRAIN + ["--init", "nope.pkl"], "no such weights file", {}),
    (
        "train-init-resolution",
        ["train", "--resolution", "32", "--init", "{w}/run", "--outdir", "runs"],
        "holds a 16x16 model",
        {},
    ),
    (
        "train-init-other-model",
        TRAIN + ["--model", "dcgan", "--init", "{w}/run"],
        "cannot start from published weights",
        {},
    ),
    ("train-init-junk", TRAIN + ["--init", "{w}/junk.pth"], "junk.pth", {}),
    # --- train: writes that fail --------------------------------------------------------------
    (
        "train-first-snapshot-full",
        TRAIN[:-1] + ["full/runs"],
        "no snapshot was written yet",
        {"fault": ("full", "full", "*.safetensors*"), "status": 1},
    ),
    (
        "train-later-snapshot-full",
        TRAIN[:-1] + ["full/runs"],
        "the last good snapshot is",
        {"fault": ("full", "full", "*snapshot-000000016*"), "status": 1, "keeps": True},
    ),
    # --- generate -----------------------------------------------------------------------------
    ("generate-missing-checkpoint", ["generate", "nope"], "no such file or directory", {}),
    (
        "generate-corrupt-checkpoint",
        ["generate", "{w}/flipped_run/snapshot-000000016.safetensors"],
        "is corrupt",
        {},
    ),
    ("generate-billion-seeds", ["generate", "{w}/run", "--seeds", "0-999999999"], "--force", {}),
    (
        "generate-huge-grid",
        ["generate", "{w}/run", "--seeds", "0-9999", "--grid"],
        "a grid holds at most",
        {},
    ),
    (
        "generate-bad-seeds",
        ["generate", "{w}/run", "--seeds", "a-b"],
        "expected integers and ranges",
        {},
    ),
    (
        "generate-device-tpu",
        ["generate", "{w}/run", "--device", "tpu"],
        "expected cpu, cuda or cuda:N",
        {},
    ),
    ("generate-device-cuda", ["generate", "{w}/run", "--device", "cuda:3"], "--device cuda:3", {}),
    (
        "generate-impl-triton-cpu",
        ["generate", "{w}/run", "--impl", "triton"],
        "cannot run on cpu",
        {"env": {"TRITON_INTERPRET": "0"}, "status": 1},
    ),
    (
        "generate-outdir-read-only",
        ["generate", "{w}/run", "--outdir", "ro/out"],
        "cannot write --outdir ro/out",
        {"fault": ("read-only", "ro", "*")},
    ),
    ("generate-class-unconditional", ["generate", "{w}/run", "--class", "3"], "unconditional", {}),
    (
        "generate-video-not-interp",
        ["generate", "{w}/run", "--video", "w.gif"],
        "--video is for --mode interp",
        {},
    ),
    (
        "generate-interp-one-seed",
        ["generate", "{w}/run", "--mode", "interp", "--seeds", "4"],
        "at least two --seeds",
        {},
    ),
    # --- metrics ------------------------------------------------------------------------------
    ("metrics-no-fake", ["metrics", "--real", "{w}/imgs"], "--fake is required", {}),
    (
        "metrics-unknown-metric",
        ["metrics", "--metrics", "psnr", "--real", "{w}/imgs", "--fake", "{w}/imgs"],
        "'psnr'",
        {"status": 1},
    ),
    (
        "metrics-out-read-only",
        [
            "metrics",
            "--real",
            "builtin:digits",
            "--fake",
            "{w}/imgs",
            "--extractor",
            "digits",
            "--out",
            "ro/r.json",
        ],
        "cannot write --out ro/r.json",
        {"fault": ("read-only", "ro", "*"), "status": 1},
    ),
    (
        "metrics-out-folder",
        ["metrics", "--real", "builtin:digits", "--fake", "{w}/imgs", "--out", "{w}/imgs"],
        "is a folder",
        {"status": 1},
    ),
    (
        "metrics-junk-weights",
        ["metrics", "--real", "builtin:digits", "--fake", "{w}/imgs", "--weights", "{w}/junk.pth"],
        "do not start like a torch.save file",
        {"status": 1},
    ),
    (
        "metrics-device-tpu",
        ["metrics", "--fake", "{w}/imgs", "--device", "tpu"],
        "expected cpu, cuda or cuda:N",
        {},
    ),
    # --- project, edit, generate --direction (issue 13) -------------------------------------
    ("project-missing-target", ["project", "{w}/run", "--target", "nope.png"],
     "--target nope.png does not exist", {}),
    ("project-wrong-size", ["project", "{w}/run", "--target", "{w}/nonsquare/img0.png"],
     "is 16x8; the generator draws 16x16", {}),
    ("project-not-an-image", ["project", "{w}/run", "--target", "{w}/notimages.txt"],
     "is not a readable image", {}),
    ("project-missing-checkpoint", ["project", "nope", "--target", "{w}/imgs/img0.png"],
     "no such file or directory: nope", {}),
    ("edit-component-beyond", ["edit", "{w}/run", "--method", "sefa", "--component", "999"],
     "component must be in [0, ", {}),
    ("edit-needs-attribute", ["edit", "{w}/run", "--method", "interfacegan"],
     "--method interfacegan needs --attribute", {}),
    ("edit-unknown-attribute",
     ["edit", "{w}/run", "--method", "stylespace", "--attribute", "bogus"],
     "attribute must be 'thickness'", {}),
    ("edit-layers-beyond",
     ["edit", "{w}/run", "--method", "ganspace", "--layers", "50", "--num-samples", "100"],
     "layers must be distinct ws indices in [0, ", {}),
    ("edit-junk-latent", ["edit", "{w}/run", "--method", "sefa", "--latent", "{w}/junk.pth"],
     "junk.pth", {}),
    ("edit-bad-strength", ["edit", "{w}/run", "--method", "sefa", "--strength", "abc"],
     "expected a number, got 'abc'", {}),
    ("generate-junk-direction", ["generate", "{w}/run", "--direction", "{w}/junk.pth"],
     "junk.pth", {}),
    ("generate-strength-without-direction", ["generate", "{w}/run", "--strength", "1,2"],
     "--strength needs --direction", {}),
    ("generate-direction-interp",
     ["generate", "{w}/run", "--direction", "{w}/junk.pth", "--mode", "interp", "--seeds", "0-1"],
     "--direction draws --mode images", {}),
]


def _fill(text: str, world: Path, tmp: Path) -> str:
    return text.replace("{w}", str(world)).replace("{tmp}", str(tmp))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_command_line(case, world, tmp_path, monkeypatch, capsys):
    name, argv, message, options = case
    argv = [_fill(a, world, tmp_path) for a in argv]
    message = _fill(message, world, tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for key, value in options.get("env", {}).items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, _fill(value, world, tmp_path))
    fault = options.get("fault")
    if fault:
        (work / fault[1]).mkdir()
    before = (tree_state(world), tree_state(work))
    with one_thread():
        if fault:
            with failing_writes(work / fault[1], fault[0], fault[2]):
                status = _run(argv)
        else:
            status = _run(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    command = "gankern" if argv[0] == "nosuch" else f"gankern {argv[0]}"

    assert status not in (0, None), err
    if "status" in options:
        assert status == options["status"], err
    assert "Traceback" not in err, err
    warns = options.get("warns", 0)
    assert len(lines) == 1 + warns, err
    assert all(line.startswith(f"{command}: warning:") for line in lines[:warns]), err
    assert lines[-1].startswith(f"{command}: error:"), err
    assert message in lines[-1], err
    assert tree_state(world) == before[0]  # the inputs are untouched
    if options.get("keeps"):
        _check_kept_run(work / fault[1] / "runs", lines[-1])
    else:
        assert tree_state(work) == before[1], "a failed command left files behind"


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argument errors exit from the parser
        return exc.code


def _check_kept_run(outdir: Path, message: str) -> None:
    """A run stopped by a full disk after its first snapshot: that snapshot is intact, the
    message names it, and no temporary file is left."""
    (run,) = outdir.iterdir()
    (snapshot,) = list_snapshots(run)
    assert snapshot.name == "snapshot-000000000.safetensors"
    named = os.path.relpath(snapshot)  # as the command line gave it: relative to the cwd
    assert f"last good snapshot is {named}" in message and "snapshot-000000016" in message
    load_checkpoint(snapshot)
    assert not list(run.glob(".*tmp*"))
    assert "stopped: " in (run / "log.txt").read_text()


def test_the_table_covers_every_command():
    commands = {c[1][0] for c in CASES}
    assert {"info", "dataset", "train", "generate", "metrics", "project", "edit"} <= commands
    assert len(CASES) >= 40


def test_the_real_entry_point_prints_one_line(tmp_path):
    """`python -m gankern` as a user runs it (a fresh process, stderr a pipe)."""
    env = {
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
        "GANKERN_IMPL": "cuda",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gankern", *TRAIN],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "gankern train: error: GANKERN_IMPL=cuda cannot run on cpu: inputs are on cpu, the "
        "CUDA backend needs CUDA tensors (use cuda on a GPU, or auto/ref here)"
    ]
    assert not list(tmp_path.iterdir())


def test_bugs_keep_their_traceback(capsys, monkeypatch):
    """Errors gankern did not raise itself are bugs: traceback, and a line saying so."""
    from gankern.cli.errors import report_failure

    def numpy_value_error():
        import numpy as np

        np.zeros(3).reshape(2)

    for fail in (numpy_value_error, lambda: {}["key"], lambda: None.attribute):
        try:
            fail()
        except Exception as exc:  # noqa: BLE001
            assert report_failure("train", exc) == 1
        err = capsys.readouterr().err
        assert "Traceback" in err and "this is a bug in gankern" in err
    # A handled error shows its traceback only with GANKERN_DEBUG=1.
    monkeypatch.setenv("GANKERN_DEBUG", "1")
    assert _run(["generate", "nope"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("gankern generate: error")


def test_skip_bad_files_trains_without_them(world, tmp_path, monkeypatch, capsys):
    """The suggested flag works: the truncated file is named once, training goes on."""
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data", str(world / "bad"), "--skip-bad-files", "--kimg", "0.008",
            "--tick", "0.008", "--batch", "4", "--cfg", "tiny", "--aug", "noaug", "--device",
            "cpu", "--outdir", "runs"]  # fmt: skip
    with one_thread():
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "img3.png" in err and "Traceback" not in err
    (run,) = (tmp_path / "runs").iterdir()
    assert "img3.png" in (run / "log.txt").read_text()
    _, meta = load_checkpoint(list_snapshots(run)[-1])
    assert json.loads(json.dumps(meta["dataset"]))["size"] == 7
