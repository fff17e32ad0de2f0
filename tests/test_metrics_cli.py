"""``gankern metrics``: table, JSON, errors, checkpoint detection."""

from __future__ import annotations

import json

import pytest
from metrics_helpers import digits, small_digits_extractor
from PIL import Image
from safetensors.torch import save_file

from gankern.cli import main
from gankern.cli.metrics import is_checkpoint
from gankern.metrics import compute_metrics, load_digits_extractor
from gankern.metrics.digits_extractor import digits_extractor_path


def _write_pngs(folder, images):
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0]).save(folder / f"{i:04d}.png")


@pytest.fixture
def cache_with_extractor(tmp_path, monkeypatch):
    # Put a (briefly trained) digits extractor where the standard one is cached, so the
    # command finds it instead of training the full recipe.
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "cache"))
    path = digits_extractor_path()
    path.parent.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in small_digits_extractor().state_dict().items()},
              str(path))
    return path


def test_metrics_command_prints_a_table_and_writes_json(tmp_path, cache_with_extractor, capsys):
    _write_pngs(tmp_path / "real", digits(120))
    _write_pngs(tmp_path / "fake", digits(100, start=120))
    out = tmp_path / "results.json"
    rc = main(["metrics", "--metrics", "fid,kid,is,pr", "--real", str(tmp_path / "real"),
               "--fake", str(tmp_path / "fake"), "--extractor", "digits", "--device", "cpu",
               "--kid-subsets", "10", "--kid-subset-size", "50", "--is-splits", "5",
               "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    for label in ("fid_digits", "kid_digits", "is_digits", "precision_digits", "recall_digits"):
        assert label in printed
    document = json.loads(out.read_text())
    expected = compute_metrics(
        "fid,kid,is,pr", real=digits(120), fake=digits(100, start=120),
        extractor=load_digits_extractor(device="cpu", build=False), device="cpu",
        kid_subsets=10, kid_subset_size=50, is_splits=5, cache=False)
    assert document["results"].keys() == expected.keys()
    for key, value in expected.items():
        assert document["results"][key] == pytest.approx(value, rel=1e-9), key
    assert document["info"]["num_fake"] == 100 and document["args"]["extractor"] == "digits"
    # --num takes a subset of the generated folder.
    assert main(["metrics", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"),
                 "--extractor", "digits", "--num", "30", "--quiet"]) == 0
    assert "num_fake=30" in capsys.readouterr().out


def test_metrics_command_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    monkeypatch.delenv("GANKERN_INCEPTION_WEIGHTS", raising=False)
    _write_pngs(tmp_path / "imgs", digits(4))
    rc = main(["metrics", "--real", str(tmp_path / "imgs"), "--fake", str(tmp_path / "imgs"),
               "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and "GANKERN_INCEPTION_WEIGHTS" in err and "--weights" in err
    assert main(["metrics", "--real", str(tmp_path / "imgs")]) == 2
    assert "--fake is required" in capsys.readouterr().err
    rc = main(["metrics", "--metrics", "fid,psnr", "--fake", str(tmp_path / "imgs")])
    assert rc == 1 and "'psnr'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["metrics", "--num", "0"])


def test_checkpoint_detection(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "snapshot-000001000.safetensors").write_bytes(b"")
    (tmp_path / "G.safetensors").write_bytes(b"")
    _write_pngs(tmp_path / "imgs", digits(2))
    assert is_checkpoint(str(tmp_path / "run")) and is_checkpoint(str(tmp_path / "G.safetensors"))
    assert not is_checkpoint(str(tmp_path / "imgs"))
    assert not is_checkpoint(str(tmp_path / "missing"))


def test_metrics_of_a_training_checkpoint(tmp_path, cache_with_extractor, capsys):
    from gankern.models.stylegan2_configs import get_config
    from gankern.train.checkpoint import save_checkpoint
    from gankern.train.families.stylegan2 import config_metadata
    from gankern.train.networks import load_generator
    from gankern.train.state_codec import encode_state

    config = get_config("tiny", resolution=32, img_channels=1, c_dim=0, gpus=1)
    G = config.G.build(impl="ref")
    tensors = {}
    meta = {"networks": config_metadata(config, "fp32"),
            "states": {"G_ema": encode_state(G.state_dict(), "G_ema", tensors)}}
    save_checkpoint(tmp_path / "snapshot-000000010.safetensors", tensors, meta)
    _write_pngs(tmp_path / "real", digits(40))
    out = tmp_path / "out.json"
    rc = main(["metrics", "--metrics", "fid,is,ppl", "--real", str(tmp_path / "real"),
               "--fake", str(tmp_path), "--num", "24", "--extractor", "digits",
               "--is-splits", "2", "--device", "cpu", "--quiet", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    results = json.loads(out.read_text())["results"]
    expected = compute_metrics(
        "fid,is,ppl", real=digits(40), fake=load_generator(tmp_path, impl="ref"), num_fake=24,
        extractor=load_digits_extractor(device="cpu", build=False), is_splits=2,
        device="cpu", cache=False, ppl_options={"num_samples": 24})
    assert set(expected) == {"fid_digits", "is_digits", "is_digits_std", "ppl_digits"}
    assert results == pytest.approx(dict(expected), rel=1e-9)
