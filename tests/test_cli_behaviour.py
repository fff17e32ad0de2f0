"""What the commands say and where they write: log.txt, precision, ETAs, resume into another
--outdir, generate in bounded batches, --video in --outdir, help texts, file names in
corrupt-file errors, and the ops' checks of degenerate inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from trainutils import one_thread, tiny_options

from gankern.cli import main
from gankern.train.checkpoint import list_snapshots
from gankern.train.loop import training_loop
from gankern.train.training_log import format_duration, progress_line

TRAIN = ["train", "--resolution", "16", "--kimg", "0.016", "--tick", "0.016", "--batch", "8",
         "--metrics", "none", "--device", "cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("runs")
    with one_thread():
        assert main(TRAIN + ["--outdir", str(outdir)]) == 0
    (run,) = outdir.iterdir()
    return run


def test_log_txt_holds_what_was_printed_and_the_warnings(tmp_path, capsys):
    lines = []
    opts = tiny_options(
        tmp_path,
        kimg=0.016,
        batch=8,
        max_images=6,
        precision="bf16",
        extra={
            "G": {**tiny_options(tmp_path).extra["G"], "num_fp16_res": 0},
            "D": {**tiny_options(tmp_path).extra["D"], "num_fp16_res": 0},
        },
    )
    with one_thread(), pytest.warns(RuntimeWarning, match="larger than the dataset"):
        run_dir = training_loop(opts, print_fn=lambda text, **k: lines.append(text))
    log = (run_dir / "log.txt").read_text().splitlines()
    assert log[0].startswith("warning: the batch (8 images) is larger than the dataset (6")
    assert lines == log[1:]  # every printed line, in order
    # bf16 asked for, but this configuration has no half-precision layers: said so.
    assert any(
        "bf16 requested, but config tiny has no half-precision layers" in line for line in lines
    )


def test_precision_fp16_on_a_cpu_says_what_runs(tmp_path):
    lines = []
    extra = tiny_options(tmp_path).extra
    extra = {key: {**value, "num_fp16_res": 2} for key, value in extra.items()}
    with one_thread():
        training_loop(
            tiny_options(tmp_path, kimg=0.008, precision="fp16", extra=extra),
            print_fn=lambda text, **k: lines.append(text),
        )
    (line,) = [x for x in lines if x.startswith("Device:")]
    assert "float16 layers run only on GPUs" in line


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0, "0s"),
        (-3.2, "0s"),
        (59.6, "1m 00s"),
        (3725, "1h 02m 05s"),
        (2 * 86400 + 3 * 3600 + 60 * 4, "2d 03h 04m"),
        (1e33, "> 10000d"),
        (float("nan"), "?"),
    ],
)
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_progress_line_eta_is_never_negative_or_absurd():
    past_the_end = {"tick": 3, "kimg": 0.048, "Timing/sec_per_kimg": 10.0, "Timing/total_sec": 1.0}
    assert "ETA 0s " in progress_line(past_the_end, total_kimg=0.040)
    assert "ETA > 10000d" in progress_line(past_the_end, total_kimg=1e30)


def test_resume_file_with_another_outdir_continues_there(cli_run, tmp_path, capsys):
    """``--resume FILE --outdir OTHER``: a new run directory in OTHER (said so), the
    checkpoint's own directory untouched; without --outdir it continues in place."""
    before = sorted(p.name for p in cli_run.iterdir())
    snapshot = list_snapshots(cli_run)[-1]
    other = tmp_path / "other"
    with one_thread():
        assert (
            main(["train", "--resume", str(snapshot), "--kimg", "0.032", "--outdir", str(other)])
            == 0
        )
    out = capsys.readouterr().out
    (new_run,) = other.iterdir()
    assert f"Resumed from {snapshot} at 0.016 kimg into {new_run}" in out
    assert list_snapshots(new_run)[-1].name == "snapshot-000000032.safetensors"
    assert sorted(p.name for p in cli_run.iterdir()) == before


def test_generate_streams_in_batches(cli_run, tmp_path, monkeypatch, capsys):
    """Images are generated ``--batch`` at a time (bounded memory), one file each; the
    grid only on request; a bare --video name goes into --outdir."""
    from gankern.train.families.stylegan2 import StyleGAN2Family

    sizes = []
    real_sample = StyleGAN2Family.sample.__func__

    def counting_sample(cls, G, z, c, **kwargs):
        sizes.append(len(z))
        return real_sample(cls, G, z, c, **kwargs)

    monkeypatch.setattr(StyleGAN2Family, "sample", classmethod(counting_sample))
    out = tmp_path / "many"
    assert (
        main(["generate", str(cli_run), "--outdir", str(out), "--seeds", "5-74", "--batch", "16"])
        == 0
    )
    assert sizes == [16, 16, 16, 16, 6]
    assert sorted(p.name for p in out.iterdir()) == [f"seed{s:04d}.png" for s in range(5, 75)]
    assert "wrote 70 images to" in capsys.readouterr().out

    walk = tmp_path / "walk"
    assert (
        main(
            [
                "generate",
                str(cli_run),
                "--outdir",
                str(walk),
                "--mode",
                "interp",
                "--seeds",
                "1,2",
                "--frames",
                "3",
                "--video",
                "walk.gif",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in walk.iterdir()) == ["interp.png", "walk.gif"]


def test_metrics_help_gives_each_default_once(capsys):
    with pytest.raises(SystemExit):
        main(["metrics", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "(default: None)" not in text and "(default: False)" not in text
    assert text.count("default: all in a folder") == 1
    assert "KID: images per subset (default: 1000)" in text


def test_corrupt_file_errors_name_the_file_not_a_buffer(tmp_path):
    from gankern.data import ImageFolderDataset
    from gankern.data.image_files import CorruptImageError, ImageSource, decode_image

    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "fake.png").write_text("not an image")
    with pytest.raises(CorruptImageError) as info:
        ImageFolderDataset(tmp_path / "imgs")
    assert "fake.png" in str(info.value) and "object at 0x" not in str(info.value)
    with pytest.raises(CorruptImageError) as info:
        decode_image(ImageSource(tmp_path / "imgs"), "fake.png")
    assert "object at 0x" not in str(info.value) and "not a PNG or JPEG image" in str(info.value)


def test_bias_act_on_a_scalar():
    from gankern.ops import bias_act

    x = torch.tensor(-1.5, dtype=torch.float64, requires_grad=True)
    y = bias_act(x, act="lrelu")
    assert y.shape == () and y.item() == pytest.approx(-1.5 * 0.2 * np.sqrt(2))
    y.backward()
    assert x.grad.item() == pytest.approx(0.2 * np.sqrt(2))
    with pytest.raises(ValueError, match="x is 0-d"):
        bias_act(torch.tensor(1.0), torch.zeros(1))


@pytest.mark.parametrize("kwargs", [{"padding": 10**7}, {"up": 10**6}, {"up": [1, 10**9]}])
def test_upfirdn2d_refuses_outputs_larger_than_memory(kwargs):
    from gankern.ops import setup_filter, upfirdn2d

    with pytest.raises(ValueError, match=r"GiB\), more than the .* GiB of cpu"):
        upfirdn2d(torch.randn(1, 1, 4, 4), setup_filter([1, 3, 3, 1]), **kwargs)


def test_nonfinite_stop_after_resuming_elsewhere_names_a_real_checkpoint(tmp_path):
    """Resumed from a file into another run directory, then diverged before its first
    snapshot: the stop message names the checkpoint it resumed from (it used to say None)."""
    from gankern.train.run import NonFiniteTrainingError

    with one_thread():
        first = training_loop(tiny_options(tmp_path, kimg=0.016, snap=1),
                              print_fn=lambda *a, **k: None)
        snapshot = list_snapshots(first)[-1]

        def always_nan(G, D):
            D.register_forward_hook(lambda module, args, out: out * float("nan"))

        opts = tiny_options(tmp_path, kimg=0.5, resume=str(snapshot), max_nonfinite_steps=2,
                            run_dir=str(tmp_path / "elsewhere"))
        with pytest.raises(NonFiniteTrainingError) as info:
            training_loop(opts, setup_hook=always_nan, print_fn=lambda *a, **k: None)
    assert f"The last good checkpoint is {snapshot};" in str(info.value)
