"""compute_metrics end to end: sources (arrays, folders, zips, generators), labels, cache."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from metrics_helpers import ToyGenerator, digits, small_digits_extractor, uniform_noise
from PIL import Image

from gankern.metrics import (
    compute_metrics,
    frechet_distance,
    get_extractor,
    inception_score,
    kernel_inception_distance,
    metric_label,
    parse_metrics,
    precision_recall,
    quantize_images,
)
from gankern.metrics.weights import WeightsNotFoundError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never read or write the user's cache (~/.cache/gankern) from a test.
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "gankern-cache"))


def test_quantize_images_follows_stylegan_convention():
    x = torch.cat([torch.linspace(-1.2, 1.2, 1001), torch.tensor([-1.0, 0.0, 1.0, 0.5 / 127.5])])
    x = x.view(1, 1, 1, -1)
    expected = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # StyleGAN2-ADA's expression
    assert torch.equal(quantize_images(x), expected)
    assert quantize_images(x)[0, 0, 0, -4:].tolist() == [0, 128, 255, 128]
    assert torch.equal(quantize_images(x * 2 + 3, drange=(1, 5)), expected)
    with pytest.raises(ValueError, match="NaN"):
        quantize_images(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="uint8 or floating"):
        quantize_images(torch.zeros(2, dtype=torch.int32))


def test_metric_labels():
    assert [metric_label(m, "inception") for m in ("fid", "kid", "is")] == ["fid", "kid", "is"]
    assert metric_label("precision", "vgg16") == "precision"
    assert metric_label("fid", "digits") == "fid_digits"
    assert metric_label("precision", "inception") == "precision_inception"
    assert parse_metrics("fid, kid,fid") == ["fid", "kid"]
    with pytest.raises(ValueError, match="'bogus'"):
        parse_metrics("fid,bogus")


def _features(model, images):
    with torch.no_grad():
        out = model(torch.from_numpy(images))
    return out["features"].double().numpy(), out["probs"].double().numpy()


def test_compute_metrics_matches_the_formulas_on_features():
    model = small_digits_extractor()
    real, fake = digits(300), digits(250, start=300)
    results = compute_metrics(
        "fid,kid,is,pr", real=real, fake=fake, extractor=model, device="cpu", cache=False,
        kid_subsets=5, kid_subset_size=100, is_splits=5, batch_size=64,
    )
    fr, _ = _features(model, real)
    ff, pf = _features(model, fake)
    expected = {
        "fid_digits": frechet_distance(fr.mean(0), np.cov(fr, rowvar=False),
                                       ff.mean(0), np.cov(ff, rowvar=False)),
        "is_digits": inception_score(pf, splits=5)[0],
        "kid_digits": kernel_inception_distance(fr, ff, num_subsets=5, subset_size=100)[0],
    }
    expected["precision_digits"], expected["recall_digits"] = precision_recall(fr, ff)
    assert set(results) == set(expected) | {"kid_digits_std", "is_digits_std"}
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-5, abs=1e-9), key
    assert results.info["num_real"] == 300 and results.info["num_fake"] == 250


def _write_pngs(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0]).save(folder / f"img{i:04d}.png")


def test_folder_zip_and_array_inputs_and_the_stats_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "cache"))
    model = small_digits_extractor()
    images = digits(80)
    _write_pngs(tmp_path / "real", images)
    with zipfile.ZipFile(tmp_path / "real.zip", "w") as z:
        for path in sorted((tmp_path / "real").iterdir()):
            z.write(path, path.name)
    fake = digits(80, start=80)
    common = dict(fake=fake, extractor=model, device="cpu")
    from_array = compute_metrics("fid", real=images, cache=False, **common)
    first = compute_metrics("fid", real=str(tmp_path / "real"), **common)
    assert first.info["real_stats_cached_digits"] is False
    again = compute_metrics("fid", real=tmp_path / "real", **common)
    assert again.info["real_stats_cached_digits"] is True
    from_zip = compute_metrics("fid", real=str(tmp_path / "real.zip"), **common)
    for r in (first, again, from_zip):
        assert r["fid_digits"] == pytest.approx(from_array["fid_digits"], rel=1e-9)
    # Identical real and fake sets: FID 0 to float tolerance (80 images in 128 dimensions
    # give singular covariances, whose matrix square root is accurate to ~1e-8 relative).
    same = compute_metrics("fid", real=str(tmp_path / "real"), fake=images, extractor=model,
                           device="cpu")
    assert abs(same["fid_digits"]) < 1e-4 < first["fid_digits"]
    # Changing a file changes the dataset's identity: the cache is not reused.
    Image.fromarray(uniform_noise(1)[0, 0]).save(tmp_path / "real" / "img0003.png")
    changed = compute_metrics("fid", real=str(tmp_path / "real"), **common)
    assert changed.info["real_stats_cached_digits"] is False
    assert changed["fid_digits"] != pytest.approx(first["fid_digits"], rel=1e-6)



def test_subsets_of_a_folder_and_of_an_array_agree(tmp_path):
    model = small_digits_extractor()
    images = digits(60)
    _write_pngs(tmp_path / "real", images)
    common = dict(fake=digits(40, start=60), extractor=model, device="cpu", cache=False)
    for seed in (0, 5):
        from_folder = compute_metrics("fid", real=str(tmp_path / "real"), num_real=45,
                                      seed=seed, **common)
        from_array = compute_metrics("fid", real=images, num_real=45, seed=seed, **common)
        assert from_folder.info["num_real"] == 45
        assert from_folder["fid_digits"] == pytest.approx(from_array["fid_digits"], rel=1e-9)
    whole = compute_metrics("fid", real=images, **common)["fid_digits"]
    assert from_array["fid_digits"] != pytest.approx(whole, rel=1e-6)  # a subset was taken

def test_generator_and_sampler_sources():
    model = small_digits_extractor()
    G = ToyGenerator(z_dim=16, c_dim=3, resolution=32)
    common = dict(real=digits(200), extractor=model, device="cpu", num_fake=48, batch_size=20)
    G.train()
    a = compute_metrics("fid", fake=G, **common)
    assert G.training  # sampled in eval mode, then restored
    b = compute_metrics("fid", fake=G, **common)
    c = compute_metrics("fid", fake=G, seed=1, **common)
    assert a["fid_digits"] == b["fid_digits"] != c["fid_digits"]
    assert a.info["num_fake"] == 48

    drawn = []

    def sampler(n):  # floats in [-1, 1], as a generator would return
        drawn.append(n)
        return torch.from_numpy(digits(n, start=sum(drawn) - n)).float() / 127.5 - 1

    s = compute_metrics("fid", fake=sampler, **common)
    assert drawn == [20, 20, 8]
    direct = compute_metrics("fid", fake=digits(48), **common)
    assert s["fid_digits"] == pytest.approx(direct["fid_digits"], rel=1e-9)


def test_errors_name_the_argument():
    model = small_digits_extractor()
    real = digits(40)
    with pytest.raises(ValueError, match="real must be given for fid"):
        compute_metrics("fid", fake=real, extractor=model)
    with pytest.raises(ValueError, match="num_fake=41 but the images hold only 40"):
        compute_metrics("fid", real=real, fake=real, num_fake=41, extractor=model)
    with pytest.raises(ValueError, match="ppl needs fake to be a generator"):
        compute_metrics("ppl", fake=real, extractor=model)
    with pytest.raises(ValueError, match="subset_size=1000"):
        compute_metrics("kid", real=real, fake=real, extractor=model, cache=False)
    with pytest.raises(TypeError, match="fake: images must be uint8"):
        compute_metrics("fid", real=real, fake=real.astype(np.float32), extractor=model)
    with pytest.raises(TypeError, match="fake must be a dataset path"):
        compute_metrics("fid", real=real, fake=42, extractor=model)
    with pytest.raises(ValueError, match="extractor must be one of"):
        compute_metrics("fid", real=real, fake=real, extractor="resnet")
    with pytest.raises(TypeError, match="z_dim"):
        compute_metrics("is", fake=torch.nn.Linear(2, 2), extractor=model)


def test_standard_extractors_need_their_weight_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    for var in ("GANKERN_INCEPTION_WEIGHTS", "GANKERN_VGG16_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(WeightsNotFoundError, match="GANKERN_INCEPTION_WEIGHTS"):
        compute_metrics("fid", real=digits(10), fake=digits(10))
    with pytest.raises(WeightsNotFoundError, match="GANKERN_VGG16_WEIGHTS"):
        get_extractor("vgg16")


@pytest.mark.cuda
def test_cuda_results_match_the_cpu():
    real, fake = digits(300), digits(300, start=300)
    common = dict(real=real, fake=fake, cache=False, kid_subsets=5, kid_subset_size=100,
                  is_splits=3)
    cpu = compute_metrics("fid,kid,is,pr", extractor=small_digits_extractor(), device="cpu",
                          **common)
    tf32_default = torch.backends.cudnn.allow_tf32
    gpu = compute_metrics("fid,kid,is,pr", extractor=small_digits_extractor(), device="cuda",
                          **common)
    assert torch.backends.cudnn.allow_tf32 == tf32_default  # restored after extraction
    for key in ("fid_digits", "kid_digits", "is_digits"):
        assert gpu[key] == pytest.approx(cpu[key], rel=1e-3, abs=1e-5), key
    for key in ("precision_digits", "recall_digits"):  # float32 distances on CUDA
        assert gpu[key] == pytest.approx(cpu[key], abs=0.02), key


@pytest.mark.cuda
def test_inception_features_on_cuda_match_the_cpu():
    from gankern.metrics import FIDInceptionV3

    model = FIDInceptionV3()
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        cpu = model(images)["features"]
        from gankern.metrics.features import full_fp32_precision

        with full_fp32_precision(False):
            gpu = model.cuda()(images.cuda())["features"].cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-3, atol=1e-4)
