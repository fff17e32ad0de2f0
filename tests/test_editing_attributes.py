"""Attributes, boundaries and their conditioning, against direct computations: the ink mass
in numpy, the class score from the digits classifier's own probabilities, boundaries fit to
data with a known normal, the conditional projection against Gram-Schmidt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gankern.data import load_digits
from gankern.editing import DigitClassScore, InkMass, fit_boundary, get_attribute, project_out
from gankern.metrics import load_digits_extractor


def test_ink_mass_is_the_mean_brightness():
    x = torch.rand(5, 3, 6, 7) * 3 - 1.5  # overshoots [-1, 1] like a generator's images
    expected = np.clip((x.double().numpy() + 1) / 2, 0, 1).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(InkMass()(x).numpy(), expected, rtol=1e-6)
    assert get_attribute("thickness").name == "thickness"


def test_class_score_is_the_classifiers_log_probability_ratio():
    images, labels = load_digits(16)
    images, labels = images[:300], labels[:300]
    classifier = load_digits_extractor(device="cpu")
    with torch.no_grad():
        probs = classifier.extract(torch.from_numpy(images))["probs"].double().numpy()
        floats = torch.from_numpy(images).float() / 127.5 - 1
        pair = DigitClassScore(3, 8, classifier=classifier)(floats).numpy()
        alone = DigitClassScore(3, classifier=classifier)(floats).numpy()
    np.testing.assert_allclose(pair, np.log(probs[:, 3]) - np.log(probs[:, 8]), atol=2e-3)
    rest = np.delete(probs, 3, axis=1).sum(axis=1)  # 1 - p(3), without cancellation
    np.testing.assert_allclose(alone, np.log(probs[:, 3]) - np.log(rest), atol=2e-3)
    # On the real digits the score tells 3s from 8s.
    assert (pair[labels == 3] > 0).mean() > 0.9 and (pair[labels == 8] < 0).mean() > 0.9
    assert get_attribute("class:3,8").name == "class:3,8"


@pytest.mark.parametrize("spec", ["class:1,1", "class:x", "class:", "class:1,2,3", "size"])
def test_unknown_attributes(spec):
    with pytest.raises(ValueError, match="attribute must be 'thickness'"):
        get_attribute(spec)


@pytest.mark.parametrize("method", ["svm", "logistic"])
def test_boundary_recovers_a_known_normal(method):
    rng = np.random.RandomState(0)
    true = rng.randn(6)
    true /= np.linalg.norm(true)
    latents = rng.randn(2000, 6)
    scores = latents @ true + 0.05 * rng.randn(2000)
    normal, info = fit_boundary(latents, scores, ratio=0.3, method=method)
    assert float(normal @ true) > 0.98  # the right axis, pointing towards higher scores
    assert info["num_per_side"] == 600 and info["val_accuracy"] > 0.97
    with pytest.raises(ValueError, match="ratio must be in"):
        fit_boundary(latents, scores, ratio=0.6)
    with pytest.raises(ValueError, match="the scores do not separate"):
        fit_boundary(latents, np.zeros(2000))


def test_projecting_out_conditions_is_gram_schmidt():
    rng = np.random.RandomState(1)
    primal, conds = rng.randn(8), rng.randn(2, 8)
    q, _ = np.linalg.qr(conds.T)  # orthonormal basis of the conditions' span
    rest = primal - q @ (q.T @ primal)
    out = project_out(primal / np.linalg.norm(primal), conds)
    np.testing.assert_allclose(out, rest / np.linalg.norm(rest), atol=1e-10)
    np.testing.assert_allclose(conds @ out, 0, atol=1e-10)
    with pytest.raises(ValueError, match="lies in the span of the conditions"):
        project_out(conds[0] + 2 * conds[1], conds)
