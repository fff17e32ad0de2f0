"""Helpers for the modulated_conv2d tests: an independent formulation and input makers.

``explicit_modulated_conv2d`` follows the definition step by step, one sample at a time:
modulate (and demodulate) the weight explicitly, insert zeros, pad, FIR-filter with an
explicit sum over taps, convolve with ``F.conv2d``, filter and subsample, then noise, bias,
the activation written out, gain and clamp. It shares no code with gankern.

``gpu_case`` / ``gpu_compare`` (at the end) run a backend against gankern's reference on the
GPU, at the tolerance table's precision (testutils).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from testutils import assert_close, tf32_mode

from gankern.ops import modulated_conv2d

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

# The activations, written out (StyleGAN2-ADA's definitions and default gains).
ACTS = {
    "linear": (lambda v: v, 1.0),
    "relu": (lambda v: torch.where(v > 0, v, torch.zeros_like(v)), math.sqrt(2)),
    "lrelu": (lambda v: torch.where(v > 0, v, 0.2 * v), math.sqrt(2)),
    "tanh": (lambda v: (torch.exp(2 * v) - 1) / (torch.exp(2 * v) + 1), 1.0),
    "sigmoid": (lambda v: 1 / (1 + torch.exp(-v)), 1.0),
    "elu": (lambda v: torch.where(v > 0, v, torch.exp(v) - 1), 1.0),
    "selu": (lambda v: SELU_SCALE * torch.where(v > 0, v, SELU_ALPHA * (torch.exp(v) - 1)), 1.0),
    "softplus": (lambda v: torch.log(1 + torch.exp(v)), 1.0),
    "swish": (lambda v: v / (1 + torch.exp(-v)), math.sqrt(2)),
}


def _fir(x: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """'Valid' per-channel FIR convolution (the filter flipped) as a sum over taps."""
    f2 = f2.flip([0, 1])
    fh, fw = f2.shape
    h, w = x.shape[-2] - fh + 1, x.shape[-1] - fw + 1
    out = torch.zeros(*x.shape[:-2], h, w, dtype=x.dtype)
    for i in range(fh):
        for j in range(fw):
            out = out + f2[i, j] * x[..., i : i + h, j : j + w]
    return out


def _pad(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) the last two axes."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x[..., max(-y0, 0) : x.shape[-2] - max(-y1, 0), max(-x0, 0) : x.shape[-1] - max(-x1, 0)]


def explicit_modulated_conv2d(
    x, weight, styles, noise=None, up=1, down=1, padding=0, f=None, demodulate=True,
    flip_weight=True, bias=None, act="linear", gain=None, clamp=None,
):
    """The definition, sample by sample, in x's dtype (use float64)."""
    dtype = x.dtype
    f2 = torch.ones(1, 1, dtype=dtype) if f is None else f.to(dtype)
    if f2.ndim == 1:
        f2 = torch.outer(f2, f2)
    fh, fw = f2.shape
    x0 = x1 = y0 = y1 = padding
    # StyleGAN2's filter-centring padding.
    if up > 1:
        x0, x1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2
        y0, y1 = y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2
        y0, y1 = y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    outs = []
    for n in range(x.shape[0]):
        w = weight.to(dtype) * styles[n].to(dtype)[None, :, None, None]
        if demodulate:
            w = w / torch.sqrt((w * w).sum(dim=[1, 2, 3], keepdim=True) + 1e-8)
        if not flip_weight:
            w = w.flip([2, 3])
        xn = x[n : n + 1]
        if up > 1:
            zeros = torch.zeros(1, xn.shape[1], xn.shape[2] * up, xn.shape[3] * up, dtype=dtype)
            zeros[:, :, ::up, ::up] = xn
            xn = zeros
        xn = _pad(xn, x0, x1, y0, y1)
        if up > 1:
            xn = _fir(xn, f2 * up * up)
        yn = F.conv2d(xn, w)
        if down > 1:
            yn = _fir(yn, f2)[:, :, ::down, ::down]
        outs.append(yn)
    y = torch.cat(outs)
    if noise is not None:
        y = y + noise.to(dtype)
    if bias is not None:
        y = y + bias.to(dtype)[None, :, None, None]
    func, default_gain = ACTS[act]
    y = func(y) * (default_gain if gain is None else gain)
    if clamp is not None:
        y = torch.where(y > clamp, clamp, torch.where(y < -clamp, -clamp, y))
    return y


def fir_filter():
    """StyleGAN2's [1, 3, 3, 1] resampling filter, normalised, as a 2-D float32 tensor."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f2 = torch.outer(f, f)
    return f2 / f2.sum()


def output_size(size: int, k: int, up: int, down: int, padding: int, ft: int = 4) -> int:
    """Output length for kernel k with StyleGAN2's padding and a ``ft``-tap filter."""
    if up == 1 and down == 1:
        return size + 2 * padding - k + 1
    probe = torch.zeros(1, 1, size, size, dtype=torch.float64)
    w = torch.zeros(1, 1, k, k, dtype=torch.float64)
    s = torch.ones(1, 1, dtype=torch.float64)
    f = torch.ones(ft, ft, dtype=torch.float64) / ft**2
    return explicit_modulated_conv2d(probe, w, s, up=up, down=down, padding=padding, f=f,
                                     demodulate=False).shape[-1]


def make_inputs(n, c, o, h, k, up=1, down=1, *, noise="per_sample", bias=True, dtype=torch.float32,
                channels_last=False, seed=0, requires_grad=True, style_scale=1.0):
    """Random ``(x, weight, styles, noise, bias)`` for one test case, with gradients on."""
    g = torch.Generator().manual_seed(seed)
    out = output_size(h, k, up, down, k // 2)
    x = torch.randn(n, c, h, h, generator=g, dtype=torch.float64)
    weight = torch.randn(o, c, k, k, generator=g, dtype=torch.float64)
    styles = torch.randn(n, c, generator=g, dtype=torch.float64) * style_scale + 1
    nz = None
    if noise == "per_sample":
        nz = torch.randn(n, 1, out, out, generator=g, dtype=torch.float64) * 0.5
    elif noise == "shared":
        nz = torch.randn(1, 1, out, out, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(o, generator=g, dtype=torch.float64) if bias else None
    tensors = [x, weight, styles, nz, b]
    tensors = [None if t is None else t.to(dtype) for t in tensors]
    if channels_last:
        tensors[0] = tensors[0].to(memory_format=torch.channels_last)
    if requires_grad:
        for t in tensors:
            if t is not None:
                t.requires_grad_(True)
    return tensors


def modconv_terms(x, w, k, up=1, down=1):
    """Reduction lengths (``terms`` of testutils.tolerance) behind modulated_conv2d's output
    and behind the gradients of ``(x, weight, styles, noise, bias)``: the convolution's taps,
    times the 4x4 filter's when resampling, times the pixels summed over."""
    n, c, h = x.shape[0], x.shape[1], x.shape[2]
    o = w.shape[0]
    taps = 16 if up > 1 or down > 1 else 1
    pixels = (h * up // down) ** 2
    grads = [o * k * k * taps, n * pixels * taps, o * k * k * pixels * taps, o, n * pixels]
    return c * k * k * taps, grads


def gpu_case(k, up, down, dtype, channels_last=False):
    """A StyleGAN2-like layer's inputs on the GPU in ``dtype`` (weight and styles float32)."""
    inputs = make_inputs(4, 16, 24, 8, k, up, down, channels_last=channels_last)
    cast = [None if t is None else t.detach().to("cuda", dtype).requires_grad_() for t in inputs]
    if channels_last:
        cast[0] = cast[0].detach().to(memory_format=torch.channels_last).requires_grad_()
    # The weight and styles stay float32, as StyleGAN2 keeps its parameters.
    cast[1] = inputs[1].detach().cuda().requires_grad_()
    cast[2] = inputs[2].detach().cuda().requires_grad_()
    return cast


GRAD_NAMES = ("dx", "dweight", "dstyles", "dnoise", "dbias")


def gpu_compare(impl, inputs, k, up, down, dtype, *, act, grads=True, tf32=False, **kw):
    """``impl`` on the GPU inputs against the float32 reference (TF32 off, fused_modconv
    False) on the same, exactly upcast inputs: the output and, if ``grads``, the gradients
    of every input, at the tolerance of ``dtype`` (and ``tf32``) with the reduction lengths
    of :func:`modconv_terms`. Returns the output."""
    x, w, s, nz, b = inputs
    kw = dict(up=up, down=down, padding=k // 2, resample_filter=fir_filter().to(x.device),
              flip_weight=up == 1, act=act, **kw)
    with tf32_mode(tf32):
        y = modulated_conv2d(x, w, s, noise=nz, bias=b, impl=impl, **kw)
        dy = torch.randn_like(y)
        present = [t for t in inputs if t is not None]
        got = torch.autograd.grad(y, present, dy) if grads else ()
    assert y.dtype == x.dtype
    ref_inputs = [None if t is None else t.detach().float().requires_grad_() for t in inputs]
    xr, wr, sr, nr, br = ref_inputs
    with tf32_mode(False):
        y_ref = modulated_conv2d(xr, wr, sr, noise=nr, bias=br, impl="ref", fused_modconv=False,
                                 **kw)
        want = torch.autograd.grad(y_ref, [t for t in ref_inputs if t is not None], dy.float())
    y_terms, grad_terms = modconv_terms(x, w, k, up, down)
    assert_close(y, y_ref, dtype, terms=y_terms, tf32=tf32, msg=f"{impl} y")
    if not grads:
        return y
    named = zip(GRAD_NAMES, grad_terms, inputs, strict=True)
    named = [(name, terms) for name, terms, t in named if t is not None]
    for (name, terms), a, e in zip(named, got, want, strict=True):
        assert_close(a, e, dtype, terms=terms, tf32=tf32, msg=f"{impl} {name}")
    return y
