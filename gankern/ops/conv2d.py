"""``conv2d`` and ``conv_transpose2d`` that can skip weight gradients, to any order.

They compute exactly what ``torch.nn.functional.conv2d`` / ``conv_transpose2d`` compute.
The difference is the backward: inside :func:`no_weight_gradients`, the backward of these
convolutions computes the gradients of the input and bias only, not of the weight.

That is what gradient penalties want. R1 and path-length regularization differentiate the
network's output with respect to its *input* (``torch.autograd.grad(..., create_graph=True)``);
the weight gradients of that inner backward are never used, and computing them costs as much
as the input gradients. The penalty's own gradient with respect to the weights still flows:
the inner backward is made of differentiable ops (``aten.convolution_backward``, whose
derivative PyTorch knows), so the outer ``penalty.backward()``, run outside the context,
differentiates it and reaches the weights. Only the *unused* first-order weight gradient is
skipped.

One exception keeps this safe: a weight *computed from* what ``torch.autograd.grad`` is
differentiating (per-sample modulated weights built from ``ws`` in a path-length penalty)
still gets its gradient inside the context, because the result needs it. Outside the
context the convolutions, like PyTorch's own, compute only the gradients that the running
backward pass uses (``autograd.grad(..., inputs=...)`` asks for a subset).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from gankern.ops._checks import check_same_device, check_same_dtype, check_tensor

# A process-wide flag, not a thread-local one: PyTorch runs CUDA backward passes on its
# own device threads, which must see the setting of the thread that called autograd.grad.
_weight_gradients_disabled = False


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True) -> Iterator[None]:
    """Skip the weight gradients of :func:`conv2d` / :func:`conv_transpose2d` backwards.

    Args:
        disable: True to skip them inside the ``with`` block (default); False leaves the
            current setting unchanged, so ``no_weight_gradients(do_skip)`` can be written
            unconditionally.

    Only backward passes that *run* inside the block are affected, whenever the forward
    ran. Weight gradients come back as None (zero), so do not differentiate with respect to
    the weights inside the block; the exception is a computed weight whose gradient the
    running ``torch.autograd.grad`` needs to reach its inputs (see the module docstring).
    Under ``torch.compile`` the setting is read when the backward is traced, and there
    every weight gradient is skipped inside the block.
    """
    global _weight_gradients_disabled
    if not isinstance(disable, bool):
        raise TypeError(f"disable must be a bool, got {disable!r}")
    previous = _weight_gradients_disabled
    _weight_gradients_disabled = previous or disable
    try:
        yield
    finally:
        _weight_gradients_disabled = previous


def weight_gradients_disabled() -> bool:
    """True inside :func:`no_weight_gradients`."""
    return _weight_gradients_disabled


def _engine_will_use(ctx, index: int) -> bool | None:
    """Whether the running backward pass uses the gradient of input ``index`` of ``ctx``.

    True/False from autograd's engine (as its built-in convolution does, through
    ``torch.autograd.grad(..., inputs=...)``); None when it cannot tell: under tracing, or
    for a leaf that ``autograd.grad`` was asked for (the engine declines to answer there),
    or where this private hook is missing.
    """
    if torch.compiler.is_compiling():
        return None
    node = ctx.next_functions[index][0]
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):
        return None


class _Convolution(torch.autograd.Function):
    """``aten.convolution`` whose backward honours :func:`no_weight_gradients`.

    The backward calls ``aten.convolution_backward``, which PyTorch can differentiate, so
    gradients of any order work. Like PyTorch's own convolution, it computes only the
    gradients that the running backward pass uses.
    """

    @staticmethod
    def forward(
        ctx, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups
    ):
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, transposed, output_padding, groups)
        return torch.ops.aten.convolution(
            x, weight, bias, stride, padding, dilation, transposed, output_padding, groups
        )

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.conf
        needed = []
        for index in range(3):
            use = _engine_will_use(ctx, index) if ctx.needs_input_grad[index] else False
            if index == 1 and _weight_gradients_disabled:
                # Skipped, unless the weight is computed and its gradient leads on (e.g.
                # per-sample modulated weights built from the ws being differentiated).
                use = use is True and weight.grad_fn is not None
            needed.append(use is not False)
        need_x, need_w, need_b = needed
        if not (need_x or need_w or need_b):
            return (None,) * 9
        grad_x = grad_w = grad_b = None
        if need_x or need_w:
            # The bias gradient is taken separately: some backends (oneDNN on CPU) compute
            # the weight gradient whenever the bias gradient is requested.
            grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, stride, padding, dilation,
                transposed, output_padding, groups, [need_x, need_w, False],
            )
        if need_b:
            grad_b = grad_out.sum(dim=(0, 2, 3))
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


def _pair(name: str, value, *, min_value: int) -> list[int]:
    """An int or a pair of ints (each >= min_value) as a list of two ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in value)
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < min_value for v in value):
        raise ValueError(f"{name} must be >= {min_value}, got {value!r}")
    return [int(v) for v in value]


def _check_conv_args(x, weight, bias, groups, transposed: bool):
    """Validate tensors; return (x as 4-D, whether x was unbatched, groups)."""
    check_tensor("input", x, ndim=(3, 4))
    check_tensor("weight", weight, ndim=4)
    check_same_device("weight", weight, "input", x)
    check_same_dtype("weight", weight, "input", x)
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    unbatched = x.ndim == 3
    if unbatched:
        x = x.unsqueeze(0)
    if transposed:
        in_ch, out_ch = weight.shape[0], weight.shape[1] * groups
        if in_ch % groups:
            raise ValueError(
                f"weight.shape[0] (in_channels={in_ch}) must be divisible by groups={groups}"
            )
        if x.shape[1] != in_ch:
            raise ValueError(
                f"input must have weight.shape[0] = {in_ch} channels, got shape {tuple(x.shape)}"
            )
    else:
        out_ch = weight.shape[0]
        if out_ch % groups:
            raise ValueError(
                f"weight.shape[0] (out_channels={out_ch}) must be divisible by groups={groups}"
            )
        if x.shape[1] != weight.shape[1] * groups:
            raise ValueError(
                f"input must have weight.shape[1] * groups = {weight.shape[1] * groups} channels, "
                f"got shape {tuple(x.shape)}"
            )
    if bias is not None:
        check_tensor("bias", bias, ndim=1)
        check_same_device("bias", bias, "input", x)
        check_same_dtype("bias", bias, "input", x)
        if bias.shape[0] != out_ch:
            raise ValueError(f"bias must have shape [{out_ch}], got {tuple(bias.shape)}")
    return x, unbatched, groups


def _same_padding(x, weight, dilation) -> tuple[torch.Tensor, list[int]]:
    """torch's ``padding="same"`` for stride 1: the odd extra pixel goes to the end."""
    padding = []
    extra = []
    for axis in (0, 1):
        total = dilation[axis] * (weight.shape[2 + axis] - 1)
        padding.append(total // 2)
        extra.append(total - 2 * (total // 2))
    if any(extra):
        x = F.pad(x, [0, extra[1], 0, extra[0]])
    return x, padding


def _check_output_size(x, weight, stride, padding, dilation, transposed, output_padding):
    for axis, name in ((0, "height"), (1, "width")):
        size, k = x.shape[2 + axis], weight.shape[2 + axis]
        span = dilation[axis] * (k - 1) + 1
        if transposed:
            out = (size - 1) * stride[axis] - 2 * padding[axis] + span + output_padding[axis]
        else:
            out = (size + 2 * padding[axis] - span) // stride[axis] + 1
        if out < 1:
            raise ValueError(
                f"the output {name} would be {out} for an input of shape {tuple(x.shape)}, a "
                f"weight of shape {tuple(weight.shape)}, stride={stride}, padding={padding}, "
                f"dilation={dilation}"
            )


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> torch.Tensor:
    """2-D convolution (cross-correlation), exactly as ``torch.nn.functional.conv2d``.

    Args:
        input: ``[N, C_in, H, W]`` or unbatched ``[C_in, H, W]``.
        weight: ``[C_out, C_in / groups, kh, kw]``, same dtype and device as ``input``.
        bias: ``[C_out]`` or None.
        stride: int or ``(sy, sx)``, >= 1.
        padding: int, ``(py, px)`` (>= 0, zero padding on both sides), or ``"valid"`` /
            ``"same"`` (stride 1 only, as in torch).
        dilation: int or ``(dy, dx)``, >= 1.
        groups: number of channel groups; divides ``C_in`` and ``C_out``.

    Gradients of any order are supported; inside :func:`no_weight_gradients` the weight
    gradient is skipped.
    """
    x, unbatched, groups = _check_conv_args(input, weight, bias, groups, transposed=False)
    stride = _pair("stride", stride, min_value=1)
    dilation = _pair("dilation", dilation, min_value=1)
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        elif padding == "same":
            if stride != [1, 1]:
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            x, padding = _same_padding(x, weight, dilation)
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        padding = _pair("padding", padding, min_value=0)
    _check_output_size(x, weight, stride, padding, dilation, False, [0, 0])
    y = _Convolution.apply(x, weight, bias, stride, padding, dilation, False, [0, 0], groups)
    return y.squeeze(0) if unbatched else y


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
) -> torch.Tensor:
    """Transposed 2-D convolution, exactly as ``torch.nn.functional.conv_transpose2d``.

    Args:
        input: ``[N, C_in, H, W]`` or unbatched ``[C_in, H, W]``.
        weight: ``[C_in, C_out / groups, kh, kw]``, same dtype and device as ``input``.
        bias: ``[C_out]`` or None.
        stride: int or ``(sy, sx)``, >= 1.
        padding: int or ``(py, px)``, >= 0: ``dilation * (k - 1) - padding`` zeros are added
            to both sides of the (stride-dilated) input.
        output_padding: int or ``(py, px)``, extra rows/columns at the end of the output;
            each must be smaller than the stride or the dilation of its axis.
        groups: number of channel groups; divides ``C_in`` and ``C_out``.
        dilation: int or ``(dy, dx)``, >= 1.

    Gradients of any order are supported; inside :func:`no_weight_gradients` the weight
    gradient is skipped.
    """
    x, unbatched, groups = _check_conv_args(input, weight, bias, groups, transposed=True)
    stride = _pair("stride", stride, min_value=1)
    padding = _pair("padding", padding, min_value=0)
    output_padding = _pair("output_padding", output_padding, min_value=0)
    dilation = _pair("dilation", dilation, min_value=1)
    for axis in (0, 1):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation, got "
                f"output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )
    _check_output_size(x, weight, stride, padding, dilation, True, output_padding)
    y = _Convolution.apply(x, weight, bias, stride, padding, dilation, True, output_padding, groups)
    return y.squeeze(0) if unbatched else y
