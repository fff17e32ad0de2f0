"""The ``torch.library`` custom ops behind the fast backends of :func:`gankern.ops.bias_act`.

One set of ops serves both fast backends: each takes ``backend`` (``"triton"`` or ``"cuda"``)
and runs the matching elementwise kernel (:mod:`gankern.ops.triton.bias_act` or the CUDA
extension's ``torch.ops.gankern_cuda.bias_act_elementwise``). ``z = x + b`` below, ``f`` the
activation, ``m`` the clamp mask (0 where the forward output was clamped, else 1).

* ``gankern::bias_act(x, b, dim, act, alpha, gain, clamp, backend) -> y``:
  ``y = clamp(f(z) * gain)``.
* ``gankern::bias_act_grad(dy, x, b, y, ...) -> dx``: ``dx = dy * gain * f'(z) * m``.
* ``gankern::bias_act_grad2(d_dx, dy, x, b, y, ...) -> d_x``: ``d_dx * dy * gain * f''(z) * m``.
* ``gankern::bias_act_grad_db(dy, x, b, y, ...) -> (dx, db)``: ``bias_act_grad`` and ``db``
  (``dx`` summed over every dimension but ``dim``) in one pass: the kernel adds the float32
  gradient into per-channel partial sums as it writes ``dx`` (3n bytes moved instead of the
  4n of a separate reduction over ``dx``), a fixed-order reduction of the few partial sums
  finishes ``db`` (deterministic). See :func:`db_geometry`.

Autograd, to second order (R1 differentiates through the op twice):

* ``bias_act`` saves what the derivative is read from (``ActivationSpec.ref``): ``y`` for
  relu, lrelu, tanh, sigmoid, elu, selu, softplus (and for linear with a clamp, for the
  mask), ``x`` and ``b`` for swish. Its backward is ``dx = bias_act_grad(dy, ...)`` and
  ``db = dx`` summed over every dimension but ``dim``.
* ``bias_act_grad`` is linear in ``dy``, so its gradient wrt ``dy`` is ``bias_act_grad``
  again. Its gradient wrt ``x`` is ``bias_act_grad2`` (and wrt ``b`` that summed over the
  other dimensions): the *total* derivative of ``dy * gain * f'(z)`` wrt ``x``. For the
  activations read off ``y`` that total already contains the path through ``y = f(z)``,
  so ``bias_act_grad`` gives no gradient wrt ``y``, and ``bias_act`` saves ``x`` (and ``b``)
  for the activations with a second derivative only to route this gradient to them.
* When ``b`` needs a gradient the backward runs ``bias_act_grad_db`` instead; its gradient
  reaches ``dx`` directly and through ``db`` (broadcast along ``dim``), then continues as
  ``bias_act_grad``'s.
* ``bias_act_grad2`` has no autograd formula: third order is not supported.

Layouts: the kernels walk one dense layout (see :mod:`gankern.ops._layout`). ``bias_act``
keeps ``x``'s layout when ``x`` is dense (NCHW, channels_last, any dimension order) and
otherwise makes it dense first (a copy, for views with holes or overlaps). The gradient ops
take the layout of the saved tensor they read (``y`` or ``x``) and copy ``dy`` into it when
it arrives in another layout. The fake kernels return ``torch.empty_like`` of the same
tensor, which has exactly those strides.
"""

import torch

from gankern.ops._activations import ACTIVATIONS, ActivationSpec
from gankern.ops._backend import require_cuda_extension
from gankern.ops._device import on_device_of
from gankern.ops._layout import dense, like

BACKENDS = ("triton", "cuda")
MODE_FORWARD, MODE_GRAD, MODE_GRAD2 = 0, 1, 2


def _spec(act: str) -> ActivationSpec:
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    return ACTIVATIONS[act]


def reads_x(act: str) -> bool:
    """The derivatives of ``act`` are computed from ``x + b``."""
    return _spec(act).ref == "x"


def reads_y(act: str, clamp: float) -> bool:
    """The derivatives of ``act`` are read off the saved output (or it holds the clamp mask)."""
    ref = _spec(act).ref
    return ref == "y" or (ref == "" and clamp >= 0)


def _elementwise(backend, src, b, x, y, dy, mode, dim, act, alpha, gain, clamp):
    """Launch one mode of the elementwise kernel on ``backend``; all tensors share a layout."""
    act_id = _spec(act).cuda_idx
    if b is not None:
        b = b.contiguous()
    if backend == "triton":
        from gankern.ops.triton.bias_act import bias_act_elementwise

        with on_device_of(src):
            return bias_act_elementwise(src, b, x, y, dy, mode, dim, act_id, alpha, gain, clamp)
    if backend == "cuda":
        require_cuda_extension("bias_act")
        return torch.ops.gankern_cuda.bias_act_elementwise(
            src, b, x, y, dy, mode, dim, act_id, alpha, gain, clamp
        )
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _grad_layout(dy, x, y, act, clamp):
    """The tensor whose layout a gradient op's kernel walks and its output takes."""
    if reads_y(act, clamp):
        if y is None:
            raise ValueError(f"y (the saved output) is required for act={act!r}, clamp={clamp}")
        return y
    if reads_x(act):
        if x is None:
            raise ValueError(f"x (the saved input) is required for act={act!r}")
        return x
    return dy


def _in_grad_layout(dy, x, y, act, clamp):
    """The dense layout a gradient op walks, and the saved ``x``/``y`` it reads, in it."""
    layout = dense(_grad_layout(dy, x, y, act, clamp))
    xr = like(x, layout) if reads_x(act) else None
    yr = like(y, layout) if reads_y(act, clamp) else None
    return layout, xr, yr


def _sum_except(t: torch.Tensor, dim: int) -> torch.Tensor:
    return t.sum([i for i in range(t.ndim) if i != dim])


def db_geometry(t: torch.Tensor, dim: int) -> tuple[int, int, int, bool]:
    """The dense storage of ``t`` as a row-major matrix for the bias gradient's sums.

    Returns ``(rows, cols, channels, channel_is_col)``. In a dense layout the elements of
    one index along ``dim`` come in runs of ``inner = stride(dim)``: when ``inner`` is 1 the
    channel is the column of a ``[numel / C, C]`` matrix (channels_last, a last-dimension
    bias); otherwise each row of a ``[numel / inner, inner]`` matrix is one plane of channel
    ``row % C`` (NCHW). A single channel is one row.
    """
    n, channels = t.numel(), t.shape[dim]
    if channels == 1:
        return 1, n, 1, False
    inner = t.stride(dim)
    if inner == 1:
        return n // channels, channels, channels, True
    return n // inner, inner, channels, False


def reduce_db_partials(part: torch.Tensor, geometry, dtype: torch.dtype) -> torch.Tensor:
    """``db`` from the gradient kernel's float32 partial sums (a fixed order: deterministic)."""
    rows, _, channels, channel_is_col = geometry
    if channel_is_col:
        db = part.sum(0)
    else:
        db = part.reshape(rows // channels, channels, part.shape[1]).sum((0, 2))
    return db.to(dtype)


# ---------------------------------------------------------------------------------------
# The ops. torch.library infers their schemas from the annotations.


@torch.library.custom_op("gankern::bias_act", mutates_args=())
def bias_act_op(
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    backend: str,
) -> torch.Tensor:
    """``clamp(f(x + b) * gain)`` on a fast backend (arguments validated by ``bias_act``)."""
    return _elementwise(
        backend, dense(x), b, None, None, None, MODE_FORWARD, dim, act, alpha, gain, clamp
    )


@bias_act_op.register_fake
def _bias_act_fake(x, b, dim, act, alpha, gain, clamp, backend):
    return torch.empty_like(x)


@torch.library.custom_op("gankern::bias_act_grad", mutates_args=())
def bias_act_grad_op(
    dy: torch.Tensor,
    x: torch.Tensor | None,
    b: torch.Tensor | None,
    y: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    backend: str,
) -> torch.Tensor:
    """``dy * gain * f'(x + b)``, zero where the forward output ``y`` was clamped."""
    layout, xr, yr = _in_grad_layout(dy, x, y, act, clamp)
    return _elementwise(
        backend, like(dy, layout), b, xr, yr, None, MODE_GRAD, dim, act, alpha, gain, clamp
    )


@bias_act_grad_op.register_fake
def _bias_act_grad_fake(dy, x, b, y, dim, act, alpha, gain, clamp, backend):
    return torch.empty_like(_grad_layout(dy, x, y, act, clamp))


@torch.library.custom_op("gankern::bias_act_grad2", mutates_args=())
def bias_act_grad2_op(
    d_dx: torch.Tensor,
    dy: torch.Tensor,
    x: torch.Tensor | None,
    b: torch.Tensor | None,
    y: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    backend: str,
) -> torch.Tensor:
    """``d_dx * dy * gain * f''(x + b)``, zero where the forward output was clamped."""
    layout, xr, yr = _in_grad_layout(dy, x, y, act, clamp)
    return _elementwise(
        backend, like(d_dx, layout), b, xr, yr, like(dy, layout),
        MODE_GRAD2, dim, act, alpha, gain, clamp,
    )  # fmt: skip


@bias_act_grad2_op.register_fake
def _bias_act_grad2_fake(d_dx, dy, x, b, y, dim, act, alpha, gain, clamp, backend):
    return torch.empty_like(_grad_layout(dy, x, y, act, clamp))


def _grad_db(backend, src, b, x, y, dim, act, alpha, gain, clamp):
    """MODE_GRAD plus the bias gradient, one pass; all tensors share ``src``'s layout."""
    act_id = _spec(act).cuda_idx
    b = b.contiguous() if b is not None and reads_x(act) else None
    geometry = db_geometry(src, dim)
    if backend == "triton":
        from gankern.ops.triton.bias_act import bias_act_grad_db

        with on_device_of(src):
            dx, part = bias_act_grad_db(src, b, x, y, geometry, act_id, alpha, gain, clamp)
    elif backend == "cuda":
        require_cuda_extension("bias_act")
        dx, part = torch.ops.gankern_cuda.bias_act_grad_db(
            src, b, x, y, *geometry, act_id, alpha, gain, clamp
        )
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return dx, reduce_db_partials(part, geometry, src.dtype)


@torch.library.custom_op("gankern::bias_act_grad_db", mutates_args=())
def bias_act_grad_db_op(
    dy: torch.Tensor,
    x: torch.Tensor | None,
    b: torch.Tensor | None,
    y: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float,
    backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dx, db)``: :func:`bias_act_grad_op`'s ``dx`` and ``db = dx`` summed over every
    dimension but ``dim`` (in ``dy``'s dtype), from one read of the inputs.

    The kernel adds the float32 gradient into per-channel partial sums as it writes ``dx``
    (no second pass over ``dx``); a small fixed-order reduction finishes ``db``.
    """
    layout, xr, yr = _in_grad_layout(dy, x, y, act, clamp)
    return _grad_db(backend, like(dy, layout), b, xr, yr, dim, act, alpha, gain, clamp)


@bias_act_grad_db_op.register_fake
def _bias_act_grad_db_fake(dy, x, b, y, dim, act, alpha, gain, clamp, backend):
    dx = torch.empty_like(_grad_layout(dy, x, y, act, clamp))
    return dx, dy.new_empty((dy.shape[dim],))


# ---------------------------------------------------------------------------------------
# Autograd.


def _bias_act_setup_context(ctx, inputs, output):
    x, b, dim, act, alpha, gain, clamp, backend = inputs
    spec = _spec(act)
    # x (and b) for swish's derivative, or to route the second derivative to them.
    keep_x = spec.ref == "x" or spec.has_2nd_grad
    ctx.save_for_backward(
        x if keep_x else None,
        b if keep_x else None,
        output if reads_y(act, clamp) else None,
    )
    ctx.args = (dim, act, alpha, gain, clamp, backend)


def _bias_act_backward(ctx, dy):
    x, b, y = ctx.saved_tensors
    db = None
    if ctx.needs_input_grad[1]:
        dx, db = bias_act_grad_db_op(dy, x, b, y, *ctx.args)
    else:
        dx = bias_act_grad_op(dy, x, b, y, *ctx.args)
    return (dx if ctx.needs_input_grad[0] else None), db, None, None, None, None, None, None


bias_act_op.register_autograd(_bias_act_backward, setup_context=_bias_act_setup_context)


def _grad_setup_context(ctx, inputs, output):
    dy, x, b, y, dim, act, alpha, gain, clamp, backend = inputs
    ctx.save_for_backward(dy, x, b, y)
    ctx.args = (dim, act, alpha, gain, clamp, backend)


def _grad_backward(ctx, d_dx):
    return _grad_input_grads(ctx, d_dx)


def _grad_input_grads(ctx, d_dx):
    """The gradients of ``bias_act_grad``'s inputs given ``d_dx``, the gradient of its output."""
    dy, x, b, y = ctx.saved_tensors
    dim, act = ctx.args[0], ctx.args[1]
    d_dy = d_x = d_b = None
    if ctx.needs_input_grad[0]:
        d_dy = bias_act_grad_op(d_dx, x, b, y, *ctx.args)
    if _spec(act).has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
        second = bias_act_grad2_op(d_dx, dy, x, b, y, *ctx.args)
        d_x = second if ctx.needs_input_grad[1] else None
        d_b = _sum_except(second, dim) if ctx.needs_input_grad[2] else None
    # No gradient wrt y: d_x above is already the total derivative (see the module docstring).
    return d_dy, d_x, d_b, None, None, None, None, None, None, None


bias_act_grad_op.register_autograd(_grad_backward, setup_context=_grad_setup_context)


def _grad_db_backward(ctx, d_dx, d_db):
    # db is dx summed over all but dim: its gradient reaches dx broadcast along dim.
    if d_db is not None:
        dy = ctx.saved_tensors[0]
        shape = [-1 if i == ctx.args[0] else 1 for i in range(dy.ndim)]
        d_db = d_db.reshape(shape)
        d_dx = d_db.expand(dy.shape) if d_dx is None else d_dx + d_db
    if d_dx is None:
        return (None,) * 10
    return _grad_input_grads(ctx, d_dx)


bias_act_grad_db_op.register_autograd(_grad_db_backward, setup_context=_grad_setup_context)
