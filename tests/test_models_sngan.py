"""SNGAN / WGAN-GP ResNets (gankern.models.sngan): official counts, a functional rewrite of
the official blocks, conditioning, spectral norm and the resampling ops."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from models_testutils import (
    assert_config_roundtrips,
    assert_every_param_gets_a_gradient,
    assert_set_impl_switches_both,
    count_params,
    one_hot,
    random_labels,
)
from testutils import assert_close, widest_fan_in
from torch import nn

from gankern.models.sngan import (
    SNGAN_CONFIGS,
    SNGAN_HYPERPARAMS,
    ResNetDiscriminatorConfig,
    ResNetGeneratorConfig,
    sngan_config,
)
from gankern.nn import ConditionalBatchNorm2d, Downsample, Upsample, has_spectral_norm

# --- parameter counts of the official code, read layer by layer -----------------------------
#
# pfnet-research/sngan_projection, chainer links (Convolution2D/Linear with bias unless
# nobias=True; BatchNormalization: gamma + beta; CategoricalConditionalBatchNormalization:
# two EmbedID(n_classes, C); spectral norm adds only the non-trainable vector u).
# gen_models/resblocks.Block: b1 BN(in), c1 3x3 in->out, b2 BN(out), c2 3x3 out->out, c_sc
# 1x1 in->out (up-blocks always have it).  dis_models/resblocks.Block: c1 3x3 in->in, c2 3x3
# in->out, c_sc 1x1 in->out when downsampling or in != out; OptimizedBlock: c1 3x3 in->out,
# c2 3x3 out->out, c_sc 1x1 in->out.
#
# sngan32 G (resnet_32.py, ch 256, dim_z 128, bottom_width 4):
#   l1 Linear 128 -> 4*4*256:        128*4096 + 4096           =   528,384
#   block2..4 Block(256, 256, up):   each BN 512 + c1 589,824+256 + BN 512 + c2 590,080
#                                    + c_sc 65,536+256 = 1,246,976; three  = 3,740,928
#   b5 BN(256):                                                 =       512
#   c5 3x3 256 -> 3:                 6,912 + 3                   =     6,915
#                                                         total   4,276,739
#   with n_classes = 10 the six block BNs become CBNs: + 6 * (2*10*256 - 2*256) = +27,648
#                                                         total   4,304,387
# sngan32 D (snresnet_32.py, ch 128):
#   block1 Optimized(3, 128): c1 3,456+128, c2 147,456+128, c_sc 384+128  =   151,680
#   block2 Block(128, 128, down): c1 147,584, c2 147,584, c_sc 16,512     =   311,680
#   block3, block4 Block(128, 128): 2 * (147,584 + 147,584)              =   590,336
#   l5 SNLinear(128, 1, nobias=True):                                     =       128
#                                                         total   1,053,824
#   with n_classes = 10: l_y SNEmbedID(10, 128)          + 1,280  total   1,055,104
# sngan64 G (resnet_64.py, ch 64: 1024 -> 512 -> 256 -> 128 -> 64):
#   l1 128 -> 16*1024:              2,097,152 + 16,384          = 2,113,536
#   block2 (1024 -> 512): BN 2,048 + c1 4,718,592+512 + BN 1,024 + c2 2,359,296+512
#                         + c_sc 524,288+512                    = 7,606,784
#   block3 (512 -> 256):  1,024 + 1,179,904 + 512 + 590,080 + 131,328 = 1,902,848
#   block4 (256 -> 128):    512 +   295,040 + 256 + 147,584 +  32,896 =   476,288
#   block5 (128 -> 64):     256 +    73,792 + 128 +  36,928 +   8,256 =   119,360
#   b6 BN(64) 128, l6 3x3 64 -> 3: 1,728 + 3                          =     1,859
#                                                         total  12,220,675
#   with 1000 classes: block BNs over 2,880 channels, 2*2,880 -> 2*1000*2,880:
#                      + 5,760,000 - 5,760                total  17,974,915
# sngan64 D (snresnet_64.py, ch 64, five down blocks to 1024, SNLinear with bias):
#   block1 Optimized(3, 64): 1,792 + 36,928 + 256                     =    38,976
#   block2 (64 -> 128):  c1 36,928 + c2 73,856 + c_sc 8,320           =   119,104
#   block3 (128 -> 256): 147,584 + 295,168 + 33,024                   =   475,776
#   block4 (256 -> 512): 590,080 + 1,180,160 + 131,584                = 1,901,824
#   block5 (512 -> 1024): 2,359,808 + 4,719,616 + 525,312             = 7,604,736
#   l6 SNLinear(1024, 1): 1,025                           total  10,141,441
#   with 1000 classes: l_y SNEmbedID(1000, 1024) + 1,024,000  total  11,165,441
#
# igul222/improved_wgan_training gan_cifar_resnet.py (DIM_G = DIM_D = 128, unconditional;
# tflib Conv2D and Linear have biases; Batchnorm: offset + scale, moving statistics are not
# trainable; Normalize is the identity in D):
#   G: Generator.Input Linear 128 -> 2048:  262,144 + 2,048   =   264,192
#      Generator.1..3 ResidualBlock(up): N1 256 + Conv1 147,456+128 + N2 256 + Conv2 147,584
#                                        + Shortcut 16,384+128 = 312,192; three = 936,576
#      Generator.OutputN 256, Generator.Output 3x3 128 -> 3: 3,456 + 3 =    3,715
#                                                         total   1,204,483
#   D: OptimizedResBlockDisc1: Conv1 3,584 + Conv2 147,584 + Shortcut 512 =   151,680
#      Discriminator.2 (down): 147,584 + 147,584 + 16,512                 =   311,680
#      Discriminator.3, .4: 2 * 295,168                                   =   590,336
#      Discriminator.Output Linear 128 -> 1 with bias: 129    total   1,053,825


@pytest.mark.parametrize(
    "name, c_dim, g_params, d_params",
    [
        ("sngan32", 0, 4_276_739, 1_053_824),
        ("sngan32", 10, 4_304_387, 1_055_104),
        ("wgangp32", 0, 1_204_483, 1_053_825),
        ("sngan64", 0, 12_220_675, 10_141_441),
        ("sngan64", 1000, 17_974_915, 11_165_441),
    ],
)
def test_official_parameter_counts(name, c_dim, g_params, d_params):
    G_cfg, D_cfg = sngan_config(name, c_dim=c_dim)
    assert count_params(G_cfg.build()) == g_params
    assert count_params(D_cfg.build()) == d_params


# --- the official blocks, rewritten with torch.nn.functional -------------------------------


def _bn(layer, h, c):
    """Batch norm in eval mode from the layer's running statistics (conditional or not)."""
    if isinstance(layer, ConditionalBatchNorm2d):
        k = c.argmax(1)
        gain, bias, stats = layer.gains.weight[k], layer.biases.weight[k], layer.bn
    else:
        gain, bias, stats = layer.weight[None], layer.bias[None], layer
    xhat = (h - stats.running_mean[None, :, None, None]) / torch.sqrt(
        stats.running_var[None, :, None, None] + stats.eps
    )
    return xhat * gain[:, :, None, None] + bias[:, :, None, None]


def _conv(layer, h):
    return F.conv2d(h, layer.weight, layer.bias, padding=layer.padding)


def _up(h):
    return F.interpolate(h, scale_factor=2, mode="nearest")


def _reference_generator(G, z, c):
    h = G.linear(z).view(z.shape[0], G.config.channels[0], G.config.bottom_width, -1)
    for b in G.blocks:  # gen_models/resblocks.Block with upsample=True
        r = _conv(b.c2, F.relu(_bn(b.b2, _conv(b.c1, _up(F.relu(_bn(b.b1, h, c)))), c)))
        h = r + _conv(b.c_sc, _up(h))
    return torch.tanh(_conv(G.to_img, F.relu(_bn(G.bn, h, c))))


def _reference_discriminator(D, img, c):
    blocks = list(D.blocks)
    opt = blocks[0]  # dis_models/resblocks.OptimizedBlock
    h = F.avg_pool2d(_conv(opt.c2, F.relu(_conv(opt.c1, img))), 2)
    h = h + _conv(opt.c_sc, F.avg_pool2d(img, 2))
    for b in blocks[1:]:  # dis_models/resblocks.Block: shortcut conv, then pooling
        r = _conv(b.c2, F.relu(_conv(b.c1, F.relu(h))))
        sc = _conv(b.c_sc, h) if b.c_sc is not None else h
        if b.pool is not None:
            r, sc = F.avg_pool2d(r, 2), F.avg_pool2d(sc, 2)
        h = r + sc
    h = F.relu(h)
    h = h.sum((2, 3)) if D.config.pooling == "sum" else h.mean((2, 3))
    if D.cond == "projection":
        return h @ D.head.linear.weight.t() + (h * (c @ D.head.embed.weight)).sum(1, True)
    return F.linear(h, D.linear.weight, D.linear.bias)


def _randomize_norms(net):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2)
                if m.affine:
                    m.weight.normal_(1, 0.3), m.bias.normal_(0, 0.3)
            if isinstance(m, ConditionalBatchNorm2d):
                m.gains.weight.normal_(1, 0.3), m.biases.weight.normal_(0, 0.3)


@pytest.mark.parametrize(
    "name, c_dim", [("sngan_digits", 0), ("sngan_digits", 10), ("wgangp_digits", 0)]
)
def test_networks_equal_the_official_blocks(name, c_dim):
    torch.manual_seed(1)
    G_cfg, D_cfg = sngan_config(name, c_dim=c_dim)
    G, D = G_cfg.build().double().eval(), D_cfg.build().double().eval()
    _randomize_norms(G)
    z = torch.randn(3, G.z_dim, dtype=torch.float64)
    c = random_labels(3, c_dim).double() if c_dim else None
    img = G(z, c)
    # Sums of up to the widest layer's fan-in stand behind each value (testutils.tolerance).
    assert_close(img, _reference_generator(G, z, c), terms=widest_fan_in(G))
    assert_close(D(img, c), _reference_discriminator(D, img, c), terms=widest_fan_in(D))


def test_resampling_ops_equal_the_torch_ops_exactly():
    x = torch.randn(4, 5, 6, 8)
    assert torch.equal(Upsample(2, filter=[1, 1])(x), F.interpolate(x, scale_factor=2))
    assert torch.equal(Downsample(2, filter=[1, 1])(x), F.avg_pool2d(x, 2))
    xd = x.double()
    assert torch.equal(Downsample(2, filter=[1, 1]).double()(xd), F.avg_pool2d(xd, 2))


# --- shapes, conditioning, spectral norm -----------------------------------------------------


def _thin(name, c_dim=0, **d_changes):
    """A named configuration with narrow layers (fast to run at any resolution)."""
    G_cfg, D_cfg = sngan_config(name, c_dim=c_dim)
    G_cfg = dataclasses.replace(G_cfg, channels=(16,) + (8,) * (len(G_cfg.channels) - 1))
    D_cfg = dataclasses.replace(D_cfg, channels=(8,) * len(D_cfg.channels), **d_changes)
    return G_cfg, D_cfg


@pytest.mark.parametrize(
    "name, resolution", [("sngan32", 32), ("sngan48", 48), ("sngan64", 64), ("wgangp32", 32)]
)
def test_resolutions_and_batch_one(name, resolution):
    G_cfg, D_cfg = _thin(name)
    assert G_cfg.img_resolution == resolution
    G, D = G_cfg.build(), D_cfg.build()
    for n in (1, 2):
        img = G(torch.randn(n, 128), torch.zeros(n, 0))
        assert img.shape == (n, 3, resolution, resolution) and img.abs().max() <= 1
        assert D(img, None).shape == (n, 1)
    z = torch.randn(2, 128)
    assert_every_param_gets_a_gradient(G, D(G(z)).sum())
    assert_every_param_gets_a_gradient(D, D(G(z).detach()).sum())


def test_digits_at_16px():
    G_cfg, D_cfg = sngan_config("sngan_digits", resolution=16, c_dim=10)
    assert G_cfg.bottom_width == 2
    G, D = G_cfg.build(), D_cfg.build()
    c = random_labels(2, 10)
    assert D(G(torch.randn(2, 64), c), c).shape == (2, 1)


@pytest.mark.parametrize("d_cond", ["projection", "acgan"])
def test_conditional_networks(d_cond):
    torch.manual_seed(2)
    G_cfg, D_cfg = sngan_config("sngan_digits", c_dim=10, d_cond=d_cond)
    G, D = G_cfg.build(), D_cfg.build()
    assert all(isinstance(b.b1, ConditionalBatchNorm2d) for b in G.blocks)
    assert isinstance(G.bn, nn.BatchNorm2d)  # the last batch norm is not conditional
    z, c = torch.randn(4, 64), random_labels(4, 10)
    # conditional batch norm starts at gain 1 and bias 0 for every class (Miyato's code), so
    # G ignores the label until the tables are trained
    G.eval()
    other = one_hot((c.argmax(1) + 1) % 10, 10)
    assert torch.equal(G(z, c), G(z, other))
    _randomize_norms(G)
    assert not torch.allclose(G(z, c), G(z, other))
    G.train()
    img = G(z, c)
    out = D(img.detach(), c)
    if d_cond == "acgan":
        assert out[0].shape == (4, 1) and out[1].shape == (4, 10)
        assert torch.equal(D.eval()(img)[1], D(img, c)[1])
        D.train()
        loss = out[0].sum() + out[1].square().sum()
        g_loss = D(G(z, c))[0].sum()
    else:
        assert out.shape == (4, 1)
        D.eval()
        assert not torch.allclose(D(img, c), D(img, other))
        D.train()
        loss = out.sum()
        g_loss = D(G(z, c), c).sum()
    assert_every_param_gets_a_gradient(D, loss)
    assert_every_param_gets_a_gradient(G, g_loss)


def test_spectral_norm_everywhere_in_sngan_discriminator_only():
    G, D = (cfg.build() for cfg in sngan_config("sngan_digits", c_dim=10))
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    # 3 + 3 + 2 + 2 convolutions, the linear map and the embedding of the projection head
    assert len(layers) == 12 and all(has_spectral_norm(m) for m in layers)
    assert not any(has_spectral_norm(m) for m in G.modules())
    wgan_D = sngan_config("wgangp_digits")[1].build()
    assert not any(has_spectral_norm(m) for m in wgan_D.modules())
    assert wgan_D.linear.bias is not None and D.head.linear.bias is None


def test_layer_norm_option_and_pooling():
    torch.manual_seed(3)
    D = sngan_config("wgangp_digits")[1]
    D = dataclasses.replace(D, norm="layer").build().train()
    assert sum(isinstance(m, nn.GroupNorm) for m in D.modules()) == 6  # 2 per later block
    x = torch.randn(3, 1, 32, 32)
    assert_close(D(x)[:1], D(x[:1]))  # no batch statistics in the critic
    assert_every_param_gets_a_gradient(D, D(x).sum())
    mean_D = sngan_config("wgangp_digits")[1].build()
    sum_D = dataclasses.replace(mean_D.config, pooling="sum", out_bias=False).build()
    sum_D.load_state_dict({k: v for k, v in mean_D.state_dict().items() if k != "linear.bias"})
    with torch.no_grad():
        mean_D.linear.bias.zero_()
    assert_close(sum_D(x), mean_D(x) * 8 * 8)  # 8x8 features: sum = 64 * mean


def test_initialization_follows_the_official_code():
    torch.manual_seed(4)
    G = sngan_config("sngan32")[0].build()
    w = G.blocks[0].c1.weight.detach()  # GlorotUniform(sqrt(2)): bound sqrt(2) sqrt(6 / fans)
    bound = 2**0.5 * (6 / (256 * 9 + 256 * 9)) ** 0.5
    assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.99 * bound
    sc = G.blocks[0].c_sc.weight.detach()
    assert float(sc.abs().max()) <= (6 / 512) ** 0.5 < 1.01 * float(sc.abs().max())
    assert all(torch.all(m.bias == 0) for m in G.modules() if isinstance(m, nn.Conv2d))


def test_set_impl_and_config_roundtrip():
    G_cfg, D_cfg = sngan_config("sngan_digits", c_dim=10)
    # G: per block the ReLU and the nearest upsampling, then the output ReLU and tanh
    assert_set_impl_switches_both(G_cfg.build(), D_cfg.build(), 10, g_layers=8, d_layers=10)
    for cfg in (G_cfg, D_cfg, *sngan_config("wgangp32"), *sngan_config("sngan48")):
        assert_config_roundtrips(cfg)


def test_named_configs_and_hyperparams():
    assert set(SNGAN_CONFIGS) == {
        "sngan32",
        "sngan48",
        "sngan64",
        "wgangp32",
        "sngan_digits",
        "wgangp_digits",
    }
    G_cfg, D_cfg = sngan_config("sngan48")
    assert (G_cfg.bottom_width, G_cfg.channels, D_cfg.downsample[-1]) == (
        6,
        (512, 256, 128, 64),
        False,
    )
    hp = SNGAN_HYPERPARAMS["sngan"]
    assert (hp.loss, hp.lr_g, hp.betas, hp.n_critic, hp.batch, hp.lr_schedule) == (
        "hinge",
        2e-4,
        (0.0, 0.9),
        5,
        64,
        "linear",
    )
    assert SNGAN_HYPERPARAMS["wgan_gp_resnet"].gp_weight == 10.0


def test_errors():
    with pytest.raises(ValueError, match="img_resolution must equal bottom_width"):
        ResNetGeneratorConfig(img_resolution=64)
    with pytest.raises(ValueError, match="downsample\\[0\\] must be True"):
        ResNetDiscriminatorConfig(downsample=(False, True, False, False))
    with pytest.raises(ValueError, match="downsample must be a list of 4 bools"):
        ResNetDiscriminatorConfig(downsample=(True, True))
    with pytest.raises(ValueError, match="img_resolution must be divisible by 4"):
        ResNetDiscriminatorConfig(img_resolution=30)
    with pytest.raises(ValueError, match="cond must be 'none' exactly when c_dim == 0"):
        ResNetDiscriminatorConfig(c_dim=10)
    with pytest.raises(ValueError, match="pooling must be one of"):
        ResNetDiscriminatorConfig(pooling="max")
    with pytest.raises(ValueError, match="resolution must be a positive multiple of 8"):
        sngan_config("sngan32", resolution=20)
    with pytest.raises(ValueError, match="name must be one of"):
        sngan_config("sngan128")
    D = sngan_config("sngan_digits", c_dim=10)[1].build()
    with pytest.raises(ValueError, match="c must be given"):
        D(torch.randn(2, 1, 32, 32))
