"""``gankern.train.losses`` called directly: the per-sample values against the papers'
formulas written with sigmoids and logs in NumPy (float64), for logits given as ``[N]`` and
as the ``[N, 1]`` a discriminator returns, and the errors that name the bad argument. (The
objective tests drive the same functions through a family, with ``[N]`` logits.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from objective_toys import G_FORMULAS, np_sigmoid

from gankern.train.losses import (
    auxiliary_classifier_loss,
    check_loss_name,
    discriminator_fake_term,
    discriminator_loss,
    discriminator_real_term,
    drift_penalty,
    generator_loss,
)
from gankern.train.objective_names import ADVERSARIAL_LOSSES

REAL = {
    "minimax": lambda r: -np.log(np_sigmoid(r)),
    "nonsaturating": lambda r: -np.log(np_sigmoid(r)),
    "wasserstein": lambda r: -r,
    "lsgan": lambda r: 0.5 * (r - 1) ** 2,
    "hinge": lambda r: np.maximum(0.0, 1 - r),
}
FAKE = {
    "minimax": lambda f: -np.log(1 - np_sigmoid(f)),
    "nonsaturating": lambda f: -np.log(1 - np_sigmoid(f)),
    "wasserstein": lambda f: f,
    "lsgan": lambda f: 0.5 * f**2,
    "hinge": lambda f: np.maximum(0.0, 1 + f),
}
GEN = G_FORMULAS

# Logits on both sides of the hinge margins (+-1) and of zero.
R = np.array([-2.5, -1.0, -0.3, 0.0, 0.7, 1.0, 3.0])
F_ = np.array([1.5, -1.2, 0.4, -3.0, 0.0, 2.2, -0.6])


@pytest.mark.parametrize("shape", ["[N]", "[N, 1]"])
@pytest.mark.parametrize("loss", ADVERSARIAL_LOSSES)
def test_losses_per_sample_against_the_formulas(loss, shape):
    def logits(x):
        t = torch.tensor(x, dtype=torch.float64)
        return t[:, None] if shape == "[N, 1]" else t

    r, f = logits(R), logits(F_)
    for got, want in [
        (discriminator_real_term(loss, r), REAL[loss](R)),
        (discriminator_fake_term(loss, f), FAKE[loss](F_)),
        (discriminator_loss(loss, r, f), REAL[loss](R) + FAKE[loss](F_)),
        (generator_loss(loss, f), GEN[loss](F_)),
    ]:
        assert got.shape == (len(R),)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_drift_penalty_is_the_square_of_each_real_logit():
    np.testing.assert_allclose(drift_penalty(torch.tensor(R)[:, None]).numpy(), R**2)


def test_auxiliary_classifier_loss_is_the_cross_entropy_of_the_label():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    z = logits.numpy()
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    got = auxiliary_classifier_loss(logits, labels)
    np.testing.assert_allclose(got.numpy(), [-log_softmax[0, 2], -log_softmax[1, 1]], rtol=1e-6)
    with pytest.raises(ValueError, match=r"must both be \[N, C\], got \(2, 3\) and \(2, 4\)"):
        auxiliary_classifier_loss(logits, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"must both be \[N, C\], got \(3,\) and \(3,\)"):
        auxiliary_classifier_loss(torch.zeros(3), torch.zeros(3))


def test_loss_names():
    assert [check_loss_name(n) for n in ADVERSARIAL_LOSSES] == list(ADVERSARIAL_LOSSES)
    with pytest.raises(ValueError, match="loss must be one of minimax, .*, got 'bce'"):
        check_loss_name("bce")
    with pytest.raises(ValueError, match="got 'bce'"):
        generator_loss("bce", torch.zeros(2))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda x: discriminator_real_term("hinge", x), "real_logits"),
        (lambda x: discriminator_fake_term("hinge", x), "fake_logits"),
        (lambda x: generator_loss("hinge", x), "fake_logits"),
        (lambda x: discriminator_loss("hinge", x, torch.zeros(2)), "real_logits"),
    ],
)
def test_bad_logits_are_named(call, name):
    with pytest.raises(TypeError, match=f"^{name} must be a floating-point tensor, got Tensor"):
        call(torch.zeros(2, dtype=torch.int64))
    with pytest.raises(TypeError, match=f"^{name} must be a floating-point tensor, got list"):
        call([0.0, 1.0])
    for shape in [(2, 2), (2, 1, 1), ()]:
        with pytest.raises(ValueError, match=rf"^{name} must have shape \[N\] or \[N, 1\]"):
            call(torch.zeros(shape))


def test_real_and_fake_batches_must_match():
    with pytest.raises(ValueError, match="same number of samples, got 3 and 2"):
        discriminator_loss("wasserstein", torch.zeros(3), torch.zeros(2, 1))
