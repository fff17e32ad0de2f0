"""The README's commands, run as written (the training ones with a small ``--kimg``).

The quick start and the generate-then-metrics workflow together take ~30 s on two cores
(a training run with its snapshot metric, 1,064 generated images, FID and KID): the price
of knowing that what the README tells a new user to type works.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from metrics_helpers import small_digits_extractor
from PIL import Image
from safetensors.torch import save_file
from trainutils import one_thread

from gankern.cli import main
from gankern.metrics.digits_extractor import digits_extractor_path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """Every ``gankern ...`` command of the README's bash blocks (continuations joined)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("gankern "):
                commands.append(line)
    return commands


def _command(predicate) -> list[str]:
    (line,) = [c for c in readme_commands() if predicate(c)]
    return [os.path.expanduser(word) for word in shlex.split(line)[1:]]  # as a shell would


@pytest.fixture
def digits_cache(tmp_path, monkeypatch):
    """A briefly trained digits extractor where the standard one is cached (the full recipe
    takes half a minute; what is tested here is the commands, not the extractor)."""
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "cache"))
    path = digits_extractor_path()
    path.parent.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in small_digits_extractor().state_dict().items()}, str(path)
    )


def test_quick_start_generate_then_metrics(tmp_path, monkeypatch, capsys, digits_cache):
    monkeypatch.chdir(tmp_path)
    with one_thread():
        assert main(_command(lambda c: c == "gankern train") + ["--kimg", "0.032"]) == 0
        run = tmp_path / "training-runs" / "00000-digits-digits-batch32"  # as the README says
        records = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
        metrics = {k for r in records for k in r if k.startswith("Metrics/")}
        assert metrics == {"Metrics/fid_digits"}  # the default on the digits, as documented
        assert (run / "plot.png").is_file() and list(run.glob("samples-*.png"))
        assert "Run directory" in (run / "log.txt").read_text()

        # Quick start: a look at 64 truncated samples, with a grid of them.
        assert main(_command(lambda c: c.endswith("--seeds 0-63 --trunc 0.7 --grid"))) == 0
        names = sorted(os.listdir(tmp_path / "generated"))
        assert names == ["grid.png"] + [f"seed{i:04d}.png" for i in range(64)]

        # Metrics: samples into a folder of their own, then FID and KID against the digits.
        assert main(_command(lambda c: c.endswith("--outdir samples"))) == 0
        names = sorted(os.listdir(tmp_path / "samples"))
        assert names == [f"seed{i:04d}.png" for i in range(1000)]  # the samples, nothing else
        capsys.readouterr()
        assert main(_command(lambda c: "--fake samples/" in c)) == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert "fid_digits" in table and "kid_digits" in table and "num_fake=1000" in table


def test_dataset_command(tmp_path, monkeypatch, capsys):
    """``gankern dataset --source ~/photos --dest photos256.zip ...`` on a few photos."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    photos = tmp_path / "home" / "photos"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, size in enumerate(((300, 260), (257, 400), (512, 512))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8)).save(
            photos / f"p{i}.jpg"
        )
    assert main(_command(lambda c: c.startswith("gankern dataset"))) == 0
    from gankern.data import ImageFolderDataset

    ds = ImageFolderDataset(tmp_path / "photos256.zip")
    assert len(ds) == 3 and ds.image_shape == (3, 256, 256)
