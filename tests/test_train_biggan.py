"""The BigGAN and SAGAN recipes: the published hyperparameters and networks of their
configurations, BigGAN's orthogonal regularization in G's loss against its formula, the
truncation trick (values beyond the threshold redrawn: the truncated normal), and standing
statistics before sampling (batch-norm statistics only)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy import stats
from trainutils import one_thread

from gankern.models.biggan import biggan_config, standing_statistics
from gankern.models.sagan import sagan_config
from gankern.train.distributed import DistributedContext
from gankern.train.families.biggan import BigGANFamily
from gankern.train.families.sagan import SAGANFamily
from gankern.train.family import DataInfo, PhaseInputs
from gankern.train.options import TrainingOptions
from gankern.train.run import build_training_run

IMAGENET = DataInfo(name="imagenet", kind="images", resolution=128, channels=3, c_dim=1000)


def _run(model="biggan", resolution=16, **overrides):
    opts = TrainingOptions(model=model, data="builtin:digits", resolution=resolution, batch=8,
                           device="cpu", metrics=[], aug="noaug", seed=1, **overrides)
    data = DataInfo(name="digits", kind="images", resolution=resolution, channels=1, c_dim=10)
    return build_training_run(opts, data, DistributedContext(), labels=np.eye(10, dtype="f4"))


def _config(family, cfg, data=IMAGENET):
    return family(TrainingOptions(model=family.name)).network_config(cfg, data, 1, "fp32", {})


def test_biggan128_is_the_published_recipe():
    config = _config(BigGANFamily, "biggan128")
    G, D = biggan_config("biggan128")
    assert config.configs == {"G": G, "D": D}  # 70,433,988 / 87,982,370 parameters
    hp = config.recommended
    # launch_BigGAN_bs256x8.sh: 256 x 8 accumulations, hinge, Adam (0, 0.999), eps 1e-6.
    assert (hp.batch, hp.batch_gpu, hp.loss, hp.n_critic) == (2048, 256, "hinge", 1)
    assert (hp.glr, hp.dlr, hp.betas, hp.eps) == (1e-4, 4e-4, (0.0, 0.999), 1e-6)
    # EMA decay 0.9999 per iteration of 2048 images, from iteration 20,000 on.
    assert 0.5 ** (2048 / (hp.ema_kimg * 1000)) == pytest.approx(0.9999, abs=1e-12)
    assert hp.ema_start_kimg == 20_000 * 2048 / 1000
    assert hp.total_kimg == pytest.approx(1_281_167 * 100 / 1000)  # 100 epochs of ImageNet

    cifar = _config(BigGANFamily, "biggan32", DataInfo("c10", "images", 32, 3, c_dim=10))
    hp = cifar.recommended  # launch_cifar_ema.sh: 4 D steps of 50 images per iteration
    assert (hp.batch, hp.n_critic, hp.glr, hp.dlr, hp.eps) == (50, 4, 2e-4, 2e-4, 1e-8)
    assert 0.5 ** (200 / (hp.ema_kimg * 1000)) == pytest.approx(0.9999, abs=1e-12)
    assert hp.ema_start_kimg == 1000 * 200 / 1000


def test_networks_follow_the_resolution():
    """256 px: the published BigGAN-256's z of 140 (7 chunks of 20), attention moved to
    128 px; the 16 px digits: z 48 (3 chunks of 16), attention at 8 px."""
    big = _config(BigGANFamily, "biggan128", DataInfo("x", "images", 256, 3, c_dim=1000))
    assert (big.configs["G"].z_dim, big.configs["G"].attention) == (140, (128,))
    assert big.configs["D"].attention == (128,)
    small = _config(BigGANFamily, "digits", DataInfo("digits", "images", 16, 1, c_dim=10))
    assert (small.configs["G"].z_dim, small.configs["G"].attention) == (48, (8,))
    G = small.configs["G"].build()
    assert G(torch.randn(2, 48), torch.eye(10)[:2]).shape == (2, 1, 16, 16)


def test_sagan128_is_the_papers_recipe():
    config = _config(SAGANFamily, "sagan128")
    G, D = sagan_config("sagan128")
    assert config.configs == {"G": G, "D": D}  # 42,078,852 / 39,463,618 parameters
    hp = config.recommended
    assert (hp.loss, hp.glr, hp.dlr, hp.betas, hp.batch, hp.n_critic, hp.ema_kimg) == (
        "hinge", 1e-4, 4e-4, (0.0, 0.9), 256, 1, 0.0)
    assert hp.total_kimg == 256_000  # 1M iterations of 256 images
    uncond = _config(SAGANFamily, "sagan128", DataInfo("x", "images", 64, 3))
    assert uncond.configs["G"].c_dim == 0 and uncond.configs["G"].attention == (16,)


def _np_ortho(G, beta):
    """``beta * sum_W sum_{i != j} (w_i . w_j)^2`` over G's weights of 2+ dimensions (rows
    ``w_i``; the shared class embedding left out), row by row."""
    shared = {id(p) for p in G.shared.parameters()}
    total = 0.0
    for p in G.parameters():
        if p.ndim < 2 or id(p) in shared:
            continue
        w = p.detach().double().reshape(p.shape[0], -1).numpy()
        for i in range(w.shape[0]):  # row i against every other row
            dots = np.delete(w, i, axis=0) @ w[i]
            total += float(np.sum(dots**2))
    return beta * total


@pytest.mark.parametrize("weight", [1e-4, 1e-3])
def test_orthogonal_regularization_is_in_gs_loss(weight):
    run = _run(model_options={"ortho_weight": weight})
    family = run.family
    (phase,) = [p for p in run.phases if p.trains_generator]
    z = torch.randn([8, run.G.z_dim])
    c = torch.eye(10)[torch.arange(8)]
    out = family.compute(phase, PhaseInputs(real=(torch.zeros(8, 1, 16, 16), c), z=z, c=c,
                                            batch=8, num_slices=2, step=0))
    expected = _np_ortho(run.G, weight)
    assert float(out.stats["Loss/G/ortho"]) == pytest.approx(expected, rel=1e-5)
    # The per-step term counts once per step: half of it in each of two slices.
    assert len(out.terms) == 2
    assert float(out.terms[1]) == pytest.approx(expected / 2, rel=1e-5)

    run0 = _run(model_options={"ortho_weight": 0.0})
    out0 = run0.family.compute(phase, PhaseInputs(real=(torch.zeros(8, 1, 16, 16), c), z=z,
                                                  c=c, batch=8, num_slices=1, step=0))
    assert len(out0.terms) == 1 and "Loss/G/ortho" not in out0.stats


def _capture_latents():
    seen = []

    def G(z, c):
        seen.append(z.clone())
        return z

    return G, seen


def test_truncation_redraws_values_beyond_the_threshold():
    G, seen = _capture_latents()
    g = torch.Generator().manual_seed(0)
    z = torch.randn([4000, 8], generator=g)
    BigGANFamily.sample(G, z, None, truncation_psi=0.5)
    (t,) = seen
    inside = z.abs() <= 0.5
    assert bool((t.abs() <= 0.5).all())
    assert torch.equal(t[inside], z[inside])
    assert bool((t[~inside] != z[~inside]).all())
    # Each value is a draw from the normal truncated to [-0.5, 0.5] (scipy's truncnorm).
    ks = stats.kstest(t.flatten().numpy(), stats.truncnorm(-0.5, 0.5).cdf)
    assert ks.pvalue > 1e-3, ks
    # A latent's redraws depend on its values only: alone or in a batch, the same.
    BigGANFamily.sample(G, z[7:8], None, truncation_psi=0.5)
    assert torch.equal(seen[1][0], t[7])
    # 1 (gankern generate's default) is no truncation.
    BigGANFamily.sample(G, z, None)
    assert torch.equal(seen[2], z)
    with pytest.raises(ValueError, match="--trunc-cutoff"):
        BigGANFamily.sample(G, z, None, truncation_psi=0.5, truncation_cutoff=2)
    with pytest.raises(ValueError, match="must be > 0"):
        BigGANFamily.sample(G, z, None, truncation_psi=-1.0)


def _batch_norm_stats(G):
    return {k: v.clone() for k, v in G.state_dict().items()
            if k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")}


def test_standing_statistics_before_sampling():
    run = _run()
    real = [(torch.rand(8, 1, 16, 16) * 2 - 1, torch.eye(10)[torch.arange(8)])]
    with one_thread():
        run.step(real)
        run.step(real)
    G_ema = run.G_ema
    assert G_ema is not run.G and not G_ema.training
    before = copy.deepcopy(G_ema.state_dict())
    expected = standing_statistics(
        copy.deepcopy(G_ema), 16, run.settings.batch_gpu,
        generator=torch.Generator().manual_seed(run.opts.seed))
    run.family.prepare_sampler(G_ema)
    after = G_ema.state_dict()
    bn = _batch_norm_stats(G_ema)
    assert bn and all(torch.equal(v, _batch_norm_stats(expected)[k]) for k, v in bn.items())
    assert all(not torch.equal(before[k], after[k]) for k in bn if "running_mean" in k)
    # Everything else (weights, spectral-norm vectors) as it was, and G_ema in eval mode.
    assert all(torch.equal(before[k], after[k]) for k in before if k not in bn)
    assert not G_ema.training
    # On the training network itself (no moving average): it stays in training mode.
    run.family.prepare_sampler(run.G)
    assert run.G.training

    off = _run(model_options={"standing_stats_batches": 0})
    state = copy.deepcopy(off.G_ema.state_dict())
    off.family.prepare_sampler(off.G_ema)
    assert all(torch.equal(state[k], v) for k, v in off.G_ema.state_dict().items())


def test_ema_is_g_until_its_start():
    """The digits' EMA starts after 3.2k images (100 iterations of 32)."""
    run = _run()
    assert run.settings.ema_start_kimg == pytest.approx(100 * 32 / 1000)
    real = [(torch.rand(8, 1, 16, 16) * 2 - 1, torch.eye(10)[torch.arange(8)])]
    with one_thread():
        run.step(real)
    assert all(torch.equal(a, b) for a, b in zip(run.G.parameters(), run.G_ema.parameters(),
                                                 strict=True))
    run.counters["nimg"] = math.ceil(run.settings.ema_start_kimg * 1000)
    with one_thread():
        run.step(real)
    assert not all(torch.equal(a, b) for a, b in zip(run.G.parameters(),
                                                     run.G_ema.parameters(), strict=True))
