"""CycleGAN: ResNet generator, its PatchGAN and the image history pool."""

import dataclasses
import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankern.models.cyclegan import (
    CYCLEGAN_CONFIGS,
    CYCLEGAN_PAPER_HYPERPARAMS,
    ImagePool,
    ResnetGeneratorConfig,
    cyclegan_config,
)
from gankern.models.patchgan import PatchGANConfig


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def resnet_param_count(in_ch, out_ch, ngf, n_blocks, n_down, norm, k=7):
    """The official ResnetGenerator's parameter count, layer by layer."""
    bias = norm != "batch"
    affine = 2 if norm == "batch" else 0

    def conv(cin, cout, k, with_bias=bias, normed=True):
        return cin * cout * k * k + (cout if with_bias else 0) + (affine * cout if normed else 0)

    total = conv(in_ch, ngf, k)
    for i in range(n_down):
        total += conv(ngf * 2**i, ngf * 2 ** (i + 1), 3)
    width = ngf * 2**n_down
    total += n_blocks * 2 * conv(width, width, 3)
    for i in range(n_down, 0, -1):
        total += conv(ngf * 2**i, ngf * 2 ** (i - 1), 3)
    return total + conv(ngf, out_ch, k, with_bias=True, normed=False)


def test_published_parameter_counts():
    g, d = cyclegan_config("resnet9")
    assert num_params(g.build()) == 11_378_179  # official resnet_9blocks, instance norm
    assert num_params(d.build()) == 2_764_737  # basic PatchGAN on 3 channels, instance norm
    assert (d.in_channels, d.norm, g.norm) == (3, "instance", "instance")
    assert resnet_param_count(3, 3, 64, 9, 2, "instance") == 11_378_179
    g6, _ = cyclegan_config("resnet6")
    assert num_params(g6.build()) == resnet_param_count(3, 3, 64, 6, 2, "instance")


@pytest.mark.parametrize("ngf,n_blocks,n_down,norm,in_ch,out_ch,k", [
    (4, 2, 1, "batch", 1, 3, 7), (8, 0, 3, "none", 3, 1, 7), (2, 3, 2, "instance", 2, 2, 3),
])
def test_parameter_counts_follow_the_official_structure(ngf, n_blocks, n_down, norm, in_ch,
                                                        out_ch, k):
    config = ResnetGeneratorConfig(in_channels=in_ch, out_channels=out_ch, ngf=ngf,
                                   n_blocks=n_blocks, n_downsampling=n_down, norm=norm,
                                   outer_kernel=k)
    assert num_params(config.build()) == resnet_param_count(in_ch, out_ch, ngf, n_blocks,
                                                            n_down, norm, k)


def _functional_forward(G, x):
    """The ResnetGenerator written with the functional API on G's weights."""
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    n_down, n_blocks = G.config.n_downsampling, G.config.n_blocks

    def norm_relu(h, relu=True):
        h = F.instance_norm(h, eps=1e-5)
        return F.relu(h) if relu else h

    p = G.config.outer_kernel // 2
    h = norm_relu(F.conv2d(F.pad(x, [p] * 4, mode="reflect"), convs[0].weight, convs[0].bias))
    k = 1
    for _ in range(n_down):
        h = norm_relu(F.conv2d(h, convs[k].weight, convs[k].bias, stride=2, padding=1))
        k += 1
    for _ in range(n_blocks):
        r = norm_relu(F.conv2d(F.pad(h, [1] * 4, mode="reflect"), convs[k].weight, convs[k].bias))
        r = norm_relu(F.conv2d(F.pad(r, [1] * 4, mode="reflect"), convs[k + 1].weight,
                               convs[k + 1].bias), relu=False)
        h, k = h + r, k + 2
    for _ in range(n_down):
        h = norm_relu(F.conv_transpose2d(h, convs[k].weight, convs[k].bias, stride=2, padding=1,
                                         output_padding=1))
        k += 1
    last = G.model[-1]
    h = F.conv2d(F.pad(h, [p] * 4, mode="reflect"), last.weight)
    return torch.tanh(h + last.bias.view(1, -1, 1, 1))


@pytest.mark.parametrize("outer_kernel", [7, 3])
def test_forward_equals_a_functional_implementation(outer_kernel):
    torch.manual_seed(0)
    G = ResnetGeneratorConfig(in_channels=1, out_channels=3, ngf=4, n_blocks=2,
                              outer_kernel=outer_kernel).build(impl="ref")
    with torch.no_grad():
        for m in G.modules():  # non-zero biases, so that a dropped bias shows
            if getattr(m, "bias", None) is not None:
                m.bias.normal_(0, 0.1)
    x = torch.randn(2, 1, 16, 12)
    torch.testing.assert_close(G(x), _functional_forward(G, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CYCLEGAN_CONFIGS))
def test_named_configs_shapes(name):
    g, d = cyclegan_config(name, in_channels=3, out_channels=1)
    native = CYCLEGAN_CONFIGS[name][0]
    if native > 32:  # same structure, fewer channels
        g = dataclasses.replace(g, ngf=2)
        d = dataclasses.replace(d, ndf=2)
    torch.manual_seed(0)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    y = G(torch.randn(1, 3, native, native))
    assert y.shape == (1, 1, native, native) and y.abs().max() <= 1
    side = native // 2**d.n_layers - 2
    assert D(y).shape == (1, 1, side, side)
    back, _ = cyclegan_config(name, in_channels=1, out_channels=3)
    assert (back.in_channels, back.out_channels) == (1, 3)


def test_every_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    g, d = cyclegan_config("digits")
    G, D = g.build(impl="ref"), d.build(impl="ref")
    y = G(torch.randn(4, 3, 32, 32))
    (D(y).mean() + y.square().mean()).backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_dropout_and_errors():
    G = ResnetGeneratorConfig(ngf=2, n_blocks=2, dropout=0.5).build()
    assert sum(isinstance(m, nn.Dropout) for m in G.modules()) == 2
    with pytest.raises(ValueError, match="multiples of 2\\*\\*n_downsampling = 4"):
        G(torch.randn(1, 3, 18, 16))
    with pytest.raises(ValueError, match="ResnetGeneratorConfig.norm must be one of"):
        ResnetGeneratorConfig(norm="layer")
    with pytest.raises(ValueError, match="n_blocks must be >= 0"):
        ResnetGeneratorConfig(n_blocks=-1)
    with pytest.raises(ValueError, match="outer_kernel must be odd"):
        ResnetGeneratorConfig(outer_kernel=4)
    with pytest.raises(ValueError, match="resolution must be a multiple of 4"):
        cyclegan_config("digits", resolution=30)
    for config in cyclegan_config("digits"):
        data = json.loads(json.dumps(dataclasses.asdict(config)))
        assert type(config)(**data) == config


def test_paper_hyperparameters():
    hp = CYCLEGAN_PAPER_HYPERPARAMS
    gan = hp.gan
    assert (gan.loss, hp.lambda_cycle, hp.lambda_identity, hp.pool_size) == (
        "least_squares", 10.0, 0.5, 50)
    assert (gan.lr_g, gan.betas, hp.n_epochs, hp.n_epochs_decay) == (2e-4, (0.5, 0.999), 100, 100)
    assert gan.lr_schedule == "linear" and gan.lr_decay_start / gan.total_g_steps == 0.5


# --- the image pool -------------------------------------------------------------------------


def _images(start, count):
    """Images that carry their own id as every pixel value."""
    ids = torch.arange(start, start + count, dtype=torch.float32)
    return ids.view(-1, 1, 1, 1).expand(-1, 2, 3, 3).clone()


def _simulate(batches, size, generator):
    """The CycleGAN rule on a Python list of image ids, image by image, with the draws the
    pool documents (uniforms, then slots, for the images past the filling)."""
    pool, returned = [], []
    for ids in batches:
        fill = min(len(ids), size - len(pool))
        rest = len(ids) - fill
        if rest:
            u = torch.rand(rest, generator=generator).tolist()
            slot = torch.randint(size, (rest,), generator=generator).tolist()
        for i, image in enumerate(ids):
            if i < fill:
                pool.append(image)
                returned.append(image)
            elif u[i - fill] > 0.5:
                returned.append(pool[slot[i - fill]])
                pool[slot[i - fill]] = image
            else:
                returned.append(image)
    return returned, pool


def _ids(images):
    return images[:, 0, 0, 0].long().tolist()


@pytest.mark.parametrize("size,batch_sizes", [(5, [1] * 40), (4, [3, 2, 5, 1, 4] * 6),
                                              (50, [1] * 120)])
def test_pool_follows_the_rule(size, batch_sizes):
    pool = ImagePool(size, generator=torch.Generator().manual_seed(3))
    got, start, batches = [], 0, []
    for n in batch_sizes:
        batches.append(list(range(start, start + n)))
        got += _ids(pool(_images(start, n)))
        start += n
    expected, stored = _simulate(batches, size, torch.Generator().manual_seed(3))
    assert got == expected
    assert sorted(_ids(pool.images)) == sorted(stored) and pool.num_stored == size


def test_pool_returns_new_images_while_filling_then_half_old():
    pool = ImagePool(50, generator=torch.Generator().manual_seed(0))
    first = _ids(pool(_images(0, 50)))
    assert first == list(range(50)) and pool.num_stored == 50
    old = 0
    for i in range(50, 2050):
        old += _ids(pool(_images(i, 1)))[0] != i
    assert abs(old / 2000 - 0.5) < 0.04  # binomial std 0.011


def test_pool_state_dict_resumes_exactly():
    a = ImagePool(6, generator=torch.Generator().manual_seed(7))
    for i in range(10):
        a(_images(2 * i, 2))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = ImagePool(6, generator=torch.Generator().manual_seed(123))
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert b.num_stored == 6 and torch.equal(a.images, b.images)
    for i in range(10, 30):
        assert _ids(a(_images(2 * i, 2))) == _ids(b(_images(2 * i, 2)))


def test_pool_size_zero_and_errors():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = ImagePool(0)(x)
    assert torch.equal(out, x) and not out.requires_grad
    pool = ImagePool(2)
    pool(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="images must be \\[N, 3, 4, 4\\]"):
        pool(torch.randn(1, 3, 5, 4))
    with pytest.raises(ValueError, match="size must be >= 0"):
        ImagePool(-1)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        ImagePool(2, generator=0)


def test_pool_output_is_detached_and_a_copy():
    pool = ImagePool(1)
    x = torch.ones(1, 1, 2, 2, requires_grad=True)
    out = pool(x * 2)
    assert not out.requires_grad
    out.zero_()
    assert (pool.images == 2).all()  # the pool kept its own copy


def test_patchgan_for_cyclegan_is_unconditional():
    d = PatchGANConfig(img_channels=3, norm="instance")
    assert d.cond_channels == 0 and d.in_channels == 3
