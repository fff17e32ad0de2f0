"""The GPU branches of the ops' dispatch under ``torch.compile(fullgraph=True)``, on a CPU.

On a GPU, ``impl="auto"`` picks a backend while Dynamo traces: it asks whether the CUDA
extension loads, whether Triton runs, and may warn about a fallback. Those questions must be
constants under compile (Dynamo must not trace the import of ``gankern._C`` or a build) and
the warning must not break the graph. A CPU machine never takes those branches by itself, so
these tests answer the device checks as a GPU would: ``meta`` tensors count as GPU tensors
(``gankern.ops._backend.on_gpu``), the Triton interpreter is off, the CUDA runtime is present
and the extension "loads" (a stand-in module) or "fails to build". The compiled graphs run on
the meta tensors (shapes only: the custom ops' fake kernels), forward and backward
(``aot_eager`` traces the backward as well), so no GPU kernel is needed.

For each op: the CUDA backend chosen, and fallbacks (float64, lrelu with a negative alpha,
the extension unavailable) that must warn once, not crash.
"""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch

import gankern
import gankern._ext as ext
from gankern.ops import _backend, bias_act, modulated_conv2d, upfirdn2d
from gankern.ops._backend import record_backends

META = torch.device("meta")


@pytest.fixture
def gpu_answers(monkeypatch, request):
    """The device checks answered as on a GPU machine; ``request.param``: does the
    extension load ("loads") or fail to build ("build fails")?"""
    monkeypatch.setattr(_backend, "on_gpu", lambda device: device.type in ("cuda", "meta"))
    monkeypatch.setattr(_backend, "triton_interpreter_enabled", lambda: False)
    monkeypatch.setattr(_backend, "_warned", set())
    monkeypatch.setattr(ext, "_runtime_unavailable_reason", lambda: None)
    lib = None
    if request.param == "loads":
        monkeypatch.setattr(ext, "_jit_build", lambda: types.SimpleNamespace())
        if not hasattr(torch.ops.gankern_cuda, "modulated_conv2d_epilogue"):
            # modulated_conv2d's cuda backend asks for this kernel by name.
            lib = torch.library.Library("gankern_cuda", "FRAGMENT")
            lib.define(
                "modulated_conv2d_epilogue(Tensor z, Tensor? post, Tensor? noise, Tensor? bias, "
                "int act, float alpha, float gain, float clamp) -> Tensor"
            )
    else:

        def fail():
            raise RuntimeError("nvcc: planted build failure")

        monkeypatch.setattr(ext, "_jit_build", fail)
    # No ahead-of-time build either: `from gankern import _C` raises ImportError.
    monkeypatch.delattr(gankern, "_C", raising=False)
    monkeypatch.setitem(sys.modules, "gankern._C", None)
    ext.cuda_extension_status.cache_clear()
    torch._dynamo.reset()
    yield request.param
    torch._dynamo.reset()
    ext.cuda_extension_status.cache_clear()
    if lib is not None:
        lib._destroy()


def _compile_and_run(fn, *inputs):
    """``fn`` compiled with fullgraph=True (aot_eager), run forward and backward on meta
    tensors; returns the output and what the dispatch chose while tracing."""
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    with record_backends() as ran:
        y = compiled(*inputs)
    y.sum().backward()
    assert y.device == META
    assert all(t.grad is not None for t in inputs if t.requires_grad)
    return y, ran


def _meta(*shape, dtype=torch.float32, grad=True):
    return torch.randn(*shape, device=META, dtype=dtype, requires_grad=grad)


@pytest.mark.parametrize("gpu_answers", ["loads"], indirect=True)
def test_compiled_dispatch_takes_the_cuda_backend(gpu_answers):
    x, b = _meta(2, 6, 5, 7), _meta(6)
    f = torch.ones(4, 4, device=META) / 16
    w, s = _meta(5, 6, 3, 3), _meta(2, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        _, ran = _compile_and_run(lambda x, b: bias_act(x, b, act="lrelu", clamp=256), x, b)
        assert ran == [("bias_act", "cuda")]
        _, ran = _compile_and_run(lambda x: upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1]), x)
        assert ran == [("upfirdn2d", "cuda")]
        y, ran = _compile_and_run(
            lambda x, w, s, b: modulated_conv2d(x, w, s, padding=1, bias=b[:5], act="lrelu"),
            x, w, s, b,
        )
    assert ran == [("modulated_conv2d", "cuda")] and y.shape == (2, 5, 5, 7)


@pytest.mark.parametrize("gpu_answers", ["loads"], indirect=True)
def test_compiled_dispatch_falls_back_to_the_reference_and_warns(gpu_answers):
    """float64 inputs and lrelu with a negative alpha: the reference, one warning each."""
    x64 = _meta(2, 3, 6, 6, dtype=torch.float64)
    f = torch.ones(4, device=META, dtype=torch.float64) / 4
    with pytest.warns(RuntimeWarning) as record:
        _, ran = _compile_and_run(lambda x: upfirdn2d(x, f, down=2, padding=1), x64)
        assert ran == [("upfirdn2d", "ref")]
        x, b = _meta(2, 3, 6, 6), _meta(3)
        _, ran = _compile_and_run(lambda x, b: bias_act(x, b, act="lrelu", alpha=-0.1), x, b)
        assert ran == [("bias_act", "ref")]
        w, s = _meta(4, 3, 3, 3, dtype=torch.float64), _meta(2, 3, dtype=torch.float64)
        _, ran = _compile_and_run(lambda x, w, s: modulated_conv2d(x, w, s, padding=1), x64, w, s)
        assert ran == [("modulated_conv2d", "ref")]
    messages = [str(r.message) for r in record]
    assert len(messages) == 3, messages
    assert "upfirdn2d: impl='auto' fell back to 'ref'" in messages[0] and "float64" in messages[0]
    assert "bias_act: impl='auto' fell back to 'ref'" in messages[1]
    assert "negative alpha" in messages[1]
    assert "modulated_conv2d: impl='auto' fell back to 'ref'" in messages[2]


@pytest.mark.parametrize("gpu_answers", ["build fails"], indirect=True)
def test_compiled_dispatch_without_the_extension_falls_back_to_triton(gpu_answers):
    x, b = _meta(2, 6, 8, 8), _meta(6)
    w, s = _meta(6, 6, 3, 3), _meta(2, 6)
    f = torch.ones(4, device=META) / 4
    with pytest.warns(RuntimeWarning, match="planted build failure") as record:
        _, ran = _compile_and_run(
            lambda x, w, s, b: modulated_conv2d(
                x, w, s, up=2, padding=1, resample_filter=f, flip_weight=False, bias=b,
                act="lrelu",
            ),
            x, w, s, b,
        )
    # The upsampling layer runs upfirdn2d inside: both fall back to Triton, each warns once.
    assert ran == [("modulated_conv2d", "triton"), ("upfirdn2d", "triton")]
    assert sorted(str(r.message).split(":")[0] for r in record) == [
        "gankern.ops.modulated_conv2d", "gankern.ops.upfirdn2d",
    ]
    assert all("fell back to 'triton'" in str(r.message) for r in record)


@pytest.mark.parametrize("gpu_answers", ["loads"], indirect=True)
def test_compiled_dispatch_does_not_trace_the_extension_loader(gpu_answers, monkeypatch):
    """The extension's status is asked in plain Python while tracing, and only once."""
    calls = []
    real = ext._jit_build
    monkeypatch.setattr(ext, "_jit_build", lambda: calls.append(1) or real())
    x, b = _meta(2, 6, 5, 7), _meta(6)
    w, s = _meta(5, 6, 3, 3), _meta(2, 6)
    for _ in range(2):
        _compile_and_run(lambda x, w, s: modulated_conv2d(x, w, s, padding=1, act="relu"), x, w, s)
        _compile_and_run(lambda x, b: bias_act(x, b), x, b)
    assert calls == [1]


def test_cuda_jit_build_can_be_turned_off(monkeypatch):
    """GANKERN_CUDA_JIT=0: no build on use (gpu_session sets it after a failed build)."""

    def build():
        raise AssertionError("built although GANKERN_CUDA_JIT=0")

    monkeypatch.setattr(ext, "_runtime_unavailable_reason", lambda: None)
    monkeypatch.setattr(ext, "_jit_build", build)
    monkeypatch.delattr(gankern, "_C", raising=False)
    monkeypatch.setitem(sys.modules, "gankern._C", None)
    monkeypatch.setenv("GANKERN_CUDA_JIT", "0")
    ext.cuda_extension_status.cache_clear()
    try:
        module, reason = ext.cuda_extension_status()
    finally:
        ext.cuda_extension_status.cache_clear()
    assert module is None and "GANKERN_CUDA_JIT=0" in reason
