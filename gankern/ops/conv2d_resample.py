"""2-D convolution with FIR up/downsampling, in the cheapest order: ``conv2d_resample``.

The result is, by definition (StyleGAN2-ADA's ``conv2d_resample``):

1. if ``up > 1``: insert ``up - 1`` zeros after each pixel;
2. pad by ``padding`` plus what centres the filter for the up- and downsampling
   (negative values crop);
3. if ``up > 1``: filter with ``f`` (gain ``up ** 2``);
4. correlate with ``w`` (``flip_weight=True``, like ``torch.nn.functional.conv2d``) or
   convolve with it (``flip_weight=False``), no further padding;
5. if ``down > 1``: filter with ``f`` and keep every ``down``-th pixel.

Since filtering and the convolution are both linear and shift invariant they may be done in
either order, and this module picks the cheaper one: a transposed convolution with stride
``up`` followed by the filter for upsampling, the filter followed by a strided convolution
for downsampling, and for 1x1 kernels the resampling on the smaller side of the convolution.
"""

from __future__ import annotations

import numbers

import torch

from gankern.ops._checks import check_int, check_same_device, check_same_dtype, check_tensor
from gankern.ops.conv2d import conv2d, conv_transpose2d
from gankern.ops.upfirdn2d import _filter_size, _parse_padding, upfirdn2d


def _check_args(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    check_tensor("x", x, ndim=4)
    check_tensor("w", w, ndim=4)
    check_same_device("w", w, "x", x)
    check_same_dtype("w", w, "x", x)
    if f is not None:
        check_tensor("f", f, ndim=(1, 2))
        check_same_device("f", f, "x", x)
    up = check_int("up", up, min_value=1)
    down = check_int("down", down, min_value=1)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if w.shape[0] % groups:
        raise ValueError(
            f"w.shape[0] (out_channels={w.shape[0]}) must be divisible by groups={groups}"
        )
    if x.shape[1] != w.shape[1] * groups:
        raise ValueError(
            f"x must have w.shape[1] * groups = {w.shape[1] * groups} channels, "
            f"got shape {tuple(x.shape)}"
        )
    for name, flag in (("flip_weight", flip_weight), ("flip_filter", flip_filter)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    return up, down, _parse_padding(padding), groups


def resampling_padding(pads, up: int, down: int, fw: int, fh: int) -> tuple[int, int, int, int]:
    """Add to ``pads`` ``[x0, x1, y0, y1]`` the padding that centres a ``fh x fw`` filter for
    the up- and downsampling (StyleGAN2-ADA's ``conv2d_resample`` convention)."""
    px0, px1, py0, py1 = pads
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1


def _output_length(size: int, k: int, ft: int, pad_total: int, up: int, down: int) -> int:
    """Output length along one axis: upsample, pad, filter (if up), convolve, filter + down."""
    size = size * up + pad_total - (k - 1)
    if up > 1:
        size -= ft - 1
    if down > 1:
        size = (size - ft) // down + 1 if size >= ft else 0
    return size


def resampled_geometry(x, kh, kw, f, up, down, pads, padding):
    """``(rpads, out_h, out_w)`` of a convolution with resampling, as this module computes it.

    ``rpads`` is ``pads`` plus :func:`resampling_padding`; ``padding`` is the argument as the
    caller gave it, for the message of the ``ValueError`` raised when no output is left.
    """
    fw, fh = _filter_size(f)
    rpads = resampling_padding(pads, up, down, fw, fh)
    out_h = _output_length(x.shape[2], kh, fh, rpads[2] + rpads[3], up, down)
    out_w = _output_length(x.shape[3], kw, fw, rpads[0] + rpads[1], up, down)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"up={up}, down={down}, padding={padding!r}, a {kh}x{kw} kernel and a {fh}x{fw} "
            f"filter leave no output for a {x.shape[2]}x{x.shape[3]} input "
            f"(output would be {out_h}x{out_w})"
        )
    return rpads, out_h, out_w


def _conv(x, w, *, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d (or conv_transpose2d), correlating with w if flip_weight, else convolving."""
    if not flip_weight and (w.shape[2] > 1 or w.shape[3] > 1):
        w = w.flip([2, 3])
    if transpose:
        return conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _transpose_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """``[Cout, Cin/g, kh, kw]`` (conv2d layout) -> ``[Cin, Cout/g, kh, kw]`` (transposed)."""
    out_ch, in_per_group, kh, kw = w.shape
    w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_ch // groups, kh, kw)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding=0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """2-D convolution with optional FIR upsampling before and downsampling after it.

    Args:
        x: input ``[N, C_in, H, W]``.
        w: weight ``[C_out, C_in / groups, kh, kw]``, x's dtype and device.
        f: FIR filter for the resampling (``[fh, fw]`` or separable ``[ft]``, see
            :func:`gankern.ops.setup_filter`); None for the identity filter.
        up: integer upsampling factor (default 1).
        down: integer downsampling factor (default 1).
        padding: padding of the (upsampled) input, as in :func:`gankern.ops.upfirdn2d`: an
            int, ``[x, y]`` or ``[x0, x1, y0, y1]``; the padding that centres the filter for
            resampling is added automatically. StyleGAN2 passes ``kernel_size // 2``.
        groups: number of channel groups of the convolution.
        flip_weight: True to correlate with ``w`` (as ``F.conv2d`` does), False to convolve
            (StyleGAN2 passes ``flip_weight=(up == 1)``).
        flip_filter: False to convolve with ``f``, True to correlate.
        impl: backend of the FIR filtering, passed to :func:`gankern.ops.upfirdn2d`.

    Returns:
        ``[N, C_out, out_h, out_w]``; for the StyleGAN2 settings (3x3 kernel, padding 1,
        4-tap filter) ``H * up // down`` by ``W * up // down``.

    Gradients of any order are supported; the convolutions honour
    :func:`gankern.ops.no_weight_gradients`.
    """
    up, down, pads, groups = _check_args(
        x, w, f, up, down, padding, groups, flip_weight, flip_filter
    )
    kh, kw = w.shape[2], w.shape[3]
    pads, _, _ = resampled_geometry(x, kh, kw, f, up, down, pads, padding)
    px0, px1, py0, py1 = pads = list(pads)
    conv = dict(groups=groups, flip_weight=flip_weight)
    pointwise = kh == 1 and kw == 1

    if pointwise and down > 1 and up == 1:
        # 1x1 kernel: filter and shrink first, then convolve the smaller image.
        x = upfirdn2d(x, f, down=down, padding=pads, flip_filter=flip_filter, impl=impl)
        return _conv(x, w, **conv)
    if pointwise and up > 1 and down == 1:
        # 1x1 kernel: convolve first, then enlarge.
        x = _conv(x, w, **conv)
        return upfirdn2d(x, f, up=up, padding=pads, gain=up**2, flip_filter=flip_filter, impl=impl)
    if down > 1 and up == 1:
        # Filter, then a strided convolution computes only the kept pixels.
        x = upfirdn2d(x, f, padding=pads, flip_filter=flip_filter, impl=impl)
        return _conv(x, w, stride=down, **conv)
    if up > 1:
        # A transposed convolution with stride `up` is zero insertion followed by a
        # convolution with the flipped kernel, padded by k - 1 - p. Take from the transposed
        # convolution the padding both sides can share, leave the rest to the filter.
        px0, px1 = px0 - (kw - 1), px1 - (kw - up)
        py0, py1 = py0 - (kh - 1), py1 - (kh - up)
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv(
            x, _transpose_weight(w, groups), stride=up, padding=[pyt, pxt], groups=groups,
            transpose=True, flip_weight=not flip_weight,
        )
        pads = [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]
        x = upfirdn2d(x, f, padding=pads, gain=up**2, flip_filter=flip_filter, impl=impl)
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter, impl=impl)
        return x
    # No resampling.
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], **conv)
    x = upfirdn2d(x, None, padding=pads, impl=impl)  # asymmetric or negative padding
    return _conv(x, w, **conv)
