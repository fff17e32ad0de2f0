"""DCGAN (gankern.models.dcgan) against pytorch/examples' layer stack, counts and variants."""

from __future__ import annotations

import pytest
import torch
from models_testutils import (
    assert_config_roundtrips,
    assert_every_param_gets_a_gradient,
    assert_set_impl_switches_both,
    count_params,
    one_hot,
    random_labels,
)
from testutils import assert_close
from torch import nn

from gankern.models.dcgan import (
    DCGAN_CONFIGS,
    DCGAN_HYPERPARAMS,
    DCGANDiscriminatorConfig,
    DCGANGeneratorConfig,
    dcgan_config,
)
from gankern.nn import ConditionalBatchNorm2d, has_spectral_norm


def _reference_generator(nz, ngf, nc, doublings):
    """pytorch/examples dcgan's generator, written out for any number of stride-2 blocks."""
    ch = ngf * 2**doublings
    layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU()]
    for _ in range(doublings):
        layers += [
            nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ch // 2),
            nn.ReLU(),
        ]
        ch //= 2
    layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def _reference_discriminator(nc, ndf, doublings):
    ch = ndf
    layers = [nn.Conv2d(nc, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]
    for _ in range(doublings):
        layers += [
            nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * ch),
            nn.LeakyReLU(0.2),
        ]
        ch *= 2
    layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]
    return nn.Sequential(*layers)


def _copy_params_in_order(src: nn.Module, dst: nn.Module) -> None:
    src_p, dst_p = list(src.parameters()), list(dst.parameters())
    assert [p.shape for p in src_p] == [p.shape for p in dst_p]
    with torch.no_grad():
        for s, d in zip(src_p, dst_p, strict=True):
            d.copy_(s)


def test_standard_64px_parameter_counts():
    # pytorch/examples dcgan/main.py, nz = 100, ngf = ndf = 64, nc = 3 (no conv biases):
    #   G: ConvT 100->512 k4: 819,200; ConvT 512->256: 2,097,152; 256->128: 524,288;
    #      128->64: 131,072; 64->3: 3,072; BN 512/256/128/64: 2 * 960 = 1,920  -> 3,576,704
    #   D: Conv 3->64 k4: 3,072; 64->128: 131,072; 128->256: 524,288; 256->512: 2,097,152;
    #      512->1: 8,192; BN 128/256/512: 2 * 896 = 1,792                      -> 2,765,568
    G_cfg, D_cfg = dcgan_config("dcgan64")
    assert count_params(G_cfg.build()) == 3_576_704
    assert count_params(D_cfg.build()) == 2_765_568
    assert count_params(_reference_generator(100, 64, 3, 3)) == 3_576_704
    assert count_params(_reference_discriminator(3, 64, 3)) == 2_765_568


@pytest.mark.parametrize("resolution", [8, 32])
def test_networks_equal_the_reference_layer_stack(resolution):
    torch.manual_seed(1)
    doublings = {8: 0, 32: 2}[resolution]
    G = DCGANGeneratorConfig(resolution, 2, z_dim=6, base_channels=4).build().double()
    D = DCGANDiscriminatorConfig(resolution, 2, base_channels=4).build().double()
    G_ref = _reference_generator(6, 4, 2, doublings).double()
    D_ref = _reference_discriminator(2, 4, doublings).double()
    _copy_params_in_order(G, G_ref)
    _copy_params_in_order(D, D_ref)
    z = torch.randn(3, 6, dtype=torch.float64)
    img = G(z)
    assert_close(img, G_ref(z[:, :, None, None]))
    assert_close(D(img), D_ref(img).flatten(1))
    G.eval(), G_ref.eval()  # running statistics were updated alike
    assert_close(G(z), G_ref(z[:, :, None, None]))


def test_initialization():
    torch.manual_seed(2)
    G, D = (cfg.build().requires_grad_(False) for cfg in dcgan_config("dcgan64"))
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(float(w.mean())) < 1e-3 and float(w.std()) == pytest.approx(0.02, rel=0.02)
    bn = torch.cat([m.weight for m in D.modules() if isinstance(m, nn.BatchNorm2d)])
    assert float(bn.mean()) == pytest.approx(1.0, abs=0.005)
    assert float(bn.std()) == pytest.approx(0.02, rel=0.2)
    assert all(torch.all(m.bias == 0) for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    # conditional batch norm: the batch-norm rule per class, not the embeddings' N(0, 0.02)
    G = dcgan_config("dcgan_digits", c_dim=10, cond="projection")[0].build()
    gains = torch.cat([b.norm.gains.weight.detach().flatten() for b in G.blocks])
    assert float(gains.mean()) == pytest.approx(1.0, abs=0.005)
    assert float(gains.std()) == pytest.approx(0.02, rel=0.2)
    assert all(torch.all(b.norm.biases.weight == 0) for b in G.blocks)


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_resolutions_and_batch_one(resolution):
    G_cfg, D_cfg = dcgan_config("dcgan_digits", resolution=resolution, img_channels=3)
    G, D = G_cfg.build(), D_cfg.build()
    blocks = len(G.blocks)
    assert blocks == {32: 3, 64: 4, 128: 5}[resolution]  # one more block per doubling
    for n in (1, 3):
        img = G(torch.randn(n, 64), torch.zeros(n, 0))
        assert img.shape == (n, 3, resolution, resolution) and img.abs().max() <= 1
        assert D(img, None).shape == (n, 1)


@pytest.mark.parametrize("d_norm", ["batch", "none", "layer"])
def test_unconditional_gradients(d_norm):
    G, D = (cfg.build() for cfg in dcgan_config("dcgan_digits", d_norm=d_norm))
    z = torch.randn(4, 64)
    assert_every_param_gets_a_gradient(G, D(G(z)).sum())
    assert_every_param_gets_a_gradient(D, D(G(z).detach()).sum())


@pytest.mark.parametrize("cond", ["concat", "acgan", "projection"])
def test_conditional_variants(cond):
    torch.manual_seed(3)
    G_cfg, D_cfg = dcgan_config("dcgan_digits", c_dim=10, cond=cond)
    G, D = G_cfg.build(), D_cfg.build()
    z, c = torch.randn(6, 64), random_labels(6, 10)
    img = G(z, c)
    assert img.shape == (6, 1, 32, 32)
    out = D(img, c)
    if cond == "acgan":
        logits, class_logits = out
        assert logits.shape == (6, 1) and class_logits.shape == (6, 10)
        assert torch.equal(D(img)[0], logits)  # ACGAN's D does not read the labels
        loss = logits.sum() + class_logits.square().sum()
    else:
        assert out.shape == (6, 1)
        other = one_hot((c.argmax(1) + 1) % 10, 10)
        D.eval()
        assert not torch.allclose(D(img, c), D(img, other))  # D reads the labels
        D.train()
        loss = D(img, c).sum()
    G.eval()
    if cond == "projection":  # conditional gains start equal (1) for every class
        with torch.no_grad():
            for m in G.modules():
                if isinstance(m, ConditionalBatchNorm2d):
                    m.gains.weight.normal_(1.0, 0.1)
    assert not torch.allclose(G(z, c), G(z, one_hot((c.argmax(1) + 3) % 10, 10)))
    G.train()
    assert_every_param_gets_a_gradient(D, loss)
    out = D(G(z, c), c)
    assert_every_param_gets_a_gradient(G, (out[0] if cond == "acgan" else out).sum())


def test_conditional_layers():
    G_cfg, D_cfg = dcgan_config("dcgan_digits", c_dim=10, cond="concat")
    G, D = G_cfg.build(), D_cfg.build()
    assert G.blocks[0].conv.in_channels == 64 + 10  # one-hot appended to z
    assert D.from_img.in_channels == 1 + 10  # label maps appended to the image
    G_cfg, D_cfg = dcgan_config("dcgan_digits", c_dim=10, cond="projection")
    G, D = G_cfg.build(), D_cfg.build()
    assert all(isinstance(b.norm, ConditionalBatchNorm2d) for b in G.blocks)
    assert D.head.embed.weight.shape == (10, 64 * 4 * 4)
    # the projection head: linear part plus the label's embedding against the features
    img, c = torch.randn(3, 1, 32, 32), random_labels(3, 10)
    D.eval()
    h = D.blocks(D.from_img(img)).flatten(1)
    expected = h @ D.head.linear.weight.t() + (h * (c @ D.head.embed.weight)).sum(1, True)
    assert_close(D(img, c), expected)


@pytest.mark.parametrize("norm", ["none", "layer"])
def test_critic_norms_keep_samples_independent(norm):
    # WGAN-GP's penalty needs a critic whose output for a sample ignores the rest of the
    # batch: no batch norm.
    torch.manual_seed(4)
    D = dcgan_config("dcgan_digits", d_norm=norm)[1].build().train()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    x = torch.randn(4, 1, 32, 32)
    assert_close(D(x)[:1], D(x[:1]))
    if norm == "layer":
        # tflib's Layernorm over axes [1, 2, 3]: per-sample statistics over channels and
        # pixels, then a per-channel gain and offset
        layer = D.blocks[0][1].double()
        with torch.no_grad():
            layer.weight.normal_(), layer.bias.normal_()
        h = torch.randn(2, layer.weight.numel(), 3, 3, dtype=torch.float64)
        for i in range(2):
            xhat = (h[i] - h[i].mean()) / torch.sqrt(h[i].var(unbiased=False) + 1e-5)
            expected = xhat * layer.weight[:, None, None] + layer.bias[:, None, None]
            assert_close(layer(h)[i], expected)
    else:
        assert all(m.bias is not None for m in D.modules() if isinstance(m, nn.Conv2d))
    batch = dcgan_config("dcgan_digits")[1].build().train()
    assert not torch.allclose(batch(x)[:1], batch(x[:1]))


def test_spectral_norm_option():
    D = dcgan_config("dcgan_digits", d_norm="none", d_spectral_norm=True)[1].build()
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(has_spectral_norm(m) for m in convs)
    assert D(torch.randn(2, 1, 32, 32)).shape == (2, 1)


def test_set_impl_and_config_roundtrip():
    G_cfg, D_cfg = dcgan_config("dcgan_digits", c_dim=10, cond="projection")
    assert_set_impl_switches_both(G_cfg.build(), D_cfg.build(), 10, g_layers=4, d_layers=3)
    assert_config_roundtrips(G_cfg)
    assert_config_roundtrips(D_cfg)
    assert_config_roundtrips(dcgan_config("dcgan_digits", d_norm="layer")[1])


def test_named_configs_and_hyperparams():
    assert DCGAN_CONFIGS == ("dcgan64", "dcgan32", "dcgan_digits")
    G_cfg, D_cfg = dcgan_config("dcgan32")
    assert (G_cfg.img_resolution, G_cfg.z_dim, D_cfg.base_channels) == (32, 100, 64)
    assert dcgan_config("dcgan64", c_dim=10)[0].cond == "concat"
    hp = DCGAN_HYPERPARAMS
    assert (hp["dcgan"].lr_g, hp["dcgan"].betas, hp["dcgan"].batch) == (2e-4, (0.5, 0.999), 128)
    assert (hp["wgan"].optimizer, hp["wgan"].weight_clip, hp["wgan"].n_critic) == (
        "rmsprop",
        0.01,
        5,
    )
    assert (hp["wgan_gp"].gp_weight, hp["wgan_gp"].betas) == (10.0, (0.0, 0.9))


def test_errors():
    with pytest.raises(ValueError, match="img_resolution must be a power of two >= 8"):
        DCGANGeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="cond must be 'none' exactly when c_dim == 0"):
        DCGANGeneratorConfig(c_dim=10)
    with pytest.raises(ValueError, match="cond must be 'none' exactly when c_dim == 0"):
        DCGANDiscriminatorConfig(cond="acgan")
    with pytest.raises(ValueError, match="norm must be one of"):
        DCGANDiscriminatorConfig(norm="instance")
    with pytest.raises(ValueError, match="name must be one of"):
        dcgan_config("dcgan256")
    G = dcgan_config("dcgan_digits", c_dim=10)[0].build()
    with pytest.raises(ValueError, match="c must be given"):
        G(torch.randn(2, 64))
    D = dcgan_config("dcgan_digits")[1].build()
    with pytest.raises(ValueError, match=r"img must have shape \[N, 1, 32, 32\]"):
        D(torch.randn(2, 3, 32, 32))


def test_projection_generator_starts_with_unit_conditional_gains():
    """DCGAN's N(0, 0.02) initialization must not reach the conditional batch norms' gain
    tables (gains ~0 silenced every feature map, so G drew blank images and never learned)."""
    G = dcgan_config("dcgan_digits", resolution=16, img_channels=1, c_dim=10,
                     cond="projection")[0].build()
    norms = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert norms
    for m in norms:  # the batch-norm rule per class: gains N(1, 0.02), biases 0
        assert (m.gains.weight - 1).abs().max() < 0.15
        assert torch.equal(m.biases.weight, torch.zeros_like(m.biases.weight))
    images = G(torch.randn(16, G.z_dim), torch.eye(10)[torch.arange(16) % 10])
    assert images.std() > 0.05
