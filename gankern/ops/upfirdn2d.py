"""Upsample, FIR filter, downsample: ``upfirdn2d`` and its helpers.

Semantics follow StyleGAN2-ADA's ``upfirdn2d`` so that swapping the import is enough:

1. upsample by inserting ``up - 1`` zeros after each pixel,
2. pad (negative padding crops),
3. convolve with the FIR filter ``f`` (true convolution, i.e. ``f`` is flipped, unless
   ``flip_filter=True``), scaled by ``gain ** (f.ndim / 2)``,
4. downsample by keeping every ``down``-th pixel.

Factors and paddings can differ per axis: ``up=[upx, upy]``, ``padding=[px0, px1, py0, py1]``.
A 1-D filter is separable (applied along x, then y); a 2-D filter is applied as is.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from gankern.ops._backend import cuda_unavailable_reason, select_impl, triton_unavailable_reason
from gankern.ops._checks import (
    check_fits_in_memory,
    check_number,
    check_same_device,
    check_tensor,
)
from gankern.ops._upfirdn2d_op import filter_size, output_size, upfirdn2d_op


def _parse_scaling(name: str, value) -> tuple[int, int]:
    given = value  # for the messages, as the caller wrote it
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TypeError(f"{name} must be a positive int or a pair [x, y] of them, got {given!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(
                f"{name} must be a positive int or a pair [x, y] of them, got {given!r}"
            )
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {given!r}")
        out.append(int(v))
    return out[0], out[1]


def _parse_padding(value) -> tuple[int, int, int, int]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 4):
        raise TypeError(
            f"padding must be an int, [x, y] or [x0, x1, y0, y1], got {value!r}"
        )
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"padding must contain ints, got {value!r}")
    if len(value) == 2:
        px, py = value
        value = [px, px, py, py]
    return tuple(int(v) for v in value)


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """Return ``(fw, fh)`` of a filter (1x1 for None)."""
    if f is None:
        return 1, 1
    fh, fw = filter_size(f)
    return fw, fh


class Upfirdn2dArgs(NamedTuple):
    """Validated arguments of one ``upfirdn2d`` call."""

    upx: int
    upy: int
    downx: int
    downy: int
    padx0: int
    padx1: int
    pady0: int
    pady1: int
    flip_filter: bool
    gain: float

    def output_size(self, in_h: int, in_w: int, fh: int, fw: int) -> tuple[int, int]:
        return output_size(
            in_h, in_w, fh, fw, self.upx, self.upy, self.downx, self.downy,
            self.padx0, self.padx1, self.pady0, self.pady1,
        )  # fmt: skip


def _check_args(x, f, up, down, padding, flip_filter, gain) -> Upfirdn2dArgs:
    check_tensor("x", x, ndim=4)
    if f is not None:
        check_tensor("f", f, ndim=(1, 2))
        check_same_device("f", f, "x", x)
        if f.dtype != torch.float32 and f.dtype != x.dtype:
            raise TypeError(f"f must be float32 or have x's dtype ({x.dtype}), got {f.dtype}")
    upx, upy = _parse_scaling("up", up)
    downx, downy = _parse_scaling("down", down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    if not isinstance(flip_filter, bool):
        raise TypeError(f"flip_filter must be a bool, got {flip_filter!r}")
    gain = check_number("gain", gain)
    args = Upfirdn2dArgs(upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)
    fw, fh = _filter_size(f)
    out_h, out_w = args.output_size(x.shape[2], x.shape[3], fh, fw)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"up={up!r}, down={down!r}, padding={padding!r} and a {fh}x{fw} filter leave no "
            f"output for a {x.shape[2]}x{x.shape[3]} input (output would be {out_h}x{out_w})"
        )
    # The largest intermediate: the upsampled, padded input (before filtering), or the output.
    mid_h = x.shape[2] * upy + max(pady0, 0) + max(pady1, 0)
    mid_w = x.shape[3] * upx + max(padx0, 0) + max(padx1, 0)
    check_fits_in_memory(f"upfirdn2d with up={up!r}, padding={padding!r} on a "
                         f"{x.shape[2]}x{x.shape[3]} input", [*x.shape[:2], max(mid_h, out_h),
                                                              max(mid_w, out_w)],
                         x.dtype, x.device)
    return args


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, args: Upfirdn2dArgs) -> torch.Tensor:
    """The reference: zero insertion, pad/crop, grouped conv2d, strided slicing."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, in_h, in_w = x.shape
    # Upsample by inserting zeros.
    x = x.reshape([n, c, in_h, 1, in_w, 1])
    x = F.pad(x, [0, args.upx - 1, 0, 0, 0, args.upy - 1])
    x = x.reshape([n, c, in_h * args.upy, in_w * args.upx])
    # Pad, then crop (negative padding).
    x = F.pad(x, [max(args.padx0, 0), max(args.padx1, 0), max(args.pady0, 0), max(args.pady1, 0)])
    x = x[
        :,
        :,
        max(-args.pady0, 0) : x.shape[2] - max(-args.pady1, 0),
        max(-args.padx0, 0) : x.shape[3] - max(-args.padx1, 0),
    ]
    # Convolve: conv2d correlates, so flip the filter unless asked not to.
    f = f * (args.gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not args.flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)
    # Downsample by keeping every down-th pixel.
    return x[:, :, :: args.downy, :: args.downx]


def _fast_filter(x: torch.Tensor, f: torch.Tensor | None) -> torch.Tensor:
    return torch.ones([1, 1], dtype=torch.float32, device=x.device) if f is None else f


def _filter_reason(f: torch.Tensor | None) -> str | None:
    if f is not None and f.requires_grad:
        return (
            "f requires grad, and the fast backends treat the filter as a constant "
            "(only the reference differentiates with respect to f)"
        )
    return None


def _triton_reason(x, f, args: Upfirdn2dArgs | None) -> str | None:
    tensors = (x,) if f is None else (x, f)
    return triton_unavailable_reason(*tensors) or _filter_reason(f)


def _cuda_reason(x, f, args: Upfirdn2dArgs | None) -> str | None:
    tensors = (x,) if f is None else (x, f)
    return _filter_reason(f) or cuda_unavailable_reason(*tensors)


def _run_fast(backend: str):
    def run(x, f, args: Upfirdn2dArgs) -> torch.Tensor:
        return upfirdn2d_op(
            x, _fast_filter(x, f), args.upx, args.upy, args.downx, args.downy,
            args.padx0, args.padx1, args.pady0, args.pady1, args.flip_filter, args.gain, backend,
        )

    return run


# The fast backends: name -> (reason(x, f, args), run(x, f, args)), see
# gankern.ops._backend.FastBackends. Both run the gankern::upfirdn2d custom op (see
# gankern/ops/_upfirdn2d_op.py).
FAST_BACKENDS: dict = {
    "cuda": (_cuda_reason, _run_fast("cuda")),
    "triton": (_triton_reason, _run_fast("triton")),
}


@torch.compiler.assume_constant_result
def _choose_backend(impl, device, x_dtype, f_dtype, f_requires_grad: bool) -> str:
    """The backend of one call: :func:`select_impl` on stand-ins for ``x`` and ``f``.

    The choice depends on the tensors only through the properties passed here, and on the
    environment (Triton importable, the CUDA extension built or loadable), which
    ``torch.compile`` must not trace: under compile this runs once, in plain Python, and its
    result enters the graph as a constant (guarded on these arguments).
    """
    x = torch.empty(0, dtype=x_dtype, device=device)
    f = None
    if f_dtype is not None:
        f = torch.empty(0, dtype=f_dtype, device=device, requires_grad=f_requires_grad)
    return select_impl("upfirdn2d", impl, FAST_BACKENDS, (x, f, None), device)


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up=1,
    down=1,
    padding=0,
    flip_filter: bool = False,
    gain: float = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """Pad, upsample, filter and downsample a batch of 2-D images.

    Args:
        x: input ``[N, C, H, W]`` (NCHW or channels_last), float16, bfloat16, float32 (and
            float64 on ``impl="ref"``).
        f: FIR filter, ``[fh, fw]`` (2-D, non-separable) or ``[ft]`` (1-D, separable), float32
            or x's dtype, on x's device; None for the identity. See :func:`setup_filter`.
        up: integer upsampling factor, or ``[x, y]`` per axis (default 1).
        down: integer downsampling factor, or ``[x, y]`` per axis (default 1).
        padding: padding of the upsampled image before filtering: an int, ``[x, y]`` or
            ``[x0, x1, y0, y1]``; negative values crop (default 0).
        flip_filter: False for a true convolution (the filter is flipped), True for a
            correlation (default False).
        gain: overall scaling of the signal magnitude (default 1); the filter is multiplied
            by ``gain ** (f.ndim / 2)`` so that a separable filter applies ``gain`` once.
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"`` (see :mod:`gankern.ops`).

    Returns:
        ``[N, C, out_h, out_w]`` with ``out_h = (H * upy + pady0 + pady1 - fh + downy) // downy``
        and likewise for the width.

    Gradients of any order with respect to ``x`` are supported on every backend; the output
    keeps the memory format of ``x`` on the fast backends. Those treat the filter as a
    constant: a filter that requires grad is sent to the reference (``impl="auto"``) or
    refused (``impl="cuda"``/``"triton"`` raise :class:`BackendUnavailableError`).
    """
    args = _check_args(x, f, up, down, padding, flip_filter, gain)
    backend = _choose_backend(
        impl, x.device, x.dtype, None if f is None else f.dtype, f is not None and f.requires_grad
    )
    if backend == "ref":
        return upfirdn2d_ref(x, f, args)
    return FAST_BACKENDS[backend][1](x, f, args)


def setup_filter(
    f,
    device=None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Make a float32 FIR filter tensor for :func:`upfirdn2d` from a list, array or tensor.

    Args:
        f: filter taps: a scalar, a 1-D sequence (e.g. ``[1, 3, 3, 1]``) or a 2-D array;
            None for the identity ``[1]``.
        device: device of the returned tensor (default: the CPU).
        normalize: divide by the sum of the taps so the filter keeps the DC level.
        flip_filter: flip the filter (correlation instead of convolution later on).
        gain: overall gain, applied as ``gain ** (f.ndim / 2)``.
        separable: keep a 1-D filter separable; default: True for 1-D filters of 8 taps or
            more, otherwise the 1-D filter becomes its 2-D outer product.

    Returns:
        A float32 tensor of shape ``[ft]`` (separable) or ``[fh, fw]``.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2):
        raise ValueError(f"f must have 0, 1 or 2 dimensions, got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError("f must not be empty")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if separable and f.ndim != 1:
        raise ValueError(f"a separable filter must be 1-D, got shape {tuple(f.shape)}")
    if normalize:
        total = f.sum()
        if total == 0:
            raise ValueError("cannot normalize a filter whose taps sum to zero")
        f = f / total
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=torch.device("cpu") if device is None else device)


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Filter a batch of images with ``f``, keeping the size (plus ``padding``).

    Arguments as for :func:`upfirdn2d`; the filter is centred (for even sizes, the extra
    tap goes to the top/left).
    """
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample a batch of images by ``up`` (int or ``[x, y]``), filtering with ``f``.

    The output is ``up`` times larger (plus ``padding``); the gain is multiplied by
    ``upx * upy`` so that the zero insertion keeps the signal's magnitude.
    """
    upx, upy = _parse_scaling("up", up)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [
        padx0 + (fw + upx - 1) // 2,
        padx1 + (fw - upx) // 2,
        pady0 + (fh + upy - 1) // 2,
        pady1 + (fh - upy) // 2,
    ]
    return upfirdn2d(
        x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl
    )


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Downsample a batch of images by ``down`` (int or ``[x, y]``), filtering with ``f``.

    The output is ``down`` times smaller (plus ``padding``).
    """
    downx, downy = _parse_scaling("down", down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _filter_size(f)
    p = [
        padx0 + (fw - downx + 1) // 2,
        padx1 + (fw - downx) // 2,
        pady0 + (fh - downy + 1) // 2,
        pady1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
