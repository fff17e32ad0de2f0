"""Gradient penalties against hand-written autograd computations on small networks."""

import math

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from gankern.ops import conv2d
from gankern.train import (
    PathLengthPenalty,
    input_gradients,
    lazy_adam_hyperparameters,
    lazy_regularization,
    r1_penalty,
    r2_penalty,
    squared_norm_per_sample,
    wgan_gp_penalty,
)

DT = torch.float64


class MLPDiscriminator(nn.Module):
    """A conditional MLP discriminator (smooth activations: non-zero second derivatives)."""

    def __init__(self, in_features=3 * 4 * 4, classes=3):
        super().__init__()
        self.embed = nn.Linear(classes, 8)
        self.fc1 = nn.Linear(in_features, 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x, c):
        h = torch.tanh(self.fc1(x.flatten(1)) + self.embed(c))
        return self.fc2(F.softplus(h)).squeeze(1)


class CNNDiscriminator(nn.Module):
    """A CNN whose convolution is gankern's (use_gankern) or torch's, with the same weights."""

    def __init__(self, use_gankern):
        super().__init__()
        self.conv = conv2d if use_gankern else F.conv2d
        self.w1 = nn.Parameter(torch.randn(4, 3, 3, 3, dtype=DT))
        self.b1 = nn.Parameter(torch.randn(4, dtype=DT))
        self.w2 = nn.Parameter(torch.randn(2, 4, 3, 3, dtype=DT))

    def forward(self, x):
        h = torch.tanh(self.conv(x, self.w1 * 0.5, self.b1, padding=1))
        h = F.softplus(self.conv(h, self.w2, None, stride=2))
        return h.mean(dim=(1, 2, 3))


def _params_grads(value, module):
    return torch.autograd.grad(
        value, list(module.parameters()), retain_graph=True, allow_unused=True,
        materialize_grads=True,
    )


def _assert_all_close(actual, expected, dtype=None):
    for a, e in zip(actual, expected, strict=True):
        assert_close(a, e, dtype)


def _per_sample_input_grads(net, x, *args):
    """Each sample's input gradient, one sample at a time (no batch trick)."""
    grads = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1].detach().clone().requires_grad_()
        out = net(xi, *(a[i : i + 1] for a in args))
        (g,) = torch.autograd.grad(out.sum(), xi, create_graph=True)
        grads.append(g)
    return torch.cat(grads)


def _sum_of_squares(g):
    return torch.stack([sum(v * v for v in sample.flatten()) for sample in g])


def test_squared_norm_per_sample():
    t = torch.randn(3, 2, 4, 5, dtype=DT)
    assert_close(squared_norm_per_sample(t), _sum_of_squares(t))
    tc = t.float().to(memory_format=torch.channels_last)
    assert_close(squared_norm_per_sample(tc), _sum_of_squares(t).float())
    half = squared_norm_per_sample(t.half())
    assert half.dtype == torch.float32
    t.requires_grad_()
    assert torch.autograd.gradgradcheck(squared_norm_per_sample, (t,))
    zero = torch.zeros(2, 3, dtype=DT, requires_grad=True)
    (g,) = torch.autograd.grad(squared_norm_per_sample(zero).sum(), zero)
    assert torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("penalty", [r1_penalty, r2_penalty])
def test_r1_r2_value_and_parameter_gradients_on_mlp(penalty):
    torch.manual_seed(3)
    D = MLPDiscriminator().to(DT)
    x = torch.randn(5, 3, 4, 4, dtype=DT)
    c = F.one_hot(torch.tensor([0, 2, 1, 1, 0]), 3).to(DT)
    value = penalty(D, x, c)
    expected = _sum_of_squares(_per_sample_input_grads(D, x, c)).mean()
    assert_close(value, expected)
    _assert_all_close(_params_grads(value, D), _params_grads(expected, D))
    per_sample = penalty(D, x, c, reduction="none")
    assert per_sample.shape == (5,)
    assert_close(penalty(D, x, c, reduction="sum"), per_sample.sum())
    value2, logits = penalty(D, x, c=c, return_logits=True)
    assert_close(value2, expected)
    assert_close(logits, D(x, c))


def test_r1_with_gankern_convs_skips_inner_weight_gradients():
    torch.manual_seed(4)
    D, D_ref = CNNDiscriminator(use_gankern=True), CNNDiscriminator(use_gankern=False)
    D_ref.load_state_dict(D.state_dict())
    x = torch.randn(3, 3, 6, 6, dtype=DT)

    class Log(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.masks = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution_backward.default:
                self.masks.append(list(args[-1]))
            return func(*args, **(kwargs or {}))

    with Log() as log:
        value = r1_penalty(D, x)
    assert [m[1] for m in log.masks] == [False, False]  # inner backward: no weight grads

    # the hand-written penalty on torch's convs, with plain autograd
    xr = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(D_ref(xr).sum(), xr, create_graph=True)
    expected = g.square().sum(dim=(1, 2, 3)).mean()
    assert_close(value, expected)
    _assert_all_close(_params_grads(value, D), _params_grads(expected, D_ref))
    assert_close(r1_penalty(D, x, skip_weight_gradients=False), expected)


def test_inputs_are_detached_and_left_untouched():
    D = MLPDiscriminator().to(DT)
    G = nn.Linear(4, 48).to(DT)
    fakes = G(torch.randn(2, 4, dtype=DT)).reshape(2, 3, 4, 4)
    c = torch.zeros(2, 3, dtype=DT)
    r2_penalty(D, fakes, c).backward()
    assert all(p.grad is None for p in G.parameters())  # R2 trains D only
    assert D.fc1.weight.grad is not None and D.fc2.weight.grad is not None
    reals = torch.randn(2, 3, 4, 4, dtype=DT)
    r1_penalty(D, reals, c)
    assert not reals.requires_grad and reals.grad is None


def _wgan_reference(D, reals, fakes, target, norm, seed, reduction="mean"):
    rng = torch.Generator().manual_seed(seed)
    eps = torch.rand(reals.shape[0], 1, 1, 1, generator=rng, dtype=DT)
    x_hat = (eps * reals + (1 - eps) * fakes).requires_grad_()
    (g,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    flat = g.flatten(1)
    if norm == "l2":
        n = flat.square().sum(1).sqrt()
    elif norm == "l1":
        n = flat.abs().sum(1)
    else:
        n = flat.abs().max(1).values
    per_sample = (n - target) ** 2
    return per_sample if reduction == "none" else per_sample.mean()


@pytest.mark.parametrize("norm, target", [("l2", 1.0), ("l2", 0.3), ("l1", 2.0), ("linf", 0.1)])
def test_wgan_gp_value_and_parameter_gradients(norm, target):
    torch.manual_seed(5)
    D = CNNDiscriminator(use_gankern=True)
    D_ref = CNNDiscriminator(use_gankern=False)
    D_ref.load_state_dict(D.state_dict())
    reals, fakes = torch.randn(2, 4, 3, 5, 5, dtype=DT).unbind(0)
    value = wgan_gp_penalty(
        D, reals, fakes, target=target, norm=norm, generator=torch.Generator().manual_seed(7)
    )
    expected = _wgan_reference(D_ref, reals, fakes, target, norm, seed=7)
    assert_close(value, expected)
    _assert_all_close(_params_grads(value, D), _params_grads(expected, D_ref))


def test_wgan_gp_reductions():
    torch.manual_seed(5)
    D = CNNDiscriminator(use_gankern=True)
    reals, fakes = torch.randn(2, 4, 3, 5, 5, dtype=DT).unbind(0)
    per_sample = wgan_gp_penalty(D, reals, fakes, target=0.5,
                                 generator=torch.Generator().manual_seed(3), reduction="none")
    expected = _wgan_reference(D, reals, fakes, 0.5, "l2", seed=3, reduction="none")
    assert per_sample.shape == (4,)
    assert_close(per_sample, expected)
    total = wgan_gp_penalty(D, reals, fakes, target=0.5,
                            generator=torch.Generator().manual_seed(3), reduction="sum")
    assert_close(total, expected.sum())


def test_wgan_gp_zero_gradient_gives_target_squared_and_finite_gradients():
    # D(x) = sum relu(w x - 5): sample 0 (all inputs 0) sees a zero input gradient, where
    # d||g||/dg is undefined (sqrt at 0); the penalty must be target^2 there and its
    # parameter gradient finite, while sample 1 (all inputs 1, w x > 5) is unaffected.
    w = torch.tensor(10.0, dtype=DT, requires_grad=True)

    def D(x):
        return F.relu(w * x - 5).flatten(1).sum(1)

    reals = torch.stack([torch.zeros(2, 3, dtype=DT), torch.ones(2, 3, dtype=DT)])
    penalty = wgan_gp_penalty(D, reals, reals, target=2.0, reduction="none")
    # sample 1: the gradient is w in each of its 6 inputs, norm sqrt(6) w
    expected = torch.tensor([4.0, (math.sqrt(6) * 10 - 2) ** 2], dtype=DT)
    assert_close(penalty, expected)
    (grad_w,) = torch.autograd.grad(penalty.sum(), w)
    # d/dw (sqrt(6) w - 2)^2 = 2 sqrt(6) (sqrt(6) w - 2); sample 0 contributes 0 (not NaN)
    assert_close(grad_w, torch.tensor(2 * math.sqrt(6) * (math.sqrt(6) * 10 - 2), dtype=DT))


class _RecordingSquare(torch.autograd.Function):
    """x ** 2 whose backward records whether weight gradients were switched off."""

    seen: list[bool] = []

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, dy):
        from gankern.ops.conv2d import weight_gradients_disabled

        _RecordingSquare.seen.append(weight_gradients_disabled())
        (x,) = ctx.saved_tensors
        return 2 * x * dy


def test_input_gradients_skip_weight_gradients_by_default_and_on_request():
    def D(x, *args, **kwargs):
        return _RecordingSquare.apply(x).flatten(1).sum(1)

    x = torch.randn(2, 3, dtype=DT)
    ws = torch.randn(2, 3, dtype=DT, requires_grad=True)
    calls = {
        "r1": lambda **kw: r1_penalty(D, x, **kw),
        "r2": lambda **kw: r2_penalty(D, x, **kw),
        "wgan": lambda **kw: wgan_gp_penalty(D, x, x + 1, **kw),
        "pl": lambda **kw: PathLengthPenalty()(D(ws)[:, None, None, None], ws, **kw),
        "pl_path_lengths": lambda **kw: PathLengthPenalty().path_lengths(
            D(ws)[:, None, None, None], ws, **kw),
        "input_gradients": lambda **kw: input_gradients(D(ws_leaf := ws * 1), ws_leaf, **kw),
        "pl_from_generator": lambda **kw: PathLengthPenalty().from_generator(
            lambda w: D(w)[:, None, None, None], ws, **kw),
    }
    for name, call in calls.items():
        for kwargs, expected in (({}, True), ({"skip_weight_gradients": False}, False)):
            _RecordingSquare.seen.clear()
            call(**kwargs)
            assert _RecordingSquare.seen == [expected], (name, kwargs)


def test_wgan_gp_default_target_and_discriminator_arguments():
    torch.manual_seed(5)
    D = MLPDiscriminator().to(DT)
    reals, fakes = torch.randn(2, 4, 3, 4, 4, dtype=DT).unbind(0)
    c = torch.randn(4, 3, dtype=DT)

    def D_ref(x):  # the conditioning bound, for the hand-written reference
        return D(x, c)

    expected = _wgan_reference(D_ref, reals, fakes, 1.0, "l2", seed=2)
    for args, kwargs in (((c,), {}), ((), {"c": c})):
        got = wgan_gp_penalty(D, reals, fakes, *args, generator=torch.Generator().manual_seed(2),
                              **kwargs)
        assert_close(got, expected)


def test_wgan_gp_interpolates_are_random_per_sample():
    seen = []

    def D(x):
        seen.append(x.detach())
        return (x**2).sum(1)

    reals, fakes = torch.ones(64, 2, dtype=DT), torch.zeros(64, 2, dtype=DT)
    wgan_gp_penalty(D, reals, fakes, generator=torch.Generator().manual_seed(1))
    wgan_gp_penalty(D, reals, fakes, generator=torch.Generator().manual_seed(1))
    wgan_gp_penalty(D, reals, fakes, generator=torch.Generator().manual_seed(2))
    eps = seen[0][:, 0]
    assert torch.equal(seen[0][:, 0], seen[0][:, 1])  # one eps per sample
    assert ((eps >= 0) & (eps < 1)).all() and eps.std() > 0.1
    assert torch.equal(seen[0], seen[1]) and not torch.equal(seen[0], seen[2])


class TinySynthesis(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, 3, 4, 4], non-linear in ws."""

    def __init__(self, num_ws=2, w_dim=5):
        super().__init__()
        self.fc = nn.Linear(num_ws * w_dim, 3 * 16)
        self.mix = nn.Parameter(torch.randn(3, 3))

    def forward(self, ws):
        h = torch.tanh(self.fc(ws.flatten(1))).reshape(-1, 3, 4, 4)
        return torch.einsum("oc,nchw->nohw", self.mix, h) + h**2


def _path_length_reference(images, ws, seed):
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed), dtype=DT)
    noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    (g,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return g.square().sum(2).mean(1).sqrt()


def test_path_length_penalty_value_gradients_and_running_mean():
    torch.manual_seed(6)
    G = TinySynthesis().to(DT)
    pl = PathLengthPenalty()
    assert pl.decay == 0.01 and pl.weight == 2.0 and float(pl.pl_mean) == 0.0
    means = [0.0]
    for step in range(3):
        ws = torch.randn(4, 2, 5, dtype=DT, requires_grad=True)
        images = G(ws)
        value = pl(images, ws, generator=torch.Generator().manual_seed(step))
        lengths = _path_length_reference(images, ws, seed=step)
        mean = means[-1] + 0.01 * (lengths.mean() - means[-1])  # not detached, as StyleGAN2
        expected = ((lengths - mean) ** 2 * 2.0).mean()
        # The running mean is a float32 buffer (as StyleGAN2's pl_mean): float32 tolerance.
        assert_close(value, expected, torch.float32)
        _assert_all_close(_params_grads(value, G), _params_grads(expected, G), torch.float32)
        means.append(float(mean.detach()))
        assert math.isclose(float(pl.pl_mean), means[-1], rel_tol=1e-6)


class ModulatedSynthesis(nn.Module):
    """ws [N, 1, w_dim] -> images via per-sample modulated weights (grouped conv)."""

    def __init__(self, conv, w_dim=5, cin=3, cout=2):
        super().__init__()
        self.conv = conv
        self.const = nn.Parameter(torch.randn(1, cin, 4, 4, dtype=DT))
        self.affine = nn.Linear(w_dim, cin, dtype=DT)
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3, dtype=DT))

    def forward(self, ws):
        n, (cout, cin) = ws.shape[0], self.weight.shape[:2]
        styles = self.affine(ws[:, 0]) + 1
        wm = (self.weight[None] * styles[:, None, :, None, None]).reshape(n * cout, cin, 3, 3)
        x = self.const.expand(n, -1, -1, -1).reshape(1, n * cin, 4, 4)
        return torch.tanh(self.conv(x, wm, None, 1, 1, 1, n)).reshape(n, cout, 4, 4)


def test_path_length_through_modulated_weights_keeps_the_style_path():
    """Inside no_weight_gradients, weights computed from ws still pass on their gradient."""
    torch.manual_seed(9)
    G, G_ref = ModulatedSynthesis(conv2d), ModulatedSynthesis(F.conv2d)
    G_ref.load_state_dict(G.state_dict())
    ws = torch.randn(3, 1, 5, dtype=DT, requires_grad=True)
    value = PathLengthPenalty()(G(ws), ws, generator=torch.Generator().manual_seed(0))
    images = G_ref(ws)
    lengths = _path_length_reference(images, ws, seed=0)
    expected = ((lengths - 0.01 * lengths.mean()) ** 2 * 2.0).mean()
    assert_close(value, expected)
    _assert_all_close(_params_grads(value, G), _params_grads(expected, G_ref))


def test_path_length_state_dict_and_from_generator():
    torch.manual_seed(8)
    G = TinySynthesis().to(DT)
    mapping = nn.Linear(5, 10).to(DT)
    pl = PathLengthPenalty(decay=0.5, weight=1.0)
    ws = torch.randn(3, 2, 5, dtype=DT)
    pl.from_generator(G, ws, generator=torch.Generator().manual_seed(0))
    restored = PathLengthPenalty(decay=0.5, weight=1.0)
    restored.load_state_dict(pl.state_dict())
    assert float(restored.pl_mean) == float(pl.pl_mean) != 0.0
    a = pl.from_generator(G, ws, generator=torch.Generator().manual_seed(1))
    b = restored.from_generator(G, ws, generator=torch.Generator().manual_seed(1))
    assert_close(a, b)
    assert float(restored.pl_mean) == float(pl.pl_mean)
    # ws from a mapping network: the penalty reaches the mapping's parameters too
    ws_mapped = mapping(torch.randn(3, 5, dtype=DT)).reshape(3, 2, 5)
    value = pl.from_generator(G, ws_mapped, reduction="none")
    assert value.shape == (3,)
    value.sum().backward()
    assert mapping.weight.grad is not None and mapping.weight.grad.abs().sum() > 0
    # 2-D ws [N, w_dim]: the path length is the plain gradient norm
    ws2 = torch.randn(3, 10, dtype=DT, requires_grad=True)
    images = G(ws2.reshape(3, 2, 5))
    lengths = pl.path_lengths(images, ws2, generator=torch.Generator().manual_seed(2))
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(2), dtype=DT) / 4
    (g,) = torch.autograd.grad((images * noise).sum(), ws2)
    assert_close(lengths, g.norm(dim=1))


def test_lazy_regularization():
    assert lazy_regularization(0, 16) == (True, 16.0)
    assert lazy_regularization(5, 16) == (False, 0.0)
    assert lazy_regularization(32, 16) == (True, 16.0)
    assert lazy_regularization(7, None) == (True, 1.0)
    assert lazy_regularization(7, 1) == (True, 1.0)
    # StyleGAN2's G: lr 0.0025, betas (0, 0.99), pl interval 4 -> mb_ratio 0.8
    lr, betas = lazy_adam_hyperparameters(0.0025, (0.0, 0.99), 4)
    assert math.isclose(lr, 0.002)
    assert betas[0] == 0.0 and math.isclose(betas[1], math.exp(0.8 * math.log(0.99)))
    assert lazy_adam_hyperparameters(0.002, [0.5, 0.9], None) == (0.002, (0.5, 0.9))


def _mlp_inputs():
    return MLPDiscriminator().to(DT), torch.randn(2, 3, 4, 4, dtype=DT), torch.zeros(2, 3, dtype=DT)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda D, x, c: r1_penalty(3, x), TypeError, "discriminator must be an nn.Module"),
        (lambda D, x, c: r1_penalty(x, x), TypeError, "discriminator must be an nn.Module"),
        (lambda D, x, c: r1_penalty(D, x.tolist(), c), TypeError, "reals must be a torch.Tensor"),
        (lambda D, x, c: r1_penalty(D, x.long(), c), TypeError, "reals must be a floating"),
        (lambda D, x, c: r1_penalty(D, x[0, 0, 0], c), ValueError, "reals must be a non-empty"),
        (lambda D, x, c: r2_penalty(D, x[:0], c), ValueError, "fakes must be a non-empty"),
        (lambda D, x, c: r1_penalty(D, x, c, reduction="avg"), ValueError, "reduction must be"),
        (lambda D, x, c: r1_penalty(lambda x: x.sum(), x), ValueError, "output must be per sample"),
        (lambda D, x, c: r1_penalty(lambda x: x.detach().sum((1, 2, 3)), x), ValueError,
         "does not depend on its input"),
        (lambda D, x, c: r1_penalty(lambda x: [x], x), TypeError, "output must be a torch.Tensor"),
        (lambda D, x, c: wgan_gp_penalty(D, x, x[:1], c), ValueError, "fakes must match reals"),
        (lambda D, x, c: wgan_gp_penalty(D, x, x, c, norm="l3"), ValueError, "norm must be one of"),
        (lambda D, x, c: wgan_gp_penalty(D, x, x, c, target=-1), ValueError, "target must be >= 0"),
        (lambda D, x, c: wgan_gp_penalty(D, x, x, c, generator=1), TypeError, "generator must be"),
        (lambda D, x, c: PathLengthPenalty(decay=2), ValueError, "decay must be in"),
        (lambda D, x, c: PathLengthPenalty()(x, x), ValueError, "ws must require gradients"),
        (lambda D, x, c: PathLengthPenalty()(x, c[:1].requires_grad_()), ValueError,
         "ws must have the batch size"),
        (lambda D, x, c: PathLengthPenalty().from_generator(lambda w: 1, c), TypeError,
         "synthesis must return a tensor"),
        (lambda D, x, c: lazy_regularization(-1, 4), ValueError, "step must be >= 0"),
        (lambda D, x, c: lazy_regularization(0, 0), ValueError, "interval must be >= 1"),
        (lambda D, x, c: lazy_regularization(0, 2.0), TypeError, "interval must be a positive int"),
        (lambda D, x, c: lazy_adam_hyperparameters(0.1, (0.0, 1.0), 4), ValueError, "betas"),
        (lambda D, x, c: lazy_adam_hyperparameters(-0.1, (0.0, 0.9), 4), ValueError, "lr must"),
    ],
)
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(*_mlp_inputs())


def test_no_grad_mode_is_reported():
    D, x, c = _mlp_inputs()
    with torch.no_grad(), pytest.raises(ValueError, match="torch.no_grad"):
        r1_penalty(D, x, c)
