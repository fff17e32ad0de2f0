"""modulated_conv2d's CUDA backend.

Without a GPU: the backend's cuDNN-side convolution geometry (run by torch on the CPU)
against an explicit loop, the CUDA epilogue kernel's own code run on the host (built from
csrc with nvcc, see tests/cuda_emulation/) against written-out formulas, and the whole
backend end to end (forward, gradients, second order) with that host build standing in for
the GPU kernel. With a GPU (``-m cuda``): every backend against the reference in every dtype.
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from modconv_testutils import ACTS, fir_filter, gpu_case, gpu_compare, make_inputs, modconv_terms
from testutils import assert_close, requires_cuda, requires_triton_interpreter

from gankern.ops import modulated_conv2d
from gankern.ops.bias_act import ACTIVATIONS
from gankern.ops.modulated_conv2d_cuda import conv_torch, wgrad_torch

REPO = Path(__file__).resolve().parent.parent


def _explicit_core(xs, w, up, stride, pad, out):
    """``z[j] = sum_k w[k] xu[j * stride + k - pad]`` over a zero-inserted ``xu``, by loops."""
    n, c, h, wd = xs.shape
    xu = torch.zeros(n, c, h * up, wd * up, dtype=xs.dtype)
    xu[:, :, ::up, ::up] = xs
    kh, kw = w.shape[2:]
    z = torch.zeros(n, w.shape[0], out, out, dtype=xs.dtype)
    for oy in range(out):
        for ox in range(out):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                    if 0 <= iy < xu.shape[2] and 0 <= ix < xu.shape[3]:
                        z[:, :, oy, ox] += xu[:, :, iy, ix] @ w[:, :, ky, kx].T
    return z


@pytest.mark.parametrize(
    "up,stride,pad", [(1, 1, 1), (1, 1, 0), (1, 2, 0), (1, 1, -1), (2, 1, 3), (2, 1, 0), (2, 1, 5)]
)
def test_cudnn_side_convolution_geometry(up, stride, pad):
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    out = (5 * up + 2 * pad - 3) // stride + 1
    want = _explicit_core(xs, w, up, stride, pad, out)
    assert_close(conv_torch(xs, w, up, stride, pad, pad, out, out), want)
    dz = torch.randn(want.shape, generator=g, dtype=torch.float64)
    (dw_want,) = torch.autograd.grad(want, w, dz)
    assert_close(wgrad_torch(dz, xs, 3, 3, up, stride, pad, pad), dw_want)


@pytest.mark.parametrize("up,stride,pad", [(1, 1, 1), (1, 2, 0), (2, 1, 3), (2, 1, 0)])
def test_grouped_convolution_of_per_sample_weights(up, stride, pad):
    """conv_torch with groups = samples: each sample convolved with its own weights."""
    g = torch.Generator().manual_seed(5)
    n, c, o = 3, 2, 4
    xs = torch.randn(n, c, 5, 5, generator=g, dtype=torch.float64)
    wm = torch.randn(n, o, c, 3, 3, generator=g, dtype=torch.float64)
    out = (5 * up + 2 * pad - 3) // stride + 1
    got = conv_torch(xs.reshape(1, n * c, 5, 5), wm.reshape(n * o, c, 3, 3), up, stride, pad,
                     pad, out, out, groups=n).reshape(n, o, out, out)
    want = torch.cat([_explicit_core(xs[i : i + 1], wm[i], up, stride, pad, out) for i in range(n)])
    assert_close(got, want)


def test_modulation_scales_the_smaller_of_weights_and_input():
    from gankern.ops.modulated_conv2d_cuda import modulates_weights

    pre = torch.ones(2, 8)
    w3 = torch.empty(16, 8, 3, 3)
    assert modulates_weights(torch.empty(2, 8, 16, 16), w3, pre)  # 144 <= 256 pixels
    assert not modulates_weights(torch.empty(2, 8, 8, 8), w3, pre)  # 144 > 64
    assert not modulates_weights(torch.empty(2, 8, 16, 16), w3, None)  # nothing to scale
    x_cl = torch.empty(2, 8, 16, 16).to(memory_format=torch.channels_last)
    assert not modulates_weights(x_cl, w3, pre)  # N and C do not merge without a copy


# ----------------------------------------------------------------------------------------
# The epilogue kernel's code, built for the host.

_DTYPE_CODES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


@pytest.fixture(scope="module")
def epilogue_host(tmp_path_factory):
    nvcc = shutil.which("nvcc") or "/usr/local/bin/nvcc"
    if not Path(nvcc).exists():
        pytest.skip("nvcc is not installed")
    lib_path = tmp_path_factory.mktemp("modconv") / "libmodconv_emulator.so"
    cmd = [
        nvcc, "-std=c++17", "-O1", "-shared", "-Xcompiler", "-fPIC", "-arch=sm_90",
        "-I", str(REPO / "csrc"), str(REPO / "tests/cuda_emulation/modulated_conv2d_emulator.cu"),
        "-o", str(lib_path),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    lib = ctypes.CDLL(str(lib_path))
    fn = lib.gankern_modconv_epilogue_host
    fn.restype = ctypes.c_int

    def run(z, post, noise, bias, act_idx, alpha, gain, clamp, wide=False, path=None):
        """The binding's contract on the host: same checks of layout, same output format.

        ``path``: the kernel path the dispatch must take ("packs" of 8 with 16-byte accesses,
        "elements", or "wide" for 64-bit indices, which ``wide=True`` forces).
        """
        channels_last = not z.is_contiguous() and z.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        y = torch.empty(z.shape, dtype=z.dtype, memory_format=fmt)
        i64 = lambda vals: (ctypes.c_int64 * len(vals))(*vals)  # noqa: E731
        ptr = lambda t: ctypes.c_void_p(t.data_ptr() if t is not None else 0)  # noqa: E731
        noise_f = None if noise is None else noise.float().contiguous()
        bias_f = None if bias is None else bias.float().contiguous()
        noise_strides = [0] * 4
        if noise_f is not None:
            noise_strides = [0 if noise_f.shape[d] == 1 else noise_f.stride(d) for d in range(4)]
        post_strides = [0, 0] if post is None else list(post.stride())
        rc = fn(
            _DTYPE_CODES[z.dtype], ptr(y), ptr(z), ptr(post), ptr(noise_f), ptr(bias_f),
            i64(list(z.shape)), i64(list(y.stride())), i64(list(z.stride())), i64(noise_strides),
            i64(post_strides), int(channels_last), int(act_idx), ctypes.c_float(alpha),
            ctypes.c_float(gain), ctypes.c_float(clamp), int(wide),
        )
        assert rc >= 0, "the emulated launch refused its parameters"
        if path is not None:
            assert ("packs", "elements", "wide")[rc] == path
        return y

    return run


@pytest.mark.parametrize("act", sorted(ACTS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_epilogue_kernel_code_on_host(epilogue_host, act, dtype):
    g = torch.Generator().manual_seed(1)
    z = (torch.randn(2, 3, 4, 5, generator=g) * 3).to(dtype)
    post = torch.rand(2, 3, generator=g) + 0.5
    noise = torch.randn(2, 1, 4, 5, generator=g)
    bias = torch.randn(3, generator=g)
    gain, clamp = 1.3, 2.5
    v = z.double() * post.double()[:, :, None, None] + noise.double() + bias.double()[:, None, None]
    func, _ = ACTS[act]
    want = (func(v) * gain).clamp(-clamp, clamp)
    for layout in (torch.contiguous_format, torch.channels_last):
        zl = z.contiguous(memory_format=layout)
        y = epilogue_host(zl, post, noise, bias, ACTIVATIONS[act].cuda_idx, 0.2, gain, clamp)
        assert y.dtype == dtype and y.is_contiguous(memory_format=layout)
        assert_close(y, want, dtype)
    # Optional operands absent, no clamp, shared noise.
    shared = noise[:1]
    y = epilogue_host(z, None, shared, None, ACTIVATIONS[act].cuda_idx, 0.2, 1.0, -1.0)
    assert_close(y, func(z.double() + shared.double()), dtype)


# (z shape, layout, noise shape, the path the dispatch must take): rows (H * W pixels for
# NCHW, O channels for channels_last) of a multiple of 8 take 16-byte packs, others single
# elements; noise per sample or shared, per channel, or broadcast along rows (not H*W-flat).
EPILOGUE_PATHS = [
    ((2, 3, 4, 6), torch.contiguous_format, (2, 1, 4, 6), "packs"),
    ((3, 5, 8, 8), torch.contiguous_format, (1, 5, 8, 8), "packs"),
    ((2, 3, 8, 2), torch.contiguous_format, (2, 1, 1, 2), "packs"),
    ((2, 16, 3, 5), torch.channels_last, (2, 1, 3, 5), "packs"),
    ((1, 24, 2, 3), torch.channels_last, (1, 24, 2, 3), "packs"),
    ((2, 8, 3, 1), torch.channels_last, (1, 1, 1, 1), "packs"),
    ((2, 3, 5, 7), torch.contiguous_format, (2, 1, 5, 7), "elements"),
    ((2, 12, 3, 3), torch.channels_last, (2, 1, 1, 3), "elements"),
]


@pytest.mark.parametrize("case", range(len(EPILOGUE_PATHS)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_epilogue_kernel_paths_and_broadcasts(epilogue_host, case, dtype):
    shape, layout, noise_shape, path = EPILOGUE_PATHS[case]
    g = torch.Generator().manual_seed(case)
    z = (torch.randn(shape, generator=g) * 2).to(dtype).contiguous(memory_format=layout)
    post = torch.rand(shape[0], shape[1], 2, generator=g)[:, :, 0] + 0.5  # strided
    noise = torch.randn(noise_shape, generator=g)
    bias = torch.randn(shape[1], generator=g)
    v = z.double() * post.double()[:, :, None, None] + noise.double() + bias.double()[:, None, None]
    want = (torch.nn.functional.leaky_relu(v, 0.2) * 1.4).clamp(-2.0, 2.0)
    idx = ACTIVATIONS["lrelu"].cuda_idx
    y = epilogue_host(z, post, noise, bias, idx, 0.2, 1.4, 2.0, path=path)
    assert y.is_contiguous(memory_format=layout)
    assert_close(y, want, dtype)
    # The 64-bit path (tensors of 2**31 elements and more) computes the same.
    y_wide = epilogue_host(z, post, noise, bias, idx, 0.2, 1.4, 2.0, wide=True, path="wide")
    torch.testing.assert_close(y_wide, y, rtol=0, atol=0)


def test_epilogue_kernel_misaligned_output_takes_the_element_path(epilogue_host):
    storage = torch.randn(2 * 3 * 4 * 8 + 1)
    z = storage[1:].view(2, 3, 4, 8)  # rows of 32 pixels, but 4 bytes past a 16-byte boundary
    y = epilogue_host(z, None, None, None, ACTIVATIONS["tanh"].cuda_idx, 0.2, 1.0, -1.0,
                      path="elements")
    assert_close(y, torch.tanh(z.double()))


def test_epilogue_kernel_clamp_keeps_nan(epilogue_host):
    """As torch.clamp (and the reference): a NaN is not clamped to a bound."""
    z = torch.tensor([float("nan"), 5.0, -5.0, 0.5]).reshape(1, 1, 1, 4)
    y = epilogue_host(z, None, None, None, ACTIVATIONS["linear"].cuda_idx, 0.2, 1.0, 1.0)
    torch.testing.assert_close(y, z.clamp(-1.0, 1.0), rtol=0, atol=0, equal_nan=True)


@pytest.fixture(scope="module")
def cuda_epilogue_on_cpu(epilogue_host):
    """Register the host build as the CPU kernel of torch.ops.gankern_cuda's epilogue."""
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the real extension owns torch.ops.gankern_cuda")
    lib = torch.library.Library("gankern_cuda", "FRAGMENT")
    lib.define(
        "modulated_conv2d_epilogue(Tensor z, Tensor? post, Tensor? noise, Tensor? bias, int act, "
        "float alpha, float gain, float clamp) -> Tensor"
    )
    lib.impl("modulated_conv2d_epilogue", epilogue_host, "CPU")
    yield
    lib._destroy()


@pytest.mark.parametrize(
    "k,up,down,res", [(3, 1, 1, 5), (3, 2, 1, 5), (3, 1, 2, 5), (1, 1, 1, 5), (3, 1, 1, 7),
                      (3, 2, 1, 7)]
)  # fmt: skip
def test_cuda_backend_end_to_end_with_host_kernel(cuda_epilogue_on_cpu, k, up, down, res):
    """Forward and gradients to second order; res 7 modulates per-sample weights (4 outputs
    x 9 taps <= 49 pixels), res 5 the input (except the 1x1 kernel)."""
    from gankern.ops.modulated_conv2d import _check_args
    from gankern.ops.modulated_conv2d_fused import modulated_conv2d_fused

    inputs = make_inputs(2, 3, 4, res, k, up, down, style_scale=0.5)
    x, w, s, nz, b = inputs
    results = []
    for impl in ("cuda", "ref"):
        kw = dict(noise=nz, up=up, down=down, padding=k // 2, resample_filter=fir_filter(),
                  flip_weight=up == 1, bias=b, act="softplus", clamp=3.0)
        if impl == "cuda":
            args = _check_args(x, w, s, nz, up, down, k // 2, fir_filter(), True, up == 1, False,
                               b, "softplus", None, None, 3.0)
            y = modulated_conv2d_fused(x, w, s, nz, b, fir_filter(), args, "cuda")
        else:
            y = modulated_conv2d(x, w, s, fused_modconv=False, impl="ref", **kw)
        dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
        gx, gs = torch.autograd.grad(y, [x, s], dy, create_graph=True)
        first = torch.autograd.grad(y, [w, nz, b], dy, retain_graph=True)
        second = torch.autograd.grad(gx.square().sum() + gs.square().sum(), [x, w, s])
        results.append((y, gx, gs, *first, *second))
    # Values and gradients chain up to two of the op's reductions (second order): the longest
    # one, squared.
    forward_terms, grad_terms = modconv_terms(x, w, k, up, down)
    terms = max(forward_terms, *grad_terms) ** 2
    for got, want in zip(*results, strict=True):
        assert_close(got, want, terms=terms)


def test_cuda_backend_first_order_backward_uses_the_fused_kernels(cuda_epilogue_on_cpu,
                                                                 monkeypatch):
    """Without create_graph, the cuda backend's backward runs the fused Triton gradient
    kernels (epilogue and modulation), not the chain of torch ops; results unchanged."""
    import gankern.ops.triton.modulated_conv2d_grad as grad_kernels

    calls = []
    for name in ("epilogue_grad_triton", "modulation_grad_triton"):
        original = getattr(grad_kernels, name)

        def spy(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(grad_kernels, name, spy)
    from gankern.ops.modulated_conv2d import _check_args
    from gankern.ops.modulated_conv2d_fused import modulated_conv2d_fused

    inputs = make_inputs(2, 3, 4, 5, 3, style_scale=0.5)
    x, w, s, nz, b = inputs
    kw = dict(noise=nz, padding=1, bias=b, act="lrelu", clamp=3.0)
    args = _check_args(x, w, s, nz, 1, 1, 1, None, True, True, False, b, "lrelu", None, None,
                       3.0)
    y = modulated_conv2d_fused(x, w, s, nz, b, None, args, "cuda")
    grads = torch.autograd.grad(y.square().sum(), inputs)
    assert sorted(set(calls)) == ["epilogue_grad_triton", "modulation_grad_triton"]
    y_ref = modulated_conv2d(x, w, s, impl="ref", fused_modconv=False, **kw)
    for got, want in zip(grads, torch.autograd.grad(y_ref.square().sum(), inputs), strict=True):
        assert_close(got, want)


# ----------------------------------------------------------------------------------------
# On a GPU: every backend, every dtype.


@requires_triton_interpreter
def test_gpu_compare_on_the_cpu(monkeypatch):
    """The GPU tests' comparison itself, run here with Triton in the interpreter; a planted
    1e-4 relative error in the fused path's demodulation is far outside float32's tolerance."""
    from gankern.ops import modulated_conv2d_fused as fused

    inputs = make_inputs(2, 3, 4, 5, 3, 2, 1)
    y = gpu_compare("triton", inputs, 3, 2, 1, torch.float32, act="lrelu", clamp=256.0)
    assert y.shape == (2, 4, 10, 10)
    exact = fused.demodulation_coefficients
    monkeypatch.setattr(fused, "demodulation_coefficients", lambda w, s: exact(w, s) * 1.0001)
    with pytest.raises(AssertionError, match="triton y"):
        gpu_compare("triton", inputs, 3, 2, 1, torch.float32, act="lrelu", clamp=256.0)


@requires_cuda
@pytest.mark.parametrize("impl", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("k,up,down", [(3, 1, 1), (3, 2, 1), (3, 1, 2), (1, 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gpu_backends_match_ref(impl, dtype, k, up, down, channels_last):
    """StyleGAN2's layer (lrelu, clamp 256). Gradients through lrelu's kink are compared in
    float32 only: in half precision the pre-activation differs from the reference's by a
    rounding, enough to land on the other side of the kink (see testutils); there the
    gradients are compared with the smooth swish instead."""
    inputs = gpu_case(k, up, down, dtype, channels_last)
    half = dtype != torch.float32
    gpu_compare(impl, inputs, k, up, down, dtype, act="lrelu", clamp=256.0, grads=not half)
    if half:
        gpu_compare(impl, inputs, k, up, down, dtype, act="swish", clamp=256.0)


@requires_cuda
@pytest.mark.parametrize("impl", ["cuda", "triton"])
def test_gpu_second_order_matches_ref(impl):
    inputs = gpu_case(3, 1, 1, torch.float32)
    results = []
    for backend in (impl, "ref"):
        x, w, s, nz, b = inputs
        y = modulated_conv2d(x, w, s, noise=nz, padding=1, bias=b, act="lrelu", impl=backend,
                             fused_modconv=False)
        (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), [w, s]))
    # d/dw and d/ds of |dx|^2 sum over every pixel of every output and input channel.
    x, w = inputs[0], inputs[1]
    terms = x.shape[0] * x.shape[2] * x.shape[3] * w.shape[0] * w.shape[1] * 9
    for got, want in zip(*results, strict=True):
        assert_close(got, want, terms=terms)


@requires_cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
@pytest.mark.parametrize("impl", ["cuda", "triton"])
@pytest.mark.parametrize("k,up", [(3, 1), (3, 2)])
def test_gpu_backends_run_on_the_inputs_device_not_the_current_one(impl, k, up):
    """Triton launches on the current device: the ops must make the inputs' device current."""
    inputs = [
        None if t is None else t.detach().to("cuda:1").requires_grad_()
        for t in make_inputs(2, 8, 16, 8, k, up)
    ]
    kw = dict(up=up, padding=k // 2, resample_filter=fir_filter(), flip_weight=up == 1,
              act="lrelu", clamp=256.0)
    x, w, s, nz, b = inputs
    with torch.cuda.device(0):
        y = modulated_conv2d(x, w, s, noise=nz, bias=b, impl=impl,
                             **{**kw, "resample_filter": fir_filter().to("cuda:1")})
        grads = torch.autograd.grad(y.square().sum(), inputs)
    ref_inputs = [t.detach().cpu().requires_grad_() for t in inputs]
    xr, wr, sr, nr, br = ref_inputs
    y_ref = modulated_conv2d(xr, wr, sr, noise=nr, bias=br, impl="ref", **kw)
    grads_ref = torch.autograd.grad(y_ref.square().sum(), ref_inputs)
    assert y.device == torch.device("cuda", 1)
    assert_close(y.cpu(), y_ref)
    for got, want in zip(grads, grads_ref, strict=True):
        assert_close(got.cpu(), want)
