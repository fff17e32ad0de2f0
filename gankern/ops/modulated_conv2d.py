"""Modulated convolution with weight demodulation, noise, bias and activation.

``modulated_conv2d`` is a whole StyleGAN2 synthesis layer in one op: per-sample modulation
of the weights by the styles, the convolution (optionally with 2x FIR up- or downsampling,
exactly as StyleGAN2-ADA's ``conv2d_resample``), weight demodulation, per-pixel noise, and
then ``bias_act``'s bias, activation, gain and clamp. With ``act="linear"`` and no bias it
is StyleGAN2-ADA's ``modulated_conv2d``.

Backends: ``ref`` (plain PyTorch, in StyleGAN2's two formulations, selected by
``fused_modconv``), and the fused ``triton`` and ``cuda`` backends (see
:mod:`gankern.ops.modulated_conv2d_fused`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from gankern.ops._backend import cuda_unavailable_reason, select_impl, triton_unavailable_reason
from gankern.ops._checks import check_int, check_number, check_same_device, check_tensor
from gankern.ops._layout import span
from gankern.ops.bias_act import ACTIVATIONS, BiasActArgs, bias_act_ref
from gankern.ops.conv2d_resample import conv2d_resample, resampled_geometry
from gankern.ops.modulated_conv2d_weight import prenorm_scale, prenormalize_styles
from gankern.ops.upfirdn2d import _parse_padding


class ModConvArgs(NamedTuple):
    """Validated, defaulted arguments of one ``modulated_conv2d`` call.

    ``pads`` is the padding ``[x0, x1, y0, y1]`` as given; ``rpads`` adds the padding that
    centres the resampling filter (as ``conv2d_resample`` does). ``clamp < 0`` means none.
    """

    up: int
    down: int
    pads: tuple[int, int, int, int]
    rpads: tuple[int, int, int, int]
    out_h: int
    out_w: int
    demodulate: bool
    flip_weight: bool
    fused_modconv: bool
    act: str
    alpha: float
    gain: float
    clamp: float


def _check_companion(name: str, t, x: torch.Tensor, ndim) -> None:
    """A tensor that may be float32 or x's dtype, on x's device."""
    check_tensor(name, t, ndim=ndim)
    check_same_device(name, t, "x", x)
    if t.dtype != torch.float32 and t.dtype != x.dtype:
        raise TypeError(f"{name} must be float32 or have x's dtype ({x.dtype}), got {t.dtype}")


def _check_args(
    x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight,
    fused_modconv, bias, act, alpha, gain, clamp,
) -> ModConvArgs:
    check_tensor("x", x, ndim=4)
    _check_companion("weight", weight, x, 4)
    _check_companion("styles", styles, x, 2)
    n, c = x.shape[:2]
    out_ch, in_ch, kh, kw = weight.shape
    if in_ch != c:
        raise ValueError(
            f"weight must have x.shape[1] = {c} input channels (shape [out, {c}, kh, kw]), "
            f"got shape {tuple(weight.shape)}"
        )
    if tuple(styles.shape) != (n, c):
        raise ValueError(f"styles must have shape [N, Cin] = [{n}, {c}], got {tuple(styles.shape)}")
    up = check_int("up", up, min_value=1)
    down = check_int("down", down, min_value=1)
    if resample_filter is not None:
        _check_companion("resample_filter", resample_filter, x, (1, 2))
    for name, flag in (
        ("demodulate", demodulate), ("flip_weight", flip_weight), ("fused_modconv", fused_modconv)
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {flag!r}")
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    spec = ACTIVATIONS[act]
    alpha = check_number("alpha", alpha, allow_none=True)
    gain = check_number("gain", gain, allow_none=True)
    clamp = check_number("clamp", clamp, min_value=0.0, allow_none=True)

    pads = _parse_padding(padding)
    rpads, out_h, out_w = resampled_geometry(x, kh, kw, resample_filter, up, down, pads, padding)
    out_shape = (n, out_ch, out_h, out_w)
    if noise is not None:
        check_tensor("noise", noise, ndim=(0, 1, 2, 3, 4))
        check_same_device("noise", noise, "x", x)
        if noise.dtype != torch.float32 and noise.dtype != x.dtype:
            raise TypeError(
                f"noise must be float32 or have x's dtype ({x.dtype}), got {noise.dtype}"
            )
        try:
            broadcast = torch.broadcast_shapes(noise.shape, out_shape)
        except RuntimeError:
            broadcast = None
        if broadcast != torch.Size(out_shape):
            raise ValueError(
                f"noise must broadcast to the output shape {list(out_shape)} (e.g. "
                f"[{n}, 1, {out_h}, {out_w}] or [1, 1, {out_h}, {out_w}]), got {tuple(noise.shape)}"
            )
    if bias is not None:
        _check_companion("bias", bias, x, 1)
        if bias.shape[0] != out_ch:
            raise ValueError(f"bias must have shape [{out_ch}], got {tuple(bias.shape)}")
    return ModConvArgs(
        up=up,
        down=down,
        pads=pads,
        rpads=rpads,
        out_h=out_h,
        out_w=out_w,
        demodulate=demodulate,
        flip_weight=flip_weight,
        fused_modconv=fused_modconv,
        act=act,
        alpha=spec.def_alpha if alpha is None else alpha,
        gain=spec.def_gain if gain is None else gain,
        clamp=-1.0 if clamp is None else clamp,
    )


def prenormalize(x, weight, styles, demodulate: bool):
    """StyleGAN2's guard against float16 overflow, for float16 inputs with demodulation.

    Scales each output channel of ``weight`` to a largest magnitude of ``1 / sqrt(fan_in)``
    and each sample's styles to a largest magnitude of 1. Demodulation divides both scales
    out again, so the result is unchanged, but no modulated weight exceeds 1 in magnitude.
    (The fused backends apply the weight's part once per weight value, see
    :mod:`gankern.ops.modulated_conv2d_weight`.)
    """
    if x.dtype != torch.float16 or not demodulate:
        return weight, styles
    return weight * prenorm_scale(weight), prenormalize_styles(styles)


def modulated_conv2d_ref(x, weight, styles, noise, bias, f, args: ModConvArgs) -> torch.Tensor:
    """The reference: StyleGAN2's formulations in plain PyTorch, then ``bias_act``.

    ``fused_modconv=True``: one grouped convolution over per-sample modulated (and
    demodulated) weights. ``fused_modconv=False``: the shared weight on style-scaled inputs,
    demodulation applied to the output. Modulation and demodulation are computed in the
    weight's dtype, the convolution in x's dtype. Inputs are expected prenormalized
    (:func:`prenormalize`).
    """
    n, c, h, w_ = x.shape
    out_ch, _, kh, kw = weight.shape
    conv_kw = dict(
        f=f, up=args.up, down=args.down, padding=list(args.pads), flip_weight=args.flip_weight,
        impl="ref",
    )
    wm = None
    dcoefs = None
    if args.demodulate or args.fused_modconv:
        wm = weight[None] * styles.to(weight.dtype).reshape(n, 1, c, 1, 1)  # [N, O, I, kh, kw]
    if args.demodulate:
        dcoefs = (wm.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
    if args.fused_modconv:
        if args.demodulate:
            wm = wm * dcoefs.reshape(n, out_ch, 1, 1, 1)
        y = conv2d_resample(
            x.reshape(1, n * c, h, w_), wm.reshape(n * out_ch, c, kh, kw).to(x.dtype),
            groups=n, **conv_kw,
        )
        y = y.reshape(n, out_ch, *y.shape[2:])
    else:
        xs = x * styles.to(x.dtype).reshape(n, c, 1, 1)
        y = conv2d_resample(xs, weight.to(x.dtype), **conv_kw)
        if args.demodulate:
            y = y * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
    if noise is not None:
        y = y + noise.to(x.dtype)
    ba = BiasActArgs(dim=1, act=args.act, alpha=args.alpha, gain=args.gain, clamp=args.clamp)
    return bias_act_ref(y, None if bias is None else bias.to(x.dtype), ba)


def _fused_run(backend: str):
    def run(x, weight, styles, noise, bias, f, args):
        from gankern.ops.modulated_conv2d_fused import modulated_conv2d_fused

        return modulated_conv2d_fused(x, weight, styles, noise, bias, f, args, backend)

    return run


def _present(*tensors) -> list[torch.Tensor]:
    return [t for t in tensors if t is not None]


def _triton_index_reason(x, weight, args: ModConvArgs) -> str | None:
    """Why the Triton kernels' 32-bit indices cannot address this call (None if they can).

    The kernels index within one sample (channels, rows, columns) and over the batch's
    pixels (the GEMM rows) with 32-bit integers. Both are bounded here by the largest image
    the fused path walks: the input, the output, or the upsampled image before the filter.
    """
    n, c, h, w = x.shape
    rows = h * args.up + abs(args.rpads[2]) + abs(args.rpads[3])
    cols = w * args.up + abs(args.rpads[0]) + abs(args.rpads[1])
    per_sample = max(max(c, weight.shape[0]) * rows * cols, span(x, start_dim=1))
    if per_sample >= 2**31 or n * rows * cols >= 2**31:
        return (
            "the Triton kernels index with 32 bits, and this call's images reach 2**31 "
            f"elements per sample or pixels per batch (x of shape {tuple(x.shape)}, "
            f"{weight.shape[0]} output channels, up={args.up})"
        )
    return None


def _triton_reason(x, weight, styles, noise, bias, f, args: ModConvArgs) -> str | None:
    tensors = _present(x, weight, styles, noise, bias, f)
    return triton_unavailable_reason(*tensors) or _triton_index_reason(x, weight, args)


def _cuda_reason(x, weight, styles, noise, bias, f, args: ModConvArgs) -> str | None:
    reason = cuda_unavailable_reason(*_present(x, weight, styles, noise, bias, f))
    if reason is None:
        from gankern.ops.modulated_conv2d_cuda import cuda_op_unavailable_reason

        reason = cuda_op_unavailable_reason()
    return reason


# The fast backends: name -> (reason(*inputs), run(*inputs)) with inputs
# (x, weight, styles, noise, bias, f, args), see gankern.ops._backend.FastBackends.
FAST_BACKENDS: dict = {
    "cuda": (_cuda_reason, _fused_run("cuda")),
    "triton": (_triton_reason, _fused_run("triton")),
}


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding=0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
    bias: torch.Tensor | None = None,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Modulated convolution with demodulation, noise, bias, activation, gain and clamp.

    Computes, per sample ``n``, with ``w'[o, i] = weight[o, i] * styles[n, i]``::

        y = conv2d_resample(x, w', resample_filter, up, down, padding, flip_weight)
        y = y * rsqrt(sum_{i,ky,kx} w'[o, i, ky, kx] ** 2 + 1e-8)     # if demodulate
        y = clamp(act(y + noise + bias) * gain, -clamp, clamp)

    Args:
        x: input ``[N, Cin, H, W]`` (NCHW or channels_last), float16, bfloat16, float32 (and
            float64 on ``impl="ref"``).
        weight: ``[Cout, Cin, kh, kw]``, float32 or x's dtype, on x's device.
        styles: ``[N, Cin]``, float32 or x's dtype: the per-sample scale of each input channel.
        noise: None, or a tensor broadcastable to the output ``[N, Cout, out_h, out_w]``
            (typically ``[N, 1, out_h, out_w]`` or ``[1, 1, out_h, out_w]``), already scaled by
            the layer's noise strength; float32 or x's dtype. Added after demodulation.
        up: upsampling factor, an int >= 1 (StyleGAN2 uses 1 or 2).
        down: downsampling factor, an int >= 1 (StyleGAN2 uses 1 or 2).
        padding: padding of the (upsampled) input as in :func:`gankern.ops.conv2d_resample`:
            an int, ``[x, y]`` or ``[x0, x1, y0, y1]``; StyleGAN2 passes ``kernel_size // 2``.
        resample_filter: FIR filter for the resampling (e.g. ``setup_filter([1, 3, 3, 1])``),
            None for the identity filter; float32 or x's dtype, on x's device.
        demodulate: normalise each output channel of each sample's modulated weight.
        flip_weight: True to correlate with the weight (as ``F.conv2d``), False to convolve
            (StyleGAN2 passes ``up == 1``).
        fused_modconv: the reference's formulation: True for one grouped convolution over
            per-sample weights, False for the shared weight on style-scaled inputs (both give
            the same result; the fused backends ignore it). Inside
            :func:`gankern.ops.no_weight_gradients` every backend skips only the gradient of
            the shared ``weight``'s convolution; the styles' gradient is always kept.
        bias: ``[Cout]`` or None, float32 or x's dtype.
        act, alpha, gain, clamp: as in :func:`gankern.ops.bias_act` (gain None is the
            activation's default gain, e.g. sqrt(2) for lrelu; clamp None for no clamping).
        impl: ``"auto"``, ``"cuda"``, ``"triton"`` or ``"ref"`` (see :mod:`gankern.ops`).

    Returns:
        ``[N, Cout, out_h, out_w]`` in x's dtype (``H * up // down`` for StyleGAN2's 3x3,
        padding 1, 4-tap settings).

    In float16 with demodulation, weight and styles are first scaled by their largest
    magnitudes (StyleGAN2's overflow guard; the result is unchanged). Gradients of first
    and second order are supported on every backend (R1, path length regularization).
    """
    args = _check_args(
        x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight,
        fused_modconv, bias, act, alpha, gain, clamp,
    )
    inputs = (x, weight, styles, noise, bias, resample_filter, args)
    backend = select_impl("modulated_conv2d", impl, FAST_BACKENDS, inputs, x.device)
    if backend == "ref":
        weight, styles = prenormalize(x, weight, styles, args.demodulate)
        return modulated_conv2d_ref(x, weight, styles, noise, bias, resample_filter, args)
    return FAST_BACKENDS[backend][1](*inputs)  # prenormalizes as it prepares the weight
