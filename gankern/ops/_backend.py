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

Under ``torch.compile`` the choice is made while Dynamo traces, and everything it depends on
besides the inputs' device and dtypes (Triton importable, the CUDA extension loadable,
``GANKERN_IMPL``, ``TRITON_INTERPRET``) is a constant: each such check is a
``torch.compiler.assume_constant_result`` function, which Dynamo calls once in plain Python
instead of tracing it. The fallback warning is given the same way, so a fallback inside a
``fullgraph=True`` region warns (once, at trace time) instead of breaking the graph.

TF32 (one rule for every backend): float32 convolutions may use TF32 exactly when PyTorch
allows it for cuDNN convolutions (``torch.backends.cudnn.allow_tf32``, on by default;
``torch.backends.cudnn.conv.fp32_precision`` in the newer API), whatever backend runs them:
the reference and the ``cuda`` backend through cuDNN itself, the Triton implicit-GEMM
convolution of ``modulated_conv2d`` (forward and weight gradient) by asking
:func:`conv_allows_tf32` at each launch. Matrix products follow
``torch.backends.cuda.matmul.allow_tf32`` (off by default), as in PyTorch: the only one is
the fused backends' small demodulation product.
"""

from __future__ import annotations

import contextlib
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


def on_gpu(device: torch.device) -> bool:
    """True for the devices the fast backends serve (CUDA): the one place that asks.

    The tests of the dispatch under ``torch.compile`` answer it for ``meta`` tensors as a GPU
    would (tests/test_compile_dispatch.py), so a CPU machine traces the GPU branches.
    """
    return device.type == "cuda"


@torch.compiler.assume_constant_result
def triton_interpreter_enabled() -> bool:
    """True when Triton runs kernels on the CPU (``TRITON_INTERPRET=1``; constant under compile)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@torch.compiler.assume_constant_result
def forced_impl() -> str:
    """``GANKERN_IMPL`` (stripped; "" when unset), a constant under ``torch.compile``."""
    return os.environ.get("GANKERN_IMPL", "").strip()


def _fp32_precision_allows_tf32(*modules) -> bool | None:
    """PyTorch's newer precision API: the first of ``modules``' ``fp32_precision`` that is not
    "none" decides (an op inherits from its backend, a backend from the global setting);
    None when this torch has no such API."""
    for module in modules:
        precision = getattr(module, "fp32_precision", None)
        if precision is None:
            return None
        if precision != "none":
            return precision == "tf32"
    return False


def conv_allows_tf32() -> bool:
    """Whether float32 convolutions may use TF32: PyTorch's setting for cuDNN convolutions.

    ``torch.backends.cudnn.conv.fp32_precision`` (inheriting from
    ``torch.backends.cudnn.fp32_precision``, then ``torch.backends.fp32_precision``) where
    torch has it, else ``torch.backends.cudnn.allow_tf32``. Read at each launch, as cuDNN
    reads it; see the module docstring for the rule.
    """
    cudnn = torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if conv is not None:
        allowed = _fp32_precision_allows_tf32(conv, cudnn, torch.backends)
        if allowed is not None:
            return allowed
    return bool(cudnn.allow_tf32)


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
    if on_gpu(device):
        if triton_interpreter_enabled():
            return "TRITON_INTERPRET=1 is set, so Triton cannot launch on CUDA tensors"
    elif device.type == "cpu":
        if not triton_interpreter_enabled():
            return "inputs are on the CPU (Triton runs CPU tensors only with TRITON_INTERPRET=1)"
        if any(t.dtype == torch.bfloat16 for t in tensors):
            return "the Triton interpreter has no bfloat16 arithmetic (use float32 on the CPU)"
    else:
        return f"inputs are on {device.type}, Triton needs CUDA tensors"
    return _fast_dtype_reason("triton", tensors)


def cuda_unavailable_reason(*tensors: torch.Tensor) -> str | None:
    """Why the CUDA C++ backend cannot run on ``tensors`` (None if it can)."""
    device = tensors[0].device
    if not on_gpu(device):
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
_recorders: list[list[tuple[str, str]]] = []


def _user_stacklevel() -> int:
    """``warnings.warn``'s stacklevel (seen from its caller) of the first frame outside
    gankern.ops: the warning points at the code that called the op, however deep inside the
    ops it was raised (helpers, ops that call other ops). Under torch.compile that frame is
    Dynamo's (the warning is given while it traces)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_OPS_DIR):
        frame, level = frame.f_back, level + 1
    return level


@torch.compiler.assume_constant_result
def _report_choice(op: str, chosen: str, fallback: str) -> None:
    """Record ``chosen`` for :func:`record_backends`; warn once per op and reason if
    ``fallback`` (the reasons the faster backends declined, "" when none did).

    Dynamo runs this in plain Python while it traces (``sys._getframe`` and
    ``warnings.warn`` cannot be traced), so under ``torch.compile`` it happens once per
    trace, not per call.
    """
    for chosen_list in _recorders:
        chosen_list.append((op, chosen))
    if not fallback or (op, fallback) in _warned:
        return None
    _warned.add((op, fallback))
    warnings.warn(
        f"gankern.ops.{op}: impl='auto' fell back to '{chosen}' ({fallback})",
        RuntimeWarning,
        stacklevel=_user_stacklevel(),
    )
    return None


@contextlib.contextmanager
def record_backends():
    """Record which backend each op call inside the block ran, as ``(op, backend)`` pairs.

    ::

        with record_backends() as ran:
            y = bias_act(x, b)
        assert ran == [("bias_act", "cuda")]

    Calls that an op makes to other ops are recorded too, in call order. Under
    ``torch.compile`` the choice is made while tracing, so only calls traced inside the
    block are recorded (once per trace).
    """
    chosen: list[tuple[str, str]] = []
    _recorders.append(chosen)
    try:
        yield chosen
    finally:
        _recorders.remove(chosen)


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
    chosen, fallback = _resolve(op, impl, fast_backends, inputs, device)
    _report_choice(op, chosen, fallback)
    return chosen


def _resolve(op, impl, fast_backends, inputs, device) -> tuple[str, str]:
    """``(backend, fallback)`` for :func:`select_impl`; ``fallback`` is the text of the
    reasons the faster backends declined ("" when ``auto`` got the first, or was not asked)."""
    check_impl(impl)
    if impl == "auto":
        forced = forced_impl()
        if forced and forced != "auto":
            if forced not in BACKENDS:
                raise ValueError(f"GANKERN_IMPL must be one of {IMPLS}, got {forced!r}")
            impl = forced
    if impl == "ref":
        return "ref", ""
    if impl != "auto":
        backend = fast_backends.get(impl)
        if backend is None:
            raise BackendUnavailableError(f"gankern.ops.{op} has no '{impl}' backend")
        reason = backend[0](*inputs)
        if reason is not None:
            raise BackendUnavailableError(f"gankern.ops.{op}: impl='{impl}' unavailable: {reason}")
        return impl, ""
    if not on_gpu(device):
        # The Triton interpreter is a testing tool, not a backend: "auto" keeps CPU inputs
        # on the reference. Only an explicit impl="triton" runs it.
        return "ref", ""
    reasons: list[str] = []
    for name in ("cuda", "triton"):
        backend = fast_backends.get(name)
        if backend is None:
            continue
        reason = backend[0](*inputs)
        if reason is None:
            return name, "; ".join(reasons)
        reasons.append(f"{name}: {reason}")
    return "ref", "; ".join(reasons)


def forced_impl_error() -> str | None:
    """Why ``GANKERN_IMPL`` is not a valid choice (None when unset or valid)."""
    forced = forced_impl()
    if forced and forced not in IMPLS:
        return f"GANKERN_IMPL must be one of {', '.join(IMPLS)} (or unset), got {forced!r}"
    return None


def require_backend(impl: str, device: torch.device | str, what: str = "impl") -> str:
    """Check before any work that ``impl`` (with ``GANKERN_IMPL`` for ``"auto"``) can run on
    ``device``; returns the backend it forces (``"auto"`` when none is forced).

    Args:
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"``.
        device: where the ops will run.
        what: how messages name ``impl`` (``"--impl"``).

    Raises:
        ValueError: ``impl`` or ``GANKERN_IMPL`` is not a backend name.
        BackendUnavailableError: the backend cannot run on ``device`` (with the reason).
    """
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"{what} must be one of {', '.join(IMPLS)}, got {impl!r}")
    error = forced_impl_error()
    if error:
        raise ValueError(error)
    source = what
    if impl == "auto" and forced_impl() not in ("", "auto"):
        impl, source = forced_impl(), "GANKERN_IMPL"
    if impl in ("auto", "ref"):
        return impl
    check = cuda_unavailable_reason if impl == "cuda" else triton_unavailable_reason
    reason = check(torch.zeros(1, device=device))
    if reason is not None:
        named = f"{source} {impl}" if source.startswith("--") else f"{source}={impl}"
        raise BackendUnavailableError(f"{named} cannot run on {torch.device(device)}: {reason} "
                                      f"(use {impl} on a GPU, or auto/ref here)")
    return impl


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
