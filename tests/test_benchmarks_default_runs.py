"""``python -m benchmarks.default_runs``: the README's model table is made from measured runs."""

from __future__ import annotations

import json

from trainutils import one_thread

from benchmarks.default_runs import main, measure_default_run, noise_to_image_models, render_table


def _row(model: str, sec_per_kimg: float, fid: float | None) -> dict:
    metrics = {} if fid is None else {"fid_digits": fid}
    return {"model": model, "kimg": 60.032, "sec_per_kimg": sec_per_kimg, "metrics": metrics}


def test_the_table_takes_the_newest_row_of_each_model():
    rows = [_row("dcgan", 0.9, 3000.0), _row("gan", 0.4, 747.4), _row("dcgan", 0.6, 294.5)]
    table = render_table(rows)
    lines = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(lines) == set(noise_to_image_models())
    assert "| 0.60 | 60 | 294 |" in lines["dcgan"] and "3000" not in table
    assert "| 0.40 | 60 | 747 |" in lines["gan"]
    assert "not measured" in lines["stylegan2"]


def test_the_image_to_image_models_have_their_own_table():
    models = noise_to_image_models()
    assert {"stylegan2", "dcgan", "progan"} <= set(models)
    assert not {"pix2pix", "cyclegan", "srgan", "srresnet"} & set(models)


def test_a_measured_run_reports_its_own_log(tmp_path):
    with one_thread():
        row = measure_default_run("gan", tmp_path, kimg=0.128)
    (run_dir,) = tmp_path.iterdir()
    records = [json.loads(x) for x in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert row["model"] == "gan" and row["cfg"] == "digits"
    assert row["kimg"] == records[-1]["kimg"] >= 0.128
    assert row["metrics"]["fid_digits"] == records[-1]["Metrics/fid_digits"]
    assert row["sec_per_kimg"] == row["wall_s"] / row["kimg"]


def test_table_only_rewrites_the_table_from_the_recorded_rows(tmp_path, capsys):
    import torch

    from benchmarks.environment import collect_environment

    folder = tmp_path / collect_environment(torch.device("cpu")).device_slug
    folder.mkdir()
    (folder / "default_runs.jsonl").write_text(json.dumps(_row("lsgan", 0.79, 365.4)) + "\n")
    assert main(["--table-only", "--out", str(tmp_path)]) == 0
    table = (folder / "default_runs.md").read_text()
    assert "| `gankern train --model lsgan` | 0.79 | 60 | 365 |" in table
