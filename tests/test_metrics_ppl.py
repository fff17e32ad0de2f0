"""Perceptual path length, slerp, LPIPS and VGG16 (layout, formula, forward)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from metrics_helpers import ToyGenerator, small_digits_extractor

from gankern.metrics import LPIPS, VGG16Features, compute_metrics, perceptual_path_length
from gankern.metrics.ppl import filtered_mean, slerp


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never read or write the user's cache (~/.cache/gankern) from a test.
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "gankern-cache"))


def _mean_squared_difference(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


def test_filtered_mean_drops_the_outer_percentiles():
    values = np.random.default_rng(0).permutation(np.arange(1.0, 201.0))
    # 1st percentile ("lower") of 1..200 is 2, the 99th ("higher") is 199.
    assert filtered_mean(values) == pytest.approx(np.mean(np.arange(2.0, 200.0)))


def test_slerp_moves_along_the_great_circle():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    for t in (0.0, 1 / 3, 0.5, 1.0):
        angle = t * math.pi / 2
        expected = torch.tensor([[math.cos(angle), math.sin(angle)]])
        torch.testing.assert_close(slerp(a, b, torch.tensor([t])), expected)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_ppl_of_a_linear_generator_matches_monte_carlo(sampling):
    # images = W w and w = z: along any straight path in W, image(t + e) - image(t) =
    # e W (z1 - z0), so d = |W (z1 - z0)|^2 / npix for every t; estimate its trimmed mean
    # with independent numpy draws.
    G = ToyGenerator(z_dim=16, resolution=4, linear=True)
    label, value = perceptual_path_length(
        G, num_samples=4000, batch_size=1000, sampling=sampling, space="w",
        distance=_mean_squared_difference, device="cpu",
    )
    assert label == "ppl_custom"
    w = G.weight.double().numpy()
    rng = np.random.default_rng(1)
    diff = rng.standard_normal((200_000, 16)) - rng.standard_normal((200_000, 16))
    d = ((diff @ w.T) ** 2).mean(1)
    assert value == pytest.approx(filtered_mean(d), rel=0.04)
    assert G.calls[0] == {"noise_mode": "const"}  # pairs see the same noise


def test_ppl_z_space_and_errors():
    G = ToyGenerator(z_dim=8, resolution=4)
    label, value = perceptual_path_length(G, num_samples=64, space="z", sampling="full",
                                          distance=_mean_squared_difference, batch_size=16)
    again = perceptual_path_length(G, num_samples=64, space="z", sampling="full",
                                   distance=_mean_squared_difference, batch_size=16)
    assert value > 0 and (label, value) == again
    plain = torch.nn.Linear(8, 16)
    plain.z_dim = 8
    with pytest.raises(ValueError, match="space='w' needs a generator with mapping"):
        perceptual_path_length(plain, distance=_mean_squared_difference)
    with pytest.raises(ValueError, match="sampling"):
        perceptual_path_length(G, sampling="middle", distance=_mean_squared_difference)
    with pytest.raises(ValueError, match="distance"):
        perceptual_path_length(G, distance="l2")


def test_ppl_with_the_digits_distance_through_compute_metrics():
    model = small_digits_extractor()
    G = ToyGenerator(z_dim=8, resolution=32)
    results = compute_metrics("ppl", fake=G, extractor=model, device="cpu",
                              ppl_options={"num_samples": 40, "batch_size": 20})
    assert set(results) == {"ppl_digits"} and results["ppl_digits"] > 0
    x = torch.rand(3, 1, 32, 32) * 2 - 1
    y = torch.rand(3, 1, 32, 32) * 2 - 1
    assert torch.all(model.perceptual_distance(x, x) == 0)
    torch.testing.assert_close(model.perceptual_distance(x, y), model.perceptual_distance(y, x))


# torchvision's VGG16 "features" indices: conv1_1 0, conv1_2 2, conv2_x 5 7, conv3_x 10 12 14,
# conv4_x 17 19 21, conv5_x 24 26 28; relu1_2 3, relu2_2 8, relu3_3 15, relu4_3 22, relu5_3 29.
VGG_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256),
             12: (256, 256), 14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512),
             24: (512, 512), 26: (512, 512), 28: (512, 512)}
LPIPS_TAPS = (3, 8, 15, 22, 29)


def test_vgg16_and_lpips_layouts():
    vgg = VGG16Features()
    expected = {}
    for i, (cin, cout) in VGG_CONVS.items():
        expected[f"features.{i}.weight"] = (cout, cin, 3, 3)
        expected[f"features.{i}.bias"] = (cout,)
    for i, (cin, cout) in {0: (25088, 4096), 3: (4096, 4096), 6: (4096, 1000)}.items():
        expected[f"classifier.{i}.weight"] = (cout, cin)
        expected[f"classifier.{i}.bias"] = (cout,)
    assert {k: tuple(v.shape) for k, v in vgg.state_dict().items()} == expected
    assert sum(p.numel() for p in vgg.parameters()) == 138_357_544  # torchvision's figure
    lpips = {k: tuple(v.shape) for k, v in LPIPS().state_dict().items() if k.startswith("lin")}
    # The lpips package's names: lin{i}.model.1.weight, one weight per channel of layer i.
    assert lpips == {f"lin{i}.model.1.weight": (1, c, 1, 1)
                     for i, c in enumerate((64, 128, 256, 512, 512))}


def test_lpips_follows_its_definition():
    torch.manual_seed(0)
    model = LPIPS()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.startswith("lin"):
                t.uniform_(0, 1)  # calibration weights are non-negative
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    b = torch.rand(2, 3, 32, 32) * 2 - 1
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(x):
        x, out = (x - shift) / scale, []
        for i, layer in enumerate(model.net.features[:30]):
            x = F.relu(x) if isinstance(layer, torch.nn.ReLU) else layer(x)
            if i in LPIPS_TAPS:
                out.append(x)
        return out

    with torch.no_grad():
        expected = torch.zeros(2)
        for i, (fa, fb) in enumerate(zip(taps(a), taps(b), strict=True)):
            na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            w = model.state_dict()[f"lin{i}.model.1.weight"].view(1, -1, 1, 1)
            expected += ((na - nb) ** 2 * w).sum(1).mean(dim=(1, 2))
        got = model(a, b)
        assert torch.all(model(a, a) == 0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)


def test_vgg16_fc2_features_forward():
    vgg = VGG16Features()
    with torch.no_grad():
        out = vgg(torch.randint(0, 256, (1, 1, 20, 20), dtype=torch.uint8))
    assert set(out) == {"features"} and out["features"].shape == (1, 4096)
    assert torch.all(out["features"] >= 0)  # taken after fc2's ReLU


def test_lpips_loads_local_weight_files(tmp_path, monkeypatch):
    from gankern.metrics import WeightsNotFoundError, load_lpips

    source = LPIPS()
    with torch.no_grad():
        for name, t in source.state_dict().items():
            if name.startswith("lin"):
                t.uniform_(0, 1)
    # A torchvision VGG16 file also holds the classifier; LPIPS needs the features only.
    torch.save({k: v for k, v in source.net.state_dict().items()}, tmp_path / "vgg.pth")
    lin = {k: v for k, v in source.state_dict().items() if k.startswith("lin")}
    torch.save(lin, tmp_path / "lin.pth")
    loaded = load_lpips(tmp_path / "vgg.pth", tmp_path / "lin.pth", device="cpu")
    a, b = torch.rand(2, 1, 1, 16, 16).mul(2).sub(1)
    torch.testing.assert_close(loaded(a, b), source(a, b))
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("GANKERN_LPIPS_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="GANKERN_LPIPS_WEIGHTS"):
        load_lpips(tmp_path / "vgg.pth")
