"""The FID Inception network: layout, parameter shapes, topology and weight loading.

The expected layout is written out here from the published architecture (Szegedy et al.
2015, "Rethinking the Inception Architecture", as frozen in the 2015-12-05 TensorFlow graph
and named by the PyTorch FID port), independently of gankern/metrics/inception.py, and a
functional forward built from that table checks the module's wiring.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from testutils import assert_close, widest_fan_in

from gankern.metrics.inception import FIDInceptionV3, load_inception
from gankern.metrics.weights import WeightsNotFoundError


# (name, in, out, kernel, stride, padding) of every convolution, block by block.
def _stem():
    return [
        ("Conv2d_1a_3x3", 3, 32, (3, 3), 2, (0, 0)),
        ("Conv2d_2a_3x3", 32, 32, (3, 3), 1, (0, 0)),
        ("Conv2d_2b_3x3", 32, 64, (3, 3), 1, (1, 1)),
        ("Conv2d_3b_1x1", 64, 80, (1, 1), 1, (0, 0)),
        ("Conv2d_4a_3x3", 80, 192, (3, 3), 1, (0, 0)),
    ]


def _block_a(p, cin, pool):
    return [
        (f"{p}.branch1x1", cin, 64, (1, 1), 1, (0, 0)),
        (f"{p}.branch5x5_1", cin, 48, (1, 1), 1, (0, 0)),
        (f"{p}.branch5x5_2", 48, 64, (5, 5), 1, (2, 2)),
        (f"{p}.branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
        (f"{p}.branch3x3dbl_3", 96, 96, (3, 3), 1, (1, 1)),
        (f"{p}.branch_pool", cin, pool, (1, 1), 1, (0, 0)),
    ]


def _block_b(p, cin):
    return [
        (f"{p}.branch3x3", cin, 384, (3, 3), 2, (0, 0)),
        (f"{p}.branch3x3dbl_1", cin, 64, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3dbl_2", 64, 96, (3, 3), 1, (1, 1)),
        (f"{p}.branch3x3dbl_3", 96, 96, (3, 3), 2, (0, 0)),
    ]


def _block_c(p, c7):
    h, v = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # horizontal and vertical 7-tap convolutions
    return [
        (f"{p}.branch1x1", 768, 192, (1, 1), 1, (0, 0)),
        (f"{p}.branch7x7_1", 768, c7, (1, 1), 1, (0, 0)),
        (f"{p}.branch7x7_2", c7, c7, h[0], 1, h[1]),
        (f"{p}.branch7x7_3", c7, 192, v[0], 1, v[1]),
        (f"{p}.branch7x7dbl_1", 768, c7, (1, 1), 1, (0, 0)),
        (f"{p}.branch7x7dbl_2", c7, c7, v[0], 1, v[1]),
        (f"{p}.branch7x7dbl_3", c7, c7, h[0], 1, h[1]),
        (f"{p}.branch7x7dbl_4", c7, c7, v[0], 1, v[1]),
        (f"{p}.branch7x7dbl_5", c7, 192, h[0], 1, h[1]),
        (f"{p}.branch_pool", 768, 192, (1, 1), 1, (0, 0)),
    ]


def _block_d(p):
    return [
        (f"{p}.branch3x3_1", 768, 192, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3_2", 192, 320, (3, 3), 2, (0, 0)),
        (f"{p}.branch7x7x3_1", 768, 192, (1, 1), 1, (0, 0)),
        (f"{p}.branch7x7x3_2", 192, 192, (1, 7), 1, (0, 3)),
        (f"{p}.branch7x7x3_3", 192, 192, (7, 1), 1, (3, 0)),
        (f"{p}.branch7x7x3_4", 192, 192, (3, 3), 2, (0, 0)),
    ]


def _block_e(p, cin):
    return [
        (f"{p}.branch1x1", cin, 320, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3_1", cin, 384, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3_2a", 384, 384, (1, 3), 1, (0, 1)),
        (f"{p}.branch3x3_2b", 384, 384, (3, 1), 1, (1, 0)),
        (f"{p}.branch3x3dbl_1", cin, 448, (1, 1), 1, (0, 0)),
        (f"{p}.branch3x3dbl_2", 448, 384, (3, 3), 1, (1, 1)),
        (f"{p}.branch3x3dbl_3a", 384, 384, (1, 3), 1, (0, 1)),
        (f"{p}.branch3x3dbl_3b", 384, 384, (3, 1), 1, (1, 0)),
        (f"{p}.branch_pool", cin, 192, (1, 1), 1, (0, 0)),
    ]


CONVS = (
    _stem()
    + _block_a("Mixed_5b", 192, 32) + _block_a("Mixed_5c", 256, 64) + _block_a("Mixed_5d", 288, 64)
    + _block_b("Mixed_6a", 288)
    + _block_c("Mixed_6b", 128) + _block_c("Mixed_6c", 160) + _block_c("Mixed_6d", 160)
    + _block_c("Mixed_6e", 192)
    + _block_d("Mixed_7a")
    + _block_e("Mixed_7b", 1280) + _block_e("Mixed_7c", 2048)
)
SPEC = {name: (cin, cout, k, s, p) for name, cin, cout, k, s, p in CONVS}


def _expected_shapes():
    shapes = {}
    for name, cin, cout, k, _, _ in CONVS:
        shapes[f"{name}.conv.weight"] = (cout, cin, *k)
        for buf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{buf}"] = (cout,)
        shapes[f"{name}.bn.num_batches_tracked"] = ()
    shapes["fc.weight"] = (1008, 2048)
    shapes["fc.bias"] = (1008,)
    return shapes


def test_every_tensor_name_and_shape():
    model = FIDInceptionV3()
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = _expected_shapes()
    assert len(CONVS) == 94
    assert len(got) == len(expected) == 94 * 6 + 2
    assert got == expected
    # torchvision publishes 27,161,264 parameters for InceptionV3 with its auxiliary head
    # (3,326,696 parameters) and 1000 classes; the FID network has no auxiliary head and
    # 1008 classes (8 more rows of 2048 weights + 1 bias each).
    expected_params = 27_161_264 - 3_326_696 + 8 * 2049
    assert sum(p.numel() for p in model.parameters()) == expected_params


def _randomize(model):
    # He-scaled weights and non-trivial batch-norm statistics keep activations O(1) through
    # the 94 layers, so that a wiring mistake anywhere changes the output.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("conv.weight"):
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * math.sqrt(2 / fan_in))
            elif name.endswith("bn.running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            elif name.endswith(("bn.running_mean", "bn.bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif name.endswith("bn.weight"):
                t.copy_(torch.rand(t.shape, generator=gen) * 0.5 + 0.75)
            elif name.startswith("fc."):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.02)


def _reference_pool3(sd, x):
    def conv(name, t):
        _, _, _, s, p = SPEC[name]
        t = F.conv2d(t, sd[f"{name}.conv.weight"], stride=s, padding=p)
        bn = {k: sd[f"{name}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        scale = bn["weight"] / torch.sqrt(bn["running_var"] + 1e-3)
        t = t * scale[:, None, None] + (bn["bias"] - bn["running_mean"] * scale)[:, None, None]
        return t.clamp_min(0)

    def chain(names, t):
        for n in names:
            t = conv(n, t)
        return t

    def avg_pool_tf(t):
        # TensorFlow's SAME average pool: the window mean over real (unpadded) pixels.
        total = F.avg_pool2d(t, 3, 1, 1, count_include_pad=True) * 9
        count = F.avg_pool2d(torch.ones_like(t[:, :1]), 3, 1, 1, count_include_pad=True) * 9
        return total / count

    x = chain(["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3"], x)
    x = F.max_pool2d(x, 3, 2)
    x = F.max_pool2d(chain(["Conv2d_3b_1x1", "Conv2d_4a_3x3"], x), 3, 2)
    for p in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
        x = torch.cat([
            conv(f"{p}.branch1x1", x),
            chain([f"{p}.branch5x5_1", f"{p}.branch5x5_2"], x),
            chain([f"{p}.branch3x3dbl_{i}" for i in (1, 2, 3)], x),
            conv(f"{p}.branch_pool", avg_pool_tf(x)),
        ], 1)
    p = "Mixed_6a"
    x = torch.cat([
        conv(f"{p}.branch3x3", x),
        chain([f"{p}.branch3x3dbl_{i}" for i in (1, 2, 3)], x),
        F.max_pool2d(x, 3, 2),
    ], 1)
    for p in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
        x = torch.cat([
            conv(f"{p}.branch1x1", x),
            chain([f"{p}.branch7x7_{i}" for i in (1, 2, 3)], x),
            chain([f"{p}.branch7x7dbl_{i}" for i in (1, 2, 3, 4, 5)], x),
            conv(f"{p}.branch_pool", avg_pool_tf(x)),
        ], 1)
    p = "Mixed_7a"
    x = torch.cat([
        chain([f"{p}.branch3x3_1", f"{p}.branch3x3_2"], x),
        chain([f"{p}.branch7x7x3_{i}" for i in (1, 2, 3, 4)], x),
        F.max_pool2d(x, 3, 2),
    ], 1)
    for p, pool in (("Mixed_7b", avg_pool_tf), ("Mixed_7c", lambda t: F.max_pool2d(t, 3, 1, 1))):
        a = conv(f"{p}.branch3x3_1", x)
        d = chain([f"{p}.branch3x3dbl_1", f"{p}.branch3x3dbl_2"], x)
        x = torch.cat([
            conv(f"{p}.branch1x1", x),
            conv(f"{p}.branch3x3_2a", a), conv(f"{p}.branch3x3_2b", a),
            conv(f"{p}.branch3x3dbl_3a", d), conv(f"{p}.branch3x3dbl_3b", d),
            conv(f"{p}.branch_pool", pool(x)),
        ], 1)
    return x.mean(dim=(2, 3))


def test_wiring_matches_functional_reference():
    model = FIDInceptionV3()
    _randomize(model)
    sd = model.state_dict()
    # 139 x 147 leaves a 3 x 3 grid at Mixed_7c, so that its max pool differs from a mean
    # (at the minimum size, 75, the grid is 1 x 1 and the two pools coincide).
    x = torch.rand(1, 3, 139, 147) * 2 - 1
    with torch.no_grad():
        got = model.pool_features(x)
        expected = _reference_pool3(sd, x)
    assert expected.std() > 1e-2  # the comparison is not between two vanishing signals
    # Float32 sums of up to the widest layer's fan-in stand behind each feature.
    assert_close(got, expected, dtype=torch.float32, terms=widest_fan_in(model))


def test_random_weight_forward_at_299():
    model = FIDInceptionV3()
    images = torch.randint(0, 256, (1, 1, 299, 299), dtype=torch.uint8)
    with torch.no_grad():
        out = model(images)
    assert out["features"].shape == (1, 2048) and out["features"].dtype == torch.float32
    assert out["probs"].shape == (1, 1008)
    assert torch.isfinite(out["features"]).all()
    assert float(out["probs"].sum()) == pytest.approx(1.0, abs=1e-5)


def test_preprocess_follows_pytorch_fid_convention():
    model = FIDInceptionV3()
    images = torch.randint(0, 256, (2, 1, 10, 12), dtype=torch.uint8)
    x = model.preprocess(images)
    # Reference: gray repeated to RGB, [0, 1] float, bilinear (half-pixel centres) to 299.
    ref = images.float().div(255).repeat(1, 3, 1, 1)
    ref = F.interpolate(ref, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    assert x.shape == (2, 3, 299, 299)
    assert_close(x, ref)
    same = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    assert_close(model.preprocess(same), same.float() / 127.5 - 1)  # no resampling at 299


def test_weights_load_from_argument_env_and_cache(tmp_path, monkeypatch):
    model = FIDInceptionV3()
    _randomize(model)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    # The standard file has no num_batches_tracked counters: loading must not need them.
    torch.save({k: v for k, v in model.state_dict().items() if "num_batches" not in k}, path)
    monkeypatch.delenv("GANKERN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "cache"))
    with pytest.warns(RuntimeWarning, match="not the standard weights"):
        loaded = load_inception(path, device="cpu")
    probe = "Mixed_7c.branch_pool.conv.weight"
    assert torch.equal(loaded.state_dict()[probe], model.state_dict()[probe])
    assert loaded.identity.startswith("inception-") and not any(
        p.requires_grad for p in loaded.parameters()
    )
    monkeypatch.setenv("GANKERN_INCEPTION_WEIGHTS", str(path))
    with pytest.warns(RuntimeWarning):
        assert load_inception(device="cpu").identity == loaded.identity
    monkeypatch.delenv("GANKERN_INCEPTION_WEIGHTS")
    (tmp_path / "cache" / "metrics").mkdir(parents=True)
    path.rename(tmp_path / "cache" / "metrics" / path.name)
    with pytest.warns(RuntimeWarning):
        assert load_inception(device="cpu").identity == loaded.identity


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("GANKERN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        load_inception()
    text = str(info.value)
    assert "pt_inception-2015-12-05-6726825d.pth" in text
    assert "GANKERN_INCEPTION_WEIGHTS" in text
    assert str(tmp_path / "metrics") in text
    assert "never downloads" in text
    with pytest.raises(WeightsNotFoundError, match="nowhere.pth"):
        load_inception(tmp_path / "nowhere.pth")


def test_mismatched_weights_are_rejected(tmp_path):
    state = FIDInceptionV3().state_dict()
    state["fc.weight"] = torch.zeros(1000, 2048)
    del state["Mixed_6e.branch_pool.bn.running_var"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    expected = r"missing 1: Mixed_6e.branch_pool.bn.running_var.*shape 1: fc.weight"
    with pytest.raises(ValueError, match=expected):
        load_inception(path)
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable torch weights file"):
        load_inception(path)
