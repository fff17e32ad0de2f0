"""SRGAN: SRResNet, the SRGAN discriminator, the VGG19 content network and its fallback."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankern.models.srgan import (
    SRGAN_CONFIGS,
    SRGAN_PAPER_HYPERPARAMS,
    BicubicDownsample,
    SRGANDiscriminatorConfig,
    SRResNetConfig,
    content_network,
    srgan_config,
)
from gankern.models.vgg import (
    VGG16_LAYERS,
    VGG19_LAYERS,
    VGG19Features,
    load_vgg19_features,
    relu_index,
)
from gankern.pretrained import WeightsNotFoundError


def num_params(module):
    return sum(p.numel() for p in module.parameters())


def srresnet_param_count(cin, cout, c, blocks, scale, prelu_channel=True):
    """The paper's Fig. 4, layer by layer (no bias before batch norm)."""
    prelu = c if prelu_channel else 1
    head = cin * c * 81 + c + prelu  # k9n64s1 with bias, PReLU
    block = 2 * (c * c * 9 + 2 * c) + prelu  # two k3n64s1 + BN, PReLU between
    trunk_end = c * c * 9 + 2 * c  # k3n64s1 + BN
    stages = {1: 0, 2: 1, 4: 2, 8: 3}[scale]
    upsample = stages * (c * 4 * c * 9 + 4 * c + prelu)  # k3n256s1 with bias, PReLU
    tail = c * cout * 81 + cout  # k9n3s1 with bias
    return head + blocks * block + trunk_end + upsample + tail


def srgan_d_param_count(cin, resolution, c, dense):
    widths = [c, c, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
    total = cin * c * 9 + c  # k3n64s1 with bias, no BN
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        total += a * b * 9 + 2 * b  # conv without bias, BN
    flat = widths[-1] * (resolution // 16) ** 2
    return total + flat * dense + dense + dense + 1


def test_paper_parameter_counts():
    g, d = srgan_config("srgan")
    assert (g.channels, g.n_blocks, g.scale, d.img_resolution) == (64, 16, 4, 96)
    assert num_params(g.build()) == srresnet_param_count(3, 3, 64, 16, 4) == 1_548_547
    shared = dataclasses.replace(g, prelu="shared")
    assert num_params(shared.build()) == srresnet_param_count(3, 3, 64, 16, 4, False) == 1_547_350
    assert num_params(d.build()) == srgan_d_param_count(3, 96, 64, 1024) == 23_563_649


@pytest.mark.parametrize("cin,cout,c,blocks,scale", [(1, 1, 8, 2, 2), (3, 1, 4, 0, 8),
                                                     (2, 3, 6, 3, 1)])
def test_generator_counts_follow_the_architecture(cin, cout, c, blocks, scale):
    config = SRResNetConfig(in_channels=cin, out_channels=cout, channels=c, n_blocks=blocks,
                            scale=scale)
    assert num_params(config.build()) == srresnet_param_count(cin, cout, c, blocks, scale)


def _functional_srresnet(G, x):
    """Fig. 4 with the functional API on G's weights (eval mode)."""

    def bn(layer, h):
        return F.batch_norm(h, layer.running_mean, layer.running_var, layer.weight, layer.bias,
                            False, 0.0, layer.eps)

    head_conv, head_prelu = G.head
    skip = h = F.prelu(F.conv2d(x, head_conv.weight, head_conv.bias, padding=4), head_prelu.weight)
    for block in G.blocks:
        c1, b1, p, c2, b2 = block.body
        r = F.prelu(bn(b1, F.conv2d(h, c1.weight, padding=1)), p.weight)
        h = h + bn(b2, F.conv2d(r, c2.weight, padding=1))
    h = skip + bn(G.trunk_end[1], F.conv2d(h, G.trunk_end[0].weight, padding=1))
    for i in range(0, len(G.upsample), 3):
        conv, prelu = G.upsample[i], G.upsample[i + 2]
        h = F.prelu(F.pixel_shuffle(F.conv2d(h, conv.weight, conv.bias, padding=1), 2),
                    prelu.weight)
    out = F.conv2d(h, G.tail.weight, padding=4) + G.tail.bias.view(1, -1, 1, 1)
    return torch.tanh(out)


def test_generator_equals_the_figure():
    torch.manual_seed(0)
    G = SRResNetConfig(in_channels=3, out_channels=3, channels=8, n_blocks=2).build(impl="ref")
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2)
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(0, 0.5)
    G.eval()
    x = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(G(x), _functional_srresnet(G, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(SRGAN_CONFIGS))
def test_named_configs_shapes(name):
    native = SRGAN_CONFIGS[name][0]
    g, d = srgan_config(name, img_channels=1)
    if native > 32:
        g = dataclasses.replace(g, channels=4, n_blocks=2)
        d = dataclasses.replace(d, channels=2, dense=8)
    torch.manual_seed(0)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    hr = torch.rand(2, 1, native, native) * 2 - 1
    lr = BicubicDownsample(4, impl="ref")(hr)
    assert lr.shape == (2, 1, native // 4, native // 4)
    sr = G(lr)
    assert sr.shape == hr.shape and sr.abs().max() <= 1
    assert D(sr).shape == (2, 1)
    assert (G.in_channels, G.out_channels, G.scale, D.img_resolution) == (1, 1, 4, native)


def test_every_parameter_gets_a_finite_nonzero_gradient():
    torch.manual_seed(0)
    g, d = srgan_config("digits", img_channels=1)
    G, D = g.build(impl="ref"), d.build(impl="ref")
    sr = G(torch.randn(4, 1, 8, 8))
    (D(sr).mean() + sr.square().mean()).backward()
    for net in (G, D):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name


def test_linear_output_and_errors():
    G = SRResNetConfig(channels=4, n_blocks=1, output_act="linear").build().eval()
    with torch.no_grad():
        G.tail.bias.fill_(5.0)  # no tanh: the output can leave [-1, 1]
    assert G(torch.zeros(1, 3, 4, 4)).min() > 4
    with pytest.raises(ValueError, match="x must have 3 channel"):
        G(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="scale must be a power of two"):
        SRResNetConfig(scale=3)
    with pytest.raises(ValueError, match="prelu must be one of"):
        SRResNetConfig(prelu="none")
    with pytest.raises(ValueError, match="resolution must be a multiple of 16"):
        SRGANDiscriminatorConfig(img_resolution=40)
    D = SRGANDiscriminatorConfig(img_channels=1, img_resolution=16, channels=2, dense=4).build()
    with pytest.raises(ValueError, match="images must be \\[N, 1, 16, 16\\]"):
        D(torch.zeros(1, 1, 32, 32))
    for config in srgan_config("digits", img_channels=1):
        data = json.loads(json.dumps(dataclasses.asdict(config)))
        assert type(config)(**data) == config


def test_initialization():
    torch.manual_seed(0)
    G = SRResNetConfig().build()
    weights = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std() - 0.02) < 5e-4
    assert all((m.weight == 0.25).all() for m in G.modules() if isinstance(m, nn.PReLU))


def test_paper_hyperparameters():
    hp = SRGAN_PAPER_HYPERPARAMS
    gan = hp.gan
    assert (gan.lr_g, gan.betas[0], gan.batch, hp.hr_crop, hp.scale) == (1e-4, 0.9, 16, 96, 4)
    assert gan.loss == "nonsaturating" and gan.n_critic == 1
    assert hp.adversarial_weight == 1e-3 and abs(hp.vgg_rescale * 12.75 - 1) < 1e-12


# --- VGG19 --------------------------------------------------------------------------------

# torchvision's VGG19 ``features``: convolutions at these indices (the rest ReLUs and pools).
TORCHVISION_VGG19_CONVS = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def _fake_torchvision_vgg19(path, seed=0):
    """A state dict with torchvision's VGG19 names and shapes (random values, float16 to
    halve the file: loading casts them to the network's float32)."""
    g = torch.Generator().manual_seed(seed)
    widths = [w for w in VGG19_LAYERS if w != "M"]
    state, cin = {}, 3
    for index, cout in zip(TORCHVISION_VGG19_CONVS, widths, strict=True):
        weight = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"features.{index}.weight"] = weight.half()
        state[f"features.{index}.bias"] = (torch.randn(cout, generator=g) * 0.05).half()
        cin = cout
    for i, (n_in, n_out) in zip((0, 3, 6), ((25088, 8), (8, 8), (8, 10)), strict=True):
        state[f"classifier.{i}.weight"] = torch.zeros(n_out, n_in)  # shapes do not matter:
        state[f"classifier.{i}.bias"] = torch.zeros(n_out)  # the classifier is ignored
    torch.save(state, path)
    return state


def test_vgg19_layout_and_count():
    net = VGG19Features()
    names = [k for k in net.state_dict()]
    expected = [f"features.{i}.{p}" for i in TORCHVISION_VGG19_CONVS for p in ("weight", "bias")]
    assert names == expected
    # torchvision's vgg19 has 143,667,240 parameters; its classifier
    # (25088 -> 4096 -> 4096 -> 1000) holds the rest.
    classifier = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert num_params(net) == 143_667_240 - classifier == 20_024_384
    assert relu_index(VGG19_LAYERS, "relu5_4") == 35 and relu_index(VGG19_LAYERS, "relu2_2") == 8
    # LPIPS's taps in the metrics (written there by hand) are VGG16's relu1_2 ... relu5_3.
    from gankern.metrics.vgg16 import _LPIPS_TAPS

    assert tuple(relu_index(VGG16_LAYERS, f"relu{b}_{c}")
                 for b, c in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))) == _LPIPS_TAPS
    with pytest.raises(ValueError, match="layer must name a ReLU"):
        VGG19Features("relu6_1")


@pytest.fixture(scope="module")
def fake_vgg19(tmp_path_factory):
    """(path, state) of one fake torchvision VGG19 file (40 MB: written once)."""
    path = tmp_path_factory.mktemp("vgg19") / "vgg19-dcbb9e9d.pth"
    return path, _fake_torchvision_vgg19(path)


def test_vgg19_loads_from_a_path_or_the_environment(fake_vgg19, monkeypatch):
    path, state = fake_vgg19
    net = load_vgg19_features(path)
    assert not any(p.requires_grad for p in net.parameters()) and not net.training
    torch.testing.assert_close(net.features[34].weight, state["features.34.weight"].float())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net(x), net.features((x * 0.5 + 0.5 - mean) / std))
    assert net(x).shape == (2, 512, 2, 2)
    assert net(x[:, :1]).shape == (2, 512, 2, 2)  # grayscale is repeated
    monkeypatch.setenv("GANKERN_VGG19_WEIGHTS", str(path))
    shallow = content_network(layer="relu2_2")
    assert shallow.out_channels == 128 and shallow(x).shape == (2, 128, 16, 16)
    torch.testing.assert_close(shallow.features[7].bias, state["features.7.bias"].float())


def test_content_network_falls_back_to_none_without_weights(tmp_path, monkeypatch,
                                                            fake_vgg19):
    monkeypatch.delenv("GANKERN_VGG19_WEIGHTS", raising=False)
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "cache"))
    assert content_network() is None
    with pytest.raises(WeightsNotFoundError, match="GANKERN_VGG19_WEIGHTS") as info:
        load_vgg19_features()
    assert "models/vgg19-dcbb9e9d.pth" in str(info.value).replace("\\", "/")
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth"):
        content_network(tmp_path / "nowhere.pth")  # an explicit path must exist
    # The cache location is found too.
    (tmp_path / "cache" / "models").mkdir(parents=True)
    (tmp_path / "cache" / "models" / "vgg19-dcbb9e9d.pth").symlink_to(fake_vgg19[0])
    assert isinstance(content_network(), VGG19Features)


def test_vgg19_rejects_a_file_of_another_network(tmp_path):
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="missing 31.*shape 1: features.0.weight"):
        load_vgg19_features(tmp_path / "bad.pth")
