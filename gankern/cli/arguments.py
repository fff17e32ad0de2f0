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
