"""ProGAN: parameter counts of the official configuration, forward passes against a functional
reference written here, fade-in continuity, resampling equal to the torch ops, gradients,
the progressive schedule, errors."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from gan_model_utils import assert_finite_nonzero_grads, count_params
from stylegan2_utils import randomize_
from testutils import assert_close, requires_triton_interpreter, widest_fan_in

from gankern.models.progan import (
    PROGAN_TRAINING,
    DiscriminatorConfig,
    GeneratorConfig,
    feature_maps,
    progan_config,
    progressive_reals,
)
from gankern.models.progressive_schedule import (
    SCHEDULES,
    ProgressiveSchedule,
    get_schedule,
)
from gankern.nn import Conv2dLayer

# ---------------------------------------------------------------------------------------------
# Parameter counts
#
# The official 1024 px networks (progressive_growing_of_gans networks.py, G_paper / D_paper
# defaults: fmap_base 8192, fmap_decay 1, fmap_max 512, latent 512, 3 channels, no labels),
# counted layer by layer. nf(stage) = min(8192 / 2**stage, 512); the block at 2**r px has
# nf(r - 1) maps: 512 at 4, 8, 16, 32 px, then 256, 128, 64, 32, 16 at 64 ... 1024 px.
#
# Generator (3x3 conv C -> C': 9*C*C' weights + C' biases)
#   4x4 Dense    512 * (512 * 16) + 512 biases (one per map, after the reshape) =  4,194,816
#   4x4 Conv     9*512*512 + 512                                               =  2,359,808
#   8, 16, 32    3 x (Conv0_up 9*512*512+512 + Conv1 9*512*512+512)            = 14,158,848
#   64 px        Conv0_up 9*512*256+256 + Conv1 9*256*256+256                  =  1,769,984
#   128 px       9*256*128+128 + 9*128*128+128                                 =    442,624
#   256 px       9*128*64+64 + 9*64*64+64                                      =    110,720
#   512 px       9*64*32+32 + 9*32*32+32                                       =     27,712
#   1024 px      9*32*16+16 + 9*16*16+16                                       =      6,944
#   ToRGB x 9    sum of 3*nf + 3 = 3 * (4*512 + 256+128+64+32+16) + 27          =      7,659
#                                                                      total  = 23,079,115
# Discriminator
#   FromRGB x 9  sum of 3*nf + nf = 4 * 2,544                                   =     10,176
#   8, 16, 32    3 x (Conv0 9*512*512+512 + Conv1_down 9*512*512+512)          = 14,158,848
#   64 px        Conv0 9*256*256+256 + Conv1_down 9*256*512+512                =  1,770,240
#   128 px       9*128*128+128 + 9*128*256+256                                 =    442,752
#   256 px       9*64*64+64 + 9*64*128+128                                     =    110,784
#   512 px       9*32*32+32 + 9*32*64+64                                       =     27,744
#   1024 px      9*16*16+16 + 9*16*32+32                                       =      6,960
#   4x4 Conv     9*513*512 + 512 (minibatch std appends one map)               =  2,364,416
#   Dense0       512*16 * 512 + 512                                            =  4,194,816
#   Dense1       512 * 1 + 1                                                   =        513
#                                                                      total  = 23,087,249
# Both are the paper's "23.1 million"; _official_counts recomputes the sums from the
# official layer list, independently of the implementation.


def _official_counts(res_log2=10, channels=3, latent=512):
    """The official G_paper / D_paper parameter counts, written from networks.py."""

    def nf(stage):
        return min(int(8192 / 2.0**stage), 512)

    g = latent * nf(1) * 16 + nf(1)  # 4x4 Dense, biases per map
    g += 9 * nf(1) ** 2 + nf(1)  # 4x4 Conv
    for r in range(3, res_log2 + 1):
        g += 9 * nf(r - 2) * nf(r - 1) + nf(r - 1)  # Conv0_up
        g += 9 * nf(r - 1) ** 2 + nf(r - 1)  # Conv1
    g += sum(nf(r - 1) * channels + channels for r in range(2, res_log2 + 1))  # ToRGB_lod*
    d = sum(channels * nf(r - 1) + nf(r - 1) for r in range(2, res_log2 + 1))  # FromRGB_lod*
    for r in range(3, res_log2 + 1):
        d += 9 * nf(r - 1) ** 2 + nf(r - 1)  # Conv0
        d += 9 * nf(r - 1) * nf(r - 2) + nf(r - 2)  # Conv1_down
    d += 9 * (nf(1) + 1) * nf(1) + nf(1)  # 4x4 Conv after minibatch std
    d += nf(1) * 16 * nf(0) + nf(0)  # Dense0
    d += nf(0) * 1 + 1  # Dense1 (no labels)
    return g, d


def test_official_1024_parameter_counts():
    assert _official_counts() == (23_079_115, 23_087_249)
    G_cfg, D_cfg = progan_config("progan")
    G, D = G_cfg.build(), D_cfg.build()
    assert count_params(G) == 23_079_115
    assert count_params(D) == 23_087_249
    assert (G.img_resolution, G.z_dim, G.max_level) == (1024, 512, 8)


def test_feature_maps_per_resolution():
    got = {r: feature_maps(r) for r in (4, 8, 16, 32, 64, 128, 256, 512, 1024)}
    assert got == {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                   1024: 16}  # fmt: skip
    # The digits configuration: 64 maps at 4 and 8 px, 32 at 16 px, 16 at 32 px.
    G, D = (cfg.build() for cfg in progan_config("digits"))
    assert [getattr(G, f"b{r}").conv1.weight.shape[0] for r in (4, 8, 16, 32)] == [64, 64, 32, 16]
    assert (G.img_resolution, G.img_channels, G.z_dim) == (32, 1, 64)
    assert D.b32.conv1.weight.shape[:2] == (32, 16)


# ---------------------------------------------------------------------------------------------
# A functional reference (the official "linear" structure, with gankern's equalized-lr
# convention: He gain sqrt(2) after the leaky ReLU)


def _pn(x):
    return x / (x.square().mean(dim=1, keepdim=True) + 1e-8).sqrt()


def _lrelu(x):
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


def _conv(x, layer, up=False, down=False):
    w = layer.weight / math.sqrt(layer.weight[0].numel())
    if up:  # nearest upsampling then the conv (kernel stored flipped: transposed-conv layout)
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        w = w.flip([2, 3])
    y = F.conv2d(x, w, padding=w.shape[-1] // 2)
    if down:
        y = F.avg_pool2d(y, 2)
    return y + layer.bias.view(1, -1, 1, 1) if layer.bias is not None else y


def _dense(x, layer):
    y = x @ (layer.weight / math.sqrt(layer.weight.shape[1])).t()
    return y + layer.bias if layer.bias is not None else y


def _mbstd(x, group_size=4):
    n = x.shape[0]
    g = min(group_size, n)
    m = n // g
    out = torch.empty(n, 1, *x.shape[2:], dtype=x.dtype)
    for i in range(m):
        members = x[i::m]  # sample k belongs to group k % m
        sd = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        out[i::m] = sd
    return torch.cat([x, out], dim=1)


def reference_generator(G, z, c, level, alpha):
    x = torch.cat([z, c], dim=1) if c is not None else z
    x = _pn(x)
    b4 = G.b4
    x = _dense(x, b4.fc).reshape(z.shape[0], -1, 4, 4) + b4.fc_act.bias.view(1, -1, 1, 1)
    x = _pn(_lrelu(x))
    x = _pn(_lrelu(_conv(x, b4.conv1)))
    images = [_conv(x, b4.torgb)]
    for res in G.resolutions[1 : level + 1]:
        block = getattr(G, f"b{res}")
        x = _pn(_lrelu(_conv(x, block.conv0, up=True)))
        x = _pn(_lrelu(_conv(x, block.conv1)))
        images.append(_conv(x, block.torgb))
    img = images[level]
    if level > 0:
        img = alpha * img + (1 - alpha) * F.interpolate(images[level - 1], scale_factor=2)
    return img


def reference_discriminator(D, img, level, alpha):
    res = 4 * 2**level
    x = _lrelu(_conv(img, getattr(D, f"b{res}").fromrgb))
    for r in [4 * 2**k for k in range(level, 0, -1)]:
        block = getattr(D, f"b{r}")
        x = _lrelu(_conv(_lrelu(_conv(x, block.conv0)), block.conv1, down=True))
        if r == res:
            below = getattr(D, f"b{r // 2}").fromrgb
            x = alpha * x + (1 - alpha) * _lrelu(_conv(F.avg_pool2d(img, 2), below))
    b4 = D.b4
    x = _lrelu(_conv(_mbstd(x), b4.conv))
    x = _lrelu(_dense(x.flatten(1), b4.fc))
    return _dense(x, b4.out)


def _small_pair(c_dim=0, resolution=16):
    G_cfg, D_cfg = progan_config("digits", resolution=resolution, c_dim=c_dim)
    G = randomize_(G_cfg.build()).double()
    D = randomize_(D_cfg.build()).double()
    return G, D


@pytest.mark.parametrize("level, alpha", [(0, 1.0), (1, 0.3), (2, 1.0), (2, 0.0), (2, 0.7)])
def test_forward_matches_the_functional_reference(level, alpha):
    G, D = _small_pair(c_dim=3)
    z = torch.randn(4, G.z_dim, dtype=torch.float64)
    c = F.one_hot(torch.tensor([0, 2, 1, 2]), 3).double()
    img = G(z, c, level=level, alpha=alpha)
    assert img.shape == (4, 1, 4 * 2**level, 4 * 2**level)
    assert_close(img, reference_generator(G, z, c, level, alpha), terms=widest_fan_in(G))
    logits, class_logits = D(img, c, level=level, alpha=alpha)
    expected = reference_discriminator(D, img, level, alpha)
    assert_close(logits, expected[:, :1], terms=widest_fan_in(D))
    assert_close(class_logits, expected[:, 1:], terms=widest_fan_in(D))


def test_resampling_convolutions_equal_the_separate_torch_ops():
    # G's upsampling conv = nearest upsampling + conv; D's downsampling conv = conv + avg pool.
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    up = randomize_(Conv2dLayer(3, 5, 3, up=2, resample_filter=[1, 1])).double()
    w = up.weight.flip([2, 3]) / math.sqrt(27)
    ref = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w, up.bias, padding=1)
    assert_close(up(x), ref)
    down = randomize_(Conv2dLayer(3, 5, 3, down=2, resample_filter=[1, 1])).double()
    ref = F.avg_pool2d(F.conv2d(x, down.weight / math.sqrt(27), down.bias, padding=1), 2)
    assert_close(down(x), ref)


# ---------------------------------------------------------------------------------------------
# Growth: levels, fade-in continuity, reals


def test_fade_in_continuity_between_levels():
    G, D = _small_pair()
    z = torch.randn(4, G.z_dim, dtype=torch.float64)
    for level in (1, 2):
        below = G(z, level=level - 1)
        # At alpha 0 the new level's output is the upsampled output of the level below.
        assert torch.equal(G(z, level=level, alpha=0.0), F.interpolate(below, scale_factor=2))
        # ... and it moves away continuously.
        near = G(z, level=level, alpha=1e-7)
        assert (near - G(z, level=level, alpha=0.0)).abs().max() < 1e-5
        img = torch.randn(4, 1, 4 * 2**level, 4 * 2**level, dtype=torch.float64)
        assert_close(D(img, level=level, alpha=0.0), D(F.avg_pool2d(img, 2), level=level - 1))
        near = D(img, level=level, alpha=1e-7)
        assert (near - D(img, level=level, alpha=0.0)).abs().max() < 1e-5


def test_alpha_is_ignored_at_level_0_and_defaults_to_full_resolution():
    G, D = _small_pair()
    z = torch.randn(2, G.z_dim, dtype=torch.float64)
    assert torch.equal(G(z, level=0, alpha=0.2), G(z, level=0))
    assert G(z).shape == (2, 1, 16, 16)
    assert torch.equal(G(z), G(z, level=G.max_level, alpha=1.0))


def test_progressive_reals():
    img = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    assert_close(progressive_reals(img, 1), F.avg_pool2d(img, 2))
    assert torch.equal(progressive_reals(img, 2), img)
    pooled = F.avg_pool2d(img, 2)
    faded = F.interpolate(F.avg_pool2d(pooled, 2), scale_factor=2)
    assert_close(progressive_reals(img, 1, alpha=0.0), faded)
    assert_close(progressive_reals(img, 1, alpha=0.25), 0.25 * pooled + 0.75 * faded)
    with pytest.raises(ValueError, match="multiple of 32"):
        progressive_reals(img, 3)


# ---------------------------------------------------------------------------------------------
# Shapes, labels, gradients, backends


@pytest.mark.parametrize("resolution", [8, 32])
def test_shapes_batch_one_and_conditional(resolution):
    for c_dim in (0, 10):
        G_cfg, D_cfg = progan_config("digits", resolution=resolution, c_dim=c_dim)
        G, D = G_cfg.build(), D_cfg.build()
        c = F.one_hot(torch.tensor([3]), 10).float() if c_dim else None
        for level in range(G.max_level + 1):
            img = G(torch.randn(1, 64), c, level=level, alpha=0.5)
            assert img.shape == (1, 1, 4 * 2**level, 4 * 2**level)
            out = D(img, c, level=level, alpha=0.5)
            if c_dim:
                assert out[0].shape == (1, 1) and out[1].shape == (1, 10)
            else:
                assert out.shape == (1, 1)
    # Unconditional networks accept (and ignore) an empty label tensor.
    G, D = (cfg.build() for cfg in progan_config("digits", resolution=resolution))
    img = G(torch.randn(2, 64), torch.zeros(2, 0))
    assert D(img, torch.zeros(2, 0)).shape == (2, 1)


def test_every_parameter_gets_a_gradient_over_the_levels():
    G, D = (cfg.build() for cfg in progan_config("digits", c_dim=4))
    c = F.one_hot(torch.arange(4), 4).float()
    for level in range(G.max_level + 1):
        img = G(torch.randn(4, 64), c, level=level, alpha=0.5)
        logits, class_logits = D(img, c, level=level, alpha=0.5)
        (logits.sum() + class_logits.square().sum()).backward()
    assert_finite_nonzero_grads(G)
    assert_finite_nonzero_grads(D)


def test_pixel_norm_after_every_generator_layer():
    G, _ = (cfg.build() for cfg in progan_config("digits"))
    features = G.b8(G.b4(G.b4.norm(torch.randn(3, 64))))
    ms = features.square().mean(dim=1)
    assert_close(ms, torch.ones_like(ms))


def test_set_impl_reaches_every_layer():
    G, D = (cfg.build() for cfg in progan_config("digits", resolution=8))
    z = torch.randn(2, 64)
    expected = G(z, level=1, alpha=0.5)
    for net in (G, D):
        net.set_impl("cuda")
        assert all(m.impl == "cuda" for m in net.modules() if hasattr(m, "impl"))
    with pytest.raises(Exception, match="cuda"):
        G(z, level=1, alpha=0.5)  # CPU tensors: the CUDA backend refuses them
    G.set_impl("ref")
    assert torch.equal(G(z, level=1, alpha=0.5), expected)


@requires_triton_interpreter
def test_triton_backend_matches_the_reference():
    # The Triton kernels run in the interpreter on CPU: 8x8 networks, level 1, batch 2.
    G_cfg, D_cfg = progan_config("digits", resolution=8)
    outputs = []
    for impl in ("ref", "triton"):
        torch.manual_seed(0)
        G, D = G_cfg.build(impl=impl), D_cfg.build(impl=impl)
        img = G(torch.ones(2, 64), level=1, alpha=0.5)
        logits = D(img, level=1, alpha=0.5)
        logits.sum().backward()
        outputs.append((img, logits, G.b8.conv0.weight.grad, D.b8.conv1.weight.grad))
    for got, want in zip(outputs[1], outputs[0], strict=True):
        assert_close(got, want, terms=widest_fan_in(G, D))


def test_state_dict_round_trip_and_config_json():
    G_cfg, D_cfg = progan_config("digits", c_dim=10)
    for cfg, cls in ((G_cfg, GeneratorConfig), (D_cfg, DiscriminatorConfig)):
        again = cls(**json.loads(json.dumps(dataclasses.asdict(cfg))))
        assert again == cfg
        a, b = cfg.build(), again.build()
        b.load_state_dict(a.state_dict())


def test_errors():
    G, D = (cfg.build() for cfg in progan_config("digits"))
    with pytest.raises(ValueError, match=r"level must be in \[0, 3\]"):
        G(torch.randn(2, 64), level=4)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        G(torch.randn(2, 64), alpha=-0.1)
    with pytest.raises(ValueError, match=r"img must have shape \[N, 1, 8, 8\] at level 1"):
        D(torch.randn(2, 1, 16, 16), level=1)
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, 63))
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=48)
    with pytest.raises(ValueError, match="activation"):
        GeneratorConfig(activation="tanh")
    with pytest.raises(ValueError, match="name must be"):
        progan_config("progan2")
    with pytest.raises(ValueError, match="leaves no feature maps"):
        DiscriminatorConfig(img_resolution=1024, fmap_base=64)


# ---------------------------------------------------------------------------------------------
# The schedule of images per phase


def test_official_progan_schedule():
    # 600k images at 4x4, then 600k fading in 8x8 (alpha 0 -> 1), 600k at 8x8, ...
    s = get_schedule("progan")
    p = s.phase(0, 1024)
    assert (p.level, p.alpha, p.resolution, p.minibatch, p.g_lrate) == (0, 1.0, 4, 128, 0.001)
    assert s.phase(599_999, 1024).level == 0
    p = s.phase(900_000, 1024)
    assert (p.level, p.resolution, p.lod) == (1, 8, 7.5) and p.alpha == pytest.approx(0.5)
    p = s.phase(1_200_000, 1024)
    assert (p.level, p.alpha) == (1, 1.0)
    p = s.phase(1_200_000 * 5 + 750_000, 1024)  # after 600k at 128 px: fading in 256 px
    assert (p.level, p.resolution, p.minibatch) == (6, 256, 8)
    assert p.alpha == pytest.approx(0.25)
    p = s.phase(1_200_000 * 8, 1024)  # 1024 px fully in: minibatch capped at 4, lrate 0.0015
    assert (p.level, p.alpha, p.minibatch, p.g_lrate, p.d_lrate) == (8, 1.0, 4, 0.0015, 0.0015)
    assert s.phase(12_000_000, 1024).level == 8
    # At 256 px the run reaches its last level sooner.
    assert s.phase(1_200_000 * 6, 256) == dataclasses.replace(
        s.phase(1_200_000 * 6, 256), level=6, alpha=1.0, resolution=256
    )
    # The paper's setting: 800k images per phase, minibatch 16 then 14, 6, 3.
    paper = get_schedule("progan-paper")
    assert paper.phase(1_000_000, 1024).alpha == pytest.approx(0.25)
    assert [paper.phase(1_600_000 * k, 1024).minibatch for k in (5, 6, 7, 8)] == [16, 14, 6, 3]


def test_stylegan_schedule_starts_at_8x8_with_8_gpus():
    s = get_schedule("stylegan")
    p = s.phase(0, 1024)
    assert (p.level, p.resolution, p.minibatch, p.g_lrate) == (1, 8, 256, 0.001)
    p = s.phase(1_200_000 * 7, 1024)
    assert (p.level, p.resolution, p.minibatch, p.g_lrate) == (8, 1024, 32, 0.003)


def test_scaled_schedule_and_alpha_is_continuous():
    s = get_schedule("progan", scale=0.01)  # 6k + 6k images per phase
    assert (s.training_kimg, s.transition_kimg, s.total_kimg) == (6, 6, 120)
    p = s.phase(9_000, 32)
    assert p.level == 1 and p.alpha == pytest.approx(0.5)
    alphas = [s.phase(n, 32).alpha for n in range(6_000, 12_001, 500)]
    levels = {s.phase(n, 32).level for n in range(6_001, 12_000, 500)}
    assert levels == {1} and alphas[-1] == 1.0
    assert all(b > a for a, b in zip(alphas[1:-1], alphas[2:], strict=False))
    assert all(abs(b - a) < 0.1 for a, b in zip(alphas[1:], alphas[2:], strict=False))


def test_schedule_json_round_trip_and_errors():
    for name, s in SCHEDULES.items():
        again = ProgressiveSchedule(**json.loads(json.dumps(dataclasses.asdict(s))))
        assert again == s, name
    assert PROGAN_TRAINING.progressive_schedule() == SCHEDULES["progan"]
    with pytest.raises(ValueError, match="schedule name"):
        get_schedule("pgan")
    with pytest.raises(ValueError, match="power of two"):
        ProgressiveSchedule(minibatch={12: 4})
    with pytest.raises(ValueError, match="cur_nimg"):
        get_schedule("progan").phase(-1, 64)
    with pytest.raises(TypeError, match="cur_nimg"):
        get_schedule("progan").phase(1.5, 64)
