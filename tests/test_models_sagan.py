"""SAGAN: parameter counts of the official ImageNet model, both networks against a functional
reference written here, attention placement, spectral norm and initialization, gradients,
shapes at 32/64/128 px, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from gan_model_utils import (
    assert_finite_nonzero_grads,
    attention_params,
    conv_params,
    count_params,
    randomize_with_bn_stats_,
    ref_attention,
    ref_batch_norm_eval,
    ref_conv,
    ref_resnet_generator,
)
from testutils import assert_close, network_terms, widest_fan_in
from torch import nn

from gankern.models.sagan import (
    SAGAN_TRAINING,
    DiscriminatorConfig,
    GeneratorConfig,
    sagan_config,
)
from gankern.nn import ConditionalBatchNorm2d, SelfAttention, has_spectral_norm

# ---------------------------------------------------------------------------------------------
# Parameter counts
#
# The official ImageNet 128 model (brain-research/self-attention-gan generator_test /
# discriminator_test with gf_dim = df_dim = 64, z_dim 128, 1000 classes; every conv and
# linear layer has a bias except the attention's 1x1 convs), counted layer by layer:
# Generator
#   g_snh0       128 -> 1024*4*4, with bias                                 =  2,113,536
#   g_block1..5  (in -> out): cbn_0 2*1000*in + cbn_1 2*1000*out + snconv1 9*in*out + out
#                + snconv2 9*out*out + out + snconv3 (1x1 shortcut) in*out + out:
#                (1024, 1024) 24,022,016; (1024, 512) 10,675,712; (512, 256) 3,437,312;
#                (256, 128) 1,243,520; (128, 64) 502,976                    = 39,881,536
#   attention    after g_block3 (32x32, 256 maps): theta and phi 256*32 each, g 256*128,
#                attn 128*256, sigma 1                                       =     81,921
#   g_bn         gamma and beta, 2*64                                        =        128
#   g_snconv_last 9*64*3 + 3                                                 =      1,731
#                                                                    total  = 42,078,852
# Discriminator
#   d_optimized_block1 (3 -> 64): 9*3*64+64 + 9*64*64+64 + 3*64+64          =     38,976
#   d_block2..5  (64, 128), (128, 256), (256, 512), (512, 1024): 9*in*out+out
#                + 9*out*out+out + in*out+out                                = 19,502,720
#   attention    after d_block2 (32x32, 128 maps): 2*128*16 + 128*64 + 64*128 + 1 = 20,481
#   d_block6     1024 -> 1024, no downsampling, identity shortcut            = 18,876,416
#   d_sn_linear  1024 + 1, d_embedding 1000*1024                             =  1,025,025
#                                                                    total  = 39,463,618
# _official_counts recomputes these sums from the layer list of the TF code.


def _official_counts(ch=64, z=128, classes=1000):
    g = z * ch * 16 * 16 + ch * 16 * 16
    widths = [ch * 16, ch * 16, ch * 8, ch * 4, ch * 2, ch]
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        g += (
            2 * classes * (a + b)
            + conv_params(3, a, b)
            + conv_params(3, b, b)
            + conv_params(1, a, b)
        )
        g += attention_params(b) if i == 2 else 0  # after g_block3 (32x32)
    g += 2 * ch + conv_params(3, ch, 3)
    widths = [3, ch, ch * 2, ch * 4, ch * 8, ch * 16, ch * 16]
    d = 0
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        d += conv_params(3, a, b) + conv_params(3, b, b) + (conv_params(1, a, b) if i < 5 else 0)
        d += attention_params(b) if i == 1 else 0  # after d_block2 (32x32)
    d += ch * 16 + 1 + classes * ch * 16
    return g, d


def test_official_128_parameter_counts():
    assert _official_counts() == (42_078_852, 39_463_618)
    G_cfg, D_cfg = sagan_config("sagan128")
    G, D = G_cfg.build(init=False), D_cfg.build(init=False)
    assert count_params(G) == 42_078_852
    assert count_params(D) == 39_463_618
    # Attention after the 32x32 block in both networks, on 256 and 128 maps.
    assert [len(layers) for layers in G.blocks] == [1, 1, 2, 1, 1]
    assert G.blocks[2][1].channels == 256
    assert [len(layers) for layers in D.blocks] == [1, 2, 1, 1, 1, 1]
    assert D.blocks[1][1].channels == 128


def test_hyperparameters():
    assert (SAGAN_TRAINING.loss, SAGAN_TRAINING.lr_g, SAGAN_TRAINING.lr_d) == ("hinge", 1e-4, 4e-4)
    assert SAGAN_TRAINING.betas == (0.0, 0.9) and SAGAN_TRAINING.n_critic == 1


# ---------------------------------------------------------------------------------------------
# A functional reference


def _cbn(x, bn: ConditionalBatchNorm2d, c):
    x = ref_batch_norm_eval(x, bn.bn)
    return x * (c @ bn.gains.weight)[:, :, None, None] + (c @ bn.biases.weight)[:, :, None, None]


def reference_generator(G, z, c):
    return ref_resnet_generator(G, z, [c] * len(G.blocks), _cbn)


def reference_discriminator(D, img, c):
    h = img
    for i, layers in enumerate(D.blocks):
        block = layers[0]
        t = F.relu(h) if i > 0 else h
        t = ref_conv(F.relu(ref_conv(t, block.conv1)), block.conv2)
        shortcut = h
        if block.pool is not None:
            t = F.avg_pool2d(t, 2)
            # BigGAN-PyTorch's order: conv then pool after a pre-activation, else pool first.
            if i > 0:
                shortcut = F.avg_pool2d(ref_conv(h, block.conv_sc), 2)
            else:
                shortcut = ref_conv(F.avg_pool2d(h, 2), block.conv_sc)
        elif block.conv_sc is not None:
            shortcut = ref_conv(h, block.conv_sc)
        h = t + shortcut
        for attention in layers[1:]:
            h = ref_attention(attention, h)
    h = F.relu(h).sum(dim=(2, 3))
    head = D.head
    projection = ((c @ head.embed.weight) * h).sum(1, keepdim=True)
    return F.linear(h, head.linear.weight, head.linear.bias) + projection


def test_networks_match_the_functional_reference():
    G_cfg, D_cfg = sagan_config("digits", c_dim=5)
    G = randomize_with_bn_stats_(G_cfg.build()).double().eval()
    D = randomize_with_bn_stats_(D_cfg.build()).double().eval()
    z = torch.randn(3, G.z_dim, dtype=torch.float64)
    c = F.one_hot(torch.tensor([4, 0, 2]), 5).double()
    img = G(z, c)
    assert img.shape == (3, 1, 32, 32)
    assert_close(img, reference_generator(G, z, c), terms=network_terms(G))
    assert_close(D(img, c), reference_discriminator(D, img, c), terms=network_terms(D))
    # Class indices select the same rows as one-hot labels.
    assert_close(G(z, torch.tensor([4, 0, 2])), img, terms=widest_fan_in(G))


# ---------------------------------------------------------------------------------------------
# Spectral norm, initialization, gradients, shapes


def test_spectral_norm_and_initialization():
    G, D = (cfg.build() for cfg in sagan_config("digits"))
    for net, types in ((G, (nn.Conv2d, nn.Linear)), (D, (nn.Conv2d, nn.Linear, nn.Embedding))):
        layers = [m for m in net.modules() if isinstance(m, types)]
        assert layers and all(has_spectral_norm(m) for m in layers)
    cbn = G.blocks[0][0].bn1
    assert not has_spectral_norm(cbn.gains)
    assert torch.equal(cbn.gains.weight, torch.ones_like(cbn.gains.weight))  # gamma 1, beta 0
    assert torch.equal(cbn.biases.weight, torch.zeros_like(cbn.biases.weight))
    conv = G.blocks[0][0].conv1
    assert torch.equal(conv.bias, torch.zeros_like(conv.bias))  # the TF code's zero biases
    # Xavier-uniform: |w| <= sqrt(6 / (fan_in + fan_out)).
    w = conv.parametrizations.weight.original
    assert float(w.detach().abs().max()) <= (6 / (9 * (w.shape[0] + w.shape[1]))) ** 0.5
    assert float(G.blocks[1][1].gamma.detach()) == 0.0


def test_every_parameter_gets_a_gradient():
    G, D = (cfg.build() for cfg in sagan_config("digits"))
    with torch.no_grad():
        for net in (G, D):
            for m in net.modules():
                if isinstance(m, SelfAttention):
                    m.gamma.fill_(0.5)
    c = F.one_hot(torch.arange(4) * 2, 10).float()
    D(G(torch.randn(4, 64), c), c).sum().backward()
    # Only the rows of the classes present get gradients in the per-class tables.
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        rows = p.grad.abs().sum(dim=tuple(range(1, p.ndim))) if p.ndim > 1 else p.grad.abs()
        if name.endswith(("gains.weight", "biases.weight")):
            present = torch.zeros(10, dtype=torch.bool)
            present[[0, 2, 4, 6]] = True
            assert (rows[present] > 0).all() and (rows[~present] == 0).all(), name
        else:
            assert rows.sum() > 0, name
    assert_finite_nonzero_grads(D, skip={"head.embed.parametrizations.weight.original"})


@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_shapes_at_each_resolution_and_batch_one(resolution):
    attention = (min(16, resolution // 2),)
    G = GeneratorConfig(img_resolution=resolution, c_dim=3, ch=4, z_dim=8, attention=attention)
    D = DiscriminatorConfig(img_resolution=resolution, c_dim=3, ch=4, attention=attention)
    G, D = G.build(), D.build()
    c = F.one_hot(torch.tensor([1, 2]), 3).float()
    img = G(torch.randn(2, 8), c)
    assert img.shape == (2, 3, resolution, resolution)
    assert float(img.detach().abs().max()) <= 1
    assert D(img, c).shape == (2, 1)
    G.eval()
    assert G(torch.randn(1, 8), c[:1]).shape == (1, 3, resolution, resolution)
    assert D(img[:1], c[:1]).shape == (1, 1)


def test_unconditional_networks():
    G, D = (cfg.build() for cfg in sagan_config("digits", c_dim=0))
    img = G(torch.randn(2, 64))
    assert D(img).shape == (2, 1) and D(img, torch.zeros(2, 0)).shape == (2, 1)
    assert not any(isinstance(m, ConditionalBatchNorm2d) for m in G.modules())
    assert not hasattr(D, "head")


def test_set_impl_reaches_every_layer():
    G, D = (cfg.build() for cfg in sagan_config("digits"))
    c = F.one_hot(torch.tensor([1, 2]), 10).float()
    G.eval()
    expected = G(torch.randn(2, 64, generator=torch.Generator().manual_seed(0)), c)
    for net in (G, D):
        net.set_impl("cuda")
        assert all(m.impl == "cuda" for m in net.modules() if hasattr(m, "impl"))
    with pytest.raises(Exception, match="cuda"):
        G(torch.randn(2, 64), c)
    G.set_impl("ref")
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(G(z, c), expected)


def test_configs_round_trip_and_errors():
    for name in ("sagan128", "sagan64", "sagan32", "digits"):
        for cfg in sagan_config(name):
            again = type(cfg)(**json.loads(json.dumps(dataclasses.asdict(cfg))))
            assert again == cfg
    G_cfg, D_cfg = sagan_config("digits")
    G_cfg.build().load_state_dict(G_cfg.build().state_dict())
    assert sagan_config("sagan64")[0].attention == (32,)
    with pytest.raises(ValueError, match="img_resolution must be one of"):
        GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="attention resolutions"):
        dataclasses.replace(G_cfg, attention=(64,)).build()
    with pytest.raises(ValueError, match="attention resolutions"):
        dataclasses.replace(D_cfg, attention=(32,)).build()
    with pytest.raises(ValueError, match="init must be one of"):
        GeneratorConfig(init="kaiming")
    with pytest.raises(ValueError, match="name must be one of"):
        sagan_config("sagan256")
    with pytest.raises(ValueError, match="c must be given"):
        G_cfg.build()(torch.randn(2, 64))
