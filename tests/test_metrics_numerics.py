"""The metric formulas against independent computations (scipy, loops, analytic values)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from gankern.metrics.frechet import frechet_distance
from gankern.metrics.inception_score import inception_score
from gankern.metrics.kid import kernel_inception_distance
from gankern.metrics.precision_recall import precision_recall
from gankern.metrics.statistics import FeatureStats


def _random_cov(rng, dim, eigenvalues=None):
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    if eigenvalues is None:
        eigenvalues = rng.uniform(0.1, 3.0, dim)
    return (q * eigenvalues) @ q.T, q


def _frechet_via_symmetric_sqrtm(mu1, s1, mu2, s2):
    # A different formulation of the same quantity: tr sqrt(S1^1/2 S2 S1^1/2), all via scipy.
    root1 = scipy.linalg.sqrtm(s1).real
    inner = scipy.linalg.sqrtm(root1 @ s2 @ root1).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(inner))


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_distance_matches_scipy_on_random_gaussians(method):
    rng = np.random.default_rng(1)
    for dim in (1, 3, 16):
        mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
        s1, _ = _random_cov(rng, dim)
        s2, _ = _random_cov(rng, dim)
        expected = _frechet_via_symmetric_sqrtm(mu1, s1, mu2, s2)
        got = frechet_distance(mu1, s1, mu2, s2, method=method)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("method", ["sqrtm", "eigh"])
def test_frechet_distance_ill_conditioned_commuting_covariances(method):
    # Covariances sharing eigenvectors commute, so tr sqrt(S1 S2) = sum sqrt(a_i b_i):
    # an exact value even with condition numbers of 1e12.
    rng = np.random.default_rng(2)
    dim = 24
    a = np.logspace(-10, 2, dim)
    b = rng.permutation(np.logspace(-9, 3, dim))
    s1, q = _random_cov(rng, dim, a)
    s2 = (q * b) @ q.T
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, s1, mu2, s2, method=method)
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("seed", [3, 4])
def test_frechet_distance_singular_covariances_match_the_factor_formula(seed):
    # Rank-deficient covariances (fewer samples than dimensions), as with small sample sets.
    # With S1 = A^T A and S2 = B^T B (A, B the centred samples over sqrt(n - 1)), the nonzero
    # eigenvalues of S1 S2 are those of (A B^T)(A B^T)^T, so tr sqrt(S1 S2) is the sum of the
    # singular values of the small matrix A B^T: exact however singular S1 and S2 are.
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((5, 12)), rng.standard_normal((5, 12)) + 0.5
    a, b = (x - x.mean(0)) / 2, (y - y.mean(0)) / 2
    trace_sqrt = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    diff = x.mean(0) - y.mean(0)
    expected = diff @ diff + np.trace(a.T @ a) + np.trace(b.T @ b) - 2 * trace_sqrt
    args = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    for method in ("eigh", "sqrtm"):
        assert frechet_distance(*args, method=method) == pytest.approx(expected, rel=1e-6)


def test_frechet_sqrtm_falls_back_to_an_offset_diagonal(monkeypatch):
    # When sqrtm(S1 S2) is not finite, the standard tools retry with eps on both diagonals.
    import gankern.metrics.frechet as frechet

    rng = np.random.default_rng(5)
    s1, _ = _random_cov(rng, 4)
    s2, _ = _random_cov(rng, 4)
    mu1, mu2 = rng.standard_normal((2, 4))
    calls = []

    def first_call_fails(a):
        calls.append(a)
        return np.full_like(a, np.nan) if len(calls) == 1 else scipy.linalg.sqrtm(a)

    monkeypatch.setattr(frechet, "_sqrtm", first_call_fails)
    eps = 0.05
    got = frechet_distance(mu1, s1, mu2, s2, eps=eps)
    offset = eps * np.eye(4)
    np.testing.assert_allclose(calls[1], (s1 + offset) @ (s2 + offset), rtol=1e-12)
    tr = np.trace(scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_computes_float32_inputs_in_float64():
    rng = np.random.default_rng(7)
    mu1, mu2 = rng.standard_normal((2, 256)).astype(np.float32) * 100
    s1, _ = _random_cov(rng, 8)
    s1 = s1.astype(np.float32)
    m1, m2 = mu1[:8], mu2[:8]
    expected = frechet_distance(m1.astype(np.float64), s1.astype(np.float64),
                                m2.astype(np.float64), s1.astype(np.float64))
    assert frechet_distance(m1, s1, m2, s1) == expected
    # A float32 dot product of 256 terms rounds visibly; the distance is accumulated in float64.
    diff = mu1.astype(np.float64) - mu2.astype(np.float64)
    eye = np.eye(256, dtype=np.float32)
    got = frechet_distance(mu1, eye, mu2, eye)
    assert got == pytest.approx(float(diff @ diff), rel=1e-13)


@pytest.mark.parametrize("imaginary, ok", [(1e-4, True), (1e-3, True), (2e-3, False)])
def test_frechet_sqrtm_keeps_the_real_part_of_a_nearly_real_root(monkeypatch, imaginary, ok):
    import gankern.metrics.frechet as frechet

    root = np.diag([1.0, 2.0]) + 1j * np.diag([imaginary, -imaginary])
    monkeypatch.setattr(frechet, "_sqrtm", lambda a: root)
    args = (np.zeros(2), np.eye(2) * 4, np.ones(2), np.eye(2))
    if ok:  # 2 + 8 (means, traces: 8 + 2) - 2 * 3 (the real trace of the root)
        assert frechet_distance(*args) == pytest.approx(2 + 10 - 6, rel=1e-12)
    else:
        with pytest.raises(ValueError, match="imaginary component of 0.002"):
            frechet_distance(*args)


def test_fid_of_identical_and_shifted_samples():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    shift = rng.standard_normal(8)
    stats = []
    for data in (x, x, x + shift):
        s = FeatureStats()
        for chunk in np.array_split(data, 7):
            s.update(torch.from_numpy(chunk))
        stats.append(s)
    same = frechet_distance(stats[0].mean, stats[0].cov, stats[1].mean, stats[1].cov)
    assert abs(same) < 1e-8
    # Shifting every sample leaves the sample covariance unchanged: d^2 = |shift|^2 exactly.
    shifted = frechet_distance(stats[0].mean, stats[0].cov, stats[2].mean, stats[2].cov)
    assert shifted == pytest.approx(float(shift @ shift), rel=1e-7)


def test_frechet_distance_analytic_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    expected = 1 + 0 + 9 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0.5) ** 2
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_errors():
    with pytest.raises(ValueError, match="same feature size"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"sigma1 must have shape \(3, 3\)"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="svd")


def test_streamed_statistics_equal_batch_statistics():
    rng = np.random.default_rng(5)
    # A large common offset: naive sum/sum-of-squares accumulation would lose digits here.
    # Features arrive as float32; the reference sees the same float32 values, in float64.
    data = (rng.standard_normal((301, 6)) * rng.uniform(0.1, 2, 6) + 1e4).astype(np.float32)
    stats = FeatureStats(keep_features=True)
    start = 0
    for size in (1, 2, 50, 17, 100, 131):
        stats.update(torch.from_numpy(data[start : start + size]))
        start += size
    assert stats.num == 301
    exact = data.astype(np.float64)
    np.testing.assert_allclose(stats.mean, exact.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(stats.cov, np.cov(exact, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(stats.features, data)
    restored = FeatureStats.from_state(stats.state())
    np.testing.assert_array_equal(restored.cov, stats.cov)


def test_feature_stats_max_items_and_errors():
    stats = FeatureStats(max_items=5)
    stats.update(torch.ones(3, 2))
    stats.update(torch.zeros(4, 2))
    assert stats.num == 5 and stats.full
    stats.update(torch.zeros(2, 2))  # full: nothing more is taken
    assert stats.num == 5
    np.testing.assert_allclose(stats.mean, [0.6, 0.6])
    with pytest.raises(ValueError, match="2 columns"):
        stats.update(torch.ones(1, 3))
    with pytest.raises(ValueError, match="NaN"):
        FeatureStats().update(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="at least 2"):
        s = FeatureStats()
        s.update(torch.ones(1, 2))
        _ = s.cov


def test_feature_stats_inputs_and_what_is_kept():
    single = FeatureStats()
    single.update(np.array([[1.0, 2.0]]))  # numpy input; one vector has a mean...
    np.testing.assert_array_equal(single.mean, [1.0, 2.0])
    with pytest.raises(ValueError, match="^the covariance needs at least 2 feature vectors"):
        _ = single.cov  # ...but no covariance
    with pytest.raises(ValueError, match="features were not kept"):
        _ = single.features
    kept = FeatureStats(keep_features=True)
    kept.update(torch.arange(6, dtype=torch.float64).reshape(3, 2))
    assert kept.features.dtype == np.float32
    np.testing.assert_array_equal(kept.features, np.arange(6).reshape(3, 2))


@pytest.mark.parametrize("keep_features", [False, True])
def test_feature_stats_state_round_trip(tmp_path, keep_features):
    rng = np.random.default_rng(12)
    data = rng.standard_normal((9, 3))
    stats = FeatureStats(keep_features=keep_features)
    stats.update(torch.from_numpy(data[:4]))
    stats.update(torch.from_numpy(data[4:]))
    np.savez(tmp_path / "stats.npz", **stats.state())
    loaded = FeatureStats.from_state(np.load(tmp_path / "stats.npz"))
    assert loaded.num == 9 and loaded.dim == 3 and loaded.keep_features == keep_features
    np.testing.assert_allclose(loaded.mean, data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(loaded.cov, np.cov(data, rowvar=False), rtol=1e-12)
    if keep_features:
        np.testing.assert_array_equal(loaded.features, data.astype(np.float32))
    wide = {k: (v.astype(np.float64) if k == "features" else v) for k, v in stats.state().items()}
    if keep_features:  # kept features are float32, whatever the state holds
        assert FeatureStats.from_state(wide).features.dtype == np.float32
    # Loaded statistics keep accumulating in float64 (a float32 state is widened).
    narrow = {k: (v.astype(np.float32) if k != "num" else v) for k, v in stats.state().items()}
    widened = FeatureStats.from_state(narrow)
    assert widened.mean.dtype == widened.cov.dtype == np.float64
    widened.update(torch.ones(1, 3))
    np.testing.assert_allclose(widened.mean, (data.sum(0) + 1) / 10, rtol=1e-6)
    with pytest.raises(ValueError, match="^saving statistics needs at least 1 feature vectors"):
        FeatureStats().state()


def _kid_direct(x, y, gamma, coef0=1.0, degree=3):
    # The unbiased MMD^2 estimator written out term by term.
    m = len(x)
    k = lambda a, b: (gamma * float(np.dot(a, b)) + coef0) ** degree  # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_matches_direct_formula():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.7
    # Subsets as large as the sets: every subset is the whole set, whatever the sampling.
    mean, std = kernel_inception_distance(x, y, num_subsets=3, subset_size=12)
    assert mean == pytest.approx(_kid_direct(x, y, gamma=1 / 5), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)
    mean, _ = kernel_inception_distance(x, y, num_subsets=1, subset_size=12, gamma=0.3, coef0=0.5)
    assert mean == pytest.approx(_kid_direct(x, y, gamma=0.3, coef0=0.5), rel=1e-10)


def test_kid_subsets_are_reproducible_and_detect_a_shift():
    rng = np.random.default_rng(7)
    x, x2, y = (rng.standard_normal((200, 8)) for _ in range(3))
    y = y + 1.0
    same = kernel_inception_distance(x, x2, num_subsets=20, subset_size=50)
    assert same == kernel_inception_distance(x, x2, num_subsets=20, subset_size=50)
    shifted, _ = kernel_inception_distance(x, y, num_subsets=20, subset_size=50)
    assert abs(same[0]) < 0.05 * shifted


def test_kid_errors():
    x = np.zeros((10, 4))
    with pytest.raises(ValueError, match="subset_size=1000.*got 10"):
        kernel_inception_distance(x, x)
    with pytest.raises(ValueError, match="4 feature columns"):
        kernel_inception_distance(x, np.zeros((10, 5)), subset_size=5)
    with pytest.raises(TypeError, match="real_features"):
        kernel_inception_distance([[1.0]], x)


def _is_by_definition(p, splits):
    scores = []
    chunk = len(p) // splits
    for s in range(splits):
        part = p[s * chunk : (s + 1) * chunk]
        py = [sum(row[c] for row in part) / len(part) for c in range(len(p[0]))]
        kls = [
            sum(row[c] * math.log(row[c] / py[c]) for c in range(len(row)) if row[c] > 0)
            for row in part
        ]
        scores.append(math.exp(sum(kls) / len(kls)))
    mean = sum(scores) / splits
    return mean, math.sqrt(sum((s - mean) ** 2 for s in scores) / splits)


def test_inception_score_matches_definition():
    rng = np.random.default_rng(8)
    logits = rng.standard_normal((23, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, std = inception_score(p, splits=4)
    exp_mean, exp_std = _is_by_definition(p.tolist()[:20], 4)
    assert mean == pytest.approx(exp_mean, rel=1e-12)
    assert std == pytest.approx(exp_std, rel=1e-9)


def test_inception_score_accepts_rounded_probabilities_and_exactly_splits_images():
    # Rows of a float32 softmax sum to 1 only up to rounding: within 1e-3 is accepted.
    probs = np.full((4, 5), 0.2) * (1 + 4e-4)
    assert inception_score(probs, splits=4) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="class probabilities"):
        inception_score(np.full((4, 5), 0.2) * 1.01, splits=4)


def test_inception_score_limits():
    # Confident and evenly spread over C classes: IS = C. Always the same class: IS = 1.
    eye = np.eye(5)
    assert inception_score(np.tile(eye, (4, 1)), splits=2) == pytest.approx((5.0, 0.0))
    assert inception_score(np.tile(eye[:1], (10, 1)), splits=2) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="at least splits=10"):
        inception_score(eye)
    with pytest.raises(ValueError, match="sum to 1"):
        inception_score(np.full((20, 3), 0.5), splits=2)


def _pr_brute_force(real, fake, k):
    def dist(a, b):
        return math.sqrt(sum((ai - bi) ** 2 for ai, bi in zip(a, b, strict=True)))

    def radii(points):
        return [sorted(dist(p, q) for j, q in enumerate(points) if j != i)[k - 1]
                for i, p in enumerate(points)]

    real_r, fake_r = radii(real), radii(fake)
    precision = sum(any(dist(f, r) <= rr for r, rr in zip(real, real_r, strict=True))
                    for f in fake) / len(fake)
    recall = sum(any(dist(r, f) <= fr for f, fr in zip(fake, fake_r, strict=True))
                 for r in real) / len(real)
    return precision, recall


@pytest.mark.parametrize("k,row_batch", [(3, 1024), (3, 7), (1, 5)])
def test_precision_recall_matches_brute_force(k, row_batch):
    rng = np.random.default_rng(9)
    real = rng.standard_normal((30, 4))
    fake = rng.standard_normal((25, 4)) * 1.5 + 0.4
    got = precision_recall(real, fake, k=k, row_batch=row_batch)
    expected = _pr_brute_force(real.tolist(), fake.tolist(), k)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1


def test_precision_recall_identical_sets_and_errors():
    x = np.random.default_rng(10).standard_normal((20, 3))
    assert precision_recall(x, x) == (1.0, 1.0)
    with pytest.raises(ValueError, match="more than 3 points in fake_features"):
        precision_recall(x, x[:3])
    with pytest.raises(ValueError, match="3 feature columns"):
        precision_recall(x, np.zeros((20, 2)))


def test_precision_recall_counts_points_on_a_ball_boundary_as_inside():
    # 1-D integer points, k=1: every real radius is exactly 1. The fakes 5 and -1 lie at
    # distance exactly 1 from the nearest real point (inside, <=), 6.5 at 2.5 (outside).
    real = np.arange(5.0)[:, None]
    fake = np.array([[0.5], [5.0], [-1.0], [6.5]])
    precision, recall = precision_recall(real, fake, k=1, row_batch=2)
    assert precision == 0.75
    # Every fake radius is 1.5 (0.5 and -1 are neighbours, so are 5 and 6.5): real 0, 1 and
    # 4 are inside, 2 is on the boundary of 0.5's ball (inside), 3 is 2 from 5 (outside).
    assert recall == 0.8


def test_precision_recall_float32_agrees_with_float64():
    rng = np.random.default_rng(11)
    real, fake = rng.standard_normal((200, 16)), rng.standard_normal((150, 16)) + 0.3
    p64 = precision_recall(real, fake)
    p32 = precision_recall(real, fake, dtype=torch.float32)
    assert p32 == pytest.approx(p64, abs=2 / 150)

