"""The built-in digits extractor: reproducible training, caching, and a meaningful FID."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from metrics_helpers import digits, small_digits_extractor, uniform_noise
from safetensors import safe_open

from gankern.data import load_digits
from gankern.metrics import compute_metrics
from gankern.metrics.digits_extractor import (
    DigitsFeatureNet,
    DigitsRecipe,
    build_digits_extractor,
    digits_extractor_path,
    load_digits_extractor,
    train_digits_extractor,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never read or write the user's cache (~/.cache/gankern) from a test.
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "gankern-cache"))


def test_training_is_reproducible():
    recipe = DigitsRecipe(steps=8)
    first, info1 = train_digits_extractor(recipe)
    second, info2 = train_digits_extractor(recipe)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    assert info1["validation_accuracy"] == info2["validation_accuracy"]
    other, _ = train_digits_extractor(DigitsRecipe(steps=8, seed=1))
    assert not torch.equal(other.fc2.weight, first.fc2.weight)


def test_trained_extractor_classifies_digits():
    model = small_digits_extractor()
    images, labels = load_digits(32)
    with torch.no_grad():
        probs = model(torch.from_numpy(images))["probs"]
    accuracy = float((probs.argmax(1).numpy() == labels).mean())
    assert accuracy > 0.8  # chance is 0.1; the full recipe reaches ~0.99 held out


def test_fid_digits_separates_real_digits_from_noise():
    model = small_digits_extractor()
    all_digits = digits()
    half_a, half_b = all_digits[0::2], all_digits[1::2]
    common = dict(extractor=model, device="cpu", cache=False)
    real_vs_real = compute_metrics("fid", real=half_a, fake=half_b, **common)["fid_digits"]
    real_vs_noise = compute_metrics("fid", real=half_a, fake=uniform_noise(800), **common)
    real_vs_noise = real_vs_noise["fid_digits"]
    assert real_vs_real < 0.05 * real_vs_noise, (real_vs_real, real_vs_noise)
    # RGB input is averaged to gray: the same digits in three channels give the same FID.
    rgb = np.repeat(half_b, 3, axis=1)
    rgb_fid = compute_metrics("fid", real=half_a, fake=rgb, **common)["fid_digits"]
    assert rgb_fid == pytest.approx(real_vs_real, rel=1e-5)


def _class_separation(model) -> dict[str, float]:
    """How far apart the extractor puts digits 0-4 and 5-9, relative to nuisances.

    ``between_within``: FID(0-4, 5-9) / FID between two halves of every class;
    ``between_shift``: FID(0-4, 5-9) / FID between those halves with one shifted 2 px right;
    ``inception_score``: IS of the real digits (10 for a confident, balanced classifier).
    """
    images, labels = load_digits(32)
    order = np.argsort(labels, kind="stable")
    half_a, half_b = images[order[0::2]], images[order[1::2]]
    common = dict(extractor=model, device="cpu", cache=False)

    def fid(real, fake):
        return compute_metrics("fid", real=real, fake=fake, **common)["fid_digits"]

    between = fid(images[labels < 5], images[labels >= 5])
    return {
        "between_within": between / fid(half_a, half_b),
        "between_shift": between / fid(half_a, np.roll(half_b, 2, axis=3)),
        "inception_score": compute_metrics("is", fake=images, **common)["is_digits"],
    }


# Measured (one CPU thread): the test recipe (80 steps) with seeds 0, 1, 2 gives
# between_within 258 / 209 / 241, between_shift 17.6 / 9.8 / 11.4, IS 6.5 / 6.8 / 6.8; the
# full recipe (600 steps) 195, 14.6, 9.9. Untrained networks (torch seeds 0-3) give
# between_within 51-78, between_shift 1.06-1.52, IS 1.000. Random convolutional features
# already tell classes apart somewhat, which is why noise-vs-digits FID could not tell a
# trained extractor from an untrained one; a two-pixel shift, which the recipe trains the
# network to ignore, moves an untrained network's features as much as a change of class.
SEPARATION_THRESHOLDS = {"between_within": 120.0, "between_shift": 5.0, "inception_score": 4.0}


def test_only_a_trained_extractor_separates_digit_classes():
    trained = _class_separation(small_digits_extractor())
    torch.manual_seed(0)
    untrained = _class_separation(DigitsFeatureNet().eval().requires_grad_(False))
    for key, threshold in SEPARATION_THRESHOLDS.items():
        assert trained[key] > threshold, (key, trained, untrained)
        assert untrained[key] < threshold, (key, trained, untrained)  # the test can fail


def test_build_caches_and_load_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    recipe = DigitsRecipe(steps=4)
    lines = []
    path = build_digits_extractor(recipe, log=lines.append)
    assert path == digits_extractor_path(recipe) and path.parent == tmp_path / "metrics"
    assert "training the built-in digits feature extractor" in lines[0]
    with safe_open(str(path), "pt") as f:
        info = json.loads(f.metadata()["info"])
    assert info["recipe"]["steps"] == 4
    mtime = path.stat().st_mtime_ns
    lines.clear()
    assert build_digits_extractor(recipe, log=lines.append) == path
    assert lines == [] and path.stat().st_mtime_ns == mtime  # cached: not retrained
    loaded = load_digits_extractor(recipe=recipe, device="cpu", build=False)
    trained, _ = train_digits_extractor(recipe)
    assert torch.equal(loaded.conv1.weight, trained.conv1.weight)
    assert loaded.identity.startswith("digits-") and loaded.identity != "digits-random"
    # Another recipe has another file name (its hash), never the stale weights.
    assert digits_extractor_path(DigitsRecipe(steps=5)) != path


def test_missing_and_bad_extractor_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--build-extractor digits"):
        load_digits_extractor(recipe=DigitsRecipe(steps=3), build=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_digits_extractor(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_digits_extractor(bad)
