"""The metric formulas' argument checks: each bad argument raises with a message that starts
with the argument's name (anchored, so a message naming another argument fails), and the
smallest valid value of each bounded argument is accepted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from metrics_helpers import ToyGenerator

from gankern.metrics.frechet import frechet_distance
from gankern.metrics.inception_score import inception_score
from gankern.metrics.kid import kernel_inception_distance
from gankern.metrics.ppl import perceptual_path_length
from gankern.metrics.precision_recall import precision_recall

RNG = np.random.default_rng(0)
A = RNG.standard_normal((6, 3))
B = RNG.standard_normal((6, 3))
PROBS = np.full((4, 5), 0.2)


def _mse(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


class _MappingOnly(torch.nn.Module):
    z_dim = 2

    def mapping(self, z, c):
        return z


CASES = {
    "kid real_features": (lambda: kernel_inception_distance([1.0], B), TypeError,
                          "real_features must be a numpy array"),
    "kid fake_features": (lambda: kernel_inception_distance(A, B[:, :2]), ValueError,
                          "fake_features must have 3 feature columns"),
    "kid num_subsets": (lambda: kernel_inception_distance(A, B, num_subsets=0), ValueError,
                        "num_subsets must be >= 1, got 0"),
    "kid subset_size": (lambda: kernel_inception_distance(A, B, subset_size=1), ValueError,
                        "subset_size must be >= 2, got 1"),
    "kid degree": (lambda: kernel_inception_distance(A, B, subset_size=2, degree=0),
                   ValueError, "degree must be >= 1, got 0"),
    "kid too few real": (lambda: kernel_inception_distance(A[:2], B, subset_size=3), ValueError,
                         "KID needs at least subset_size=3 samples in real_features, got 2"),
    "kid too few fake": (lambda: kernel_inception_distance(A, B[:2], subset_size=3), ValueError,
                         "KID needs at least subset_size=3 samples in fake_features, got 2"),
    "pr real_features": (lambda: precision_recall(np.zeros((0, 3)), B), ValueError,
                         "real_features must not be empty"),
    "pr fake_features": (lambda: precision_recall(A, np.ones(3)), ValueError,
                         "fake_features must have shape"),
    "pr k": (lambda: precision_recall(A, B, k=0), ValueError, "k must be >= 1, got 0"),
    "pr row_batch": (lambda: precision_recall(A, B, row_batch=0), ValueError,
                     "row_batch must be >= 1, got 0"),
    "pr too few real": (lambda: precision_recall(A[:3], B), ValueError,
                        "precision/recall with k=3 needs more than 3 points in real_features"),
    "is probs": (lambda: inception_score(PROBS.astype(int)), TypeError,
                 "probs must hold floating point values"),
    "is splits": (lambda: inception_score(PROBS, splits=0), ValueError,
                  "splits must be >= 1, got 0"),
    "is too few": (lambda: inception_score(PROBS, splits=5), ValueError,
                   "the Inception Score needs at least splits=5 images, got 4"),
    "fid mu1": (lambda: frechet_distance(np.zeros(0), np.eye(0), np.zeros(3), np.eye(3)),
                ValueError, "mu1 must be a non-empty vector"),
    "fid sigma2": (lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2)),
                   ValueError, r"sigma2 must have shape \(3, 3\) to match mu2"),
    "fid mu1 2-D": (lambda: frechet_distance(np.zeros((1, 3)), np.eye(3), np.zeros(3), np.eye(3)),
                    ValueError, "mu1 must be a non-empty vector"),
    "fid sigma1": (lambda: frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)),
                   ValueError, r"sigma1 must have shape \(3, 3\) to match mu1"),
    "fid sigma2 finite": (
        lambda: frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3) * np.nan),
        ValueError, "mu2 and sigma2 must be finite"),
    "fid mu2 finite": (
        lambda: frechet_distance(np.zeros(3), np.eye(3), np.full(3, np.nan), np.eye(3)),
        ValueError, "mu2 and sigma2 must be finite"),
    "ppl num_samples": (lambda: perceptual_path_length(ToyGenerator(), num_samples=1,
                                                       distance=_mse), ValueError,
                        "num_samples must be >= 2, got 1"),
    "ppl batch_size": (lambda: perceptual_path_length(ToyGenerator(), batch_size=0,
                                                      distance=_mse), ValueError,
                       "batch_size must be >= 1, got 0"),
    "ppl epsilon": (lambda: perceptual_path_length(ToyGenerator(), epsilon=0, distance=_mse),
                    ValueError, "epsilon must be a positive number, got 0"),
    "ppl mapping only": (lambda: perceptual_path_length(_MappingOnly(), distance=_mse),
                         ValueError, "space='w' needs a generator with mapping and synthesis"),
    "ppl z_dim": (lambda: perceptual_path_length(torch.nn.Linear(2, 2), distance=_mse),
                  TypeError, "generator must have an integer z_dim, got None"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_argument_message_starts_with_its_name(case):
    call, error, message = CASES[case]
    with pytest.raises(error, match="^" + message):
        call()


def test_smallest_valid_arguments_are_accepted():
    kid, _ = kernel_inception_distance(A, B, num_subsets=1, subset_size=2, degree=1)
    assert np.isfinite(kid)
    assert all(0 <= v <= 1 for v in precision_recall(A[:2], B[:2], k=1, row_batch=1))
    assert inception_score(PROBS, splits=1) == pytest.approx((1.0, 0.0))
    assert inception_score(PROBS, splits=4) == pytest.approx((1.0, 0.0))
    G = ToyGenerator(z_dim=1, resolution=4)
    label, value = perceptual_path_length(G, num_samples=2, batch_size=1, epsilon=1e-3,
                                          distance=_mse)
    assert label == "ppl_custom" and value > 0


def test_ppl_default_distance_is_lpips_and_needs_its_weights(tmp_path, monkeypatch):
    from gankern.metrics import WeightsNotFoundError

    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path))
    monkeypatch.delenv("GANKERN_VGG16_WEIGHTS", raising=False)
    with pytest.raises(WeightsNotFoundError, match="GANKERN_VGG16_WEIGHTS"):
        perceptual_path_length(ToyGenerator())
