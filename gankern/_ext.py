"""Loading the CUDA C++ extension.

The kernels in ``csrc/kernels`` (torch-free CUDA) and their torch bindings in
``csrc/bindings`` form one extension. Its operators are registered under the
``torch.ops.gankern_cuda`` namespace (``TORCH_LIBRARY_FRAGMENT`` in each binding file), so
Python never calls into the module object itself.

Two ways to get it:

1. ahead of time: ``GANKERN_BUILD_CUDA=1 pip install ...`` builds ``gankern._C``;
2. just in time: on first use, from a source checkout, with ``torch.utils.cpp_extension.load``
   (ninja), cached under torch's extension directory by a hash of the sources, the GPU's
   compute capability and the torch/CUDA versions, so a change of any of them rebuilds.
   ``GANKERN_CUDA_JIT=0`` turns this off (the extension is then used only if it was built
   ahead of time; e.g. after a build that failed or ran out of time in another process).

Whatever happens, :func:`cuda_extension_status` returns the loaded module or the reason
there is none (no GPU, CPU build of torch, no nvcc, build error); callers turn that reason
into an error (``impl="cuda"``) or a one-time warning and a fallback (``impl="auto"``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import torch

_REPO_ROOT = Path(__file__).resolve().parent.parent
CSRC_DIR = _REPO_ROOT / "csrc"


def cuda_sources() -> list[Path]:
    """The extension's source files (kernels, then bindings), sorted for a stable hash."""
    kernels = sorted((CSRC_DIR / "kernels").glob("*.cu"))
    bindings = sorted((CSRC_DIR / "bindings").glob("*.cpp"))
    return kernels + bindings


def _build_key(sources: list[Path], capability: tuple[int, int]) -> str:
    h = hashlib.sha256()
    for path in sources + sorted((CSRC_DIR / "kernels").glob("*.h")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(f"sm{capability[0]}{capability[1]}".encode())
    h.update(torch.__version__.encode())
    h.update(str(torch.version.cuda).encode())
    return h.hexdigest()[:16]


def _jit_build():
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError("no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)")
    sources = cuda_sources()
    if not sources:
        raise RuntimeError(f"no CUDA sources found under {CSRC_DIR} (not a source checkout?)")
    major, minor = torch.cuda.get_device_capability()
    key = _build_key(sources, (major, minor))
    # Build for the GPU in hand only: faster builds, and sm_90a features on Hopper.
    arch = f"{major}.{minor}"
    old_arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch
    try:
        return cpp_extension.load(
            name=f"gankern_cuda_{key}",
            sources=[str(s) for s in sources],
            extra_include_paths=[str(CSRC_DIR)],
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", "-lineinfo"],
            verbose=os.environ.get("GANKERN_VERBOSE_BUILD", "0") == "1",
            is_python_module=True,
        )
    finally:
        if old_arch is None:
            os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
        else:
            os.environ["TORCH_CUDA_ARCH_LIST"] = old_arch


def _runtime_unavailable_reason() -> str | None:
    """Why this process cannot run CUDA code at all (None when it can)."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return "no CUDA device is available"
    return None


@functools.cache
def cuda_extension_status():
    """Return ``(module, None)`` when the CUDA extension is usable, else ``(None, reason)``.

    The build is attempted at most once per process; the result is cached.
    """
    reason = _runtime_unavailable_reason()
    if reason is not None:
        return None, reason
    try:
        from gankern import _C  # ahead-of-time build

        return _C, None
    except ImportError:
        pass
    if os.environ.get("GANKERN_CUDA_JIT", "1").strip() == "0":
        return None, "no ahead-of-time build, and GANKERN_CUDA_JIT=0 turns off the build on use"
    try:
        return _jit_build(), None
    except Exception as exc:  # a failed build must never take the process down
        text = str(exc).strip().splitlines()
        tail = " | ".join(text[-6:]) if text else type(exc).__name__
        return None, f"CUDA extension build failed: {tail}"


# Under torch.compile, the availability checks below are constants: Dynamo calls them once
# in plain Python while it traces and puts the answer into the graph, instead of tracing the
# import of gankern._C or the build (which stops a fullgraph=True trace with an exception).
# Callers inside ops must use these, never cuda_extension_status() itself.


@torch.compiler.assume_constant_result
def cuda_extension_unavailable_reason() -> str | None:
    """None when the CUDA extension is (or can be) loaded, otherwise why it cannot.

    A constant under ``torch.compile`` (see above).
    """
    return cuda_extension_status()[1]


@torch.compiler.assume_constant_result
def cuda_kernel_unavailable_reason(name: str) -> str | None:
    """None when the extension is loaded and registers ``torch.ops.gankern_cuda.<name>``.

    Otherwise why not (no extension, or a build older than the kernel). A constant under
    ``torch.compile`` (see above).

    Args:
        name: the operator's name in the ``gankern_cuda`` namespace, e.g.
            ``"modulated_conv2d_epilogue"``.
    """
    reason = cuda_extension_status()[1]
    if reason is not None:
        return reason
    if not hasattr(torch.ops.gankern_cuda, name):
        return f"the CUDA extension has no {name} kernel (stale build?)"
    return None
