"""What a benchmark row records about where it ran: device, versions, commit, time."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Environment:
    """The machine and software a run measured."""

    device: str  # human-readable device name, e.g. "NVIDIA H100 80GB HBM3"
    device_slug: str  # the results folder name, e.g. "nvidia-h100-80gb-hbm3"
    torch_version: str
    triton_version: str
    cuda_version: str
    gankern_commit: str
    python_version: str


def slugify(text: str) -> str:
    """Lower-case letters, digits and single dashes: a safe folder name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "unknown"


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: torch.device) -> str:
    """The GPU's name for CUDA devices, ``"CPU <model>"`` for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_name()}"


def triton_version() -> str:
    try:
        import triton
    except Exception as exc:  # report, never fail
        return f"unavailable ({type(exc).__name__})"
    return triton.__version__


def gankern_commit(repo: Path = REPO_ROOT) -> str:
    """``git rev-parse`` of the checkout, with ``+dirty`` when the measured code
    (gankern/, csrc/, benchmarks/ except results) has uncommitted changes; ``unknown``
    outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changes = git(
            "status", "--porcelain", "--", "gankern", "csrc", "benchmarks",
            ":(exclude)benchmarks/results",
        )
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if changes else "")


def collect_environment(device: torch.device) -> Environment:
    """Describe ``device`` and the software versions for the rows of one run."""
    name = device_name(device)
    return Environment(
        device=name,
        device_slug=slugify(name),
        torch_version=torch.__version__,
        triton_version=triton_version(),
        cuda_version=str(torch.version.cuda),
        gankern_commit=os.environ.get("GANKERN_COMMIT") or gankern_commit(),
        python_version=platform.python_version(),
    )


def timestamp() -> str:
    """The current UTC time, ISO 8601 to the second (sorts as text)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
