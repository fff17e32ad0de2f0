"""The default run of each model, measured: what ``gankern train --model NAME`` does with no
other argument (its ``digits`` configuration on its built-in data, its default length).

    python -m benchmarks.default_runs                      # every model
    python -m benchmarks.default_runs --models dcgan gan   # some
    python -m benchmarks.default_runs --kimg 5 --no-write  # a quick look, nothing recorded
    python -m benchmarks.default_runs --keep runs/         # keep the runs (runs/<model>/)
    python -m benchmarks.default_runs --table-only         # the table from the recorded rows

For each model the run's own log gives the seconds per thousand images (the whole run's
wall time over its kimg, snapshots and metrics included, as a user sees it) and the last
snapshot's metric (``fid_digits`` for the image models). Rows are appended to
``benchmarks/results/<device>/default_runs.jsonl`` and ``default_runs.md`` (the README's
model table) is regenerated from the newest row of each model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.environment import collect_environment, timestamp  # noqa: E402
from benchmarks.results import DEFAULT_RESULTS_DIR  # noqa: E402
from gankern.train.checkpoint import list_snapshots, load_checkpoint  # noqa: E402
from gankern.train.families import family_names, get_family  # noqa: E402
from gankern.train.loop import training_loop  # noqa: E402
from gankern.train.options import TrainingOptions  # noqa: E402

ROWS_FILE = "default_runs.jsonl"
TABLE_FILE = "default_runs.md"


def measure_default_run(model: str, workdir: Path, kimg: float | None = None) -> dict:
    """Run ``gankern train --model model`` (optionally shorter) and read its log."""
    opts = TrainingOptions(model=model, outdir=str(workdir), device="cpu", tensorboard=False,
                           kimg=kimg)
    start = time.time()
    run_dir = training_loop(opts, print_fn=lambda *a, **k: None)
    wall = time.time() - start
    records = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    last = records[-1]
    metrics = {k[len("Metrics/"):]: v for k, v in last.items() if k.startswith("Metrics/")}
    _, meta = load_checkpoint(list_snapshots(run_dir)[-1])
    return {
        "model": model, "cfg": meta["networks"]["cfg"], "kimg": last["kimg"], "wall_s": wall,
        "sec_per_kimg": wall / max(last["kimg"], 1e-9), "metrics": metrics,
        "threads": torch.get_num_threads(),
    }  # fmt: skip


def noise_to_image_models() -> list[str]:
    """The families that draw images from noise (the image-to-image models, which translate
    their data and have no ``fid_digits``, have their own table in the README)."""
    from gankern.train.translator import ImageToImageFamily

    return [m for m in family_names() if not issubclass(get_family(m), ImageToImageFamily)]


def render_table(rows: Sequence[dict]) -> str:
    """The README's model table from the newest row of each noise-to-image model (the
    image-to-image models have their own table)."""
    newest: dict[str, dict] = {}
    for row in rows:
        newest[row["model"]] = row
    lines = ["| model | paper | command | CPU s/kimg | kimg | fid_digits |",
             "|---|---|---|---|---|---|"]
    for model in noise_to_image_models():
        row = newest.get(model)
        title = get_family(model).title
        command = f"`gankern train --model {model}`"
        if row is None:
            lines.append(f"| {model} | {title} | {command} | not measured | | |")
            continue
        fid = row["metrics"].get("fid_digits")
        lines.append(f"| {model} | {title} | {command} | {row['sec_per_kimg']:.2f} | "
                     f"{row['kimg']:.0f} | {'' if fid is None else f'{fid:.0f}'} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.default_runs",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=family_names(), default=None,
                        help="models to run (default: every one)")
    parser.add_argument("--kimg", type=float, default=None,
                        help="shorter runs (default: each model's default length)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each run under KEEP/<model>/ (default: a temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--table-only", action="store_true",
                        help="only regenerate the table from the recorded rows")
    args = parser.parse_args(argv)
    env = collect_environment(torch.device("cpu"))
    models = [] if args.table_only else args.models or noise_to_image_models()
    rows_path = args.out / env.device_slug / ROWS_FILE
    rows = []
    for model in models:
        if args.keep is not None:
            row = measure_default_run(model, args.keep / model, args.kimg)
        else:
            with tempfile.TemporaryDirectory() as workdir:
                row = measure_default_run(model, Path(workdir), args.kimg)
        row.update(device=env.device, torch_version=env.torch_version,
                   gankern_commit=env.gankern_commit, timestamp=timestamp())
        rows.append(row)
        print(json.dumps(row), flush=True)
        if not args.no_write:
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            with open(rows_path, "a") as f:
                f.write(json.dumps(row) + "\n")
    if not args.no_write:
        every = [json.loads(x) for x in rows_path.read_text().splitlines() if x.strip()]
        table = args.out / env.device_slug / TABLE_FILE
        table.write_text(f"# Default runs on {env.device}\n\nGenerated by `python -m "
                         f"benchmarks.default_runs`.\n\n" + render_table(every))
        print(f"table: {table}")
    else:
        print(render_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
