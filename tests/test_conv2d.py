"""conv2d / conv_transpose2d wrappers and no_weight_gradients, against torch's own convs."""

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close, requires_cuda
from torch.utils._python_dispatch import TorchDispatchMode

from gankern.ops import conv2d, conv_transpose2d, no_weight_gradients
from gankern.ops.conv2d import weight_gradients_disabled

CONV_CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
    dict(padding="same", dilation=(1, 2)),  # even kernel width: asymmetric "same"
    dict(padding="valid", groups=2),
    dict(stride=2, padding=1, groups=2),
]

TRANSPOSE_CASES = [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2), output_padding=(1, 1)),
    dict(stride=2, groups=2),
]


def _inputs(dtype, transposed, *, batch=2, requires_grad=True):
    x = torch.randn(batch, 4, 7, 6, dtype=dtype)
    # conv2d: [Cout=6, Cin, 3, 4]; conv_transpose2d: [Cin=4, Cout, 3, 4] (sliced per groups)
    w = torch.randn(4, 6, 3, 4, dtype=dtype) if transposed else torch.randn(6, 4, 3, 4, dtype=dtype)
    b = torch.randn(6, dtype=dtype)
    return [t.requires_grad_(requires_grad) for t in (x, w, b)]


def _fit_groups(w, kwargs, transposed):
    """Reshape the test weight for kwargs["groups"] (conv2d: Cin/g; transposed: Cout/g)."""
    g = kwargs.get("groups", 1)
    if transposed:
        return w[:, : 6 // g]
    return w[:, : 4 // g]


@pytest.mark.parametrize("kwargs", CONV_CASES)
def test_conv2d_matches_torch(kwargs):
    x, w_full, b = _inputs(torch.float32, transposed=False)
    w = _fit_groups(w_full, kwargs, False)
    y = conv2d(x, w, b, **kwargs)
    y_ref = F.conv2d(x, w, b, **kwargs)
    assert_close(y, y_ref)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w_full, b), dy)
    grads_ref = torch.autograd.grad(y_ref, (x, w_full, b), dy)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref)


@pytest.mark.parametrize("kwargs", TRANSPOSE_CASES)
def test_conv_transpose2d_matches_torch(kwargs):
    x, w_full, b = _inputs(torch.float32, transposed=True)
    w = _fit_groups(w_full, kwargs, True)
    y = conv_transpose2d(x, w, b, **kwargs)
    y_ref = F.conv_transpose2d(x, w, b, **kwargs)
    assert_close(y, y_ref)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w_full, b), dy)
    grads_ref = torch.autograd.grad(y_ref, (x, w_full, b), dy)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref)


def test_unbatched_channels_last_and_batch_one():
    x, w, b = _inputs(torch.float32, transposed=False, batch=1, requires_grad=False)
    assert_close(conv2d(x[0], w, b, padding=1), F.conv2d(x[0], w, b, padding=1))
    xc = x.to(memory_format=torch.channels_last)
    assert_close(conv2d(xc, w, b, stride=2), F.conv2d(x, w, b, stride=2))
    xt, wt, _ = _inputs(torch.float32, transposed=True, batch=1, requires_grad=False)
    assert_close(conv_transpose2d(xt[0], wt, stride=2), F.conv_transpose2d(xt[0], wt, stride=2))


def test_gradcheck_and_gradgradcheck_float64():
    x = torch.randn(2, 4, 5, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    wt = torch.randn(4, 2, 2, 3, dtype=torch.float64, requires_grad=True)

    def conv(x, w, b):
        return conv2d(x, w, b, stride=(2, 1), padding=1, groups=2)

    def tconv(x, w, b):
        return conv_transpose2d(x, w, b, stride=2, padding=(1, 0), output_padding=1, groups=2)

    for fn, weight in ((conv, w), (tconv, wt)):
        assert torch.autograd.gradcheck(fn, (x, weight, b))
        assert torch.autograd.gradgradcheck(fn, (x, weight, b))


class _ConvBackwardLog(TorchDispatchMode):
    """Records the output_mask of every aten.convolution_backward call."""

    def __init__(self):
        super().__init__()
        self.masks = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.convolution_backward.default:
            self.masks.append(list(args[-1]))
        return func(*args, **(kwargs or {}))


def test_no_weight_gradients_skips_them_inside_only():
    x, w, b = _inputs(torch.float32, transposed=False)
    y = conv2d(x, w, b, padding=1)
    with no_weight_gradients(), _ConvBackwardLog() as log:
        assert weight_gradients_disabled()
        y.square().sum().backward(retain_graph=True)
    assert log.masks == [[True, False, False]]  # the bias gradient is a plain sum
    assert w.grad is None and x.grad is not None and b.grad is not None
    assert not weight_gradients_disabled()
    y.square().sum().backward()
    assert w.grad is not None
    assert_close(w.grad, torch.autograd.grad(F.conv2d(x, w, b, padding=1).square().sum(), w)[0])


def test_unneeded_gradients_are_skipped_outside_the_context_too():
    """As torch's own conv: autograd.grad(inputs=[x]) computes no weight gradient."""
    x, w, b = _inputs(torch.float32, transposed=False)
    y = conv2d(x, w * 0.5, b, padding=1)  # a computed weight, as with equalized learning rate
    with _ConvBackwardLog() as log:
        torch.autograd.grad(y.square().sum(), x)
    assert log.masks == [[True, False, False]]


def test_weights_computed_from_the_differentiated_input_keep_their_gradient():
    """Per-sample modulated weights (grouped conv): d/d styles needs the weight gradient."""
    n, cin, cout = 3, 4, 2
    x = torch.randn(n, cin, 5, 5, dtype=torch.float64)
    base = torch.randn(cout, cin, 3, 3, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(n, cin, dtype=torch.float64, requires_grad=True)

    def penalty(conv, skip):
        wm = (base[None] * styles[:, None, :, None, None]).reshape(n * cout, cin, 3, 3)
        y = conv(x.reshape(1, n * cin, 5, 5), wm, None, 1, 1, 1, n)
        with no_weight_gradients(skip):
            (g,) = torch.autograd.grad(torch.tanh(y).sum(), styles, create_graph=True)
        value = g.square().sum()
        return value, torch.autograd.grad(value, (base, styles))

    value, grads = penalty(conv2d, True)
    value_ref, grads_ref = penalty(F.conv2d, False)
    assert_close(value, value_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref)


def test_no_weight_gradients_nesting_and_exceptions():
    with no_weight_gradients(False):
        assert not weight_gradients_disabled()
    with no_weight_gradients():
        with no_weight_gradients(False):  # False keeps the enclosing setting
            assert weight_gradients_disabled()
        assert weight_gradients_disabled()
    with pytest.raises(KeyError), no_weight_gradients():
        raise KeyError("boom")
    assert not weight_gradients_disabled()
    with pytest.raises(TypeError, match="disable"), no_weight_gradients(1):
        pass


def _tiny_discriminator(x, params, conv, tconv):
    """A small CNN with a strided conv, a grouped conv and a transposed conv."""
    w1, b1, w2, w3, w4 = params
    h = F.leaky_relu(conv(x, w1 * 0.5, b1, padding=1), 0.2)
    h = F.leaky_relu(conv(h, w2, None, stride=2, padding=1, groups=2), 0.2)
    h = torch.tanh(tconv(h, w3, None, stride=2, padding=1, output_padding=1))
    return conv(h, w4, None).mean(dim=(1, 2, 3))


def test_penalty_gradients_equal_plain_autograd():
    """R1-style penalty: inner grad under no_weight_gradients, outer backward outside."""
    torch.manual_seed(1)
    params = [
        torch.randn(4, 3, 3, 3),
        torch.randn(4),
        torch.randn(6, 2, 3, 3),
        torch.randn(6, 5, 3, 3),
        torch.randn(1, 5, 2, 2),
    ]
    params = [p.double().requires_grad_() for p in params]
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)

    def penalty(conv, tconv, skip):
        xr = x.detach().requires_grad_()
        logits = _tiny_discriminator(xr, params, conv, tconv)
        with no_weight_gradients(skip):
            (grad,) = torch.autograd.grad(logits.sum(), xr, create_graph=True)
        value = grad.square().sum(dim=(1, 2, 3)).mean()
        return value, torch.autograd.grad(value, params)

    value, grads = penalty(conv2d, conv_transpose2d, True)
    value_ref, grads_ref = penalty(F.conv2d, F.conv_transpose2d, False)
    assert_close(value, value_ref)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref)


def test_compile_fullgraph():
    # aot_eager runs dynamo and AOTAutograd (where autograd.Function tracing can break)
    # without inductor's code generation, which costs ~20 s on a CPU.
    x, w, b = _inputs(torch.float32, transposed=False)
    wt = torch.randn(6, 2, 2, 2, requires_grad=True)

    def fn(x, w, b, wt):
        return conv_transpose2d(F.relu(conv2d(x, w, b, padding=1)), wt, stride=2).sum()

    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    out = compiled(x, w, b, wt)
    assert_close(out, fn(x, w, b, wt))
    grads = torch.autograd.grad(out, (x, w, b, wt))
    grads_ref = torch.autograd.grad(fn(x, w, b, wt), (x, w, b, wt))
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert_close(g, g_ref)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda x, w: conv2d(x[0, 0], w), ValueError, "input must have 3 or 4 dimensions"),
        (lambda x, w: conv2d(x, w[0]), ValueError, "weight must have 4 dimensions"),
        (lambda x, w: conv2d(x.numpy(), w), TypeError, "input must be a torch.Tensor"),
        (lambda x, w: conv2d(x.int(), w), TypeError, "input must be float"),
        (lambda x, w: conv2d(x, w.double()), TypeError, "weight must have the same dtype"),
        (lambda x, w: conv2d(x[:, :3], w), ValueError, "weight.shape.1. \\* groups = 4"),
        (lambda x, w: conv2d(x, w[:, :2], groups=4), ValueError, "divisible by groups"),
        (lambda x, w: conv2d(x, w, groups=0), ValueError, "groups must be a positive int"),
        (lambda x, w: conv2d(x, w, torch.zeros(5)), ValueError, "bias must have shape \\[6\\]"),
        (lambda x, w: conv2d(x, w, stride=0), ValueError, "stride must be >= 1"),
        (lambda x, w: conv2d(x, w, stride=1.5), TypeError, "stride must be an int"),
        (lambda x, w: conv2d(x, w, padding=-1), ValueError, "padding must be >= 0"),
        (lambda x, w: conv2d(x, w, padding="full"), ValueError, "'valid' or 'same'"),
        (lambda x, w: conv2d(x, w, padding="same", stride=2), ValueError, "needs stride 1"),
        (lambda x, w: conv2d(x[:, :, :2], w), ValueError, "output height would be 0"),
        (lambda x, w: conv_transpose2d(x, w, output_padding=1), ValueError, "output_padding"),
        (lambda x, w: conv_transpose2d(x[:, :3], w), ValueError, "weight.shape.0. = 4 channels"),
    ],
)
def test_errors(call, error, match):
    x = torch.randn(2, 4, 5, 5)
    w = torch.randn(6, 4, 3, 3)
    if "conv_transpose2d" in call.__code__.co_names:
        w = torch.randn(4, 6, 3, 3)
    with pytest.raises(error, match=match):
        call(x, w)


@requires_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_dtypes_and_no_weight_gradients(dtype):
    x, w, b = (t.detach().cuda().to(dtype).requires_grad_() for t in _inputs(torch.float32, False))
    y = conv2d(x, w, b, stride=2, padding=1)
    y_ref = F.conv2d(x, w, b, stride=2, padding=1)
    assert_close(y, y_ref)
    dy = torch.randn_like(y)
    for g, g_ref in zip(torch.autograd.grad(y, (x, w, b), dy),
                        torch.autograd.grad(y_ref, (x, w, b), dy), strict=True):
        assert_close(g, g_ref)
    xt, wt, _ = (t.detach().cuda().to(dtype) for t in _inputs(torch.float32, True))
    assert_close(conv_transpose2d(xt, wt, stride=2, padding=1),
                 F.conv_transpose2d(xt, wt, stride=2, padding=1))
    # the flag is process-wide: CUDA backward passes run on autograd's device threads
    y = conv2d(x, w, b, padding=1)
    with no_weight_gradients():
        y.float().square().sum().backward()
    assert w.grad is None and x.grad is not None
