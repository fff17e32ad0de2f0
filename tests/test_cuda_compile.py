"""The CUDA sources build without a GPU: every kernel file compiles with nvcc and spills nothing,
and every binding file passes a C++ syntax check against torch's headers.

* ``csrc/kernels/*.cu`` (torch-free) are compiled with ``nvcc -c -std=c++17 -O3 -arch=sm_90
  -Xptxas -v``; the ptxas resource report must list at least one function and no spill
  stores or loads in any of them.
* ``csrc/bindings/*.cpp`` are checked with ``g++ -fsyntax-only -std=c++20`` (torch 2.13 builds
  extensions as C++20) against torch's include directories, the CUDA toolkit's and Python's.
  The CPU wheel of torch ships the ``c10/cuda`` headers but not the build-generated
  ``c10/cuda/impl/cuda_cmake_macros.h``; an empty stand-in is supplied (it only defines a
  macro about shared-library builds). Torch's headers are included as system headers, so
  ``-Werror`` applies to our own code only.

Skipped (with the reason) only when nvcc or g++ is not on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch.utils.cpp_extension

REPO = Path(__file__).resolve().parent.parent
KERNELS = sorted((REPO / "csrc" / "kernels").glob("*.cu"))
BINDINGS = sorted((REPO / "csrc" / "bindings").glob("*.cpp"))

_FUNCTION = re.compile(r"Function properties for (\S+)")
_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_spills(ptxas_report: str) -> dict[str, tuple[int, int]]:
    """``{function: (spill store bytes, spill load bytes)}`` from a ``ptxas -v`` report."""
    spills = {}
    function = None
    for line in ptxas_report.splitlines():
        match = _FUNCTION.search(line)
        if match:
            function = match.group(1)
            continue
        match = _SPILLS.search(line)
        if match and function is not None:
            spills[function] = (int(match.group(1)), int(match.group(2)))
            function = None
    return spills


def test_parse_spills_reads_a_ptxas_report():
    report = """\
ptxas info    : Compiling entry function '_Z3fooPf' for 'sm_90'
ptxas info    : Function properties for _Z3fooPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 12 registers, used 0 barriers, 360 bytes cmem[0]
ptxas info    : Compiling entry function '_Z3barPf' for 'sm_90'
ptxas info    : Function properties for _Z3barPf
    48 bytes stack frame, 40 bytes spill stores, 36 bytes spill loads
ptxas info    : Used 255 registers, used 0 barriers, 360 bytes cmem[0]
"""
    assert parse_spills(report) == {"_Z3fooPf": (0, 0), "_Z3barPf": (40, 36)}


def _nvcc() -> str:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    return nvcc


@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_without_spills(source: Path, tmp_path: Path):
    cmd = [
        _nvcc(), "-c", "-std=c++17", "-O3", "-arch=sm_90", "-Xptxas", "-v",
        "-I", str(REPO / "csrc"), str(source), "-o", str(tmp_path / (source.stem + ".o")),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"nvcc failed on {source.name}:\n{report}"
    spills = parse_spills(report)
    assert spills, f"no ptxas resource report for {source.name}:\n{report}"
    spilling = {name: s for name, s in spills.items() if s != (0, 0)}
    assert not spilling, f"{source.name}: functions that spill (stores, loads): {spilling}"


def _cuda_include() -> Path:
    nvcc = Path(_nvcc()).resolve()
    include = nvcc.parent.parent / "include"
    return include if (include / "cuda_runtime.h").exists() else Path("/usr/local/cuda/include")


@pytest.mark.parametrize("source", BINDINGS, ids=lambda p: p.name)
def test_binding_passes_syntax_check(source: Path, tmp_path: Path):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH")
    torch_includes = torch.utils.cpp_extension.include_paths()
    stand_in = tmp_path / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    if not any(Path(d, "c10/cuda/impl/cuda_cmake_macros.h").exists() for d in torch_includes):
        stand_in.parent.mkdir(parents=True)
        stand_in.write_text("#pragma once\n")
    system_includes = [*torch_includes, str(_cuda_include()), sysconfig.get_paths()["include"]]
    cmd = [
        gxx, "-fsyntax-only", "-std=c++20", "-Wall", "-Wextra", "-Wno-unused-parameter",
        "-Werror", "-DTORCH_EXTENSION_NAME=gankern_C", "-I", str(REPO / "csrc"),
        "-isystem", str(tmp_path),
    ]  # fmt: skip
    for include in system_includes:
        cmd += ["-isystem", include]
    result = subprocess.run([*cmd, str(source)], capture_output=True, text=True)
    assert result.returncode == 0, f"g++ -fsyntax-only failed on {source.name}:\n{result.stderr}"
