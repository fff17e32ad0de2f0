"""Compile the package's Triton kernels for an H100 (sm_90) on a machine without a GPU.

The Triton interpreter that runs the kernels in CI accepts programs the GPU compiler rejects
(Triton turns an integer argument equal to 1 into a constant, whose methods then differ; a
kernel may need more shared memory or registers than the GPU has). This module closes that
gap without a GPU.

:func:`compile_launches` starts a fresh Python process without ``TRITON_INTERPRET`` that
calls a *driver*: a test function that runs the package's ops on small CPU tensors. Every
kernel launch is caught before it reaches a device (``JITFunction.run`` is replaced) and
turned into the compile the launcher would do on an H100: Triton's own argument
specialization (an integer equal to 1 becomes a constant, 16-aligned pointers and multiples
of 16 are marked), the launch's constexprs and options (``num_warps``, ``num_stages``), the
sm_90 target. So the variants come from the code that launches the kernels, not from a copy
of its configuration. Each distinct specialization is compiled once, through Triton's front
end and ptxas. The shared memory comes from the compiled metadata (``shared``, what the
launcher requests); Triton fills ``n_regs`` and ``n_spills`` only when it loads the cubin on
a device, so registers and local memory (spills: Triton kernels allocate no other local
memory) are read from the cubin with ``cuobjdump -res-usage``, as the driver would report.

ptxas decides the spills, and its versions differ (Triton 3.6 ships ptxas 12.8, Triton 3.9
ptxas 13.4): the launchers' configurations were chosen to compile without spills under both.

While the driver runs, the ops see CPU tensors as Triton-capable (``GANKERN_IMPL=triton``,
the Triton availability checks of :data:`gankern.ops.OP_BACKENDS` answer "available") and
``torch.cuda.get_device_properties`` describes an H100 SXM. The kernels never run, so the
tensors they would write hold garbage: drivers only launch, they do not check values.

Run by hand: ``python tests/triton_offline_compile.py MODULE:FUNCTION`` (MODULE importable
from ``tests/``) prints one JSON line per compiled variant.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# The H100's limits (CUDA C Programming Guide, compute capability 9.0).
SM90_MAX_SHARED_BYTES = 227 * 1024  # per block, after the opt-in Triton's launcher makes
SM90_REGISTERS_PER_BLOCK = 64 * 1024
SM90_MAX_GRID_YZ = 65535
SM90_MAX_GRID_X = 2**31 - 1

RESULT_PREFIX = "COMPILED "
SKIP_PREFIX = "SKIP: "


@dataclass
class CompiledVariant:
    """One distinct launch specialization of a kernel and what its sm_90 compile gave."""

    kernel: str  # the kernel function's name
    constexprs: dict  # the declared constexpr parameters (name -> value)
    constants: dict  # non-constexpr arguments Triton specialized into constants (value 1)
    types: dict  # argument name -> Triton type ("*fp16", "i32", "fp32", ...)
    num_warps: int
    num_stages: int
    grids: list  # the launch grids seen with this specialization
    divisible: list = field(default_factory=list)  # arguments specialized as multiples of 16
    error: str | None = None  # the compile error, None when it compiled
    n_regs: int = 0  # registers per thread
    local_bytes: int = 0  # per-thread stack + local memory: spills (Triton allocates none)
    shared_bytes: int = 0  # Triton's shared-memory allocation + static shared memory
    compile_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def label(self) -> str:
        pointers = sorted({t for t in self.types.values() if t.startswith("*")})
        const = ", ".join(f"{k}={v}" for k, v in self.constexprs.items())
        ones = ", ".join(self.constants)
        return (
            f"{self.kernel}[{'/'.join(pointers)}; {const}; warps={self.num_warps}, "
            f"stages={self.num_stages}" + (f"; ones: {ones}" if ones else "") + "]"
        )


def sm90_problems(v: CompiledVariant) -> list[str]:
    """Why ``v`` would fail or be slow on an H100: compile error, spills, too many resources."""
    if v.error is not None:
        return [f"{v.label()}: does not compile for sm_90:\n{v.error}"]
    problems = []
    if v.local_bytes > 0:
        problems.append(f"{v.label()}: spills ({v.local_bytes} bytes of local memory per thread)")
    if v.shared_bytes > SM90_MAX_SHARED_BYTES:
        problems.append(
            f"{v.label()}: needs {v.shared_bytes} bytes of shared memory, "
            f"sm_90 allows {SM90_MAX_SHARED_BYTES}"
        )
    threads = 32 * v.num_warps
    if v.n_regs * threads > SM90_REGISTERS_PER_BLOCK:
        problems.append(
            f"{v.label()}: {v.n_regs} registers x {threads} threads exceed the "
            f"{SM90_REGISTERS_PER_BLOCK} registers of a block"
        )
    for grid in v.grids:
        if grid[0] > SM90_MAX_GRID_X or any(g > SM90_MAX_GRID_YZ for g in grid[1:]):
            problems.append(f"{v.label()}: grid {grid} exceeds CUDA's grid limits")
    return problems


def compile_launches(driver: str, timeout: float = 300) -> list[CompiledVariant]:
    """Compile for sm_90 every distinct kernel launch that ``driver`` makes.

    ``driver`` is ``"module:function"``, the module importable from ``tests/``. Skips the
    calling test (pytest.skip) when this Triton has no offline compile entry point; fails it
    when the process fails. Compile errors of single variants come back in
    :attr:`CompiledVariant.error`, so that one test reports all of them.
    """
    import pytest

    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton's default, without its warning
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), driver],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip
    output = result.stdout + result.stderr
    if result.returncode == 0 and result.stdout.startswith(SKIP_PREFIX):
        pytest.skip(result.stdout.splitlines()[0][len(SKIP_PREFIX) :])
    assert result.returncode == 0, f"offline compile process failed:\n{output[-8000:]}"
    variants = [
        CompiledVariant(**json.loads(line[len(RESULT_PREFIX) :]))
        for line in result.stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    assert variants, f"the driver {driver} launched no Triton kernel:\n{output[-8000:]}"
    return variants


def summary(variants: list[CompiledVariant]) -> str:
    """One line per variant: registers, local memory, shared memory, compile time."""
    return "\n".join(
        f"{v.n_regs:3d} regs {v.local_bytes:5d} B local {v.shared_bytes:6d} B shared "
        f"{v.compile_s:5.1f} s  {v.label()}"
        for v in variants
    )


def seen(variants: list[CompiledVariant], kernel: str, name: str) -> set:
    """The values the constexpr (or argument type) ``name`` of ``kernel`` took."""
    values = set()
    for v in variants:
        if v.kernel == kernel:
            values.add(v.constexprs[name] if name in v.constexprs else v.types.get(name))
    return values


# ----------------------------------------------------------------------------------------
# The child process.


def _pretend_triton_runs_on_cpu_tensors() -> None:
    """Make the ops take their Triton path for CPU tensors, as they would for CUDA ones."""
    from types import SimpleNamespace

    import torch

    import gankern.ops

    os.environ["GANKERN_IMPL"] = "triton"
    for registry in gankern.ops.OP_BACKENDS.values():
        if "triton" in registry:
            registry["triton"] = (lambda *args: None, registry["triton"][1])
    h100 = SimpleNamespace(
        name="NVIDIA H100 80GB HBM3", major=9, minor=0, multi_processor_count=132,
        total_memory=80 * 2**30, warp_size=32, max_threads_per_multi_processor=2048,
        L2_cache_size=50 * 2**20, regs_per_multiprocessor=65536,
    )  # fmt: skip
    torch.cuda.get_device_properties = lambda device=None: h100


class _Recorder:
    """Replaces ``JITFunction.run``: each launch is specialized as the launcher would."""

    def __init__(self, backend, knobs):
        from triton.runtime.jit import create_function_from_signature

        self.backend = backend
        self.knobs = knobs
        self.make_binder = create_function_from_signature
        self.binders = {}
        self.launches = {}  # key -> [kernel, kwargs, bound args, specialization, options, grids]

    def run(self, kernel, args, kwargs, grid):
        kwargs = dict(kwargs)
        # As JITFunction.run fills them before binding (so the options match a real launch).
        kwargs["debug"] = kwargs.get("debug", kernel.debug) or self.knobs.runtime.debug
        for name in ("instrumentation_mode", "fpsan_homomorphic_casts"):
            if hasattr(self.knobs.compilation, name):
                kwargs[name] = getattr(self.knobs.compilation, name)
        if kernel not in self.binders:
            self.binders[kernel] = self.make_binder(kernel.signature, kernel.params, self.backend)
        bound, specialization, options = self.binders[kernel](*args, **kwargs)
        key = (id(kernel), repr(specialization), repr(sorted(options.items())))
        grid = tuple(grid(bound) if callable(grid) else grid) + (1, 1)
        entry = self.launches.setdefault(key, [kernel, kwargs, bound, specialization, options, []])
        if list(grid[:3]) not in entry[5]:
            entry[5].append(list(grid[:3]))


def _describe(kernel, bound, specialization, options, grids) -> dict:
    constexprs, constants, types, divisible = {}, {}, {}, []
    for param, (kind, key) in zip(kernel.params, specialization, strict=True):
        value = bound[param.name]
        if param.is_constexpr:
            constexprs[param.name] = value if isinstance(value, (int, float, str)) else repr(value)
        elif kind == "constexpr":
            constants[param.name] = value
        else:
            types[param.name] = kind
            if key == "D":  # Triton's mark of an integer (or address) divisible by 16
                divisible.append(param.name)
    return dict(
        kernel=kernel.fn.__name__, constexprs=constexprs, constants=constants, types=types,
        num_warps=options.get("num_warps", 4), num_stages=options.get("num_stages", 3),
        grids=grids, divisible=divisible,
    )  # fmt: skip


# Instruction classes counted in each compiled variant (``CompiledVariant.extra["ops"]``):
# name -> (where: "ptx" or "sass", regular expression). PTX names the intent (the width of a
# load, an asynchronous copy); SASS is what runs (HGMMA is wgmma's tensor-core instruction,
# LDGSTS the asynchronous global-to-shared copy, UTMALDG the tensor-memory-accelerator load).
OP_PATTERNS = {
    "wgmma": ("ptx", r"\bwgmma\.mma_async\b"),
    "mma_sync": ("ptx", r"\bmma\.sync\b"),
    "cp_async_16": ("ptx", r"\bcp\.async\.c[ag]\.shared\.global[^;]*\],\s*(16|0x10)\b"),
    "cp_async_small": ("ptx", r"\bcp\.async\.c[ag]\.shared\.global[^;]*\],\s*(4|8|0x4|0x8)\b"),
    "tma_load": ("ptx", r"\bcp\.async\.bulk\.tensor\b"),
    "ld_global_v4": ("ptx", r"\bld\.global(\.[a-z0-9_:]+)*\.v4\.(b|u|f|s)32\b"),
    "ld_global_16bit": ("ptx", r"\bld\.global(\.[a-z0-9_:]+)*\.(b|u|f|s)16\b"),
    "st_global_v4": ("ptx", r"\bst\.global(\.[a-z0-9_:]+)*\.v4\.(b|u|f|s)32\b"),
    "st_global_16bit": ("ptx", r"\bst\.global(\.[a-z0-9_:]+)*\.(b|u|f|s)16\b"),
    "HGMMA": ("sass", r"\bHGMMA\."),
    "HMMA": ("sass", r"\bHMMA\."),
    "LDGSTS_128": ("sass", r"\bLDGSTS(\.[A-Z0-9_]+)*\.128\b"),
    "UTMALDG": ("sass", r"\bUTMALDG\b"),
    "LDG_128": ("sass", r"\bLDG(\.[A-Z0-9_]+)*\.128\b"),
    "LDG_16bit": ("sass", r"\bLDG(\.[A-Z0-9_]+)*\.(U|S)16\b"),
    "STG_128": ("sass", r"\bSTG(\.[A-Z0-9_]+)*\.128\b"),
    "LDL_STL": ("sass", r"\b(LDL|STL)\b"),
}


def count_ops(ptx: str, sass: str) -> dict[str, int]:
    """How often each class of :data:`OP_PATTERNS` occurs in a kernel's PTX and SASS."""
    import re

    texts = {"ptx": ptx, "sass": sass}
    return {name: len(re.findall(pat, texts[where])) for name, (where, pat) in OP_PATTERNS.items()}


def mma_loop(ptx: str) -> str:
    """The PTX of the innermost loop that holds the kernel's first matrix instruction
    (``wgmma.mma_async`` or ``mma.sync``): from the loop's label to its last backward branch.

    Empty when the kernel has no matrix instruction or it sits in no loop. For a software-
    pipelined GEMM this is the steady-state loop: the loads it issues are the ones that feed
    later iterations (the prologue's and the epilogue's lie outside).
    """
    import re

    lines = ptx.splitlines()
    first = next(
        (
            i
            for i, line in enumerate(lines)
            if re.search(r"\bwgmma\.mma_async\b|\bmma\.sync\b", line)
        ),
        None,
    )
    if first is None:
        return ""
    best = None
    for i in range(first, -1, -1):
        label = re.match(r"\s*(\$L__\w+):", lines[i])
        if not label:
            continue
        branch = re.compile(r"\bbra(\.uni)?\s+" + re.escape(label.group(1)) + r"\s*;")
        ends = [j for j in range(first, len(lines)) if branch.search(lines[j])]
        if ends:
            best = (i, ends[-1])
            break
    return "" if best is None else "\n".join(lines[best[0] : best[1] + 1])


def _sass(cubin: bytes, cuobjdump: str) -> str:
    """The SASS of a cubin (``cuobjdump -sass``)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        return subprocess.run(
            [cuobjdump, "-sass", fh.name], capture_output=True, text=True, check=True
        ).stdout


def _resources(cubin: bytes, cuobjdump: str) -> tuple[int, int, int]:
    """``(registers, stack + local bytes, static shared bytes)`` of the cubin's kernel."""
    import re
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".cubin") as fh:
        fh.write(cubin)
        fh.flush()
        text = subprocess.run(
            [cuobjdump, "-res-usage", fh.name], capture_output=True, text=True, check=True
        ).stdout
    usage = dict(re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", text))
    if "REG" not in usage:
        raise RuntimeError(f"no resource usage in cuobjdump's output:\n{text}")
    return int(usage["REG"]), int(usage["STACK"]) + int(usage["LOCAL"]), int(usage["SHARED"])


def _child(driver: str) -> None:
    import importlib
    import shutil
    import time
    import traceback

    try:
        import triton
        from triton import knobs
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource, make_backend
        from triton.runtime.jit import JITFunction, create_function_from_signature  # noqa: F401

        target = GPUTarget("cuda", 90, 32)
        backend = make_backend(target)
        cuobjdump = knobs.nvidia.cuobjdump.path or shutil.which("cuobjdump")
    except Exception as exc:
        print(f"{SKIP_PREFIX}no offline Triton compile entry point ({type(exc).__name__}: {exc})")
        return

    recorder = _Recorder(backend, knobs)

    def run(self, *args, grid, warmup, **kwargs):
        recorder.run(self, args, kwargs, grid)

    JITFunction.run = run
    _pretend_triton_runs_on_cpu_tensors()
    module, function = driver.split(":")
    getattr(importlib.import_module(module), function)()

    for kernel, kwargs, bound, specialization, options, grids in recorder.launches.values():
        record = _describe(kernel, bound, specialization, options, grids)
        start = time.perf_counter()
        try:
            parsed, signature, constexprs, attrs = kernel._pack_args(
                backend, kwargs, bound, specialization, options
            )
            source = ASTSource(kernel, signature, constexprs, attrs)
            compiled = triton.compile(source, target=target, options=parsed.__dict__)
            n_regs, local, static_shared = _resources(compiled.asm["cubin"], cuobjdump)
            record.update(
                n_regs=n_regs, local_bytes=local,
                shared_bytes=int(compiled.metadata.shared) + static_shared,
            )  # fmt: skip
            sass = _sass(compiled.asm["cubin"], cuobjdump)
            record["extra"] = {
                "ops": count_ops(compiled.asm["ptx"], sass),
                "mma_loop_ops": count_ops(mma_loop(compiled.asm["ptx"]), ""),
            }
        except Exception:
            record["error"] = traceback.format_exc(limit=-3)[-4000:]
        record["compile_s"] = round(time.perf_counter() - start, 2)
        print(RESULT_PREFIX + json.dumps(record, default=repr), flush=True)


if __name__ == "__main__":
    _child(sys.argv[1])
