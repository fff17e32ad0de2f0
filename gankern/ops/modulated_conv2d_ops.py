"""The custom ops behind the fused modulated convolution, and their autograd.

Three ``torch.library`` ops carry the computation, each with a ``backend`` argument
(``"triton"`` or ``"cuda"``) so one set of registrations (fake kernels for
``torch.compile``, autograd) serves both fast backends:

``gankern::modulated_conv2d_conv(x, w, wk, pre, post, noise, bias, up, stride, ...) -> (y, z)``
    ``z = conv(x * pre, w)`` (zero insertion ``up``, stride, padding; see
    :mod:`gankern.ops.triton.modulated_conv2d_conv`) and the fused epilogue
    ``y = clamp(act(z * post + noise + bias) * gain)``. ``z`` is written only when the
    backward needs it (``save_z``), otherwise it is an empty tensor.
``gankern::modulated_conv2d_epilogue(z, post, noise, bias, ...) -> y``
    The epilogue alone, for the upsampling path, where the FIR filter sits between the
    convolution and the epilogue.
``gankern::modulated_conv2d_wgrad(g, x, pre, ...) -> dw``
    The weight gradient of the convolution (float32).

The backward passes are written with these same ops plus plain differentiable torch ops:
the input gradient is a ``modulated_conv2d_conv`` with the kernel flipped and transposed and
``up``/``stride`` swapped, the weight gradient a ``modulated_conv2d_wgrad``, the modulation's
and the epilogue's gradients torch reductions. Since every piece has its own autograd,
gradients of any order work (R1 and path-length regularization need the second).
Weight gradients honour :func:`gankern.ops.no_weight_gradients`.

Two more ops (``modulated_conv2d_epilogue_grad``, ``modulated_conv2d_modulation_grad``)
fuse those torch reductions into single Triton passes for first-order backwards, where the
backward need not be differentiable itself; both fast backends use them (the ``cuda``
backend wherever Triton can launch).
"""

import torch

from gankern.ops._backend import triton_unavailable_reason
from gankern.ops._device import on_device_of
from gankern.ops._layout import output_memory_format
from gankern.ops.bias_act import ACTIVATIONS
from gankern.ops.conv2d import weight_gradients_disabled

BACKENDS = ("triton", "cuda")


def _impl(backend: str):
    """The module implementing ``backend`` (imported on first use)."""
    if backend == "triton":
        from gankern.ops.triton.modulated_conv2d_conv import modconv_conv_triton
        from gankern.ops.triton.modulated_conv2d_epilogue import modconv_epilogue_triton
        from gankern.ops.triton.modulated_conv2d_wgrad import modconv_wgrad_triton

        return modconv_conv_triton, modconv_wgrad_triton, modconv_epilogue_triton
    if backend == "cuda":
        from gankern.ops import modulated_conv2d_cuda as cuda

        return cuda.modconv_conv_cuda, cuda.modconv_wgrad_cuda, cuda.modconv_epilogue_cuda
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


# --------------------------------------------------------------------------------------
# The ops.


@torch.library.custom_op("gankern::modulated_conv2d_conv", mutates_args=())
def modulated_conv2d_conv(
    x: torch.Tensor,
    w: torch.Tensor,
    wk: torch.Tensor | None,
    pre: torch.Tensor | None,
    post: torch.Tensor | None,
    noise: torch.Tensor | None,
    bias: torch.Tensor | None,
    up: int,
    stride: int,
    pad_y: int,
    pad_x: int,
    out_h: int,
    out_w: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    save_z: bool,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Modulated convolution with the fused epilogue; ``clamp < 0`` means no clamping.

    ``wk``, when given, holds ``w``'s values already in the kernels' dtype and layout (the
    cached preparation of :mod:`gankern.ops.modulated_conv2d_weight`); else the launcher
    prepares ``w``. Autograd differentiates ``w`` only.
    """
    conv, _, _ = _impl(backend)
    with on_device_of(x):
        return conv(
            x, w, wk, pre, post, noise, bias, up, stride, pad_y, pad_x, out_h, out_w,
            ACTIVATIONS[act].cuda_idx, alpha, gain, clamp, save_z,
        )


@modulated_conv2d_conv.register_fake
def _(x, w, wk, pre, post, noise, bias, up, stride, pad_y, pad_x, out_h, out_w, act, alpha,
      gain, clamp, save_z, backend):
    shape = (x.shape[0], w.shape[0], out_h, out_w)
    y = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=output_memory_format(x))
    z = torch.empty_like(y) if save_z else x.new_empty(0)
    return y, z


@torch.library.custom_op("gankern::modulated_conv2d_epilogue", mutates_args=())
def modulated_conv2d_epilogue(
    z: torch.Tensor,
    post: torch.Tensor | None,
    noise: torch.Tensor | None,
    bias: torch.Tensor | None,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    backend: str,
) -> torch.Tensor:
    """``clamp(act(z * post + noise + bias) * gain)``, in ``z``'s dtype and memory format."""
    _, _, epilogue = _impl(backend)
    with on_device_of(z):
        return epilogue(z, post, noise, bias, ACTIVATIONS[act].cuda_idx, alpha, gain, clamp)


@modulated_conv2d_epilogue.register_fake
def _(z, post, noise, bias, act, alpha, gain, clamp, backend):
    return torch.empty_like(z, memory_format=output_memory_format(z))


@torch.library.custom_op("gankern::modulated_conv2d_wgrad", mutates_args=())
def modulated_conv2d_wgrad(
    g: torch.Tensor,
    x: torch.Tensor,
    pre: torch.Tensor | None,
    up: int,
    stride: int,
    pad_y: int,
    pad_x: int,
    kh: int,
    kw: int,
    backend: str,
) -> torch.Tensor:
    """Weight gradient ``[O, C, kh, kw]`` (float32) of the convolution, given ``g = dL/dz``."""
    _, wgrad, _ = _impl(backend)
    with on_device_of(x):
        return wgrad(g, x, pre, up, stride, pad_y, pad_x, kh, kw)


@modulated_conv2d_wgrad.register_fake
def _(g, x, pre, up, stride, pad_y, pad_x, kh, kw, backend):
    return g.new_empty((g.shape[1], x.shape[1], kh, kw), dtype=torch.float32)


# --------------------------------------------------------------------------------------
# Differentiable building blocks of the backward passes.


def _act_derivative(a: torch.Tensor, act: str, alpha: float) -> torch.Tensor | None:
    """``act'(a)`` as torch ops (None for linear), matching PyTorch's conventions at 0."""
    if act == "linear":
        return None
    if act == "relu":
        return (a > 0).to(a.dtype)
    if act == "lrelu":
        return torch.where(a > 0, 1.0, alpha).to(a.dtype)
    if act == "tanh":
        return 1 - torch.tanh(a).square()
    if act == "sigmoid":
        s = torch.sigmoid(a)
        return s * (1 - s)
    if act == "elu":
        return torch.where(a > 0, torch.ones_like(a), torch.exp(a.clamp(max=0)))
    if act == "selu":
        scale, neg = 1.0507009873554805, 1.0507009873554805 * 1.6732632423543772
        return torch.where(a > 0, torch.full_like(a, scale), neg * torch.exp(a.clamp(max=0)))
    if act == "softplus":
        return torch.where(a > 20, torch.ones_like(a), torch.sigmoid(a))
    if act == "swish":
        s = torch.sigmoid(a)
        return s * (1 + a * (1 - s))
    raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")


def _scale(t: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
    """``t * s[n, c]`` broadcast over the pixels."""
    return t if s is None else t * s[:, :, None, None]


def epilogue_backward(dy, z, post, noise, bias, act, alpha, gain, clamp, needs):
    """Gradients of ``y = clamp(act(z * post + noise + bias) * gain)``.

    ``needs`` says which of ``(z, post, noise, bias)`` want one. Returns float32
    ``(dz, dpost, dnoise, dbias)`` (None where not needed), made of differentiable ops.
    """
    need_z, need_post, need_noise, need_bias = needs
    g = dy.float() * gain
    nonlinear = act != "linear" or clamp >= 0
    if nonlinear or need_post:
        zf = z.float()
    if nonlinear:
        a = _scale(zf, post)
        if noise is not None:
            a = a + noise.float()
        if bias is not None:
            a = a + bias.float()[None, :, None, None]
        deriv = _act_derivative(a, act, alpha)
        if deriv is not None:
            g = g * deriv
        if clamp >= 0:
            u = ACTIVATIONS[act].func(a, alpha) * gain
            g = g * (u.abs() <= clamp).to(g.dtype)
    dz = _scale(g, post) if need_z else None
    dpost = (g * zf).sum([2, 3]) if need_post else None
    dnoise = g.sum_to_size(noise.shape) if need_noise else None
    dbias = g.sum([0, 2, 3]) if need_bias else None
    return dz, dpost, dnoise, dbias


def _flip_transpose(w: torch.Tensor) -> torch.Tensor:
    """``[O, C, kh, kw]`` -> ``[C, O, kh, kw]``, both taps reversed: the adjoint's kernel."""
    return w.flip([2, 3]).transpose(0, 1)


def conv_input_grad(g, w, up, stride, pad_y, pad_x, in_h, in_w, backend):
    """Gradient w.r.t. the (modulated) input ``x * pre`` of the convolution, given ``g``.

    The adjoint of "insert ``up - 1`` zeros, pad by ``p``, correlate with ``w`` at stride
    ``s``" is "insert ``s - 1`` zeros, pad by ``k - 1 - p``, correlate with the flipped,
    transposed ``w`` at stride ``up``", cropped to the input size.
    """
    kh, kw = w.shape[2], w.shape[3]
    y, _ = modulated_conv2d_conv(
        g, _flip_transpose(w).to(g.dtype), None, None, None, None, None, stride, up,
        kh - 1 - pad_y, kw - 1 - pad_x, in_h, in_w, "linear", 0.0, 1.0, -1.0, False, backend,
    )
    return y


def modulated_input_grads(dxs, x, pre, need_x, need_pre):
    """From the gradient ``dxs`` w.r.t. ``x * pre``: the gradients of ``x`` and ``pre``."""
    dx = _scale(dxs, pre).to(x.dtype) if need_x else None
    dpre = None
    if need_pre:
        dpre = (dxs.float() * x.float()).sum([2, 3])
    return dx, dpre


def _fused_first_order(backend: str, *tensors: torch.Tensor) -> bool:
    """Whether this backward may use the fused, non-differentiable Triton kernels.

    Autograd runs a backward with grad mode on only under ``create_graph=True``; then the
    backward must be made of differentiable ops. Otherwise one fused pass does the same.
    The kernels are backend-neutral Triton: the ``cuda`` backend shares them wherever
    Triton can launch on ``tensors`` (else it keeps the torch ops).
    """
    if torch.is_grad_enabled():
        return False
    return backend == "triton" or triton_unavailable_reason(*tensors) is None


@torch.library.custom_op("gankern::modulated_conv2d_epilogue_grad", mutates_args=())
def modulated_conv2d_epilogue_grad(
    dy: torch.Tensor,
    z: torch.Tensor,
    post: torch.Tensor | None,
    noise: torch.Tensor | None,
    bias: torch.Tensor | None,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    need_post: bool,
    need_noise: bool,
    need_bias: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused first-order :func:`epilogue_backward` (Triton): ``(gz, dpost, dnoise, dbias)``.

    ``z`` is only read where the gradient needs it (otherwise any tensor of z's shape, dtype
    and layout will do); gradients not asked for come back empty.
    """
    from gankern.ops.triton.modulated_conv2d_grad import epilogue_grad_triton

    with on_device_of(z):
        gz, dpost, dnoise, dbias = epilogue_grad_triton(
            dy, z, post, noise, bias, ACTIVATIONS[act].cuda_idx, alpha, gain, clamp,
            (True, need_post, need_noise, need_bias),
        )
    def or_empty(t):  # each output its own tensor: outputs may not alias
        return z.new_empty(0, dtype=torch.float32) if t is None else t

    return gz, or_empty(dpost), or_empty(dnoise), or_empty(dbias)


@modulated_conv2d_epilogue_grad.register_fake
def _(dy, z, post, noise, bias, act, alpha, gain, clamp, need_post, need_noise, need_bias):
    gz = torch.empty_like(z, memory_format=output_memory_format(z))
    f32 = dict(dtype=torch.float32, device=z.device)
    return (
        gz,
        torch.empty((z.shape[0], z.shape[1]) if need_post else (0,), **f32),
        torch.empty(noise.shape if need_noise else (0,), **f32),
        torch.empty((z.shape[1],) if need_bias else (0,), **f32),
    )


@torch.library.custom_op("gankern::modulated_conv2d_modulation_grad", mutates_args=())
def modulated_conv2d_modulation_grad(
    dxs: torch.Tensor, x: torch.Tensor, pre: torch.Tensor, need_x: bool, need_pre: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused first-order :func:`modulated_input_grads` (Triton): ``(dx, dpre)``, empty if
    not asked for."""
    from gankern.ops.triton.modulated_conv2d_grad import modulation_grad_triton

    with on_device_of(x):
        dx, dpre = modulation_grad_triton(dxs, x, pre, need_x, need_pre)
    dx = x.new_empty(0) if dx is None else dx
    return dx, (x.new_empty(0, dtype=torch.float32) if dpre is None else dpre)


@modulated_conv2d_modulation_grad.register_fake
def _(dxs, x, pre, need_x, need_pre):
    dx = torch.empty_like(x, memory_format=output_memory_format(x)) if need_x else x.new_empty(0)
    return dx, torch.empty(pre.shape if need_pre else (0,), dtype=torch.float32, device=x.device)


def _epilogue_grads(dy, z, post, noise, bias, act, alpha, gain, clamp, needs, backend):
    """:func:`epilogue_backward`, or its fused kernel when that is allowed."""
    if not any(needs):
        return None, None, None, None
    if _fused_first_order(backend, dy):
        z_or_layout = z if z is not None else dy  # z is only read where it was saved
        grads = modulated_conv2d_epilogue_grad(
            dy, z_or_layout, post, noise, bias, act, alpha, gain, clamp, *needs[1:]
        )
        return tuple(g if need else None for g, need in zip(grads, needs, strict=True))
    return epilogue_backward(dy, z, post, noise, bias, act, alpha, gain, clamp, needs)


def _input_grads(dxs, x, pre, need_x, need_pre, backend):
    """:func:`modulated_input_grads`, or its fused kernel when that is allowed."""
    if pre is not None and _fused_first_order(backend, dxs, x):
        dx, dpre = modulated_conv2d_modulation_grad(dxs, x, pre, need_x, need_pre)
        return (dx if need_x else None), (dpre if need_pre else None)
    return modulated_input_grads(dxs, x, pre, need_x, need_pre)


def _cast(t: torch.Tensor | None, like: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.to(like.dtype)


# --------------------------------------------------------------------------------------
# Autograd registrations.


def _conv_setup_context(ctx, inputs, output):
    x, w, _, pre, post, noise, bias, up, stride, pad_y, pad_x, out_h, out_w = inputs[:13]
    act, alpha, gain, clamp, save_z, backend = inputs[13:]
    ctx.save_for_backward(x, w, pre, post, noise, bias, output[1] if save_z else None)
    ctx.conf = (up, stride, pad_y, pad_x, act, alpha, gain, clamp, backend)


def _conv_backward(ctx, dy, dz_out):
    x, w, pre, post, noise, bias, z = ctx.saved_tensors
    up, stride, pad_y, pad_x, act, alpha, gain, clamp, backend = ctx.conf
    need_x, need_w, _, need_pre, need_post, need_noise, need_bias = ctx.needs_input_grad[:7]
    need_w = need_w and not weight_gradients_disabled()
    need_conv = need_x or need_w or need_pre
    if (act != "linear" or clamp >= 0 or need_post) and z is None:
        raise RuntimeError(
            "gankern::modulated_conv2d_conv: the backward needs z, but the forward ran with "
            "save_z=False"
        )
    gz, dpost, dnoise, dbias = _epilogue_grads(
        dy, z, post, noise, bias, act, alpha, gain, clamp,
        (need_conv, need_post, need_noise, need_bias), backend,
    )
    dx = dw = dpre = None
    if need_conv:
        if dz_out is not None and dz_out.numel() and z is not None:
            gz = gz + dz_out.to(gz.dtype)  # z was used by a higher-order graph
        gz = gz.to(x.dtype)
        if need_x or need_pre:
            dxs = conv_input_grad(gz, w, up, stride, pad_y, pad_x, x.shape[2], x.shape[3], backend)
            dx, dpre = _input_grads(dxs, x, pre, need_x, need_pre, backend)
        if need_w:
            dw = modulated_conv2d_wgrad(
                gz, x, pre, up, stride, pad_y, pad_x, w.shape[2], w.shape[3], backend
            ).to(w.dtype)
    return (
        dx, dw, None, _cast(dpre, pre), _cast(dpost, post), _cast(dnoise, noise),
        _cast(dbias, bias), *([None] * 12),
    )


modulated_conv2d_conv.register_autograd(_conv_backward, setup_context=_conv_setup_context)


def _epilogue_setup_context(ctx, inputs, output):
    z, post, noise, bias, act, alpha, gain, clamp, backend = inputs
    ctx.save_for_backward(z, post, noise, bias)
    ctx.conf = (act, alpha, gain, clamp, backend)


def _epilogue_backward(ctx, dy):
    z, post, noise, bias = ctx.saved_tensors
    act, alpha, gain, clamp, backend = ctx.conf
    dz, dpost, dnoise, dbias = _epilogue_grads(
        dy, z, post, noise, bias, act, alpha, gain, clamp, ctx.needs_input_grad[:4], backend
    )
    return (
        _cast(dz, z), _cast(dpost, post), _cast(dnoise, noise), _cast(dbias, bias),
        *([None] * 5),
    )


modulated_conv2d_epilogue.register_autograd(
    _epilogue_backward, setup_context=_epilogue_setup_context
)


def _wgrad_setup_context(ctx, inputs, output):
    g, x, pre, up, stride, pad_y, pad_x, kh, kw, backend = inputs
    ctx.save_for_backward(g, x, pre)
    ctx.conf = (up, stride, pad_y, pad_x, backend)


def _wgrad_backward(ctx, ddw):
    g, x, pre = ctx.saved_tensors
    up, stride, pad_y, pad_x, backend = ctx.conf
    need_g, need_x, need_pre = ctx.needs_input_grad[:3]
    ddw = ddw.to(x.dtype)
    dg = dx = dpre = None
    if need_g:
        # dw is linear in g: its adjoint w.r.t. g is the forward convolution by ddw.
        dg, _ = modulated_conv2d_conv(
            x, ddw, None, pre, None, None, None, up, stride, pad_y, pad_x, g.shape[2], g.shape[3],
            "linear", 0.0, 1.0, -1.0, False, backend,
        )
        dg = dg.to(g.dtype)
    if need_x or need_pre:
        dxs = conv_input_grad(g, ddw, up, stride, pad_y, pad_x, x.shape[2], x.shape[3], backend)
        dx, dpre = _input_grads(dxs, x, pre, need_x, need_pre, backend)
    return dg, dx, _cast(dpre, pre), *([None] * 7)


modulated_conv2d_wgrad.register_autograd(_wgrad_backward, setup_context=_wgrad_setup_context)
