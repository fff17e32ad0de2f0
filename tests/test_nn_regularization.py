"""BigGAN's orthogonal regularization against its formula written with loops, and against
BigGAN-PyTorch's hand-written gradient."""

from __future__ import annotations

import pytest
import torch
from testutils import assert_close
from torch import nn

from gankern.nn import ortho_penalty, spectral_norm


def _loop_penalty(weights, beta):
    total = 0.0
    for w in weights:
        m = w.detach().reshape(w.shape[0], -1)
        for i in range(m.shape[0]):
            for j in range(m.shape[0]):
                if i != j:
                    total += float(m[i] @ m[j]) ** 2
    return beta * total


def _net():
    torch.manual_seed(3)
    return nn.ModuleDict(
        dict(
            conv=nn.Conv2d(3, 5, 3),
            linear=nn.Linear(4, 6),
            embed=nn.Embedding(7, 3),
            bn=nn.BatchNorm2d(5),
        )
    ).double()


def test_ortho_penalty_against_the_formula():
    net = _net()
    weights = [net.conv.weight, net.linear.weight, net.embed.weight]  # biases, BN: 1-D
    got = ortho_penalty(net, beta=1e-4)
    assert_close(got, torch.tensor(_loop_penalty(weights, 1e-4), dtype=torch.float64))
    # Excluding a module (BigGAN leaves out G.shared) or a parameter.
    got = ortho_penalty(net, beta=0.5, exclude=[net.embed, net.linear.weight])
    assert_close(got, torch.tensor(_loop_penalty([net.conv.weight], 0.5), dtype=torch.float64))


def test_orthogonal_rows_cost_nothing_whatever_their_norms():
    layer = nn.Linear(6, 4, bias=False)
    with torch.no_grad():
        q, _ = torch.linalg.qr(torch.randn(6, 4))
        layer.weight.copy_(q.t() * torch.tensor([[1.0], [2.0], [3.0], [0.5]]))
    assert float(ortho_penalty(layer, beta=1.0).detach()) < 1e-10


def test_gradient_matches_biggan_pytorch_modified_ortho():
    # BigGAN-PyTorch utils.ortho adds strength * 2 * (W W^T * (1 - I)) W to the gradient.
    net = _net()
    strength = 1e-3
    ortho_penalty(net, beta=strength / 2, exclude=[net.embed]).backward()
    for w in (net.conv.weight, net.linear.weight):
        m = w.detach().reshape(w.shape[0], -1)
        mask = 1.0 - torch.eye(m.shape[0], dtype=m.dtype)
        expected = strength * 2 * ((m @ m.t()) * mask) @ m
        assert_close(w.grad.reshape(w.shape[0], -1), expected)
    assert net.embed.weight.grad is None


def test_spectrally_normalized_weights_enter_unnormalized():
    layer = spectral_norm(nn.Linear(5, 3)).double()
    original = layer.parametrizations.weight.original
    expected = torch.tensor(_loop_penalty([original], 1.0), dtype=torch.float64)
    assert_close(ortho_penalty(layer, 1.0), expected)


def test_errors_and_empty():
    assert float(ortho_penalty(nn.BatchNorm2d(3))) == 0.0
    with pytest.raises(TypeError, match="exclude"):
        ortho_penalty(_net(), exclude=["embed"])
    with pytest.raises(ValueError, match="beta"):
        ortho_penalty(_net(), beta=-1.0)
