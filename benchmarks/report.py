"""Tables of benchmark rows: printed after a run, and the generated results README.

``python -m benchmarks.report [--out DIR]`` regenerates ``DIR/README.md`` (default
``benchmarks/results/README.md``) from every row in ``DIR/<device>/<op>.jsonl``: per device
and op, the latest measurement of each (case, shape, dtype, layout, mode, provider).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from benchmarks.harness import MODES, Target, config_from_row, discover
from benchmarks.results import DEFAULT_RESULTS_DIR, load_rows

GROUP_KEYS = ("case", "shape", "dtype", "layout", "params", "mode")
# What a row needs to appear in a table (other JSONL rows under results/ are ignored).
REQUIRED_KEYS = (*GROUP_KEYS, "device", "op", "provider", "provider_kind", "status", "reason",
                 "median_ms", "pct_of_copy_bw", "pct_of_matmul", "run_id", "timestamp",
                 "torch_version", "triton_version", "cuda_version", "gankern_commit",
                 "copy_bw_gbps", "matmul_tflops", "matmul_dtype")


def _fastest(rows: Iterable[dict], kind: str) -> dict | None:
    ok = [r for r in rows if r["provider_kind"] == kind and r["status"] == "ok"]
    return min(ok, key=lambda r: r["median_ms"], default=None)


def summarize_group(rows: Sequence[dict]) -> dict:
    """The fastest gankern provider of one group and its standing against the baselines.

    ``vs_ref`` and ``vs_compile`` are the median time of the fastest ``ref`` (resp.
    ``compile``) provider divided by the fastest gankern provider's: above 1 means faster.
    """
    best = _fastest(rows, "gankern")
    ref = _fastest(rows, "ref")
    compiled = _fastest(rows, "compile")
    return {
        "best": None if best is None else best["provider"],
        "pct_of_copy_bw": None if best is None else best["pct_of_copy_bw"],
        "pct_of_matmul": None if best is None else best["pct_of_matmul"],
        "vs_ref": None if best is None or ref is None else ref["median_ms"] / best["median_ms"],
        "vs_compile": (
            None if best is None or compiled is None
            else compiled["median_ms"] / best["median_ms"]
        ),
    }


def latest_rows(rows: Iterable[dict]) -> list[dict]:
    """The last row (by timestamp, then file order) of each measured combination."""
    latest: dict[tuple, tuple[str, int, dict]] = {}
    for order, row in enumerate(rows):
        key = (row["device"], row["op"], row["provider"], *(row[k] for k in GROUP_KEYS))
        stamp = row.get("timestamp") or ""
        if key not in latest or (stamp, order) >= latest[key][:2]:
            latest[key] = (stamp, order, row)
    return [entry[2] for entry in sorted(latest.values(), key=lambda e: e[1])]


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    if row["status"] == "skipped":
        return "skip"
    if row["status"] != "ok":
        return "ERROR"
    text = f"{row['median_ms']:.3f}"
    pct = row["pct_of_copy_bw"] if row["pct_of_copy_bw"] is not None else row["pct_of_matmul"]
    if pct is not None:
        text += f" · {pct:.0f}%" if pct >= 10 else f" · {pct:.2g}%"
    return text


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _target_text(targets: Sequence[Target], row: dict, summary: dict) -> str:
    config = config_from_row(row)
    verdicts = []
    for target in targets:
        if not target.applies(config, row["mode"]):
            continue
        ok = target.check(summary)
        verdicts.append("?" if ok is None else ("yes" if ok else "NO"))
    if not verdicts:
        return ""
    if "NO" in verdicts:
        return "NO"
    return "?" if "?" in verdicts else "yes"


def op_table(rows: Sequence[dict], targets: Sequence[Target] = ()) -> list[str]:
    """Markdown lines: one row per (case, shape, dtype, layout, mode), one column per provider.

    A provider's cell is its median time in ms and, after the dot, its percentage of the
    copy bandwidth (memory-bound ops) or of the matmul rate (compute-bound ops). Then the
    fastest gankern provider, its speedups against the fastest ref and compile providers,
    and whether the targets hold ("yes", "NO", "?" when a figure is missing). Skipped and
    failed providers are listed with their reasons under the table.
    """
    providers: list[str] = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if row["provider"] not in providers:
            providers.append(row["provider"])
        groups[tuple(row[k] for k in GROUP_KEYS)].append(row)
    order = sorted(
        groups,
        key=lambda k: (k[0], k[1], k[2], k[3], k[4], MODES.index(k[5]) if k[5] in MODES else 9),
    )
    header = ["case", "shape", "dtype", "layout", "mode", *providers,
              "best", "vs ref", "vs compile"]
    if targets:
        header.append("target")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: dict[tuple[str, str, str], int] = defaultdict(int)
    for key in order:
        group = groups[key]
        by_provider = {r["provider"]: r for r in group}
        summary = summarize_group(group)
        case, shape, dtype, layout, _params, mode = key
        cells = [case, shape, dtype, layout, mode]
        cells += [_cell(by_provider.get(p)) for p in providers]
        cells += [summary["best"] or "", _ratio(summary["vs_ref"]), _ratio(summary["vs_compile"])]
        if targets:
            cells.append(_target_text(targets, group[0], summary))
        lines.append("| " + " | ".join(cells) + " |")
        for r in group:
            if r["status"] != "ok":
                notes[(r["provider"], r["status"], r["reason"] or "")] += 1
    if notes:
        lines.append("")
        for (provider, status, reason), count in notes.items():
            lines.append(f"- {provider} {status} ({count} rows): {reason}")
    if targets:
        lines.append("")
        for target in targets:
            lines.append(f"- target: {target.description}")
    return lines


def _run_lines(rows: Sequence[dict]) -> list[str]:
    runs: dict[str, dict] = {}
    for row in rows:
        runs.setdefault(row["run_id"], row)
    lines = []
    for run_id, row in sorted(runs.items()):
        lines.append(
            f"- run `{run_id}`: torch {row['torch_version']}, triton {row['triton_version']}, "
            f"CUDA {row['cuda_version']}, gankern `{row['gankern_commit']}`; copy bandwidth "
            f"{row['copy_bw_gbps']:.4g} GB/s, {row['matmul_dtype']} matmul "
            f"{row['matmul_tflops']:.3g} TFLOP/s"
        )
    return lines


def render_markdown(rows: Sequence[dict], targets_by_op: dict[str, Sequence[Target]]) -> str:
    """The results README: per device and op, the table of the latest rows."""
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.report` from the rows in "
        "`<device>/<op>.jsonl` (also in `.csv`); do not edit by hand. Each cell is the latest "
        "measurement on the named device: the median time in ms and, after the dot, the "
        "percentage of the copy bandwidth (memory-bound ops: bytes model / time) or of the "
        "matmul rate (compute-bound ops: flop model / time), both measured in the same run. "
        "`vs ref` and `vs compile` are the speedups of the fastest gankern provider (`best`). "
        "See `benchmarks/README.md` for what is measured and how.",
        "",
    ]
    wanted = set(REQUIRED_KEYS)
    foreign = sum(1 for row in rows if not wanted <= row.keys())
    rows = latest_rows(row for row in rows if wanted <= row.keys())
    if foreign:
        lines += [f"({foreign} rows in other formats were ignored.)", ""]
    if not rows:
        lines.append("No results yet: run `python -m benchmarks` on the device to measure.")
        return "\n".join(lines) + "\n"
    by_device: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_device[row["device"]].append(row)
    for device in sorted(by_device):
        device_rows = by_device[device]
        lines += [f"## {device}", ""] + _run_lines(device_rows) + [""]
        by_op: dict[str, list[dict]] = defaultdict(list)
        for row in device_rows:
            by_op[row["op"]].append(row)
        for op in sorted(by_op):
            lines += [f"### {op}", ""]
            lines += op_table(by_op[op], targets_by_op.get(op, ()))
            lines.append("")
    return "\n".join(lines)


def write_markdown(out_dir: Path = DEFAULT_RESULTS_DIR) -> Path:
    """Regenerate ``out_dir/README.md`` from every row under ``out_dir``; return its path."""
    out_dir = Path(out_dir)
    targets = {op: case.targets for op, case in discover().items()}
    text = render_markdown(load_rows(out_dir), targets)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "README.md"
    path.write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Regenerate the results README from the benchmark rows.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                        help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    print(write_markdown(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
