"""The training objective against written-out formulas: every adversarial loss, R1 / R2 /
WGAN-GP (lazy and in the main pass), ACGAN's classifier loss and WGAN's weight clipping, on
a toy G and D whose outputs and input gradients have closed forms (float64); gradients
against central differences of the NumPy formulas. Then StyleGAN2's objective on its own
networks against an independent autograd computation (the audit's planted bugs: the
generator loss's sign, R1's gamma / 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from objective_toys import (
    G_FORMULAS,
    inputs,
    make_family,
    np_D,
    np_G,
    np_grad_D,
    np_sigmoid,
    numeric_gradient,
    phase,
    settings,
)

from gankern.train.objective_names import ADVERSARIAL_LOSSES

# The toys are float64, but D's logits are cast to float32 (as StyleGAN2's loss does), so
# values and gradients agree to float32's precision; a wrong sign or factor is off by O(1).
RTOL = 1e-5


def _softplus(x):
    return np.logaddexp(0.0, x)


# The table of gankern.train.losses, written out again (sigmoid and logs, not softplus);
# the generator's column is objective_toys.G_FORMULAS.
D_FORMULAS = {
    "minimax": lambda r, f: -np.log(np_sigmoid(r)) - np.log(1 - np_sigmoid(f)),
    "nonsaturating": lambda r, f: -np.log(np_sigmoid(r)) - np.log(1 - np_sigmoid(f)),
    "wasserstein": lambda r, f: f - r,
    "lsgan": lambda r, f: 0.5 * ((r - 1) ** 2 + f**2),
    "hinge": lambda r, f: np.maximum(0, 1 - r) + np.maximum(0, 1 + f),
}


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy().reshape(x.shape[0], -1)


def _objective(out) -> torch.Tensor:
    return torch.stack(out.terms).sum()


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def _check_gradients(objective, params, expected_fn):
    grads = torch.autograd.grad(objective, params)
    for got, want in zip(grads, numeric_gradient(expected_fn, params), strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("loss", ADVERSARIAL_LOSSES)
def test_generator_loss(loss):
    family = make_family(settings(loss=loss))
    x = inputs()
    z, c = _np(x.z), _np(x.c)
    G, D = family.networks["G"], family.networks["D"]

    def expected():
        return G_FORMULAS[loss](np_D(D, np_G(G, z, c))).mean()

    out = family.compute(phase("Gmain"), x)
    objective = _objective(out)
    assert _value(objective) == pytest.approx(expected(), rel=RTOL)
    _check_gradients(objective, [G.lin.weight, G.lin.bias], expected)
    np.testing.assert_allclose(out.stats["Loss/scores/fake"].detach().numpy(),
                               np_D(D, np_G(G, z, c)), rtol=RTOL)


@pytest.mark.parametrize("loss", ADVERSARIAL_LOSSES)
def test_discriminator_loss(loss):
    family = make_family(settings(loss=loss))
    x = inputs()
    real, z, c = _np(x.real[0]), _np(x.z), _np(x.c)
    G, D = family.networks["G"], family.networks["D"]

    def expected():
        return D_FORMULAS[loss](np_D(D, real), np_D(D, np_G(G, z, c))).mean()

    out = family.compute(phase("Dmain"), x)
    objective = _objective(out)
    assert len(out.terms) == 1
    assert _value(objective) == pytest.approx(expected(), rel=RTOL)
    _check_gradients(objective, [D.v, D.a, D.b], expected)
    np.testing.assert_allclose(out.real_logits.numpy(), np_D(D, real), rtol=RTOL)


def test_progan_drift_term_in_the_critic_loss():
    """ProGAN's critic: ``mean(D(G(z)) - D(x) + eps * D(x)^2)`` (the family's extra D loss is
    :func:`gankern.train.losses.drift_penalty` times the drift weight)."""
    from gankern.train.losses import drift_penalty

    eps = 0.25  # far above ProGAN's 0.001, so that a wrong factor or power is O(1)
    family = make_family(settings(loss="wasserstein"))
    family.discriminator_extra_loss = lambda real_logits: drift_penalty(real_logits) * eps
    x = inputs()
    real, z, c = _np(x.real[0]), _np(x.z), _np(x.c)
    G, D = family.networks["G"], family.networks["D"]

    def expected():
        r, f = np_D(D, real), np_D(D, np_G(G, z, c))
        return (f - r + eps * r**2).mean()

    objective = _objective(family.compute(phase("Dmain"), x))
    assert _value(objective) == pytest.approx(expected(), rel=RTOL)
    _check_gradients(objective, [D.v, D.a, D.b], expected)
    with pytest.raises(ValueError, match=r"real_logits must have shape \[N\] or \[N, 1\]"):
        drift_penalty(torch.zeros(2, 3))


def _gp_eps(n: int, seed: int) -> np.ndarray:
    """The interpolation weights WGAN-GP draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return torch.rand([n, 1, 1, 1], dtype=torch.float64).numpy().reshape(n, 1)


@pytest.mark.parametrize("reg", ["r1", "r2", "gp"])
@pytest.mark.parametrize("lazy", [True, False])
def test_discriminator_regularizers(reg, lazy):
    """R1 = gamma/2 |grad D(real)|^2, R2 the same on fakes, GP = gamma (|grad D(x_hat)| - 1)^2;
    lazily (a Dreg phase, times its interval) or in the main pass (after the main loss)."""
    gamma, interval = 3.0, 4
    family = make_family(settings(d_reg=reg, gamma=gamma, loss="wasserstein"))
    x = inputs()
    n = x.batch
    real, z, c = _np(x.real[0]), _np(x.z), _np(x.c)
    G, D = family.networks["G"], family.networks["D"]
    eps = _gp_eps(n, seed=7)

    def penalty():
        fake = np_G(G, z, c)
        if reg == "r1":
            return gamma / 2 * (np_grad_D(D, real) ** 2).sum(1)
        if reg == "r2":
            return gamma / 2 * (np_grad_D(D, fake) ** 2).sum(1)
        x_hat = eps * real + (1 - eps) * fake
        return gamma * (np.sqrt((np_grad_D(D, x_hat) ** 2).sum(1)) - 1) ** 2

    gain = float(interval) if lazy else 1.0

    def expected():
        return penalty().sum() * gain / n

    torch.manual_seed(7)
    out = family.compute(phase("Dreg" if lazy else "Dboth", reg_gain=gain), x)
    reg_term = out.terms[-1]
    assert len(out.terms) == (1 if lazy else 2)
    assert _value(reg_term) == pytest.approx(expected(), rel=RTOL)
    _check_gradients(reg_term, [D.v, D.a], expected)
    np.testing.assert_allclose(out.stats[f"Loss/{reg}_penalty"].detach().numpy(), penalty(),
                               rtol=RTOL)
    if not lazy:  # the main loss is unchanged by the regularizer joining its pass
        main = D_FORMULAS["wasserstein"](np_D(D, real), np_D(D, np_G(G, z, c))).mean()
        assert _value(out.terms[0]) == pytest.approx(main, rel=RTOL)


def _log_softmax(x):
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def test_auxiliary_classifier_losses():
    """ACGAN: D's class head adds cross-entropy on reals (their labels) and fakes (the
    requested labels) to D's loss, and on fakes to G's."""
    c_dim = 3
    family = make_family(settings(loss="nonsaturating"), c_dim=c_dim, classifier=True)
    x = inputs(c_dim=c_dim)
    real, real_c, z, c = _np(x.real[0]), _np(x.real[1]), _np(x.z), _np(x.c)
    G, D = family.networks["G"], family.networks["D"]
    W, b = D.head.weight.detach().numpy(), D.head.bias.detach().numpy()

    def ce(images, labels):
        return -(_log_softmax(images @ W.T + b) * labels).sum(1)

    fake = np_G(G, z, c)
    g_expected = (G_FORMULAS["nonsaturating"](np_D(D, fake)) + ce(fake, c)).mean()
    d_expected = (D_FORMULAS["nonsaturating"](np_D(D, real), np_D(D, fake))
                  + ce(real, real_c) + ce(fake, c)).mean()
    assert _value(_objective(family.compute(phase("Gmain"), x))) == pytest.approx(
        g_expected, rel=RTOL)
    out = family.compute(phase("Dmain"), x)
    assert _value(_objective(out)) == pytest.approx(d_expected, rel=RTOL)
    np.testing.assert_allclose(out.stats["Loss/D/aux"].detach().numpy(),
                               ce(real, real_c) + ce(fake, c), rtol=RTOL)


def test_weight_clipping_after_discriminator_steps_only():
    family = make_family(settings(clip=0.05))
    D, G = family.networks["D"], family.networks["G"]
    before_D = [p.detach().numpy().copy() for p in D.parameters()]
    before_G = [p.detach().clone() for p in G.parameters()]
    family.after_step(phase("Gmain"), {})
    assert all(torch.equal(a, b) for a, b in zip(before_G, G.parameters(), strict=True))
    assert not all(np.all(np.abs(p) <= 0.05) for p in before_D)
    family.after_step(phase("Dmain"), {})
    for old, p in zip(before_D, D.parameters(), strict=True):
        np.testing.assert_array_equal(p.detach().numpy(), np.clip(old, -0.05, 0.05))


# --- StyleGAN2's objective on its own networks ------------------------------------------


@pytest.fixture(scope="module")
def stylegan2_run():
    from trainutils import TINY_NETWORKS

    from gankern.train.distributed import DistributedContext
    from gankern.train.family import DataInfo
    from gankern.train.options import TrainingOptions
    from gankern.train.run import build_training_run

    opts = TrainingOptions(model="stylegan2", cfg="tiny", batch=4, gamma=2.0, pl_weight=3.0,
                           style_mixing=0.0, r1_interval=4, pl_interval=4, device="cpu",
                           extra={k: dict(v) for k, v in TINY_NETWORKS.items()})
    data = DataInfo(name="toy", kind="images", resolution=16, channels=1)
    return build_training_run(opts, data, DistributedContext())


def _stylegan2_inputs(run, seed=11):
    g = torch.Generator().manual_seed(seed)
    n = run.settings.batch
    real = torch.rand(n, 1, 16, 16, generator=g) * 2 - 1
    z = torch.randn(n, run.G.z_dim, generator=g)
    empty = torch.zeros(n, 0)
    from gankern.train.family import PhaseInputs

    return PhaseInputs(real=(real, empty), z=z, c=empty, batch=n, num_slices=1, step=0)


def _phase_named(run, name):
    (found,) = [p for p in run.phases if p.name == name]
    return found


def _run_compute(run, name, x, seed):
    p = _phase_named(run, name)
    for net in run.family.players[p.player]:
        run.networks[net].requires_grad_(True)
    torch.manual_seed(seed)
    try:
        return run.family.compute(p, x), p
    finally:
        for net in run.family.players[p.player]:
            run.networks[net].requires_grad_(False)


def test_stylegan2_generator_and_discriminator_losses(stylegan2_run):
    """G: softplus(-D(G(z))); D: softplus(D(G(z))) + softplus(-D(x)) (StyleGAN2-ADA's
    loss.py), each the mean over the batch."""
    run, x = stylegan2_run, _stylegan2_inputs(stylegan2_run)
    G, D = run.G, run.D
    F = torch.nn.functional

    out, _ = _run_compute(run, "Gmain", x, seed=3)
    torch.manual_seed(3)
    with torch.no_grad():
        fake_logits = D(G.synthesis(G.mapping(x.z, x.c), noise_mode="random"), x.c)[:, 0]
    assert _value(_objective(out)) == pytest.approx(float(F.softplus(-fake_logits).mean()),
                                                    rel=1e-5)

    out, _ = _run_compute(run, "Dmain", x, seed=4)
    torch.manual_seed(4)
    with torch.no_grad():
        fake_logits = D(G.synthesis(G.mapping(x.z, x.c), noise_mode="random"), x.c)[:, 0]
        real_logits = D(x.real[0], x.c)[:, 0]
    expected = (F.softplus(fake_logits) + F.softplus(-real_logits)).mean()
    assert _value(_objective(out)) == pytest.approx(float(expected), rel=1e-5)


def test_stylegan2_r1_is_gamma_over_two_times_the_interval(stylegan2_run):
    run, x = stylegan2_run, _stylegan2_inputs(stylegan2_run)
    real = x.real[0].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(run.D(real, x.c).sum(), real)
    per_sample = grad.square().flatten(1).sum(1)
    out, p = _run_compute(run, "Dreg", x, seed=5)
    assert p.reg_gain == 4
    expected = run.settings.gamma / 2 * per_sample.sum() * 4 / x.batch
    assert _value(_objective(out)) == pytest.approx(float(expected), rel=1e-5)


def test_stylegan2_path_length_penalty(stylegan2_run):
    """``pl_weight * (|J^T y| - a)^2`` with ``a`` the running mean moved towards the batch's
    mean length by ``pl_decay``, on ``batch / pl_batch_shrink`` samples, times the interval."""
    run, x = stylegan2_run, _stylegan2_inputs(stylegan2_run)
    G = run.G
    run.family.path_length.pl_mean.fill_(0.7)
    out, p = _run_compute(run, "Greg", x, seed=6)
    n = x.batch // run.settings.pl_batch_shrink
    G.requires_grad_(True)
    torch.manual_seed(6)
    ws = G.mapping(x.z[:n], x.c[:n])
    img = G.synthesis(ws, noise_mode="random")
    y = torch.randn(img.shape) / (img.shape[2] * img.shape[3]) ** 0.5
    (grad,) = torch.autograd.grad((img * y).sum(), ws)
    G.requires_grad_(False)
    lengths = grad.square().sum(2).mean(1).sqrt()
    a = 0.7 + (float(lengths.mean()) - 0.7) * run.settings.pl_decay
    expected = run.settings.pl_weight * ((lengths - a) ** 2).sum() * p.reg_gain / n
    assert _value(_objective(out)) == pytest.approx(float(expected), rel=1e-4)
    assert float(out.extras["pl_lengths"]) == pytest.approx(float(lengths.sum()), rel=1e-5)
