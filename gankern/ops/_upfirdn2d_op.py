"""The ``gankern::upfirdn2d`` custom op behind the fast backends of :func:`upfirdn2d`.

One op serves both fast backends (``backend="triton"`` or ``"cuda"``). It is registered with
``torch.library.custom_op`` plus a fake kernel (the output shape and memory format) and an
autograd formula, so ``torch.compile(fullgraph=True)`` traces through it.

Gradients to any order: the op is linear in ``x``, and its adjoint is the same op with ``up``
and ``down`` swapped, the filter flipped (``flip_filter`` toggled) and the padding adjusted
(:func:`backward_padding`). The backward calls the op itself, so its own backward exists too,
and so on. The filter is a constant: the fast backends give no gradient for ``f`` (the public
function sends a filter that requires grad to the reference backend instead; calling the op
directly with one raises in the backward).
"""

from __future__ import annotations

import torch

from gankern.ops._backend import require_cuda_extension
from gankern.ops._device import on_device_of
from gankern.ops._layout import output_memory_format

BACKENDS = ("triton", "cuda")


def output_size(
    in_h, in_w, fh, fw, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1
) -> tuple[int, int]:
    """``(out_h, out_w)`` of upfirdn2d (works on SymInts)."""
    out_h = (in_h * up_y + pad_y0 + pad_y1 - fh + down_y) // down_y
    out_w = (in_w * up_x + pad_x0 + pad_x1 - fw + down_x) // down_x
    return out_h, out_w


def filter_size(f: torch.Tensor) -> tuple[int, int]:
    """``(fh, fw)`` of a 1-D (separable) or 2-D filter."""
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[0], f.shape[1]


def backward_padding(
    in_h: int, in_w: int, out_h: int, out_w: int, fh: int, fw: int,
    up_x: int, up_y: int, down_x: int, down_y: int, pad_x0: int, pad_y0: int,
) -> tuple[int, int, int, int]:
    """Padding ``[x0, x1, y0, y1]`` of the upfirdn2d that computes the gradient wrt the input.

    Along one axis the forward is ``y[o] = sum_t F[t] xu[o*down + t - pad0]`` (``xu`` the input
    zero-inserted by ``up``). Hence ``dx[i] = sum_m dyu[m] F[i*up + pad0 - m]`` with ``dyu``
    the gradient zero-inserted by ``down``: an upfirdn2d with ``up``/``down`` swapped and the
    correlation filter ``F'[t] = F[fw - 1 - t]`` (flipped) if ``pad0' = fw - 1 - pad0``. The
    trailing padding makes the output exactly ``in_w`` long:
    ``(out_w*down + pad0' + pad1' - fw) // up + 1 = in_w``.
    """
    px0 = fw - pad_x0 - 1
    px1 = in_w * up_x - out_w * down_x + pad_x0 - up_x + 1
    py0 = fh - pad_y0 - 1
    py1 = in_h * up_y - out_h * down_y + pad_y0 - up_y + 1
    return px0, px1, py0, py1


def _empty_output(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1):
    fh, fw = filter_size(f)
    out_h, out_w = output_size(
        x.shape[2], x.shape[3], fh, fw, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1
    )
    return torch.empty(
        (x.shape[0], x.shape[1], out_h, out_w),
        dtype=x.dtype,
        device=x.device,
        memory_format=output_memory_format(x),
    )


@torch.library.custom_op("gankern::upfirdn2d", mutates_args=())
def upfirdn2d_op(
    x: torch.Tensor,
    f: torch.Tensor,
    up_x: int,
    up_y: int,
    down_x: int,
    down_y: int,
    pad_x0: int,
    pad_x1: int,
    pad_y0: int,
    pad_y1: int,
    flip_filter: bool,
    gain: float,
    backend: str,
) -> torch.Tensor:
    """upfirdn2d on a fast backend; arguments already validated by :func:`upfirdn2d`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    y = _empty_output(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)
    if backend == "triton":
        from gankern.ops.triton.upfirdn2d import upfirdn2d_triton

        with on_device_of(x):
            upfirdn2d_triton(
                x, f, y, up_x, up_y, down_x, down_y, pad_x0, pad_y0, flip_filter, gain
            )
    else:
        require_cuda_extension("upfirdn2d")
        # The kernel reads the filter as float32 taps.
        f32 = f.to(torch.float32).contiguous()
        torch.ops.gankern_cuda.upfirdn2d(
            x, f32, y, up_x, up_y, down_x, down_y, pad_x0, pad_y0, flip_filter, gain
        )
    return y


@upfirdn2d_op.register_fake
def _upfirdn2d_fake(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1,
                    flip_filter, gain, backend):
    return _empty_output(x, f, up_x, up_y, down_x, down_y, pad_x0, pad_x1, pad_y0, pad_y1)


def _setup_context(ctx, inputs, output):
    x, f, up_x, up_y, down_x, down_y, pad_x0, _, pad_y0, _, flip_filter, gain, backend = inputs
    ctx.save_for_backward(f)
    ctx.in_size = (x.shape[2], x.shape[3])
    ctx.params = (up_x, up_y, down_x, down_y, pad_x0, pad_y0, flip_filter, gain, backend)


def _backward(ctx, dy):
    if ctx.needs_input_grad[1]:
        raise RuntimeError(
            "gankern::upfirdn2d gives no gradient for the filter f (filters are constants on "
            "the fast backends); use impl='ref' to differentiate with respect to f"
        )
    dx = None
    if ctx.needs_input_grad[0]:
        (f,) = ctx.saved_tensors
        up_x, up_y, down_x, down_y, pad_x0, pad_y0, flip_filter, gain, backend = ctx.params
        in_h, in_w = ctx.in_size
        fh, fw = filter_size(f)
        p = backward_padding(
            in_h, in_w, dy.shape[2], dy.shape[3], fh, fw,
            up_x, up_y, down_x, down_y, pad_x0, pad_y0,
        )
        dx = upfirdn2d_op(dy, f, down_x, down_y, up_x, up_y, *p, not flip_filter, gain, backend)
    return (dx,) + (None,) * 12


upfirdn2d_op.register_autograd(_backward, setup_context=_setup_context)
