"""BigGAN: the published parameter counts, the generator against a functional reference written
here (shared embedding, hierarchical latents, linear-conditioned batch norm), orthogonal
initialization, truncated normal sampling, standing statistics, orthogonal regularization,
gradients, shapes, errors."""

from __future__ import annotations

import dataclasses
import json

import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from gan_model_utils import (
    assert_finite_nonzero_grads,
    attention_params,
    conv_params,
    count_params,
    randomize_with_bn_stats_,
    ref_batch_norm_eval,
    ref_resnet_generator,
)
from testutils import assert_close, network_terms, widest_fan_in
from torch import nn

from gankern.models.biggan import (
    BIGGAN_TRAINING,
    GeneratorConfig,
    biggan_config,
    standing_statistics,
    truncated_normal,
)
from gankern.models.sagan import DiscriminatorConfig
from gankern.nn import LinearConditionalBatchNorm2d, SelfAttention, has_spectral_norm, ortho_penalty

# ---------------------------------------------------------------------------------------------
# Parameter counts
#
# BigGAN-PyTorch BigGAN.py with launch_BigGAN_bs256x8.sh: G_ch = D_ch = 96, dim_z 120,
# shared_dim 128, hier, G_shared, attention at 64, 1000 classes, resolution 128.
# Generator: arch[128] in = 96 * (16, 16, 8, 4, 2) = (1536, 1536, 768, 384, 192), out =
# 96 * (16, 8, 4, 2, 1) = (1536, 768, 384, 192, 96); 6 z slots of 20; each ccbn reads the
# 128-d shared embedding + a 20-d chunk = 148 inputs through two bias-free SNLinear layers.
#   shared       Embedding(1000, 128)                                      =    128,000
#   linear       SNLinear(20, 1536*16) with bias                          =    516,096
#   GBlock(in, out): conv1 9*in*out + out, conv2 9*out*out + out, conv_sc in*out + out,
#                bn1 2*148*in, bn2 2*148*out:
#                (1536, 1536) 45,740,544; (1536, 768) 17,789,184; (768, 384) 4,618,368;
#                (384, 192) 1,240,128; (192, 96) 352,800                   = 69,741,024
#   Attention(192) at 64: theta, phi 192*24 each, g 192*96, o 96*192, gamma = 46,081
#   output       bn gain and bias 2*96, SNConv2d(96, 3) 9*96*3 + 3           =      2,787
#                                                                     total = 70,433,988
# Discriminator: arch[128] in = (3, 96, 192, 384, 768, 1536), out = (96, 192, 384, 768,
# 1536, 1536), downsampling in all blocks but the last; DBlock(in, out) wide: conv1
# 9*in*out + out, conv2 9*out*out + out, conv_sc in*out + out unless in == out without
# downsampling:
#   blocks       (3, 96) 86,112; (96, 192) 516,672; (192, 384) 2,065,536;
#                (384, 768) 8,259,840; (768, 1536) 33,034,752;
#                (1536, 1536, no shortcut) 42,470,400                      = 86,433,312
#   Attention(96) at 64: 2*96*12 + 96*48 + 48*96 + 1                       =     11,521
#   linear       SNLinear(1536, 1) + bias; embed SNEmbedding(1000, 1536)     =  1,537,537
#                                                                     total = 87,982,370
# Both equal the figures; _official_counts recomputes them from BigGAN-PyTorch's
# G_arch / D_arch tables and layer definitions.


def _official_counts(ch=96, dim_z=120, shared=128, classes=1000):
    ins = [ch * m for m in (16, 16, 8, 4, 2)]
    outs = [ch * m for m in (16, 8, 4, 2, 1)]
    chunk = dim_z // (len(ins) + 1)
    cond = shared + chunk
    g = classes * shared + conv_params(1, chunk, ins[0] * 16)  # shared embedding, linear
    for i, (a, b) in enumerate(zip(ins, outs, strict=True)):
        g += (
            conv_params(3, a, b)
            + conv_params(3, b, b)
            + conv_params(1, a, b)
            + 2 * cond * a
            + 2 * cond * b
        )
        g += attention_params(b) if i == 3 else 0  # the 64x64 block
    g += 2 * outs[-1] + conv_params(3, outs[-1], 3)
    ins = [3] + [ch * m for m in (1, 2, 4, 8, 16)]
    outs = [ch * m for m in (1, 2, 4, 8, 16, 16)]
    d = 0
    for i, (a, b) in enumerate(zip(ins, outs, strict=True)):
        d += conv_params(3, a, b) + conv_params(3, b, b) + (conv_params(1, a, b) if i < 5 else 0)
        d += attention_params(b) if i == 0 else 0  # the 64x64 block
    d += outs[-1] + 1 + classes * outs[-1]
    return g, d


def test_published_128_parameter_counts():
    assert _official_counts() == (70_433_988, 87_982_370)
    G_cfg, D_cfg = biggan_config("biggan128")
    assert (G_cfg.ch, G_cfg.z_dim, G_cfg.shared_dim, G_cfg.hier, G_cfg.attention) == (
        96, 120, 128, True, (64,)
    )  # fmt: skip
    G, D = G_cfg.build(init=False), D_cfg.build(init=False)
    assert count_params(G) == 70_433_988
    assert count_params(D) == 87_982_370
    assert G.z_chunk == 20 and G.blocks[3][1].channels == 192 and D.blocks[0][1].channels == 96


def test_training_settings():
    gan = BIGGAN_TRAINING.gan
    assert (gan.loss, gan.lr_g, gan.lr_d, gan.betas) == ("hinge", 1e-4, 4e-4, (0.0, 0.999))
    assert gan.batch * BIGGAN_TRAINING.accumulations == 2048
    assert (BIGGAN_TRAINING.ortho_weight, BIGGAN_TRAINING.ema_start) == (1e-4, 20000)


# ---------------------------------------------------------------------------------------------
# The generator against a functional reference


def _lcbn(x, bn: LinearConditionalBatchNorm2d, y):
    x = ref_batch_norm_eval(x, bn.bn)
    gain = 1 + y @ bn.gain_linear.weight.t()
    bias = y @ bn.bias_linear.weight.t()
    return x * gain[:, :, None, None] + bias[:, :, None, None]


def reference_generator(G, z, classes):
    """BigGAN-PyTorch's Generator.forward with G.shared(y) and hier=True."""
    y = G.shared.weight[classes]
    zs = torch.split(z, G.z_chunk, dim=1)
    conditions = [torch.cat([y, chunk], dim=1) for chunk in zs[1:]]
    return ref_resnet_generator(G, zs[0], conditions, _lcbn)


def test_generator_matches_the_functional_reference():
    G = randomize_with_bn_stats_(biggan_config("digits", c_dim=5)[0].build()).double().eval()
    assert (G.z_chunk, len(G.blocks)) == (16, 3)
    z = torch.randn(3, 64, dtype=torch.float64)
    classes = torch.tensor([4, 0, 2])
    img = G(z, F.one_hot(classes, 5).double())
    assert img.shape == (3, 1, 32, 32)
    assert_close(img, reference_generator(G, z, classes), terms=network_terms(G))
    # Class indices, and an explicit embedding (class interpolation), give the same images.
    assert_close(G(z, classes), img, terms=widest_fan_in(G))
    assert_close(G(z, embedding=G.shared.weight[classes]), img, terms=widest_fan_in(G))
    mixed = 0.5 * (G.shared.weight[[4, 4, 4]] + G.shared.weight[[0, 0, 0]])
    assert G(z, embedding=mixed).shape == img.shape


def test_orthogonal_initialization_and_spectral_norm():
    G, D = (cfg.build() for cfg in biggan_config("digits"))
    # Orthogonal init: rows (or columns, for tall matrices) orthonormal.
    for w in (
        G.shared.weight,
        G.blocks[0][0].conv1.parametrizations.weight.original,
        D.head.embed.parametrizations.weight.original,
    ):
        m = w.detach().reshape(w.shape[0], -1)
        gram = m @ m.t() if m.shape[0] <= m.shape[1] else m.t() @ m
        assert_close(gram, torch.eye(gram.shape[0]))
    assert not has_spectral_norm(G.shared)
    assert has_spectral_norm(G.blocks[0][0].bn1.gain_linear)
    assert has_spectral_norm(G.linear) and has_spectral_norm(G.conv_out)
    assert all(has_spectral_norm(m) for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert G.blocks[0][0].bn1.gain_linear.bias is None


def test_every_parameter_gets_a_gradient():
    G, D = (cfg.build() for cfg in biggan_config("digits"))
    with torch.no_grad():
        for net in (G, D):
            for m in net.modules():
                if isinstance(m, SelfAttention):
                    m.gamma.fill_(0.5)
    classes = torch.arange(10)
    c = F.one_hot(classes, 10).float()
    (D(G(torch.randn(10, 64), c), c).sum() + ortho_penalty(G, 1e-4, exclude=[G.shared])).backward()
    assert_finite_nonzero_grads(G)
    assert_finite_nonzero_grads(D)


def test_ortho_penalty_leaves_out_the_shared_embedding():
    G = biggan_config("digits")[0].build()
    ortho_penalty(G, 1.0, exclude=[G.shared]).backward()
    assert G.shared.weight.grad is None
    assert G.blocks[0][0].conv1.parametrizations.weight.original.grad is not None
    assert G.bn.weight.grad is None  # 1-D parameters are left out


@pytest.mark.parametrize("name, resolution", [("biggan32", 32), ("digits", 32)])
def test_configurations_build_and_run(name, resolution):
    G, D = (cfg.build() for cfg in biggan_config(name))
    c = F.one_hot(torch.tensor([1, 3]), 10).float()
    img = G(torch.randn(2, G.z_dim), c)
    assert img.shape == (2, G.img_channels, resolution, resolution)
    assert D(img, c).shape == (2, 1)
    G.eval()
    assert G(torch.randn(1, G.z_dim), c[:1]).shape[0] == 1  # batch 1


@pytest.mark.parametrize("resolution", [64, 128])
def test_shapes_at_64_and_128(resolution):
    G = GeneratorConfig(img_resolution=resolution, c_dim=4, ch=8, z_dim=60, shared_dim=8,
                        attention=(32,))  # fmt: skip
    D = DiscriminatorConfig(img_resolution=resolution, c_dim=4, ch=8, attention=(32,))
    G, D = G.build(), D.build()
    c = F.one_hot(torch.tensor([0, 3]), 4).float()
    img = G(torch.randn(2, 60), c)
    assert img.shape == (2, 3, resolution, resolution)
    assert D(img, c).shape == (2, 1)


def test_unconditional_and_flat_latent_variants():
    hier = dataclasses.replace(biggan_config("digits")[0], c_dim=0).build()
    assert isinstance(hier.blocks[0][0].bn1, LinearConditionalBatchNorm2d)
    assert hier.blocks[0][0].bn1.cond_dim == 16 and hier.shared is None
    assert hier(torch.randn(2, 64)).shape == (2, 1, 32, 32)
    flat = dataclasses.replace(biggan_config("digits")[0], hier=False).build()
    assert flat.linear.in_features == 64 and flat.blocks[0][0].bn1.cond_dim == 32
    c = F.one_hot(torch.tensor([1, 2]), 10).float()
    assert flat(torch.randn(2, 64), c).shape == (2, 1, 32, 32)
    plain = dataclasses.replace(biggan_config("digits")[0], c_dim=0, hier=False).build()
    assert isinstance(plain.blocks[0][0].bn1, nn.BatchNorm2d)


# ---------------------------------------------------------------------------------------------
# Truncated normal sampling and standing statistics


@pytest.mark.parametrize("threshold", [0.5, 2.0])
def test_truncated_normal_stays_inside_and_matches_scipy(threshold):
    gen = torch.Generator().manual_seed(11)
    x = truncated_normal([4000, 5], threshold, generator=gen, dtype=torch.float64)
    assert x.shape == (4000, 5) and x.dtype == torch.float64
    assert float(x.abs().max()) <= threshold
    reference = scipy.stats.truncnorm(-threshold, threshold)
    result = scipy.stats.kstest(x.flatten().numpy(), reference.cdf)
    assert result.pvalue > 0.001, result
    # A plain normal (what a truncation that only clipped would not give either) is rejected.
    clipped = torch.randn(20000, generator=gen).clamp(-threshold, threshold)
    assert scipy.stats.kstest(clipped.numpy(), reference.cdf).pvalue < 1e-6
    again = truncated_normal([4000, 5], threshold, generator=torch.Generator().manual_seed(11),
                             dtype=torch.float64)  # fmt: skip
    assert torch.equal(again, x)


def test_truncated_normal_errors():
    with pytest.raises(ValueError, match="threshold must be > 0"):
        truncated_normal([2], 0.0)
    with pytest.raises(TypeError, match="threshold"):
        truncated_normal([2], "1")


def test_standing_statistics_average_the_batch_statistics():
    G = biggan_config("digits")[0].build()
    bn = G.blocks[1][0].bn1.bn
    seen = []
    bn.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    G.train()
    G(torch.randn(4, 64), F.one_hot(torch.arange(4), 10).float())  # moves the running stats
    seen.clear()
    standing_statistics(G, num_batches=5, batch_size=6, generator=torch.Generator().manual_seed(1))
    assert len(seen) == 5 and not G.training and bn.momentum == 0.1
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen])
    variances = torch.stack([x.transpose(0, 1).flatten(1).var(dim=1) for x in seen])
    assert_close(bn.running_mean, means.mean(0))
    assert_close(bn.running_var, variances.mean(0))
    assert int(bn.num_batches_tracked) == 5
    # Truncated latents: every z the generator saw is inside the threshold.
    zs = []
    G.linear.register_forward_pre_hook(lambda module, args: zs.append(args[0]))
    standing_statistics(G, num_batches=2, batch_size=3, truncation=0.5)
    assert all(float(z.abs().max()) <= 0.5 for z in zs)


def test_configs_round_trip_and_errors():
    for name in ("biggan128", "biggan64", "biggan32", "digits"):
        for cfg in biggan_config(name):
            again = type(cfg)(**json.loads(json.dumps(dataclasses.asdict(cfg))))
            assert again == cfg
    with pytest.raises(ValueError, match="z_dim must be divisible by the 6 latent chunks"):
        GeneratorConfig(z_dim=128)
    with pytest.raises(ValueError, match="name must be one of"):
        biggan_config("biggan256")
    G = biggan_config("digits")[0].build()
    with pytest.raises(ValueError, match="embedding must have shape"):
        G(torch.randn(2, 64), embedding=torch.randn(2, 31))
    with pytest.raises(ValueError, match="num_batches"):
        standing_statistics(G, num_batches=0)
