"""SAGAN's self-attention block against an explicit softmax(theta^T phi) g formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close, widest_fan_in

from gankern.nn import SelfAttention, has_spectral_norm


def _explicit(block: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """BigGAN-PyTorch's Attention written out: bmm, softmax over the keys, bmm."""
    n, c, h, w = x.shape
    theta = block.theta(x).reshape(n, -1, h * w)  # [N, C/8, HW]
    phi = block.phi(x)
    g = block.g(x)
    if block.pool > 1:
        phi, g = F.max_pool2d(phi, block.pool), F.max_pool2d(g, block.pool)
    phi = phi.reshape(n, phi.shape[1], -1)  # [N, C/8, HW/4]
    g = g.reshape(n, g.shape[1], -1)  # [N, C/2, HW/4]
    beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # [N, HW, HW/4]
    o = (g @ beta.transpose(1, 2)).reshape(n, -1, h, w)
    return x + block.gamma * block.o(o)


@pytest.mark.parametrize("pool", [1, 2])
def test_attention_against_the_explicit_formula(pool):
    block = SelfAttention(16, pool=pool).double()
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 16, 6, 8, dtype=torch.float64)
    assert_close(block(x), _explicit(block, x), terms=widest_fan_in(block) * x[0, 0].numel())


def test_attention_weights_are_a_softmax_over_the_keys():
    # One query position, written with loops: weights exp(q.k_j) / sum_j exp(q.k_j).
    block = SelfAttention(8, qk_ratio=4, v_ratio=2, pool=2).double()
    with torch.no_grad():
        block.gamma.fill_(1.0)
        block.o.weight.copy_(torch.eye(8, 4, dtype=torch.float64).view(8, 4, 1, 1))
    x = torch.randn(1, 8, 4, 4, dtype=torch.float64)
    block.requires_grad_(False)
    q = block.theta(x)[0, :, 1, 2]  # the query at pixel (1, 2)
    keys = F.max_pool2d(block.phi(x), 2)[0].reshape(2, -1)
    values = F.max_pool2d(block.g(x), 2)[0].reshape(4, -1)
    scores = [float(q @ keys[:, j]) for j in range(4)]
    total = sum(torch.exp(torch.tensor(s, dtype=torch.float64)) for s in scores)
    expected = sum(torch.exp(torch.tensor(s, dtype=torch.float64)) / total * values[:, j]
                   for j, s in enumerate(scores))
    got = block(x)[0, :, 1, 2] - x[0, :, 1, 2]
    assert_close(got[:4], expected, terms=widest_fan_in(block) * 4)
    assert_close(got[4:], torch.zeros(4, dtype=torch.float64))


def test_attention_starts_as_the_identity_and_gets_gradients():
    block = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    block(x).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_spectral_norm_option():
    block = SelfAttention(16, spectral_norm=True).double().eval()
    assert all(has_spectral_norm(getattr(block, n)) for n in ("theta", "phi", "g", "o"))
    with torch.no_grad():
        block.gamma.fill_(0.3)
    x = torch.randn(2, 16, 4, 4, dtype=torch.float64)
    assert_close(block(x), _explicit(block, x), terms=widest_fan_in(block) * x[0, 0].numel())
    sigma = torch.linalg.matrix_norm(block.g.weight.detach().reshape(8, 16), ord=2)
    assert abs(float(sigma) - 1) < 0.05  # normalized by the power-iteration estimate


def test_attention_errors():
    with pytest.raises(ValueError, match="divisible by qk_ratio=8"):
        SelfAttention(12)
    with pytest.raises(ValueError, match="divisible by pool=2"):
        SelfAttention(16)(torch.randn(1, 16, 5, 4))
    with pytest.raises(ValueError, match=r"\[N, 16, H, W\]"):
        SelfAttention(16)(torch.randn(1, 8, 4, 4))
