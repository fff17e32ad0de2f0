"""Benchmark rows on disk: ``<out>/<device-slug>/<op>.csv`` and ``<op>.jsonl``.

Every measurement (or skipped/failed provider) is one row with the keys of ``ROW_KEYS``.
Rows are only ever appended; the markdown tables are regenerated from the JSONL files by
:mod:`benchmarks.report`. The CSV holds the same rows for spreadsheets; when ``ROW_KEYS``
grows, an older CSV is rewritten once with the new header (old rows get empty cells).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

DEFAULT_RESULTS_DIR = Path(__file__).resolve().parent / "results"

ROW_KEYS = (
    "op",  # the op, e.g. "bias_act"
    "case",  # the variant of the op, e.g. "lrelu", "up2", "conv_up"
    "provider",  # e.g. "gankern_cuda", "gankern_triton", "ref", "compile_ref"
    "provider_kind",  # "gankern", "ref" or "compile" (what the speedups compare)
    "mode",  # "forward", "backward" or "double_backward"
    "shape",  # the main input's shape, e.g. "32x512x32x32"
    "dtype",  # "float32", "float16", "bfloat16"
    "layout",  # "nchw" or "channels_last"
    "params",  # the op's other settings, compact JSON
    "status",  # "ok", "skipped" (reason says why) or "error" (reason holds the exception)
    "reason",
    "device",
    "torch_version",
    "triton_version",
    "cuda_version",
    "gankern_commit",
    "median_ms",
    "p20_ms",
    "p80_ms",
    "reps",
    "copies",  # input copies rotated so that the timing is not cache-hot
    "host_ms",  # host time to issue one call (GPU) or the call itself (CPU)
    "bytes_moved",  # the op's bytes model for this mode (None when compute-bound)
    "gbps",  # bytes_moved / median, 1e9 bytes/s
    "pct_of_copy_bw",  # gbps against copy_bw_gbps
    "flops",  # the op's flop model for this mode (None when memory-bound)
    "tflops",
    "pct_of_matmul",  # tflops against matmul_tflops
    "peak_mem_mb",  # MiB allocated by one call above what was allocated before (GPU only)
    "copy_bw_gbps",  # the device's copy bandwidth, measured in the same run
    "matmul_tflops",  # the device's matmul rate (bf16 on GPUs), measured in the same run
    "matmul_dtype",
    "run_id",  # one id per run_all invocation
    "timestamp",  # UTC, ISO 8601
)


def results_paths(out_dir: Path, device_slug: str, op: str) -> tuple[Path, Path]:
    """The CSV and JSONL files that hold ``op``'s rows for one device."""
    folder = Path(out_dir) / device_slug
    return folder / f"{op}.csv", folder / f"{op}.jsonl"


def _check_row(row: dict) -> None:
    missing = [k for k in ROW_KEYS if k not in row]
    extra = [k for k in row if k not in ROW_KEYS]
    if missing or extra:
        raise ValueError(f"row must have exactly ROW_KEYS; missing {missing}, unexpected {extra}")


def _csv_header(path: Path) -> list[str] | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open(newline="") as fh:
        return next(csv.reader(fh), None)


def append_rows(out_dir: Path, device_slug: str, op: str, rows: Iterable[dict]) -> None:
    """Append ``rows`` (dicts with exactly ``ROW_KEYS``) to ``op``'s CSV and JSONL files."""
    rows = list(rows)
    for row in rows:
        _check_row(row)
    if not rows:
        return
    csv_path, jsonl_path = results_paths(out_dir, device_slug, op)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with jsonl_path.open("a") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=False) + "\n")

    header = _csv_header(csv_path)
    if header is not None and header != list(ROW_KEYS):
        with csv_path.open(newline="") as fh:
            old = list(csv.DictReader(fh))
        with csv_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=ROW_KEYS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(old)
        header = list(ROW_KEYS)
    with csv_path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ROW_KEYS)
        if header is None:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in ROW_KEYS})


def load_rows(out_dir: Path) -> list[dict]:
    """Every row of every ``<out>/<device>/<op>.jsonl``, in file order."""
    rows = []
    for path in sorted(Path(out_dir).glob("*/*.jsonl")):
        with path.open() as fh:
            for number, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number} is not a JSON row: {exc}") from exc
    return rows
