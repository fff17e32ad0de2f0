"""Argument types shared by several ``gankern`` commands."""

from __future__ import annotations

import argparse
import re


def device_name(text: str) -> str:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (an argparse type)."""
    if re.fullmatch(r"cpu|cuda(:\d+)?", text.strip()):
        return text.strip()
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")


def resolve_device(name: str | None):
    """The torch device of ``--device`` (default: CUDA if available), checked to exist."""
    import torch

    device = torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name} but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {name} but only {torch.cuda.device_count()} CUDA devices are visible"
            )
    return device


IMPLS = ("auto", "cuda", "triton", "ref")


def add_device_arguments(parser: argparse.ArgumentParser, network: bool = True) -> None:
    """``--network`` (G_ema or G; with ``network``), ``--device`` and ``--impl``: the options
    of every command that loads a generator from a checkpoint."""
    if network:
        parser.add_argument("--network", choices=("G_ema", "G"), default="G_ema")
    parser.add_argument("--device", type=device_name, default=None,
                        help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--impl", choices=IMPLS, default="auto")
