"""The original GAN's MLPs (gankern.models.gan): shapes, formulas, counts, conditioning."""

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

from gankern.models.gan import (
    GAN_CONFIGS,
    GAN_HYPERPARAMS,
    MLPDiscriminatorConfig,
    MLPGeneratorConfig,
    gan_config,
)
from gankern.nn.maxout import MaxoutLinear


@pytest.mark.parametrize("resolution", [16, 32])
@pytest.mark.parametrize("c_dim", [0, 10])
def test_digits_shapes_and_gradients(resolution, c_dim):
    G_cfg, D_cfg = gan_config("gan_digits", resolution=resolution, c_dim=c_dim)
    G, D = G_cfg.build(), D_cfg.build()
    assert (G.z_dim, G.c_dim, G.img_resolution, G.img_channels) == (64, c_dim, resolution, 1)
    for n in (1, 5):
        z, c = torch.randn(n, 64), random_labels(n, c_dim)
        img = G(z, c)
        assert img.shape == (n, 1, resolution, resolution)
        assert img.abs().max() <= 1
        assert D(img, c).shape == (n, 1)
    z, c = torch.randn(4, 64), random_labels(4, c_dim)
    assert_every_param_gets_a_gradient(G, D(G(z, c), c).sum())
    assert_every_param_gets_a_gradient(D, D(G(z, c).detach(), c).sum())


def test_published_mnist_parameter_counts():
    # goodfeli/adversarial mnist.yaml (pylearn2 layers, weight + bias each):
    #   G: RectifiedLinear 100 -> 1200:  100*1200 + 1200 =   121,200
    #      RectifiedLinear 1200 -> 1200: 1200*1200 + 1200 = 1,441,200
    #      Sigmoid 1200 -> 784:          1200*784 + 784  =   941,584   total 2,503,984
    #   D: Maxout 240 units x 5 pieces on 784: 784*1200 + 1200 = 942,000
    #      Maxout 240 x 5 on 240:              240*1200 + 1200 = 289,200
    #      Sigmoid 240 -> 1:                   240 + 1         =     241   total 1,231,441
    G_cfg, D_cfg = gan_config("gan_mnist")
    assert count_params(G_cfg.build()) == 2_503_984
    assert count_params(D_cfg.build()) == 1_231_441
    G = G_cfg.build()
    w = G.net[0].weight
    assert w.abs().max() <= 0.05 and w.abs().max() > 0.04 and torch.all(G.net[0].bias == 0)


def test_generator_is_the_mlp_formula():
    torch.manual_seed(1)
    G = (
        MLPGeneratorConfig(
            img_resolution=3,
            img_channels=2,
            c_dim=4,
            z_dim=5,
            hidden=(7, 6),
            act="lrelu",
            alpha=0.1,
        )
        .build()
        .double()
    )
    z = torch.randn(3, 5, dtype=torch.float64)
    labels = [3, 0, 1]
    out = G(z, one_hot(labels, 4).double())
    for i, k in enumerate(labels):
        x = torch.cat([z[i], torch.eye(4, dtype=torch.float64)[k]])  # label after z
        for layer in G.net[:-1]:
            y = layer.weight @ x + layer.bias
            x = torch.where(y >= 0, y, 0.1 * y)
        x = torch.tanh(G.net[-1].weight @ x + G.net[-1].bias)
        assert_close(out[i], x.view(2, 3, 3))
    # integer labels give the same images
    assert_close(G(z, torch.tensor(labels)), out)


def test_discriminator_is_the_mlp_formula():
    torch.manual_seed(2)
    D = (
        MLPDiscriminatorConfig(img_resolution=2, img_channels=1, c_dim=3, hidden=(5,), act="relu")
        .build()
        .double()
    )
    img = torch.randn(2, 1, 2, 2, dtype=torch.float64)
    labels = [2, 1]
    out = D(img, one_hot(labels, 3).double())
    for i, k in enumerate(labels):
        x = torch.cat([img[i].flatten(), torch.eye(3, dtype=torch.float64)[k]])
        h = torch.clamp_min(D.net[0].weight @ x + D.net[0].bias, 0)
        assert_close(out[i], D.net[1].weight @ h + D.net[1].bias)


def test_maxout_takes_the_max_of_consecutive_pieces():
    torch.manual_seed(3)
    layer = MaxoutLinear(4, 3, 2).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    out = layer(x)
    for n in range(5):
        z = layer.weight @ x[n] + layer.bias
        for j in range(3):
            assert out[n, j] == max(z[2 * j], z[2 * j + 1])


def test_dropout_only_in_training():
    D = gan_config("gan_mnist")[1].build()
    # pylearn2's include probabilities: 0.8 on the image, 0.5 on the later layers' inputs
    assert [m.p for m in D.modules() if isinstance(m, torch.nn.Dropout)] == [0.2, 0.5, 0.5]
    img = torch.randn(3, 1, 28, 28)
    D.eval()
    assert torch.equal(D(img), D(img))
    D.train()
    assert not torch.equal(D(img), D(img))


def test_set_impl_and_config_roundtrip():
    G_cfg, D_cfg = gan_config("gan_digits", c_dim=10)
    assert_set_impl_switches_both(G_cfg.build(), D_cfg.build(), 10, g_layers=3, d_layers=3)
    for cfg in (G_cfg, D_cfg, *gan_config("gan_mnist")):
        assert_config_roundtrips(cfg)


def test_named_configs_and_hyperparams():
    assert GAN_CONFIGS == ("gan_mnist", "gan_digits")
    G_cfg, D_cfg = gan_config("gan_mnist", resolution=32, img_channels=3, c_dim=10)
    assert (G_cfg.img_resolution, G_cfg.img_channels, D_cfg.c_dim) == (32, 3, 10)
    assert GAN_HYPERPARAMS["gan"].optimizer == "sgd" and GAN_HYPERPARAMS["gan"].batch == 100
    with pytest.raises(ValueError, match="name must be one of"):
        gan_config("gan_large")


def test_errors():
    G = gan_config("gan_digits", c_dim=10)[0].build()
    with pytest.raises(ValueError, match=r"z must have shape \[N, 64\]"):
        G(torch.randn(2, 63), random_labels(2, 10))
    with pytest.raises(ValueError, match="c must be given"):
        G(torch.randn(2, 64), None)
    with pytest.raises(ValueError, match=r"c must be one-hot labels of shape \[N, 10\]"):
        G(torch.randn(2, 64), torch.zeros(2, 9))
    D = gan_config("gan_digits")[1].build()
    with pytest.raises(ValueError, match=r"img must have shape \[N, 1, 32, 32\]"):
        D(torch.randn(2, 1, 16, 16))
    assert D(torch.randn(2, 1, 32, 32), torch.zeros(2, 0)).shape == (2, 1)  # c ignored
    with pytest.raises(ValueError, match="act must be one of"):
        MLPGeneratorConfig(act="maxout")
    with pytest.raises(TypeError, match="hidden must be a list"):
        MLPDiscriminatorConfig(hidden=256)
    with pytest.raises(ValueError, match="dropout must be in"):
        MLPDiscriminatorConfig(dropout=1.0)
