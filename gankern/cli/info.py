"""``gankern info``: versions, device, and which backend each op can use (and why not)."""

from __future__ import annotations

import json
import os
import platform
import sys


def collect_info() -> dict:
    """Everything `gankern info` prints, as a dict (also used by the benchmarks)."""
    import numpy
    import torch

    import gankern
    from gankern.ops import OP_BACKENDS, backend_report
    from gankern.ops._backend import forced_impl_error, triton_import_error

    try:
        import triton

        triton_version = triton.__version__
    except Exception as exc:  # report, never fail
        triton_version = f"unavailable ({type(exc).__name__})"
    triton_error = triton_import_error()
    if torch.cuda.is_available():
        device = torch.device("cuda")
        props = torch.cuda.get_device_properties(device)
        device_text = (
            f"cuda:{torch.cuda.current_device()} {props.name} (sm_{props.major}{props.minor}, "
            f"{props.total_memory / 2**30:.1f} GiB)"
        )
    else:
        device = torch.device("cpu")
        device_text = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return {
        "versions": {
            "gankern": gankern.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_cuda": torch.version.cuda,
            "triton": triton_version if triton_error is None else triton_error,
            "numpy": numpy.__version__,
        },
        "device": device_text,
        "environment": {
            key: os.environ.get(key)
            for key in ("GANKERN_IMPL", "TRITON_INTERPRET", "CUDA_HOME", "TORCH_CUDA_ARCH_LIST")
            if os.environ.get(key) is not None
        },
        "backends": backend_report(OP_BACKENDS, device),
        "problems": [problem for problem in (forced_impl_error(),) if problem],
    }


def _print_text(info: dict) -> None:
    print("gankern", info["versions"]["gankern"])
    print("\nversions:")
    for key, value in info["versions"].items():
        print(f"  {key:<12} {value}")
    print(f"\ndevice: {info['device']}")
    if info["environment"]:
        print("\nenvironment:")
        for key, value in info["environment"].items():
            flag = "  <- invalid" if key == "GANKERN_IMPL" and info["problems"] else ""
            print(f"  {key}={value}{flag}")
    print("\nbackends (impl='auto' takes the first available, in this order):")
    for op, row in info["backends"].items():
        print(f"  {op}:")
        for backend in ("cuda", "triton", "ref"):
            reason = row[backend]
            status = "available" if reason is None else f"unavailable: {reason}"
            print(f"    {backend:<7} {status}")


def run(args) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_text(info)
    for problem in info["problems"]:  # the report is printed; the setup is still wrong
        print(f"gankern info: error: {problem}: every op call would fail", file=sys.stderr)
    return 1 if info["problems"] else 0


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="print versions, the device and the backends available for each op"
    )
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(func=run)
