"""Tables of the training-throughput rows: s/kimg, images/s, peak memory, published figures.

A ``train_stylegan2`` row (see :mod:`benchmarks.bench_training`) keeps the harness's
schema: ``median_ms`` (and ``p20_ms``/``p80_ms``) is the time of one training step,
averaged over each timed cycle of steps (a cycle holds every lazy regularization once),
and the batch is the first number of ``shape``. Everything else follows:
``s/kimg = median_ms / batch`` (ms per step / images per step = s per 1000 images) and
``images/s = 1000 * batch / median_ms``.

``python -m benchmarks.training_table [--out DIR]`` regenerates ``DIR/training.md`` from
the rows, as a run of the benchmark does.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import latest_rows
from benchmarks.results import DEFAULT_RESULTS_DIR, load_rows

OP = "train_stylegan2"
OP_PREFIX = "train_"


def op_name(model: str) -> str:
    """The ``op`` of a model's training rows: ``train_stylegan2``, ``train_wgan_gp``, ..."""
    return OP_PREFIX + model.replace("-", "_")
MiB_PER_GiB = 1024.0
GROUP_KEYS = ("case", "shape", "dtype", "layout", "params")


@dataclass(frozen=True)
class PublishedFigure:
    """A training speed published for a configuration (another device, another code)."""

    cfg: str
    resolution: int
    text: str


# Published figures for the same configurations, printed under the tables for comparison.
PUBLISHED = (
    PublishedFigure(
        "auto", 256,
        "StyleGAN2-ADA (PyTorch), auto config at 256 px, batch 16, one A100: 12.53 s/kimg "
        "(the figure quoted in issue 4)",
    ),
    PublishedFigure(
        "stylegan2", 1024,
        "StyleGAN2 config-f at 1024 px, batch 32 on 8 GPUs (4 per GPU), --aug=noaug: "
        "14.57 s/kimg on 8 A100s, 17.55 s/kimg on 8 V100s (NVlabs/stylegan3, "
        "docs/configs.md); one GPU does 8 times the work per kimg",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class TrainingTarget:
    """Issue 4's goal for the auto config at 256 px in the configured mixed precision."""

    cfg: str = "auto"
    resolution: int = 256
    dtype: str = "float16"
    max_sec_per_kimg: float = 4.0
    min_speedup_vs_ref: float = 1.5
    description: str = (
        "auto config at 256 px, fp16 layers as configured: <= 4.0 s/kimg on one H100 and "
        ">= 1.5x faster than the same model on impl='ref' (issue 4)"
    )

    def applies(self, row: dict) -> bool:
        params = row_params(row)
        return (params.get("cfg") == self.cfg and params.get("resolution") == self.resolution
                and row["dtype"] == self.dtype)

    def verdict(self, sec_per_kimg: float | None, speedup: float | None) -> str:
        """``yes``/``NO``, or ``?`` when a figure is missing (e.g. ref was not run)."""
        if sec_per_kimg is not None and sec_per_kimg > self.max_sec_per_kimg:
            return "NO"
        if speedup is not None and speedup < self.min_speedup_vs_ref:
            return "NO"
        return "?" if sec_per_kimg is None or speedup is None else "yes"


TARGETS = (TrainingTarget(),)


def row_params(row: dict) -> dict:
    return json.loads(row["params"]) if row.get("params") else {}


def batch_of(row: dict) -> int:
    """Images per training step: the first number of the row's shape."""
    return int(str(row["shape"]).split("x")[0])


def sec_per_kimg(row: dict) -> float | None:
    """Seconds per 1000 images of an ``ok`` row (ms per step / images per step)."""
    if row.get("status") != "ok" or not row.get("median_ms"):
        return None
    return row["median_ms"] / batch_of(row)


def images_per_sec(row: dict) -> float | None:
    if row.get("status") != "ok" or not row.get("median_ms"):
        return None
    return 1000.0 * batch_of(row) / row["median_ms"]


def _fmt(value: float | None, spec: str) -> str:
    """``value`` with ``spec`` (significant digits), never in exponent notation."""
    if value is None:
        return ""
    text = format(value, spec)
    return f"{value:.0f}" if "e" in text else text


def _group_label(row: dict) -> list[str]:
    params = row_params(row)
    batch = f"{batch_of(row)}"
    if params.get("batch_gpu") not in (None, batch_of(row)):
        batch += f" ({params['batch_gpu']}/pass)"
    aug = params.get("aug", "")
    if aug == "ada" and params.get("ada_p") is not None:
        aug += f" p={params['ada_p']:g}"
    return [row["case"], str(params.get("resolution", "")), batch, row["dtype"], row["layout"],
            aug]


def training_table(rows: Sequence[dict]) -> list[str]:
    """Markdown lines: one line per configuration and provider, then notes.

    Columns: ms per step (median, and p20-p80 over the timed cycles), s/kimg, images/s,
    peak GPU memory, the speedup over the ``ref`` provider of the same configuration, and
    issue 4's target verdict where it applies. Published figures for the configurations in
    the table and the reasons of skipped or failed providers follow.
    """
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in GROUP_KEYS)].append(row)
    header = ["config", "px", "batch", "dtype", "layout", "aug", "provider", "ms/step (p20-p80)",
              "s/kimg", "img/s", "peak GiB", "vs ref", "target"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[tuple[str, str, str], int] = defaultdict(int)
    shown: set[tuple[str, int]] = set()
    order = sorted(groups, key=lambda k: (row_params(groups[k][0]).get("resolution", 0), k))
    for key in order:
        group = groups[key]
        ref = min((r for r in group if r["provider_kind"] == "ref" and r["status"] == "ok"),
                  key=lambda r: r["median_ms"], default=None)
        params = row_params(group[0])
        shown.add((group[0]["case"], params.get("resolution")))
        for row in sorted(group, key=lambda r: (r["provider_kind"] == "ref", r["provider"])):
            speedup = None
            if ref is not None and row is not ref and row["status"] == "ok":
                speedup = ref["median_ms"] / row["median_ms"]
            if row["status"] == "ok":
                timing = f"{row['median_ms']:.1f} ({row['p20_ms']:.1f}-{row['p80_ms']:.1f})"
            else:
                timing = "skip" if row["status"] == "skipped" else "ERROR"
                notes[(row["provider"], row["status"], row["reason"] or "")] += 1
            peak = row.get("peak_mem_mb")
            verdicts = [t.verdict(sec_per_kimg(row), speedup) for t in TARGETS
                        if row["provider_kind"] == "gankern" and t.applies(row)]
            verdict = "NO" if "NO" in verdicts else ("?" if "?" in verdicts else
                                                      ("yes" if verdicts else ""))
            cells = _group_label(row) + [
                row["provider"], timing, _fmt(sec_per_kimg(row), ".3g"),
                _fmt(images_per_sec(row), ".4g"),
                _fmt(None if peak is None else peak / MiB_PER_GiB, ".2f"),
                "" if speedup is None else f"{speedup:.2f}x", verdict,
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for (provider, status, reason), count in notes.items():
        lines.append(f"- {provider} {status} ({count} rows): {reason}")
    for figure in PUBLISHED:
        if (figure.cfg, figure.resolution) in shown:
            lines.append(f"- published: {figure.text}")
    if any(row["op"] == OP for row in rows):  # the targets are StyleGAN2's (issue 4)
        for target in TARGETS:
            lines.append(f"- target: {target.description}")
    return lines


def _run_line(row: dict) -> str:
    return (f"- run `{row['run_id']}`: torch {row['torch_version']}, triton "
            f"{row['triton_version']}, CUDA {row['cuda_version']}, gankern "
            f"`{row['gankern_commit']}`")


def render_training_markdown(rows: Sequence[dict]) -> str:
    """``training.md``: per device, the latest training-throughput rows as a table."""
    lines = [
        "# Training throughput",
        "",
        "Generated by `python -m benchmarks.bench_training` (or `python -m "
        "benchmarks.training_table`) from the `train_stylegan2` rows in `<device>/*.jsonl`; "
        "do not edit by hand. A training step is G main + D main every step, path length "
        "every 4 steps and lazy R1 every 16, amortized over whole 16-step cycles, plus the EMA "
        "update; the data are random images already on the device. `ms/step` is the median "
        "over the timed cycles, `s/kimg = ms/step / batch`, `peak GiB` the most GPU memory "
        "allocated while the timed steps ran (weights and optimizer states included). "
        "See `benchmarks/README.md`.",
        "",
    ]
    rows = latest_rows(r for r in rows if str(r.get("op", "")).startswith(OP_PREFIX))
    if not rows:
        lines.append("No results yet: run `python -m benchmarks.bench_training` on a GPU.")
        return "\n".join(lines) + "\n"
    by_device: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_device[row["device"]].append(row)
    for device in sorted(by_device):
        device_rows = by_device[device]
        runs = {r["run_id"]: r for r in device_rows}
        lines += [f"## {device}", ""] + [_run_line(runs[k]) for k in sorted(runs)] + [""]
        for op in sorted({r["op"] for r in device_rows}, key=lambda o: (o != OP, o)):
            lines += [f"### {op[len(OP_PREFIX):]}", ""]
            lines += training_table([r for r in device_rows if r["op"] == op]) + [""]
    return "\n".join(lines)


def write_training_markdown(out_dir: Path = DEFAULT_RESULTS_DIR) -> Path:
    """Regenerate ``out_dir/training.md`` from every row under ``out_dir``; return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "training.md"
    path.write_text(render_training_markdown(load_rows(out_dir)))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.training_table",
        description="Regenerate training.md from the training-throughput rows.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                        help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    print(write_training_markdown(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
