"""Pix2Pix: U-Net generator and PatchGAN discriminator (shapes, counts, structure, errors)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankern.models.patchgan import PatchGANConfig, receptive_field
from gankern.models.pix2pix import (
    PIX2PIX_CONFIGS,
    PIX2PIX_PAPER_HYPERPARAMS,
    UNetGeneratorConfig,
    pix2pix_config,
)


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def unet_param_count(in_ch, out_ch, num_downs, ngf, norm):
    """The official U-Net's parameter count, summed level by level (4x4 kernels)."""
    bias = norm != "batch"
    ch = [ngf * min(2**k, 8) for k in range(num_downs)]
    total = in_ch * ch[0] * 16 + (ch[0] if bias else 0)  # outermost down, no norm
    total += 2 * ch[0] * out_ch * 16 + out_ch  # outermost up, always with bias (tanh)
    for k in range(1, num_downs):
        total += ch[k - 1] * ch[k] * 16 + (ch[k] if bias else 0)  # down conv
        if k < num_downs - 1 and norm == "batch":
            total += 2 * ch[k]  # down norm (not on the innermost level)
        up_in = ch[k] if k == num_downs - 1 else 2 * ch[k]
        total += up_in * ch[k - 1] * 16 + (ch[k - 1] if bias else 0)  # up conv
        if norm == "batch":
            total += 2 * ch[k - 1]  # up norm
    return total


def patchgan_param_count(in_ch, ndf, n_layers, norm):
    bias = norm != "batch"
    total = in_ch * ndf * 16 + ndf
    prev = ndf
    for n in range(1, n_layers + 1):
        cur = ndf * min(2**n, 8)
        total += prev * cur * 16 + (cur if bias else 0) + (2 * cur if norm == "batch" else 0)
        prev = cur
    return total + prev * 16 + 1


def test_published_parameter_counts():
    g, d = pix2pix_config("unet256")
    assert num_params(g.build()) == 54_413_955  # the official unet_256, batch norm, 3->3
    assert num_params(d.build()) == 2_768_705  # the basic PatchGAN on 6 channels
    assert d.in_channels == 6 and d.n_layers == 3 and d.norm == "batch"
    # The formulas above reproduce the published numbers, so they can check other shapes.
    assert unet_param_count(3, 3, 8, 64, "batch") == 54_413_955
    assert patchgan_param_count(6, 64, 3, "batch") == 2_768_705


@pytest.mark.parametrize("num_downs,ngf,norm,in_ch,out_ch", [
    (7, 64, "batch", 3, 3), (5, 8, "instance", 1, 3), (3, 4, "none", 2, 1), (2, 4, "batch", 1, 1),
])
def test_parameter_counts_follow_the_official_structure(num_downs, ngf, norm, in_ch, out_ch):
    g = UNetGeneratorConfig(in_channels=in_ch, out_channels=out_ch, num_downs=num_downs,
                            ngf=ngf, norm=norm)
    assert num_params(g.build()) == unet_param_count(in_ch, out_ch, num_downs, ngf, norm)
    d = PatchGANConfig(img_channels=out_ch, cond_channels=in_ch, ndf=ngf, n_layers=2, norm=norm)
    assert num_params(d.build()) == patchgan_param_count(in_ch + out_ch, ngf, 2, norm)


def _official_unet_forward(G, x):
    """The official recursive UnetSkipConnectionBlock forward, written with the functional
    API on G's weights (eval mode: dropout off, batch norm with running statistics)."""
    n = G.config.num_downs

    def norm(layer, h):
        if isinstance(layer, nn.BatchNorm2d):
            return F.batch_norm(h, layer.running_mean, layer.running_var, layer.weight,
                                layer.bias, False, 0.0, layer.eps)
        return h

    def block(level, h):  # returns cat([h, model(h)]) except at the outermost level
        down = G.down[level]
        if level == 0:
            inner = F.conv2d(h, down.weight, down.bias, stride=2, padding=1)
        else:
            inner = F.conv2d(F.leaky_relu(h, 0.2), down[1].weight, down[1].bias, 2, 1)
            if level < n - 1:
                inner = norm(down[2], inner)
        if level < n - 1:
            inner = block(level + 1, inner)
        up = G.up[level]
        if level == 0:
            out = F.conv_transpose2d(F.relu(inner), up[1].weight, None, 2, 1)
            return torch.tanh(out + up[1].bias.view(1, -1, 1, 1))
        out = F.conv_transpose2d(F.relu(inner), up[1].weight, up[1].bias, 2, 1)
        return torch.cat([h, norm(up[2], out)], dim=1)

    return block(0, x)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_forward_equals_the_official_recursive_structure(norm):
    torch.manual_seed(0)
    G = UNetGeneratorConfig(in_channels=2, out_channels=3, num_downs=4, ngf=4,
                            norm=norm).build(impl="ref").eval()
    for m in G.modules():  # non-trivial running statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 2, 32, 32)
    torch.testing.assert_close(G(x), _official_unet_forward(G, x), rtol=1e-5, atol=1e-6)


def test_dropout_levels_follow_the_official_rule():
    # unet_256: dropout on the three decoder levels around the innermost, never on it.
    G = pix2pix_config("unet256")[0]
    assert G.dropout_levels == 3
    model = UNetGeneratorConfig(num_downs=8, ngf=1).build()
    with_dropout = [i for i, up in enumerate(model.up)
                    if any(isinstance(m, nn.Dropout) for m in up.modules())]
    assert with_dropout == [4, 5, 6]  # 0-based levels; 7 is the innermost
    assert UNetGeneratorConfig(num_downs=5).dropout_levels == 0
    assert UNetGeneratorConfig(num_downs=8, dropout=0.0).dropout_levels == 0
    tiny = UNetGeneratorConfig(num_downs=5, ngf=2, num_dropout=2).build()
    assert [i for i, up in enumerate(tiny.up)
            if any(isinstance(m, nn.Dropout) for m in up.modules())] == [2, 3]


def test_dropout_is_noise_in_training_mode_only():
    torch.manual_seed(0)
    G = UNetGeneratorConfig(in_channels=1, out_channels=1, num_downs=5, ngf=4, norm="instance",
                            num_dropout=2).build(impl="ref")
    x = torch.randn(2, 1, 32, 32)
    assert not torch.equal(G(x), G(x))  # two dropout masks
    G.eval()
    torch.testing.assert_close(G(x), G(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(PIX2PIX_CONFIGS))
def test_named_configs_shapes_and_range(name):
    g, d = pix2pix_config(name, in_channels=1, out_channels=3)
    native = PIX2PIX_CONFIGS[name][0]
    if native > 32:  # keep the test fast: same structure, fewer channels
        g = UNetGeneratorConfig(**{**g.__dict__, "ngf": 2})
        d = PatchGANConfig(**{**d.__dict__, "ndf": 2})
    torch.manual_seed(0)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    x = torch.randn(2, 1, native, native)
    y = G(x)
    assert y.shape == (2, 3, native, native) and y.abs().max() <= 1
    side = native // 2**d.n_layers - 2
    assert D(x, y).shape == (2, 1, side, side)
    assert (G.in_channels, G.out_channels) == (1, 3)


def test_every_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    g, d = pix2pix_config("digits", in_channels=1, out_channels=1)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    x = torch.randn(4, 1, 32, 32)
    (D(x, G(x)).mean() + G(x).square().mean()).backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_batch_one_and_resolution_multiples():
    G = UNetGeneratorConfig(in_channels=3, out_channels=3, num_downs=3, ngf=2,
                            norm="instance").build()
    assert G(torch.randn(1, 3, 8, 24)).shape == (1, 3, 8, 24)
    with pytest.raises(ValueError, match="multiples of 2\\*\\*num_downs = 8"):
        G(torch.randn(1, 3, 12, 16))
    with pytest.raises(ValueError, match="x must be \\[N, 3, H, W\\]"):
        G(torch.randn(1, 1, 16, 16))


def test_initialization_is_normal_002():
    torch.manual_seed(0)
    G = UNetGeneratorConfig(ngf=16).build()
    weights = torch.cat([m.weight.flatten() for m in G.modules()
                         if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 5e-4
    bn_scale = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn_scale.mean() - 1) < 5e-3 and abs(bn_scale.std() - 0.02) < 5e-3
    biases = [m.bias for m in G.modules() if getattr(m, "bias", None) is not None
              and not isinstance(m, nn.BatchNorm2d)]
    assert biases and all((b == 0).all() for b in biases)
    # torch's global RNG: the same seed gives the same network.
    torch.manual_seed(0)
    again = UNetGeneratorConfig(ngf=16).build()
    for a, b in zip(G.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("n_layers,expected", [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_patchgan_receptive_field(n_layers, expected):
    D = PatchGANConfig(img_channels=1, ndf=2, n_layers=n_layers).build()
    assert D.receptive_field == expected
    assert receptive_field([(4, 2)] * n_layers + [(4, 1), (4, 1)]) == expected


@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_receptive_field_is_the_support_of_one_outputs_gradient(n_layers):
    """Direct computation: the input pixels whose gradient reaches one output pixel."""
    torch.manual_seed(0)
    D = PatchGANConfig(img_channels=1, ndf=2, n_layers=n_layers).build(impl="ref").eval()
    with torch.no_grad():
        for p in D.parameters():
            p.abs_()  # positive weights: no cancellation can hide a path
    side = 4 * D.receptive_field
    x = torch.randn(1, 1, side, side, requires_grad=True)
    out = D(x)
    i, j = out.shape[2] // 2, out.shape[3] // 2
    out[0, 0, i, j].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    height = int(rows.max() - rows.min() + 1)
    width = int(cols.max() - cols.min() + 1)
    assert height == width == D.receptive_field
    assert len(rows) == height * width  # every pixel of the square reaches it
    assert rows.min() > 0 and cols.min() > 0  # not clipped by the border


def test_conditional_discriminator_sees_the_concatenation():
    torch.manual_seed(0)
    D = PatchGANConfig(img_channels=3, cond_channels=1, ndf=4, n_layers=2).build(impl="ref")
    x, y = torch.randn(2, 1, 32, 32), torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(D(x, y), D.model(torch.cat([x, y], 1)))
    with pytest.raises(TypeError, match="D\\(x, y\\)"):
        D(y)
    with pytest.raises(ValueError, match="y must have 3 channel"):
        D(x, x)
    with pytest.raises(ValueError, match="at least 12x12"):
        D(x[:, :, :8, :8], y[:, :, :8, :8])
    plain = PatchGANConfig(img_channels=3, ndf=4, n_layers=2).build()
    assert plain(y).shape == (2, 1, 6, 6)
    assert torch.equal(plain(y, c=torch.zeros(2, 0)), plain(y))
    with pytest.raises(TypeError, match="D\\(y\\)"):
        plain(x, y)


def test_fused_layers_follow_set_impl():
    g, d = pix2pix_config("digits", in_channels=1, out_channels=1)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    fused = [m for net in (G, D) for m in net.modules() if hasattr(m, "impl")]
    assert len(fused) == 2 and all(m.impl == "ref" for m in fused)
    G.set_impl("auto")
    D.set_impl("auto")
    assert all(m.impl == "auto" for m in fused)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(num_downs=1), ValueError, "num_downs must be >= 2"),
    (dict(norm="group"), ValueError, "norm must be one of"),
    (dict(ngf=2.0), TypeError, "UNetGeneratorConfig.ngf must be an int"),
    (dict(dropout=1.0), ValueError, "dropout must be < 1"),
    (dict(dropout=-0.1), ValueError, "dropout must be in"),
    (dict(num_downs=5, num_dropout=4), ValueError, "num_dropout must be <= num_downs - 2 = 3"),
])
def test_config_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        UNetGeneratorConfig(**kwargs)


def test_config_round_trips_through_json_dicts():
    import dataclasses
    import json

    for config in pix2pix_config("digits", in_channels=1, out_channels=2):
        data = json.loads(json.dumps(dataclasses.asdict(config)))
        assert type(config)(**data) == config
    with pytest.raises(ValueError, match="multiple of 32"):
        pix2pix_config("digits", resolution=48)
    with pytest.raises(ValueError, match="name must be one of"):
        pix2pix_config("unet512")
    with pytest.raises(ValueError, match="n_layers must be >= 1"):
        PatchGANConfig(n_layers=0)


def test_paper_hyperparameters():
    hp = PIX2PIX_PAPER_HYPERPARAMS
    gan = hp.gan
    assert (gan.lr_g, gan.lr_d, gan.betas, gan.batch, gan.loss) == (
        2e-4, 2e-4, (0.5, 0.999), 1, "nonsaturating")
    assert (hp.lambda_l1, hp.pool_size, hp.d_loss_scale) == (100.0, 0, 0.5)
    # Linear decay over the second half: 100 + 100 epochs.
    assert gan.lr_schedule == "linear" and gan.lr_decay_start / gan.total_g_steps == 0.5
