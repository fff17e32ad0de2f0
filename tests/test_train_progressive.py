"""Progressive growing on the one trainer (ProGAN, StyleGAN v1): the level and fade-in of
every step against the official TF formula, the images G and D see during a fade-in, the
optimizer resets and per-resolution learning rates, ProGAN's drift term, R1 with respect
to full-resolution images, a run resumed in the middle of a fade-in ending bit-identically
with the uninterrupted run, and sampling a checkpoint at its level."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from trainutils import assert_same_tensors, final_checkpoint, one_thread

from gankern.cli import main
from gankern.train.checkpoint import list_snapshots
from gankern.train.distributed import DistributedContext
from gankern.train.family import DataInfo, PhaseInputs
from gankern.train.loop import training_loop
from gankern.train.networks import load_generator
from gankern.train.options import TrainingOptions
from gankern.train.run import build_training_run

MODELS = ("progan", "stylegan")
# The digits schedule (4k images per phase) times 0.008: 32 images (4 steps of 8) at each
# resolution, then 32 images of fade-in.
SCALE = 0.008
PHASE_IMAGES = 32


def official_lod(nimg: int, resolution: int = 16, initial: int = 4,
                 training: int = PHASE_IMAGES, transition: int = PHASE_IMAGES) -> float:
    """The level of detail of NVlabs/stylegan's ``training_schedule`` (0 = full resolution),
    written out again in images."""
    phase = nimg // (training + transition)
    into = nimg - phase * (training + transition)
    lod = math.log2(resolution) - math.log2(initial) - phase
    lod -= max(into - training, 0) / transition
    return max(lod, 0.0)


def level_alpha(lod: float, resolution: int = 16) -> tuple[int, float]:
    """gankern's (level, alpha) of an official lod."""
    return int(math.log2(resolution)) - 2 - math.floor(lod), 1 - (lod - math.floor(lod))


def _run(model, resolution=16, **overrides):
    """A training run of ``model``'s digits configuration (no data loader, no files)."""
    model_options = {"schedule_scale": SCALE, **overrides.pop("model_options", {})}
    opts = TrainingOptions(model=model, data="builtin:digits", resolution=resolution, batch=8,
                           device="cpu", metrics=[], aug="noaug", seed=1,
                           model_options=model_options, **overrides)  # fmt: skip
    data = DataInfo(name="digits", kind="images", resolution=resolution, channels=1)
    return build_training_run(opts, data, DistributedContext())


def _reals(n=8, resolution=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand([n, 1, resolution, resolution], generator=g) * 2 - 1


@pytest.mark.parametrize("nimg", [0, 24, 32, 40, 48, 56, 64, 72, 104, 120, 400])
def test_level_and_fade_follow_the_official_schedule(nimg):
    run = _run("progan")
    run.family.on_step(nimg)
    level, alpha = level_alpha(official_lod(nimg))
    assert run.family.growth_kwargs() == {"level": level, "alpha": pytest.approx(alpha)}


@pytest.mark.parametrize("model", MODELS)
def test_generated_and_real_images_are_faded(model):
    """Halfway through the 8 px fade-in (official lod 1.5): G's image at level 1, alpha 0.5,
    nearest-upsampled to 16 px; D gets level 1 and alpha 0.5 and, for the reals, the official
    ``process_reals``: pooled to 8 px and blended half-half with the 4 px image."""
    run = _run(model, **({"style_mixing": 0.0} if model == "stylegan" else {}))
    family, G, D = run.family, run.G, run.D
    family.on_step(48)
    z = torch.randn([8, G.z_dim], generator=torch.Generator().manual_seed(1))
    c = torch.zeros([8, 0])
    torch.manual_seed(2)
    fake = family.generate(z, c)
    torch.manual_seed(2)
    if model == "progan":
        expected = G(z, c, level=1, alpha=0.5)
    else:
        ws = G.mapping(z, c)
        expected = G.synthesis(ws, noise_mode="random", level=1, alpha=0.5)
    assert fake.shape == (8, 1, 16, 16)
    torch.testing.assert_close(fake, F.interpolate(expected, scale_factor=2, mode="nearest"))

    calls = []
    D.register_forward_pre_hook(lambda m, args, kwargs: calls.append((args[0], kwargs)),
                                with_kwargs=True)
    real = _reals()
    phase = next(p for p in run.phases if not p.trains_generator)
    family.compute(phase, PhaseInputs(real=(real, torch.zeros([8, 0])), z=z, c=c, batch=8,
                                      num_slices=1, step=6))
    x = F.avg_pool2d(real, 2)
    y = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    expected_real = x + (y - x) * 0.5  # tflib.lerp(x, y, lod - floor(lod))
    assert all(kw == {"level": 1, "alpha": 0.5} for _, kw in calls)
    assert any(torch.allclose(img, expected_real, atol=1e-6) for img, _ in calls)


def _adam_steps(opt) -> list[int]:
    """The most steps Adam has taken for any parameter (new blocks start later)."""
    return [max(int(s["step"]) for s in opt.state.values())]


@pytest.mark.parametrize("reset", [True, False])
def test_optimizers_reset_when_a_fade_in_starts_and_ends(reset):
    run = _run("progan", model_options={"reset_optimizer": reset})
    real = [(_reals(), torch.zeros([8, 0]))]
    counts = []
    with one_thread():
        for _ in range(10):  # steps at 0, 8, ..., 72
            run.step(real)
            counts.append(_adam_steps(run.optimizers["G_opt"])
                          + _adam_steps(run.optimizers["D_opt"]))
    # Official: a reset when floor(lod) or ceil(lod) changed since the previous step; lod is
    # 2 up to image 32, 1.75, 1.5, 1.25 at 40, 48, 56 (fade-in) and 1 from 64 on.
    expected, n = [], 0
    for step in range(10):
        before, now = official_lod(8 * (step - 1)), official_lod(8 * step)
        if reset and step > 0 and (math.floor(before) != math.floor(now)
                                   or math.ceil(before) != math.ceil(now)):
            n = 0
        n += 1
        expected.append([n, n])
    assert counts == expected
    if reset:
        assert [c[0] for c in counts] == [1, 2, 3, 4, 5, 1, 2, 3, 1, 2]


def test_learning_rates_follow_the_schedule_table():
    """NVlabs/stylegan's FFHQ schedule: lr 0.001, 0.0015 at 128 px (a factor on --glr)."""
    run = _run("stylegan", resolution=128,
               model_options={"schedule": "stylegan", "schedule_scale": 0.001}, glr=0.002)
    family = run.family
    lrs = {}
    for nimg in (0, 4000, 5000):  # 8 px, 64 px, 128 px
        family.on_step(nimg)
        lrs[nimg] = ([g["lr"] for g in run.optimizers["G_opt"].param_groups]
                     + [g["lr"] for g in run.optimizers["D_opt"].param_groups])
    assert lrs[0] == pytest.approx([0.002, 0.001])
    assert lrs[4000] == pytest.approx([0.002, 0.001])
    assert lrs[5000] == pytest.approx([0.003, 0.0015])
    assert family.growth_kwargs() == {"level": 5, "alpha": 1.0}

    fixed = _run("stylegan", resolution=128, model_options={
        "schedule": "stylegan", "schedule_scale": 0.001, "progressive": False})
    fixed.family.on_step(0)
    assert fixed.family.growth_kwargs() == {"level": 5, "alpha": 1.0}
    assert fixed.optimizers["G_opt"].param_groups[0]["lr"] == pytest.approx(0.0015)


@pytest.mark.parametrize("drift", [0.001, 0.01])
def test_progan_critic_loss_with_drift(drift):
    """D's loss without the penalty: ``mean(D(G(z)) - D(x) + drift * D(x)^2)``."""
    run = _run("progan", resolution=8, gamma=0.0, model_options={"drift": drift})
    family, G, D = run.family, run.G, run.D
    family.on_step(10_000)  # grown: level 1 (8 px), alpha 1
    z = torch.randn([8, G.z_dim], generator=torch.Generator().manual_seed(3))
    c = torch.zeros([8, 0])
    real = _reals(resolution=8)
    (phase,) = [p for p in run.phases if not p.trains_generator]
    out = family.compute(phase, PhaseInputs(real=(real, c), z=z, c=c, batch=8, num_slices=1,
                                            step=0))
    with torch.no_grad():
        d_real = D(real, level=1).reshape(-1)
        d_fake = D(G(z, level=1), level=1).reshape(-1)
    expected = (d_fake - d_real + drift * d_real.square()).mean()
    torch.testing.assert_close(torch.stack(out.terms).sum().detach(), expected)


def test_r1_is_taken_on_full_resolution_images():
    """At level 0 of a 16 px StyleGAN, R1 is ``gamma / 2 |grad D|^2`` with respect to the
    16 px (upsampled) reals, which D averages down to 4 px: 1/16 of the 4 px gradient's."""
    run = _run("stylegan")
    family, D = run.family, run.D
    family.on_step(0)
    gamma = run.settings.gamma
    real = _reals()
    z, c = torch.randn([8, run.G.z_dim]), torch.zeros([8, 0])
    (phase,) = [p for p in run.phases if not p.trains_generator]
    out = family.compute(phase, PhaseInputs(real=(real, c), z=z, c=c, batch=8, num_slices=1,
                                            step=0))
    full = F.interpolate(F.avg_pool2d(real, 4), scale_factor=4, mode="nearest")
    full.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(F.avg_pool2d(full, 4), level=0).sum(), full)
    expected = grad.square().sum(dim=(1, 2, 3)) * (gamma / 2)
    torch.testing.assert_close(out.stats["Loss/r1_penalty"].detach(), expected)


def _resume_options(tmp_path, model, **overrides):
    kw = dict(model=model, data="builtin:digits", resolution=16, batch=8, kimg=0.08,
              kimg_per_tick=0.016, snap=3, metrics=[], outdir=str(tmp_path / "runs"),
              tensorboard=False, device="cpu", seed=5, model_options={"schedule_scale": SCALE})
    kw.update(overrides)
    return TrainingOptions(**kw)


@pytest.mark.parametrize("model", MODELS)
def test_resume_in_the_middle_of_a_fade_in_is_bit_identical(tmp_path, model):
    """Ten steps of 8 images; the 8 px fade-in runs at images 40, 48 and 56 (optimizer
    resets at 40 and 64). The snapshot at 48 images, halfway through the fade-in, resumed,
    ends exactly where the uninterrupted run ends."""
    with one_thread():
        full = training_loop(_resume_options(tmp_path, model, run_dir=str(tmp_path / "full")),
                             print_fn=lambda *a, **k: None)
        middle = list_snapshots(full)[1]
        assert middle.name == "snapshot-000000048.safetensors"
        assert 0 < level_alpha(official_lod(48))[1] < 1
        resumed = training_loop(
            _resume_options(tmp_path, model, resume=str(middle),
                            run_dir=str(tmp_path / "resumed")),
            print_fn=lambda *a, **k: None)
    a, meta_a = final_checkpoint(full)
    b, meta_b = final_checkpoint(resumed)
    assert meta_a["counters"]["nimg"] == meta_b["counters"]["nimg"] == 80
    assert_same_tensors(a, b)
    assert meta_a["states"] == meta_b["states"]
    # The logged level of detail: each tick's two steps, averaged.
    records = [json.loads(line) for line in (full / "stats.jsonl").read_text().splitlines()]
    expected = [(official_lod(n) + official_lod(n + 8)) / 2 for n in range(0, 80, 16)]
    assert [r["Progress/lod"] for r in records] == pytest.approx(expected)


def test_a_checkpoint_samples_at_its_level(tmp_path, capsys):
    """A StyleGAN snapshot taken at 4x4 draws 4x4 images shown at 16 px (blocks of 4x4
    equal pixels); style-mixing grids work on the style-based generator."""
    with one_thread():
        run_dir = training_loop(_resume_options(tmp_path, "stylegan", kimg=0.016,
                                                run_dir=str(tmp_path / "run")),
                                print_fn=lambda *a, **k: None)
        G = load_generator(run_dir)
        assert type(G).__module__ == "gankern.models.stylegan"
        from gankern.train.families.stylegan import StyleGANFamily

        z = torch.randn([3, G.z_dim])
        img = StyleGANFamily.sample(G, z, torch.zeros([3, 0]))
        assert img.shape == (3, 1, 16, 16)
        blocks = img.reshape(3, 1, 4, 4, 4, 4)
        assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))
        out = tmp_path / "mixing"
        assert main(["generate", str(run_dir), "--mode", "mixing", "--outdir", str(out),
                     "--trunc", "0.7", "--trunc-cutoff", "4"]) == 0, capsys.readouterr().err
    with Image.open(out / "mixing.png") as im:
        assert np.asarray(im).shape == (5 * 16, 5 * 16)


def test_bad_schedule_scale_is_a_clear_error():
    with pytest.raises(ValueError, match="schedule_scale must be a number > 0"):
        _run("progan", model_options={"schedule_scale": 0.0})


@pytest.mark.parametrize("model", MODELS)
def test_the_training_benchmark_starts_fully_grown(model):
    """Images 0-31 at 4 px, fade-ins at 32-63 and 96-127: 16 px alone from image 128 on."""
    from benchmarks.training_run import build_training_run as build_benchmark_run

    opts = TrainingOptions(model=model, cfg="digits", batch=8, device="cpu", aug="noaug",
                           metrics=[], model_options={"schedule_scale": SCALE})
    run = build_benchmark_run(opts, 16, img_channels=1)
    assert run.counters["nimg"] == 128 and official_lod(128) == 0 < official_lod(127)
    run.step(_reals())
    assert run.family.growth_kwargs() == {"level": 2, "alpha": 1.0}
