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


_COMPILED: dict[Path, tuple[Path, str]] = {}


def _compile(source: Path, tmp_dir: Path) -> tuple[Path, str]:
    """``(object file, ptxas report)`` of ``source`` for sm_90 (compiled once per session)."""
    if source not in _COMPILED:
        obj = tmp_dir / (source.stem + ".o")
        cmd = [
            _nvcc(), "-c", "-std=c++17", "-O3", "-arch=sm_90", "-Xptxas", "-v",
            "-I", str(REPO / "csrc"), str(source), "-o", str(obj),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        report = result.stdout + result.stderr
        assert result.returncode == 0, f"nvcc failed on {source.name}:\n{report}"
        _COMPILED[source] = (obj, report)
    return _COMPILED[source]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cuda_compile")


@pytest.mark.parametrize("source", KERNELS, ids=lambda p: p.name)
def test_kernel_compiles_without_spills(source: Path, build_dir: Path):
    _, report = _compile(source, build_dir)
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


# ----------------------------------------------------------------------------------------
# The instruction mix of the compiled kernels (SASS), so that a lost vector path shows here.


def _cuobjdump() -> str:
    found = shutil.which("cuobjdump") or str(Path(_nvcc()).resolve().parent / "cuobjdump")
    if Path(found).exists():
        return found
    try:  # Triton ships one
        from triton import knobs

        path = knobs.nvidia.cuobjdump.path
    except Exception:  # noqa: BLE001 - any failure means: no cuobjdump from Triton
        path = None
    if not path or not Path(path).exists():
        pytest.skip("cuobjdump is not available")
    return path


def sass_functions(obj: Path) -> dict[str, str]:
    """``{mangled kernel name: SASS}`` of an object file (``cuobjdump -sass``)."""
    text = subprocess.run(
        [_cuobjdump(), "-sass", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    parts = re.split(r"\n\s*Function : (\S+)", text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def ptx_functions(obj: Path) -> dict[str, str]:
    """``{mangled kernel name: PTX}`` of an object file (``cuobjdump -ptx``; nvcc's
    ``-arch=sm_90`` embeds the PTX next to the machine code)."""
    text = subprocess.run(
        [_cuobjdump(), "-ptx", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    parts = re.split(r"\.entry\s+(\S+?)\(", text)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


_DIV64 = re.compile(r"\b(div|rem)\.(s|u)64\b")
_LDG128 = re.compile(r"\bLDG(\.[A-Z0-9_]+)*\.128\b")
_STG128 = re.compile(r"\bSTG(\.[A-Z0-9_]+)*\.128\b")
_LAST_BOOL = re.compile(r"Lb([01])EEEv")  # the last bool template argument (VEC)


def _kernel(name: str, mangled: str) -> bool:
    return re.search(rf"\d{name}I", mangled) is not None


def test_sass_bias_act_streams_16_byte_vectors(build_dir: Path):
    """bias_act's elementwise kernels and the vector variants of the gradient kernel with the
    bias-gradient sums load and store 16-byte vectors (LDG.E.128 / STG.E.128)."""
    functions = sass_functions(_compile(REPO / "csrc/kernels/bias_act.cu", build_dir)[0])
    problems, checked = [], 0
    for name, sass in functions.items():
        vec = _kernel("bias_act_kernel", name) or (
            _kernel("bias_act_grad_db_kernel", name) and _LAST_BOOL.search(name).group(1) == "1"
        )
        if not vec:
            continue
        checked += 1
        if not _LDG128.search(sass) or not _STG128.search(sass):
            problems.append(f"{name}: no 16-byte vector loads/stores (LDG/STG.E.128) any more")
    assert checked >= 2 * 27, f"only {checked} kernels checked"
    assert not problems, "\n".join(problems)


def test_sass_modconv_epilogue_vectors_and_no_64_bit_division(build_dir: Path):
    """The epilogue kernel's 32-bit paths divide by multiply-shift (no 64-bit division or
    modulo in their PTX), and its packed path moves 16-byte vectors."""
    obj = _compile(REPO / "csrc/kernels/modulated_conv2d.cu", build_dir)[0]
    functions, ptx = sass_functions(obj), ptx_functions(obj)
    problems, checked = [], 0
    for name, sass in functions.items():
        if not _kernel("epilogue_kernel", name):
            continue
        checked += 1
        if _DIV64.search(ptx[name]):
            problems.append(f"{name}: 64-bit integer division or modulo in the 32-bit path")
        if _LAST_BOOL.search(name).group(1) == "1" and not (
            _LDG128.search(sass) and _STG128.search(sass)
        ):
            problems.append(f"{name}: the packed path lost its 16-byte loads/stores")
    assert checked == 4 * 27, f"{checked} epilogue kernels instead of 108"
    assert not problems, "\n".join(problems)


def test_sass_upfirdn2d_tiles_stage_16_byte_vectors(build_dir: Path):
    """Every tiled upfirdn2d kernel stages its input window with 16-byte vector loads."""
    functions = sass_functions(_compile(REPO / "csrc/kernels/upfirdn2d.cu", build_dir)[0])
    tiled = {n: s for n, s in functions.items() if _kernel("tiled_kernel", n)}
    assert tiled, "no tiled kernel found in the SASS"
    missing = [n for n, s in tiled.items() if not _LDG128.search(s)]
    assert not missing, f"tiled kernels without 16-byte staging loads (LDG.E.128): {missing}"
