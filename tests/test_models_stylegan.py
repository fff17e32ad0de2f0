"""StyleGAN v1: parameter counts of the official configuration, the synthesis network against a
functional reference written here, truncation, style mixing, noise, fade-in continuity,
gradients, the label switch, the StyleGAN2-like API, errors."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from gan_model_utils import assert_finite_nonzero_grads, count_params
from stylegan2_utils import randomize_
from testutils import assert_close, widest_fan_in

from gankern.models.stylegan import (
    DiscriminatorConfig,
    GeneratorConfig,
    stylegan_config,
)
from gankern.models.stylegan2 import mapping_with_mixing
from gankern.nn import MappingNetwork

# ---------------------------------------------------------------------------------------------
# Parameter counts
#
# The official FFHQ 1024 px generator (NVlabs/stylegan networks_stylegan.py, G_style with
# G_mapping and G_synthesis defaults; the template graph uses the 'linear' structure, which
# builds a ToRGB at every resolution), counted from the layer list:
#   G_mapping   8 x Dense (512 x 512 + 512 biases)                          =  2,101,248
#   G_synthesis feature maps nf = 512 at 4..32 px, 256, 128, 64, 32, 16 at 64..1024 px.
#     Every layer ends with layer_epilogue(C): Noise weight C + bias C + StyleMod dense
#     512 x 2C + 2C biases = C * (2 + 1024 + 2) = 1,028 C.
#     4x4     Const 512*16 + epilogue + Conv 9*512*512 + epilogue
#             = 8,192 + 526,336 + 2,359,296 + 526,336                       =  3,420,160
#     8..32   3 x (Conv0_up 9*512*512 + Conv1 9*512*512 + 2 epilogues)
#             = 3 x (4,718,592 + 1,052,672)                                 = 17,313,792
#     64      9*512*256 + 9*256*256 + 2 * 1,028 * 256                       =  2,296,320
#     128     9*256*128 + 9*128*128 + 2 * 1,028 * 128                       =    705,792
#     256     9*128*64 + 9*64*64 + 2 * 1,028 * 64                           =    242,304
#     512     9*64*32 + 9*32*32 + 2 * 1,028 * 32                            =     93,440
#     1024    9*32*16 + 9*16*16 + 2 * 1,028 * 16                            =     40,192
#     ToRGB   9 resolutions x (3 nf + 3) = 3 * 2,544 + 27                   =      7,659
#             synthesis total                                                  24,118,379
#   generator total (the paper's "26.2 million")                              26,219,627
# (dlatent_avg, lod and the noise images are non-trainable variables: buffers here.)
# The discriminator D_basic has ProGAN's layers (the blur has no weights): 23,087,249, see
# tests/test_models_progan.py.


def _official_generator_count(res_log2=10, latent=512, channels=3):
    def nf(stage):
        return min(int(8192 / 2.0**stage), 512)

    def epilogue(c):
        return c + c + latent * 2 * c + 2 * c  # noise weight, bias, style dense + bias

    mapping = 8 * (latent * latent + latent)
    synthesis = nf(1) * 16 + epilogue(nf(1)) + 9 * nf(1) ** 2 + epilogue(nf(1))
    for r in range(3, res_log2 + 1):
        synthesis += 9 * nf(r - 2) * nf(r - 1) + epilogue(nf(r - 1))
        synthesis += 9 * nf(r - 1) ** 2 + epilogue(nf(r - 1))
    synthesis += sum(nf(r - 1) * channels + channels for r in range(2, res_log2 + 1))
    return mapping, synthesis


def test_official_1024_parameter_counts():
    assert _official_generator_count() == (2_101_248, 24_118_379)
    G_cfg, D_cfg = stylegan_config("stylegan")
    G, D = G_cfg.build(), D_cfg.build()
    assert count_params(G.mapping) == 2_101_248
    assert count_params(G.synthesis) == 24_118_379
    assert count_params(G) == 26_219_627
    assert count_params(D) == 23_087_249
    assert (G.num_ws, G.w_dim, G.z_dim, G.max_level) == (18, 512, 512, 8)


def test_fixed_structure_has_only_the_last_torgb():
    G_cfg, _ = stylegan_config("digits")
    grown = G_cfg.build()
    fixed = dataclasses.replace(G_cfg, progressive=False).build()
    torgbs = sum(count_params(getattr(grown.synthesis, f"b{r}").torgb) for r in (4, 8, 16))
    assert count_params(fixed) == count_params(grown) - torgbs
    assert fixed(torch.randn(2, 64)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="fixed-resolution"):
        fixed(torch.randn(2, 64), level=2)


def test_shared_layers_with_stylegan2():
    G, _ = (cfg.build() for cfg in stylegan_config("digits"))
    assert type(G.mapping) is MappingNetwork
    assert (G.mapping.num_layers, G.mapping.fc0.lr_multiplier, G.mapping.w_avg_beta) == (
        2,
        0.01,
        0.995,
    )


# ---------------------------------------------------------------------------------------------
# The synthesis network against a functional reference


def _lrelu(x):
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


def _conv(x, layer, up=False):
    w = layer.weight / math.sqrt(layer.weight[0].numel())
    if up:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        w = w.flip([2, 3])
    y = F.conv2d(x, w, padding=w.shape[-1] // 2)
    return y + layer.bias.view(1, -1, 1, 1) if layer.bias is not None else y


def _blur121(x):
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
    k = torch.outer(k, k) / 16
    return F.conv2d(x, k.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


def _epilogue(x, style_layer, w):
    # Noise (const mode), bias, leaky ReLU, instance norm, style modulation.
    noise = style_layer.noise
    x = x + noise.noise_const.view(1, 1, *x.shape[2:]) * noise.noise_strength.view(1, -1, 1, 1)
    x = _lrelu(x + style_layer.act.bias.view(1, -1, 1, 1))
    x = x - x.mean(dim=(2, 3), keepdim=True)
    x = x / (x.square().mean(dim=(2, 3), keepdim=True) + 1e-8).sqrt()
    affine = style_layer.adain.affine
    style = w @ (affine.weight / math.sqrt(w.shape[1])).t() + affine.bias
    c = x.shape[1]
    return x * (style[:, :c, None, None] + 1) + style[:, c:, None, None]


def reference_synthesis(S, ws, level, alpha):
    b4 = S.b4
    x = b4.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
    x = _epilogue(x, b4.style0, ws[:, 0])
    x = _epilogue(_conv(x, b4.conv1), b4.style1, ws[:, 1])
    images = [_conv(x, b4.torgb)]
    for k, res in enumerate(S.resolutions[1 : level + 1], start=1):
        block = getattr(S, f"b{res}")
        x = _epilogue(_blur121(_conv(x, block.conv0, up=True)), block.style0, ws[:, 2 * k])
        x = _epilogue(_conv(x, block.conv1), block.style1, ws[:, 2 * k + 1])
        images.append(_conv(x, block.torgb))
    img = images[level]
    if level > 0:
        img = alpha * img + (1 - alpha) * F.interpolate(images[level - 1], scale_factor=2)
    return img


@pytest.mark.parametrize("level, alpha", [(0, 1.0), (1, 0.4), (2, 1.0), (2, 0.25)])
def test_synthesis_matches_the_functional_reference(level, alpha):
    G_cfg, _ = stylegan_config("digits", resolution=16)
    G = randomize_(G_cfg.build()).double()
    ws = torch.randn(3, G.num_ws, G.w_dim, dtype=torch.float64)
    img = G.synthesis(ws, noise_mode="const", level=level, alpha=alpha)
    assert img.shape == (3, 1, 4 * 2**level, 4 * 2**level)
    assert_close(img, reference_synthesis(G.synthesis, ws, level, alpha),
                 terms=widest_fan_in(G.synthesis))


def test_blur_before_downsampling_in_the_discriminator():
    _, D_cfg = stylegan_config("digits", resolution=8)
    D = randomize_(D_cfg.build()).double()
    x = torch.randn(2, D.b8.conv0.in_channels, 8, 8, dtype=torch.float64)
    h = _lrelu(_conv(x, D.b8.conv0))
    w = D.b8.conv1.weight / math.sqrt(D.b8.conv1.weight[0].numel())
    expected = _lrelu(F.avg_pool2d(F.conv2d(_blur121(h), w, padding=1), 2)
                      + D.b8.conv1.bias.view(1, -1, 1, 1))  # fmt: skip
    assert_close(D.b8(x), expected, terms=widest_fan_in(D.b8))


# ---------------------------------------------------------------------------------------------
# Mapping, truncation, style mixing, noise


def test_generator_is_mapping_then_synthesis_with_truncation():
    G = randomize_((stylegan_config("digits")[0]).build()).double().eval()
    z = torch.randn(4, 64, dtype=torch.float64)
    ws = G.mapping(z, None)
    assert ws.shape == (4, G.num_ws, G.w_dim) and torch.equal(ws[:, 0], ws[:, -1])
    assert torch.equal(G(z, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    # Truncation: the first `cutoff` ws move towards w_avg by psi.
    w_avg = G.mapping.w_avg
    truncated = ws.clone()
    truncated[:, :4] = w_avg + 0.5 * (ws[:, :4] - w_avg)
    expected = G.synthesis(truncated, noise_mode="const")
    assert_close(G(z, truncation_psi=0.5, truncation_cutoff=4, noise_mode="const"), expected,
                 terms=widest_fan_in(G))


def test_w_avg_tracks_the_mean_of_w_in_training():
    G = (stylegan_config("digits")[0]).build().double()
    z = torch.randn(8, 64, dtype=torch.float64)
    w = G.mapping(z, None)[:, 0].mean(0)  # eval-free: the first call also updates
    G.mapping.w_avg.zero_()
    G.train()
    G(z)
    assert_close(G.mapping.w_avg, (1 - 0.995) * w)
    G.eval()
    G(z)
    assert_close(G.mapping.w_avg, (1 - 0.995) * w)


def test_style_mixing_draws_the_cutoff_among_the_active_ws():
    G = (stylegan_config("digits")[0]).build()
    z = torch.randn(2, 64)
    active = G.synthesis.num_ws_at(1)  # 4 of the 8 ws at 8x8
    assert active == 4
    cutoffs = set()
    for seed in range(40):
        gen = torch.Generator().manual_seed(seed)
        ws = mapping_with_mixing(G.mapping, z, None, 1.0, generator=gen, num_active_ws=active)
        plain = G.mapping(z, None, skip_w_avg_update=True)
        same = (ws == plain).all(dim=2).all(dim=0)
        cutoffs.add(int(same.long().argmin()))  # first w taken from the other latents
    assert cutoffs == {1, 2, 3}
    with pytest.raises(ValueError, match="num_active_ws"):
        mapping_with_mixing(G.mapping, z, None, 0.9, num_active_ws=9)


def test_noise_modes():
    G = randomize_((stylegan_config("digits")[0]).build()).eval()
    z = torch.randn(2, 64)
    const = G(z, noise_mode="const")
    assert torch.equal(const, G(z, noise_mode="const"))
    assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
    assert not torch.equal(G(z, noise_mode="none"), const)
    no_noise = dataclasses.replace(stylegan_config("digits")[0], use_noise=False).build()
    assert count_params(no_noise) < count_params(G)
    assert torch.equal(no_noise(z, noise_mode="random"), no_noise(z, noise_mode="random"))


# ---------------------------------------------------------------------------------------------
# Growth, shapes, labels, gradients, backends


def test_fade_in_continuity_between_levels():
    G, D = (randomize_(cfg.build()).double() for cfg in stylegan_config("digits", resolution=16))
    ws = torch.randn(4, G.num_ws, G.w_dim, dtype=torch.float64)
    for level in (1, 2):
        below = G.synthesis(ws, noise_mode="const", level=level - 1)
        faded = G.synthesis(ws, noise_mode="const", level=level, alpha=0.0)
        assert torch.equal(faded, F.interpolate(below, scale_factor=2))
        img = torch.randn(4, 1, 4 * 2**level, 4 * 2**level, dtype=torch.float64)
        assert_close(D(img, level=level, alpha=0.0), D(F.avg_pool2d(img, 2), level=level - 1))


@pytest.mark.parametrize("resolution", [8, 32])
def test_shapes_batch_one_and_labels(resolution):
    G, D = (cfg.build() for cfg in stylegan_config("digits", resolution=resolution, c_dim=10))
    c = F.one_hot(torch.tensor([7]), 10).float()
    for level in range(G.max_level + 1):
        img = G(torch.randn(1, 64), c, level=level, alpha=0.5)
        assert img.shape == (1, 1, 4 * 2**level, 4 * 2**level)
        assert D(img, c, level=level, alpha=0.5).shape == (1, 1)
    # The label switch: the logit of the labelled class.
    img = torch.randn(3, 1, resolution, resolution)
    c = F.one_hot(torch.tensor([2, 0, 9]), 10).float()
    scores = D.scores(img)
    assert scores.shape == (3, 10)
    assert_close(D(img, c)[:, 0], scores[torch.arange(3), torch.tensor([2, 0, 9])])


def test_every_parameter_gets_a_gradient_over_the_levels():
    G, D = (cfg.build() for cfg in stylegan_config("digits", c_dim=3))
    c = F.one_hot(torch.tensor([0, 1, 2, 1]), 3).float()
    for level in range(G.max_level + 1):
        img = G(torch.randn(4, 64), c, level=level, alpha=0.5)
        D(img, c, level=level, alpha=0.5).sum().backward()
    assert_finite_nonzero_grads(G)
    assert_finite_nonzero_grads(D)


def test_set_impl_and_state_dict_round_trip():
    G_cfg, D_cfg = stylegan_config("digits", resolution=8)
    G = G_cfg.build()
    z = torch.randn(2, 64)
    expected = G(z, noise_mode="const")
    G.set_impl("cuda")
    assert all(m.impl == "cuda" for m in G.modules() if hasattr(m, "impl"))
    with pytest.raises(Exception, match="cuda"):
        G(z, noise_mode="const")
    G.set_impl("ref")
    assert torch.equal(G(z, noise_mode="const"), expected)
    for cfg, cls in ((G_cfg, GeneratorConfig), (D_cfg, DiscriminatorConfig)):
        again = cls(**json.loads(json.dumps(dataclasses.asdict(cfg))))
        assert again == cfg
        again.build().load_state_dict(cfg.build().state_dict())
    assert "synthesis.b8.style0.noise.noise_const" in G.state_dict()


def test_errors():
    G, D = (cfg.build() for cfg in stylegan_config("digits"))
    with pytest.raises(ValueError, match="noise_mode"):
        G(torch.randn(2, 64), noise_mode="fixed")
    with pytest.raises(ValueError, match=r"ws must have shape \[N, 8, 64\]"):
        G.synthesis(torch.randn(2, 7, 64))
    with pytest.raises(ValueError, match=r"level must be in \[0, 3\]"):
        G(torch.randn(2, 64), level=5)
    with pytest.raises(TypeError, match="c must be a torch.Tensor"):
        (stylegan_config("digits", c_dim=10)[1]).build()(torch.randn(2, 1, 32, 32))
    with pytest.raises(TypeError, match="blur_filter"):
        GeneratorConfig(blur_filter="121")
    with pytest.raises(ValueError, match="name must be"):
        stylegan_config("stylegan2")
