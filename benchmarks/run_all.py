"""Run the registered op benchmarks, print their tables, append the rows, regenerate the README.

    python -m benchmarks                          # everything, on the GPU if there is one
    python -m benchmarks --ops bias_act --dtypes float16 bfloat16 --modes forward backward
    python -m benchmarks --quick --device cpu     # tiny shapes: checks the harness itself

Exit status 1 when a provider failed with an error (skipped providers are not errors).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.environment import collect_environment  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    DTYPES,
    LAYOUTS,
    MODES,
    RunOptions,
    discover,
    measure_baselines,
    run_case,
)
from benchmarks.report import op_table, write_markdown  # noqa: E402
from benchmarks.results import DEFAULT_RESULTS_DIR, append_rows  # noqa: E402
from benchmarks.timing import QUICK_TIMING, TimingSettings  # noqa: E402


def build_parser(ops: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark gankern's ops against the reference and torch.compile(ref).",
    )
    parser.add_argument("--ops", nargs="+", choices=ops, default=list(ops),
                        help="ops to run (default: all registered)")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=None,
                        help="memory layouts (default: each op's)")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=None,
                        help="forward, backward, double_backward (default: each op's)")
    parser.add_argument("--providers", nargs="+", default=None,
                        help="provider names, e.g. gankern_triton ref (default: all)")
    parser.add_argument("--cases", nargs="+", default=None,
                        help="shell-style patterns on the case labels, e.g. 'up2' 'conv*'")
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and few repetitions (a CPU check of the harness)")
    parser.add_argument("--rep-ms", type=float, default=None,
                        help="time to spend on the repetitions of one measurement "
                        f"(default {TimingSettings().rep_ms:g}, --quick {QUICK_TIMING.rep_ms:g})")
    parser.add_argument("--warmup-ms", type=float, default=None,
                        help=f"warm-up per measurement (default {TimingSettings().warmup_ms:g})")
    parser.add_argument("--device", default=None,
                        help="cuda, cuda:1, cpu (default: cuda if available)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend of the compile providers (default inductor)")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR,
                        help="results folder (default: benchmarks/results)")
    parser.add_argument("--no-write", action="store_true",
                        help="print only; append no rows and leave the README alone")
    parser.add_argument("--list", action="store_true", help="list the registered ops and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    cases = discover()
    args = build_parser(sorted(cases)).parse_args(argv)
    if args.list:
        for op, case in sorted(cases.items()):
            providers = ", ".join(p.name for p in case.providers)
            print(f"{op}: {case.description} [providers: {providers}]")
        return 0
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {args.device}: no CUDA device is available", file=sys.stderr)
        return 2
    known = {p.name for op in args.ops for p in cases[op].providers}
    unknown = sorted(set(args.providers or ()) - known)
    if unknown:
        print(f"error: --providers: unknown {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2

    timing = QUICK_TIMING if args.quick else TimingSettings()
    for name in ("rep_ms", "warmup_ms"):
        value = getattr(args, name)
        if value is not None:
            if value <= 0:
                print(f"error: --{name.replace('_', '-')} must be > 0, got {value}",
                      file=sys.stderr)
                return 2
            timing = dataclasses.replace(timing, **{name: value})
    options = RunOptions(
        device=device, quick=args.quick, dtypes=args.dtypes, layouts=args.layouts,
        modes=args.modes, providers=args.providers, cases=args.cases, timing=timing,
        compile_backend=args.compile_backend,
    )
    env = collect_environment(device)
    run_id = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    print(f"device: {env.device}; torch {env.torch_version}, triton {env.triton_version}, "
          f"CUDA {env.cuda_version}, gankern {env.gankern_commit}", flush=True)
    baselines = measure_baselines(device, args.quick, options.timing)
    print(f"copy bandwidth {baselines.copy_bw_gbps:.4g} GB/s, {baselines.matmul_dtype} matmul "
          f"{baselines.matmul_tflops:.3g} TFLOP/s (measured now)", flush=True)

    def write(rows):
        if rows and not args.no_write:
            append_rows(args.out, env.device_slug, rows[0]["op"], rows)

    errors = 0
    for op in args.ops:
        case = cases[op]
        print(f"\n## {op}: {case.description}", flush=True)
        rows = run_case(case, options, env, baselines, run_id, on_rows=write)
        print("\n".join(op_table(rows, case.targets)), flush=True)
        errors += sum(row["status"] == "error" for row in rows)
    if not args.no_write:
        print(f"\nrows appended under {args.out / env.device_slug}; "
              f"table regenerated: {write_markdown(args.out)}")
    if errors:
        print(f"\n{errors} measurement(s) failed with an error (see the notes above)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
