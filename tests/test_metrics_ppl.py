"""Perceptual path length, slerp, LPIPS and VGG16 (layout, formula, forward)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from metrics_helpers import ToyGenerator, digits, small_digits_extractor

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


def test_filtered_mean_of_skewed_values():
    # 1..299 and one outlier: the 1st percentile ("lower") is 3, the 99th ("higher") 298.
    values = np.r_[np.arange(1.0, 300.0), 1e6]
    assert filtered_mean(values) == pytest.approx(np.mean(np.arange(3.0, 299.0)))


def test_slerp_moves_along_the_great_circle():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    for t in (0.0, 1 / 3, 0.5, 1.0):
        angle = t * math.pi / 2
        expected = torch.tensor([[math.cos(angle), math.sin(angle)]])
        torch.testing.assert_close(slerp(a, b, torch.tensor([t])), expected)


class CurvedToyGenerator(torch.nn.Module):
    """StyleGAN2-ADA's interface on nonlinear maps, so that PPL depends on where on the path
    it is measured: ``mapping`` is ``w = z + sin(2 z) / 2`` elementwise (one w repeated),
    ``synthesis`` is ``tanh(2 W w)``. ``numpy_mapping`` / ``numpy_synthesis`` are the same
    maps in float64 numpy, for the Monte-Carlo references."""

    z_dim, c_dim, num_ws = 8, 0, 2

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(7)
        self.weight_np = rng.standard_normal((16, self.z_dim)) / self.z_dim**0.5
        self.weight = torch.nn.Parameter(torch.tensor(self.weight_np, dtype=torch.float32),
                                         requires_grad=False)
        self.calls: list[dict] = []

    def mapping(self, z, c):
        return (z + 0.5 * torch.sin(2 * z))[:, None, :].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, **kwargs):
        self.calls.append(kwargs)
        return torch.tanh(2 * ws[:, 0] @ self.weight.T).view(-1, 1, 4, 4)

    def forward(self, z, c, **kwargs):
        return self.synthesis(self.mapping(z, c), **kwargs)

    @staticmethod
    def numpy_mapping(z):
        return z + 0.5 * np.sin(2 * z)

    def numpy_synthesis(self, w):
        return np.tanh(2 * w @ self.weight_np.T)


def numpy_slerp(a, b, t):
    """The textbook slerp of the unit vectors of a and b: (sin((1-t)W) a + sin(tW) b) / sin W."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    omega = np.arccos(np.clip((a * b).sum(-1, keepdims=True), -1, 1))
    t = np.asarray(t)[..., None]
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def monte_carlo_ppl(G, space, sampling, num=200_000, epsilon=1e-4, seed=1):
    """PPL of ``CurvedToyGenerator`` with the mean squared pixel difference, from independent
    float64 numpy draws: lerp of the mapped ws, or numpy slerp of the zs."""
    rng = np.random.default_rng(seed)
    z0, z1 = rng.standard_normal((2, num, G.z_dim))
    t = rng.random(num) if sampling == "full" else np.zeros(num)
    if space == "w":
        w0, w1 = G.numpy_mapping(z0), G.numpy_mapping(z1)
        ends = [w0 + s[:, None] * (w1 - w0) for s in (t, t + epsilon)]
    else:
        ends = [G.numpy_mapping(numpy_slerp(z0, z1, s)) for s in (t, t + epsilon)]
    a, b = (G.numpy_synthesis(w) for w in ends)
    return filtered_mean(((b - a) ** 2).mean(1) / epsilon**2)


# Measured with 20 seeds of 4000 paths: the estimate's spread is 1.3-1.5% (relative) in
# every case, so 6% is four standard deviations. The references differ by far more than
# that where a bug would move them: W "full" is 2.0x W "end" (2.23 vs 1.12: the tanh is
# steeper between two latents than at one), and Z "full" with a plain lerp instead of slerp
# gives 2.99 against 1.54. (On the sphere, Z "end" and "full" agree: 1.535 vs 1.538.)
def test_slerp_of_parallel_and_antiparallel_vectors_and_batched_inputs():
    # Normalized equal vectors have cos a hair above 1 (about a fifth of these float32 draws),
    # opposite ones a hair below -1: acos must see the clamped value, not NaN.
    a = torch.randn(1000, 8, generator=torch.Generator().manual_seed(0))
    unit = a / a.norm(dim=-1, keepdim=True)
    t = torch.rand(1000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(slerp(a, 2 * a, t), unit, atol=1e-3, rtol=0)
    for end, sign in ((0.0, 1), (1.0, -1)):
        got = slerp(a, -a, torch.full((1000,), end))
        torch.testing.assert_close(got, sign * unit, atol=1e-3, rtol=0)
    # Any leading dimensions: interpolation runs along the last one.
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 3, 5, 7))
    tt = rng.uniform(0, 1, (3, 5))
    got = slerp(torch.tensor(x), torch.tensor(y), torch.tensor(tt)).numpy()
    np.testing.assert_allclose(got, numpy_slerp(x, y, tt), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("space", ["w", "z"])
@pytest.mark.parametrize("sampling", ["end", "full"])
def test_ppl_of_a_curved_generator_matches_monte_carlo(space, sampling):
    G = CurvedToyGenerator()
    label, value = perceptual_path_length(
        G, num_samples=4000, batch_size=1000, sampling=sampling, space=space,
        distance=_mean_squared_difference, device="cpu",
    )
    assert label == "ppl_custom"
    assert value == pytest.approx(monte_carlo_ppl(G, space, sampling), rel=0.06)
    assert G.calls[0] == {"noise_mode": "const"}  # pairs see the same noise


def test_ppl_w_full_sampling_differs_from_end():
    # The premise of the test above: t matters for this generator (it did not for a linear one).
    G = CurvedToyGenerator()
    end, full = (monte_carlo_ppl(G, "w", s, num=50_000) for s in ("end", "full"))
    assert full > 1.5 * end


def test_slerp_matches_numpy_on_random_high_dimensional_vectors():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 64, 32)) * rng.uniform(0.5, 3, (2, 64, 1))
    t = rng.uniform(-0.2, 1.2, 64)
    got = slerp(torch.tensor(a), torch.tensor(b), torch.tensor(t)).numpy()
    np.testing.assert_allclose(got, numpy_slerp(a, b, t), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, rtol=1e-12)


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
    # The same number as ppl_digits from perceptual_path_length with the extractor's distance.
    _, direct = perceptual_path_length(G, num_samples=40, batch_size=20, device="cpu",
                                       distance=model.perceptual_distance)
    assert results["ppl_digits"] == pytest.approx(direct, rel=1e-6)


def _unit_feature_distance(fa, fb):
    """|fa/|fa| - fb/|fb||^2 per pixel, written as 2 - 2 cos (1 where one side is all zero,
    0 where both are), averaged over pixels: float64 numpy on [N, C, H, W]."""
    na, nb = np.linalg.norm(fa, axis=1), np.linalg.norm(fb, axis=1)
    cos = (fa * fb).sum(1) / np.where(na * nb > 0, na * nb, 1)
    d = np.where((na > 0) & (nb > 0), 2 - 2 * cos, ((na > 0) != (nb > 0)).astype(float))
    return d.mean(axis=(1, 2))


def test_digits_perceptual_distance_follows_its_formula():
    model = small_digits_extractor()
    x = torch.from_numpy(digits(3)).float() / 127.5 - 1
    y = torch.from_numpy(digits(3, start=10)).float() / 127.5 - 1
    y[0] = x[0] + 0.3 * torch.randn(1, 32, 32)  # one near pair, one equal pair
    y[2] = x[2]
    with torch.no_grad():
        got = model.perceptual_distance(x, y).double().numpy()
        maps = [(fa.double().numpy(), fb.double().numpy())
                for fa, fb in zip(model.feature_maps(x), model.feature_maps(y), strict=True)]
    expected = sum(_unit_feature_distance(fa, fb) for fa, fb in maps)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert got[2] == 0 and got[0] < got[1]


def test_ppl_downsamples_images_above_256_pixels():
    # StyleGAN's PPL box-filters images larger than 256 px down to 256 before the distance.
    seen = []

    def distance(a, b):
        seen.append((a.clone(), b.clone()))
        return (a - b).pow(2).flatten(1).mean(1)

    class RecordingGenerator(ToyGenerator):
        def synthesis(self, ws, **kwargs):
            self.images = super().synthesis(ws, **kwargs)
            return self.images

    for resolution in (256, 512, 384):
        G = RecordingGenerator(z_dim=2, resolution=resolution)
        seen.clear()
        perceptual_path_length(G, num_samples=2, batch_size=2, distance=distance, device="cpu")
        (a, b), = seen
        assert a.shape == b.shape == (2, 1, 256, 256)
        full = G.images.double().numpy()  # both ends of both paths, at full size
        if resolution == 512:  # 2x2 boxes
            expected = full.reshape(4, 1, 256, 2, 256, 2).mean(axis=(3, 5))
        elif resolution == 384:  # 1.5x: torch's "area" (adaptive average) windows
            lo = np.floor(np.arange(256) * 1.5).astype(int)
            hi = np.ceil((np.arange(256) + 1) * 1.5).astype(int)
            rows = np.stack([full[..., lo[i]:hi[i], :].mean(-2) for i in range(256)], -2)
            expected = np.stack([rows[..., lo[j]:hi[j]].mean(-1) for j in range(256)], -1)
        else:
            expected = full
        got = torch.cat([a, b]).double().numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


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


def _torchvision_vgg16_state(seed=0):
    """A synthetic VGG16 state dict under torchvision's names and shapes (VGG_CONVS and the
    classifier), small on disk: each weight is a random column broadcast over its inputs (an
    expanded view, which torch.save stores with its small storage), each bias random."""
    gen = torch.Generator().manual_seed(seed)
    shapes = {}
    for i, (cin, cout) in VGG_CONVS.items():
        shapes[f"features.{i}"] = (cout, cin, 3, 3)
    for i, (cin, cout) in {0: (25088, 4096), 3: (4096, 4096), 6: (4096, 1000)}.items():
        shapes[f"classifier.{i}"] = (cout, cin)
    state = {}
    for name, shape in shapes.items():
        column = torch.randn((shape[0],) + (1,) * (len(shape) - 1), generator=gen)
        state[f"{name}.weight"] = column.expand(shape)
        state[f"{name}.bias"] = torch.randn(shape[0], generator=gen)
    return state


def test_load_vgg16_reads_a_torchvision_weights_file(tmp_path, monkeypatch):
    from gankern.metrics import load_vgg16
    from gankern.metrics.cache import file_sha256

    state = _torchvision_vgg16_state()
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(state, path)
    assert path.stat().st_size < 2**20  # the expanded views stay small on disk
    model = load_vgg16(path, device="cpu")
    loaded = model.state_dict()
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert torch.equal(loaded[name], tensor), name
    assert model.identity == f"vgg16-{file_sha256(path)}"
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    # From the cache under its own name, wrapped as {"state_dict": ...}.
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANKERN_CACHE", str(cache))
    (cache / "metrics").mkdir(parents=True)
    torch.save({"state_dict": state}, cache / "metrics" / "vgg16-397923af.pth")
    cached = load_vgg16(device="cpu")
    assert torch.equal(cached.classifier[3].bias, state["classifier.3.bias"])
    assert torch.equal(cached.features[28].weight, state["features.28.weight"])


def test_ppl_with_the_lpips_distance_reads_its_weight_files(tmp_path):
    from gankern.metrics import load_lpips

    source = LPIPS()
    with torch.no_grad():
        for name, t in source.state_dict().items():
            if name.startswith("lin"):
                t.uniform_(0, 1)
    torch.save(_torchvision_vgg16_state(), tmp_path / "vgg.pth")
    torch.save({k: v for k, v in source.state_dict().items() if k.startswith("lin")},
               tmp_path / "lin.pth")
    G = ToyGenerator(z_dim=4, resolution=16, channels=3)
    common = dict(num_samples=4, batch_size=4, device="cpu")
    label, value = perceptual_path_length(G, distance="lpips", vgg_weights=tmp_path / "vgg.pth",
                                          lpips_weights=tmp_path / "lin.pth", **common)
    direct = load_lpips(tmp_path / "vgg.pth", tmp_path / "lin.pth", device="cpu")
    assert label == "ppl"
    assert value == pytest.approx(perceptual_path_length(G, distance=direct, **common)[1])


def test_ppl_with_the_digits_distance_by_name(monkeypatch):
    import gankern.metrics.digits_extractor as digits_extractor

    model = small_digits_extractor()
    monkeypatch.setattr(digits_extractor, "load_digits_extractor", lambda device: model)
    G = ToyGenerator(z_dim=4, resolution=32)
    common = dict(num_samples=4, batch_size=4, device="cpu")
    label, value = perceptual_path_length(G, distance="digits", **common)
    assert label == "ppl_digits"
    assert value == perceptual_path_length(G, distance=model.perceptual_distance, **common)[1]
    with pytest.raises(ValueError, match="^distance must be 'lpips', 'digits' or a callable"):
        perceptual_path_length(G, distance=3, **common)


class ConditionalToyGenerator(ToyGenerator):
    """ToyGenerator whose ws depend on a one-hot label; records the labels it is given."""

    def __init__(self, c_dim=3, **kwargs):
        super().__init__(c_dim=c_dim, **kwargs)
        self.labels = []

    def mapping(self, z, c):
        self.labels.append(c.clone())
        return super().mapping(z + 3 * torch.nn.functional.pad(c, (0, self.z_dim - self.c_dim)), c)


@pytest.mark.parametrize("space", ["w", "z"])
@pytest.mark.parametrize("c_dim", [1, 3])
def test_ppl_draws_one_label_per_path(space, c_dim):
    G = ConditionalToyGenerator(c_dim=c_dim, z_dim=4, resolution=4)
    common = dict(num_samples=60, batch_size=20, space=space, device="cpu",
                  distance=_mean_squared_difference)
    perceptual_path_length(G, **common)
    labels = torch.cat(G.labels)
    assert labels.shape[1] == c_dim and torch.all(labels.sum(1) == 1)
    assert set(labels.unique().tolist()) == ({1.0} if c_dim == 1 else {0.0, 1.0})
    assert torch.all(labels.sum(0) > 5)  # every class drawn (uniformly: ~1/3 each)
    # The labels come from the seed, not from the global RNG.
    again = ConditionalToyGenerator(c_dim=c_dim, z_dim=4, resolution=4)
    torch.rand(3)
    perceptual_path_length(again, **common)
    assert torch.equal(torch.cat(again.labels), labels)
    # Both ends of a path have the same label: mapping(z0, c) and mapping(z1, c) in W; the
    # two halves of one batch in Z.
    for a, b in zip(G.labels[0::2], G.labels[1::2], strict=True) if space == "w" else (
            (c[: len(c) // 2], c[len(c) // 2 :]) for c in G.labels):
        assert torch.equal(a, b)


def test_ppl_of_a_plain_generator_without_parameters_or_keywords():
    # A bare callable network in Z space: no mapping/synthesis, no parameters, no kwargs.
    class Plain(torch.nn.Module):  # no c_dim attribute: unconditional
        z_dim = 3

        def forward(self, z, c):
            assert c.shape == (len(z), 0)
            return torch.tanh(z[:, :1, None, None] * z[:, None, None, :])

    calls = []

    def distance(a, b):
        calls.append(len(a))
        return _mean_squared_difference(a, b)

    label, value = perceptual_path_length(Plain(), num_samples=5, batch_size=2, space="z",
                                          distance=distance)
    assert label == "ppl_custom" and np.isfinite(value)
    assert calls == [2, 2, 1]  # 5 paths in batches of 2


def test_ppl_default_batch_size_is_32():
    G = ToyGenerator(z_dim=4, resolution=4)
    common = dict(num_samples=40, distance=_mean_squared_difference, device="cpu")
    assert perceptual_path_length(G, **common) == perceptual_path_length(G, batch_size=32,
                                                                         **common)
