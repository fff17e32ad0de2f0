"""The ``cuda`` backend of the fused modulated convolution.

The convolutions go to cuDNN through torch (``conv2d`` / ``conv_transpose2d`` /
``convolution_backward``), which is hard to beat on its own ground; the fused epilogue
(demodulation, noise, bias, activation, gain, clamp in one pass) is the CUDA kernel in
``csrc/kernels/modulated_conv2d.cu``, registered as ``torch.ops.gankern_cuda``. These
functions implement the ``backend="cuda"`` side of the ops in
:mod:`gankern.ops.modulated_conv2d_ops`, with the same conventions as the Triton kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankern._ext import cuda_kernel_unavailable_reason
from gankern.ops._layout import output_memory_format


def cuda_op_unavailable_reason() -> str | None:
    """None when the extension is loaded and has this op's kernels, else why not.

    A constant under ``torch.compile`` (see :func:`gankern._ext.cuda_kernel_unavailable_reason`).
    """
    return cuda_kernel_unavailable_reason("modulated_conv2d_epilogue")


def _up1_padding(size: int, k: int, stride: int, pad0: int, out: int) -> int:
    """Padding at the end that makes a stride-``stride`` correlation give ``out`` pixels."""
    return (out - 1) * stride + k - size - pad0


def conv_torch(xs, w, up, stride, pad_y, pad_x, out_h, out_w, groups=1) -> torch.Tensor:
    """The (already modulated) convolution of the fused op with torch's convolutions.

    ``z[j] = sum_k w[k] * xu[j * stride + k - pad]`` with ``xu`` the ``up``-fold zero-inserted
    input, ``out_h x out_w`` pixels; negative paddings crop. ``groups``: ``xs`` holds
    ``groups`` independent inputs of ``w.shape[1]`` channels each, ``w`` their kernels one
    after the other (``[groups * O, C, kh, kw]``), as ``F.conv2d``'s groups.
    """
    kh, kw = w.shape[2], w.shape[3]
    if up == 1:
        bottom = _up1_padding(xs.shape[2], kh, stride, pad_y, out_h)
        right = _up1_padding(xs.shape[3], kw, stride, pad_x, out_w)
        if pad_y == bottom and pad_x == right and pad_y >= 0 and pad_x >= 0:
            return F.conv2d(xs, w, stride=stride, padding=(pad_y, pad_x), groups=groups)
        return F.conv2d(F.pad(xs, [pad_x, right, pad_y, bottom]), w, stride=stride, groups=groups)
    # Zero insertion + correlation = a transposed convolution with the flipped, transposed
    # kernel, whose output starts k - 1 - pad pixels earlier: crop (or pad) to the window.
    o, c = w.shape[0] // groups, w.shape[1]
    wt = w.flip([2, 3]).reshape(groups, o, c, kh, kw).transpose(1, 2).reshape(groups * c, o, kh, kw)
    full = F.conv_transpose2d(xs, wt, stride=up, groups=groups)
    left, top = pad_x - kw + 1, pad_y - kh + 1
    return F.pad(full, [left, out_w - full.shape[3] - left, top, out_h - full.shape[2] - top])


def wgrad_torch(g, xs, kh, kw, up, stride, pad_y, pad_x) -> torch.Tensor:
    """Weight gradient of :func:`conv_torch` given ``g = dL/dz`` (``aten.convolution_backward``)."""
    o, c = g.shape[1], xs.shape[1]
    mask = [False, True, False]
    if up == 1:
        bottom = _up1_padding(xs.shape[2], kh, stride, pad_y, g.shape[2])
        right = _up1_padding(xs.shape[3], kw, stride, pad_x, g.shape[3])
        xp = F.pad(xs, [pad_x, right, pad_y, bottom])
        weight = xs.new_empty((o, c, kh, kw))
        return torch.ops.aten.convolution_backward(
            g, xp, weight, None, [stride, stride], [0, 0], [1, 1], False, [0, 0], 1, mask
        )[1]
    full_h, full_w = (xs.shape[2] - 1) * up + kh, (xs.shape[3] - 1) * up + kw
    left, top = pad_x - kw + 1, pad_y - kh + 1
    g_full = F.pad(g, [-left, full_w - g.shape[3] + left, -top, full_h - g.shape[2] + top])
    weight_t = xs.new_empty((c, o, kh, kw))
    dw_t = torch.ops.aten.convolution_backward(
        g_full, xs, weight_t, None, [up, up], [0, 0], [1, 1], True, [0, 0], 1, mask
    )[1]
    return dw_t.transpose(0, 1).flip([2, 3])


def _modulate(x, pre):
    return x if pre is None else x * pre.to(x.dtype)[:, :, None, None]


def modconv_epilogue_cuda(z, post, noise, bias, act_idx, alpha, gain, clamp) -> torch.Tensor:
    """The fused epilogue kernel of the extension; output in z's memory format.

    ``noise`` is 4-D and broadcasts to ``z`` (the kernel reads it with stride 0 on its
    size-1 axes, so it is never expanded in memory).
    """
    z = z.contiguous(memory_format=output_memory_format(z))
    return torch.ops.gankern_cuda.modulated_conv2d_epilogue(
        z, post, noise, bias, act_idx, float(alpha), float(gain), float(clamp)
    )


def modulates_weights(x: torch.Tensor, w: torch.Tensor, pre: torch.Tensor | None) -> bool:
    """Whether :func:`modconv_conv_cuda` scales per-sample weights instead of the input.

    Scaling the weights writes ``N * O * C * kh * kw`` values, scaling the input reads and
    writes ``N * C * H * W``: the weights win when ``O * kh * kw <= H * W`` (StyleGAN2's
    layers from 64 x 64 pixels on). The grouped convolution needs the batch and channel
    dimensions of a contiguous (NCHW) input to merge into one without a copy.
    """
    if pre is None or not x.is_contiguous():
        return False
    return w.shape[0] * w.shape[2] * w.shape[3] <= x.shape[2] * x.shape[3]


def modconv_conv_cuda(
    x, w, wk, pre, post, noise, bias, up, stride, pad_y, pad_x, out_h, out_w,
    act_idx, alpha, gain, clamp, save_z,
):
    """cuDNN convolution of the modulated input, then the fused epilogue kernel.

    The modulation never takes a pass of its own over a large input: either the weights are
    scaled per sample (one grouped convolution, see :func:`modulates_weights`) or, for
    inputs smaller than those weights, the input is.
    """
    fmt = output_memory_format(x)
    wk = w.to(x.dtype) if wk is None else wk
    if modulates_weights(x, wk, pre):
        n, c = x.shape[:2]
        o, kh, kw = wk.shape[0], wk.shape[2], wk.shape[3]
        wm = (wk.float()[None] * pre.float()[:, None, :, None, None]).to(x.dtype)
        z = conv_torch(
            x.reshape(1, n * c, *x.shape[2:]), wm.reshape(n * o, c, kh, kw), up, stride, pad_y,
            pad_x, out_h, out_w, groups=n,
        ).reshape(n, o, out_h, out_w)  # fmt: skip
    else:
        z = conv_torch(_modulate(x, pre), wk, up, stride, pad_y, pad_x, out_h, out_w)
    z = z.contiguous(memory_format=fmt)
    trivial = (
        post is None and noise is None and bias is None and act_idx == 1
        and gain == 1 and clamp < 0
    )
    if trivial:
        # Nothing to apply; y is z (the op must not return it twice).
        return z, (z.clone() if save_z else z.new_empty(0))
    y = modconv_epilogue_cuda(z, post, noise, bias, act_idx, alpha, gain, clamp)
    return y, (z if save_z else z.new_empty(0))


def modconv_wgrad_cuda(g, x, pre, up, stride, pad_y, pad_x, kh, kw) -> torch.Tensor:
    """Weight gradient (float32) through cuDNN's backward-weight convolution."""
    return wgrad_torch(g, _modulate(x, pre), kh, kw, up, stride, pad_y, pad_x).float()
