"""gankern.nn conditioning layers against their formulas, written out sample by sample."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close

from gankern.nn import (
    ConditionalBatchNorm2d,
    LinearConditionalBatchNorm2d,
    ProjectionHead,
    class_embedding,
    concat_label_maps,
    concat_labels,
    has_spectral_norm,
    label_maps,
)


def _one_hot(labels, num_classes, dtype=torch.float64):
    return F.one_hot(torch.as_tensor(labels), num_classes).to(dtype)


def _batch_stats(x):
    """Per-channel mean and biased variance over (N, H, W), by explicit sums."""
    n, ch, h, w = x.shape
    count = n * h * w
    mean = torch.stack([x[:, k].sum() / count for k in range(ch)])
    var = torch.stack([((x[:, k] - mean[k]) ** 2).sum() / count for k in range(ch)])
    return mean, var


def test_class_embedding_rows_and_soft_labels():
    table = torch.randn(4, 3, dtype=torch.float64)
    labels = [2, 0, 3]
    expected = torch.stack([table[k] for k in labels])
    assert torch.equal(class_embedding(_one_hot(labels, 4), table), expected)  # exact rows
    assert torch.equal(class_embedding(torch.tensor(labels), table), expected)
    soft = torch.tensor([[0.25, 0.75, 0, 0]], dtype=torch.float64)
    assert_close(class_embedding(soft, table), 0.25 * table[0:1] + 0.75 * table[1:2])


def test_conditional_batch_norm_training_formula():
    torch.manual_seed(3)
    x = torch.randn(5, 3, 4, 6, dtype=torch.float64) * 2 + 0.5
    labels = [1, 0, 2, 1, 3]
    cbn = ConditionalBatchNorm2d(3, 4).double()
    # the layer starts as plain batch norm: gains 1, biases 0
    assert torch.equal(cbn.gains.weight, torch.ones(4, 3, dtype=torch.float64))
    assert torch.equal(cbn.biases.weight, torch.zeros(4, 3, dtype=torch.float64))
    with torch.no_grad():
        cbn.gains.weight.normal_()
        cbn.biases.weight.normal_()
    y = cbn(x, _one_hot(labels, 4))

    mean, var = _batch_stats(x)
    expected = torch.empty_like(x)
    for i, k in enumerate(labels):
        for ch in range(3):
            xhat = (x[i, ch] - mean[ch]) / torch.sqrt(var[ch] + 1e-5)
            expected[i, ch] = cbn.gains.weight[k, ch] * xhat + cbn.biases.weight[k, ch]
    assert_close(y, expected)
    assert_close(cbn(x, torch.tensor(labels)), expected)  # integer labels too

    # running statistics: momentum 0.1, unbiased variance, as torch's BatchNorm2d
    unbiased = var * (x.numel() / 3) / (x.numel() / 3 - 1)
    assert_close(cbn.bn.running_mean, 0.19 * mean)  # two training calls: 0.1 + 0.9 * 0.1
    assert_close(cbn.bn.running_var, 0.81 * 1 + 0.19 * unbiased)


def test_conditional_batch_norm_eval_uses_running_stats():
    cbn = ConditionalBatchNorm2d(2, 3, eps=1e-3).double().eval()
    with torch.no_grad():
        cbn.bn.running_mean.copy_(torch.tensor([0.5, -1.0]))
        cbn.bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        cbn.gains.weight.copy_(torch.arange(6.0).reshape(3, 2))
        cbn.biases.weight.copy_(-torch.arange(6.0).reshape(3, 2))
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    labels = [2, 1]
    y = cbn(x, _one_hot(labels, 3))
    for i, k in enumerate(labels):
        for ch in range(2):
            xhat = (x[i, ch] - cbn.bn.running_mean[ch]) / (cbn.bn.running_var[ch] + 1e-3) ** 0.5
            assert_close(y[i, ch], cbn.gains.weight[k, ch] * xhat + cbn.biases.weight[k, ch])


def test_linear_conditional_batch_norm_formula():
    torch.manual_seed(4)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    y = torch.randn(4, 6, dtype=torch.float64)
    ccbn = LinearConditionalBatchNorm2d(3, 6, bias=True).double()
    out = ccbn(x, y)
    mean, var = _batch_stats(x)
    wg, bg = ccbn.gain_linear.weight, ccbn.gain_linear.bias
    wb, bb = ccbn.bias_linear.weight, ccbn.bias_linear.bias
    for i in range(4):
        for ch in range(3):
            gain = 1 + sum(wg[ch, j] * y[i, j] for j in range(6)) + bg[ch]
            bias = sum(wb[ch, j] * y[i, j] for j in range(6)) + bb[ch]
            xhat = (x[i, ch] - mean[ch]) / torch.sqrt(var[ch] + 1e-5)
            assert_close(out[i, ch], gain * xhat + bias)


def test_linear_conditional_batch_norm_options():
    plain = LinearConditionalBatchNorm2d(8, 4)
    assert plain.gain_linear.bias is None and plain.bias_linear.bias is None  # BigGAN G_shared
    assert sum(p.numel() for p in plain.parameters()) == 2 * 8 * 4
    sn = LinearConditionalBatchNorm2d(8, 4, spectral_norm=True, sn_eps=1e-8)
    assert has_spectral_norm(sn.gain_linear) and has_spectral_norm(sn.bias_linear)
    assert sn.gain_linear.parametrizations.weight[0].eps == 1e-8
    assert sn(torch.randn(2, 8, 2, 2), torch.randn(2, 4)).shape == (2, 8, 2, 2)


def test_projection_head_formula():
    torch.manual_seed(5)
    head = ProjectionHead(6, 4).double()
    with torch.no_grad():
        head.linear.bias.fill_(0.3)
    h = torch.randn(3, 6, dtype=torch.float64)
    labels = [3, 3, 1]
    out = head(h, _one_hot(labels, 4))
    assert out.shape == (3, 1)
    for i, k in enumerate(labels):
        expected = head.linear.bias[0] + sum(
            head.linear.weight[0, j] * h[i, j] + head.embed.weight[k, j] * h[i, j] for j in range(6)
        )
        assert_close(out[i, 0], expected)
    assert ProjectionHead(6, 4, bias=False).linear.bias is None


def test_label_concatenation():
    z = torch.randn(3, 5)
    c = _one_hot([2, 0, 1], 3, torch.float32)
    zc = concat_labels(z, c)
    for i in range(3):
        assert torch.equal(zc[i], torch.tensor(z[i].tolist() + c[i].tolist()))
    x = torch.randn(3, 2, 4, 5)
    maps = label_maps(c, 4, 5)
    xc = concat_label_maps(x, c)
    assert maps.shape == (3, 3, 4, 5) and xc.shape == (3, 5, 4, 5)
    for i in range(3):
        assert torch.equal(xc[i, :2], x[i])
        for k in range(3):
            assert torch.equal(maps[i, k], torch.full((4, 5), float(c[i, k])))
            assert torch.equal(xc[i, 2 + k], torch.full((4, 5), float(c[i, k])))
    # c_dim = 0 (unconditional) leaves the input alone
    assert torch.equal(concat_labels(z, torch.zeros(3, 0)), z)
    assert torch.equal(concat_label_maps(x, torch.zeros(3, 0)), x)


def test_gradients_reach_the_tables():
    cbn = ConditionalBatchNorm2d(2, 3)
    head = ProjectionHead(2, 3)
    x = torch.randn(4, 2, 3, 3)
    c = _one_hot([0, 1, 1, 2], 3, torch.float32)
    head(cbn(x, c).mean((2, 3)), c).square().sum().backward()
    for module in (cbn, head):
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # a class absent from the batch gets no gradient in its rows
    cbn.zero_grad()
    cbn(x, _one_hot([0, 0, 1, 1], 3, torch.float32)).square().sum().backward()
    assert torch.all(cbn.gains.weight.grad[2] == 0) and torch.any(cbn.gains.weight.grad[0] != 0)


def test_errors():
    cbn = ConditionalBatchNorm2d(2, 3)
    x = torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match=r"c must be one-hot labels of shape \[N, 3\]"):
        cbn(x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="batch size 2"):
        cbn(x, torch.zeros(3, 3))
    with pytest.raises(TypeError, match="c must be float one-hot labels or integer"):
        cbn(x, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        cbn(torch.randn(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        ConditionalBatchNorm2d(2, 0)
    with pytest.raises(ValueError, match=r"y must have shape \[2, 4\]"):
        LinearConditionalBatchNorm2d(2, 4)(x, torch.randn(2, 5))
    with pytest.raises(TypeError, match="spectral_norm must be a bool"):
        LinearConditionalBatchNorm2d(2, 4, spectral_norm=1)
    with pytest.raises(ValueError, match=r"h must have shape \[N, 2\]"):
        ProjectionHead(2, 3)(torch.randn(2, 5), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="batch size 2"):
        concat_labels(torch.randn(2, 4), torch.zeros(3, 1))
    with pytest.raises(ValueError, match="batch size 2"):
        concat_label_maps(x, torch.zeros(1, 3))
