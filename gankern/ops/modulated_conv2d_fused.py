"""The fused modulated convolution of the ``triton`` and ``cuda`` backends.

A synthesis layer without resampling is one op, one pass over memory: the convolution
scales its input channels by the styles as it loads them (modulating the input is the same
as modulating the weight), and its epilogue applies the demodulation coefficients, the
noise, the bias, the activation, the gain and the clamp before the only write.

The demodulation coefficients ``d[n, o] = rsqrt(sum_i s[n, i]^2 * sum_k w[o, i, k]^2 + 1e-8)``
are a tiny ``[N, Cin] x [Cin, Cout]`` product, computed in float32 by torch (and so
differentiated by torch). Their weight part ``sum_k w^2``, the float16 prenormalization, the
flip, the cast and the kernels' packing of the weight are prepared once per weight value
(:mod:`gankern.ops.modulated_conv2d_weight`).

Resampling follows StyleGAN2's ``conv2d_resample`` in its cheapest order:

* ``down``: FIR filter first (:func:`gankern.ops.upfirdn2d`), then the strided fused
  convolution (for a 1x1 kernel: filter and downsample, then the fused convolution);
* ``up``: a transposed convolution that skips the inserted zeros, the FIR filter, then the
  epilogue op (demodulation commutes with the filter, noise and bias do not); for a 1x1
  kernel the convolution runs at the low resolution before upsampling.
"""

from __future__ import annotations

import torch

from gankern.ops.modulated_conv2d_ops import modulated_conv2d_conv, modulated_conv2d_epilogue
from gankern.ops.modulated_conv2d_weight import WeightSpec, prenormalize_styles, prepared_weight
from gankern.ops.upfirdn2d import upfirdn2d


def demodulation_coefficients(w2: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``rsqrt(sum_i styles[n, i]^2 * w2[o, i] + 1e-8)``, ``[N, Cout]`` float32, from
    ``w2[o, i] = sum_k weight[o, i, k]^2`` (float32)."""
    return (styles.float().square() @ w2.t() + 1e-8).rsqrt()


def _grad_needed(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def modulated_conv2d_fused(x, weight, styles, noise, bias, f, args, backend: str) -> torch.Tensor:
    """Run ``modulated_conv2d`` on a fused backend (arguments validated by the caller; the
    weight not yet prenormalized: that happens here, with the rest of its preparation)."""
    kh, kw = weight.shape[2], weight.shape[3]
    pointwise = kh == 1 and kw == 1
    prenorm = x.dtype == torch.float16 and args.demodulate
    if prenorm:
        styles = prenormalize_styles(styles)
    spec = WeightSpec(
        dtype=x.dtype, flip=not (args.flip_weight or pointwise), prenorm=prenorm,
        packed=backend == "triton",
    )  # fmt: skip
    w, wk, w2 = prepared_weight(weight, spec)
    pre = styles.float()
    post = demodulation_coefficients(w2, styles) if args.demodulate else None
    if noise is not None and noise.ndim < 4:
        noise = noise.reshape((1,) * (4 - noise.ndim) + tuple(noise.shape))
    epilogue = (args.act, args.alpha, args.gain, args.clamp)
    px0, px1, py0, py1 = args.rpads
    up, down = args.up, args.down

    if up == 1:
        stride, pad_y, pad_x = 1, py0, px0
        if down > 1:
            # Filter first; a 1x1 kernel also downsamples first, a larger one strides.
            x = upfirdn2d(x, f, down=down if pointwise else 1, padding=list(args.rpads))
            stride = 1 if pointwise else down
            pad_y = pad_x = 0
        grad = _grad_needed(x, weight, styles, noise, bias)
        save_z = grad and (
            args.act != "linear" or args.clamp >= 0 or (post is not None and post.requires_grad)
        )
        y, _ = modulated_conv2d_conv(
            x, w, wk, pre, post, noise, bias, 1, stride, pad_y, pad_x, args.out_h, args.out_w,
            *epilogue, save_z, backend,
        )
        return y

    # Upsampling: convolution (transposed, zeros skipped), filter, then the epilogue.
    if pointwise and down == 1:
        u, _ = modulated_conv2d_conv(
            x, w, wk, pre, None, None, None, 1, 1, 0, 0, x.shape[2], x.shape[3],
            "linear", 0.0, 1.0, -1.0, False, backend,
        )
        u = upfirdn2d(u, f, up=up, padding=list(args.rpads), gain=up**2)
    else:
        u_h = x.shape[2] * up + py0 + py1 - kh + 1
        u_w = x.shape[3] * up + px0 + px1 - kw + 1
        u, _ = modulated_conv2d_conv(
            x, w, wk, pre, None, None, None, up, 1, py0, px0, u_h, u_w,
            "linear", 0.0, 1.0, -1.0, False, backend,
        )
        u = upfirdn2d(u, f, gain=up**2)
        if down > 1:
            u = upfirdn2d(u, f, down=down)
    trivial = (
        post is None and noise is None and bias is None and args.act == "linear"
        and args.gain == 1 and args.clamp < 0
    )
    if trivial:
        return u
    return modulated_conv2d_epilogue(u, post, noise, bias, *epilogue, backend)
