"""Backend selection shared by every op.

Each op has one public function with an ``impl`` argument:

* ``"ref"``: plain PyTorch, any device and dtype; the specification.
* ``"triton"``: Triton kernels (CUDA tensors; CPU tensors too when ``TRITON_INTERPRET=1``).
* ``"cuda"``: the CUDA C++ extension (see :mod:`gankern._ext`).
* ``"auto"``: the first usable of cuda, triton, ref for the given inputs.

The environment variable ``GANKERN_IMPL`` replaces ``"auto"`` by a fixed choice. An
explicitly requested backend that cannot run raises :class:`BackendUnavailableError` with
the reason. ``"auto"`` uses the reference for non-CUDA inputs, and when it has to fall back
for CUDA inputs it warns once per op and reason.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from gankern._ext import cuda_extension_unavailable_reason

IMPLS = ("auto", "cuda", "triton", "ref")
BACKENDS = ("cuda", "triton", "ref")
FAST_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Each op's registry of fast backends (``FAST_BACKENDS`` in its module) maps a backend name
# to ``(reason, run)``: ``reason(*inputs)`` is None when the backend can run the call, else
# why it cannot; ``run(*inputs)`` runs it. ``inputs`` are the op's validated arguments, the
# same tuple for both, so that choosing a backend builds nothing per call.
FastBackends = Mapping[str, tuple[Callable[..., "str | None"], Callable[..., torch.Tensor]]]

_OPS_DIR = str(Path(__file__).resolve().parent)


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run these inputs."""


def check_impl(impl) -> str:
    """``impl`` itself when it is one of :data:`IMPLS`, else a ValueError naming it."""
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


def triton_interpreter_enabled() -> bool:
    """True when Triton runs kernels on the CPU (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@torch.compiler.assume_constant_result
def triton_import_error() -> str | None:
    """None when ``import triton`` works, else the reason (a constant under torch.compile)."""
    return _triton_import_error()


@functools.cache
def _triton_import_error() -> str | None:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else
        return f"triton is not importable ({type(exc).__name__}: {exc})"
    return None


def _fast_dtype_reason(backend: str, tensors: tuple[torch.Tensor, ...]) -> str | None:
    for t in tensors:
        if t.dtype not in FAST_DTYPES:
            return f"the {backend} backend supports float32, float16 and bfloat16, got {t.dtype}"
    return None


def triton_unavailable_reason(*tensors: torch.Tensor) -> str | None:
    """Why the Triton backend cannot run on ``tensors`` (None if it can)."""
    reason = triton_import_error()
    if reason:
        return reason
    device = tensors[0].device
    if device.type == "cpu":
        if not triton_interpreter_enabled():
            return "inputs are on the CPU (Triton runs CPU tensors only with TRITON_INTERPRET=1)"
        if any(t.dtype == torch.bfloat16 for t in tensors):
            return "the Triton interpreter has no bfloat16 arithmetic (use float32 on the CPU)"
    elif device.type != "cuda":
        return f"inputs are on {device.type}, Triton needs CUDA tensors"
    elif triton_interpreter_enabled():
        return "TRITON_INTERPRET=1 is set, so Triton cannot launch on CUDA tensors"
    return _fast_dtype_reason("triton", tensors)


def cuda_unavailable_reason(*tensors: torch.Tensor) -> str | None:
    """Why the CUDA C++ backend cannot run on ``tensors`` (None if it can)."""
    device = tensors[0].device
    if device.type != "cuda":
        return f"inputs are on {device.type}, the CUDA backend needs CUDA tensors"
    reason = _fast_dtype_reason("cuda", tensors)
    if reason:
        return reason
    return cuda_extension_unavailable_reason()


def require_cuda_extension(op: str) -> None:
    """Raise :class:`BackendUnavailableError` naming ``op`` unless the CUDA extension loads.

    For the custom ops' ``backend="cuda"`` paths, reachable without :func:`select_impl` when
    an op is called directly (``torch.ops.gankern.*``).
    """
    reason = cuda_extension_unavailable_reason()
    if reason is not None:
        raise BackendUnavailableError(f"gankern.ops.{op}: impl='cuda' unavailable: {reason}")


_warned: set[tuple[str, str]] = set()


def _user_stacklevel() -> int:
    """``warnings.warn``'s stacklevel (seen from its caller) of the first frame outside
    gankern.ops: the warning points at the code that called the op, however deep inside the
    ops it was raised (helpers, ops that call other ops)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_OPS_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _warn_fallback(op: str, chosen: str, reasons: Mapping[str, str]) -> None:
    text = "; ".join(f"{name}: {why}" for name, why in reasons.items())
    key = (op, text)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"gankern.ops.{op}: impl='auto' fell back to '{chosen}' ({text})",
        RuntimeWarning,
        stacklevel=_user_stacklevel(),
    )


def select_impl(
    op: str, impl: str, fast_backends: FastBackends, inputs: tuple, device: torch.device
) -> str:
    """Resolve ``impl`` into a backend name for one call of ``op``.

    Args:
        op: the op's name, for messages.
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"``.
        fast_backends: the op's registry (see :data:`FastBackends`); backends missing there
            are not offered.
        inputs: the arguments its ``reason`` functions take.
        device: the device of the inputs (to decide whether a fallback deserves a warning).
    """
    check_impl(impl)
    if impl == "auto":
        forced = os.environ.get("GANKERN_IMPL", "").strip()
        if forced and forced != "auto":
            if forced not in BACKENDS:
                raise ValueError(f"GANKERN_IMPL must be one of {IMPLS}, got {forced!r}")
            impl = forced
    if impl == "ref":
        return "ref"
    if impl != "auto":
        backend = fast_backends.get(impl)
        if backend is None:
            raise BackendUnavailableError(f"gankern.ops.{op} has no '{impl}' backend")
        reason = backend[0](*inputs)
        if reason is not None:
            raise BackendUnavailableError(f"gankern.ops.{op}: impl='{impl}' unavailable: {reason}")
        return impl
    if device.type != "cuda":
        # The Triton interpreter is a testing tool, not a backend: "auto" keeps CPU inputs
        # on the reference. Only an explicit impl="triton" runs it.
        return "ref"
    reasons: dict[str, str] = {}
    for name in ("cuda", "triton"):
        backend = fast_backends.get(name)
        if backend is None:
            continue
        reason = backend[0](*inputs)
        if reason is None:
            if reasons:
                _warn_fallback(op, name, reasons)
            return name
        reasons[name] = reason
    _warn_fallback(op, "ref", reasons)
    return "ref"


def backend_report(fast_backends: Mapping[str, Mapping], device: torch.device) -> dict:
    """For each op, each backend's availability on ``device``: None (usable) or the reason.

    ``fast_backends`` maps an op name to its registry of fast backends (``FAST_BACKENDS`` in
    the op's module). The reasons are the environment's (device, Triton, extension build);
    an op may still decline particular inputs at call time.
    """
    probe = torch.zeros(1, device=device)
    report = {}
    for op, registry in fast_backends.items():
        row = {}
        checks = (("cuda", cuda_unavailable_reason), ("triton", triton_unavailable_reason))
        for name, check in checks:
            row[name] = check(probe) if name in registry else "not implemented for this op"
        row["ref"] = None
        report[op] = row
    return report
