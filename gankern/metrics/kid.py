"""Kernel Inception Distance: unbiased MMD^2 with a polynomial kernel, averaged over subsets.

    k(x, y) = (gamma * x.y + coef0) ** degree,   defaults degree=3, gamma=1/dim, coef0=1

For each of ``num_subsets`` subsets, ``subset_size`` real and ``subset_size`` generated
features are drawn without replacement and

    MMD^2 = sum_{i!=j} k(x_i,x_j) / (m(m-1)) + sum_{i!=j} k(y_i,y_j) / (m(m-1))
            - 2 sum_{i,j} k(x_i,y_j) / m^2

KID is the mean over subsets (reported with the standard deviation over subsets). The
standard settings are 100 subsets of 1000 (Bińkowski et al. 2018, StyleGAN2-ADA,
torch-fidelity); fewer images than ``subset_size`` in either set is an error.
"""

from __future__ import annotations

import numpy as np
import torch

from gankern.metrics._validate import as_feature_matrix, check_positive_int

KID_NUM_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor, gamma: float, coef0: float, degree: int):
    return (a @ b.T * gamma + coef0) ** degree


def kernel_inception_distance(
    real_features,
    fake_features,
    *,
    num_subsets: int = KID_NUM_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> tuple[float, float]:
    """KID between two sets of features.

    Args:
        real_features, fake_features: ``[num, dim]`` arrays or tensors.
        num_subsets: number of random subsets averaged.
        subset_size: samples drawn from each set per subset (needs at least that many in
            each set).
        degree, gamma, coef0: polynomial kernel; ``gamma=None`` means ``1 / dim``.
        seed: seed of the subset sampling (the result is reproducible).
        device: where the kernel matrices are computed (float64).

    Returns:
        ``(mean, std)`` of MMD^2 over the subsets (std with ddof=0).
    """
    # Subsets are converted to float64 one at a time: the full sets keep their dtype.
    real = as_feature_matrix("real_features", real_features, dtype=None)
    fake = as_feature_matrix("fake_features", fake_features, dim=real.shape[1], dtype=None)
    num_subsets = check_positive_int("num_subsets", num_subsets)
    subset_size = check_positive_int("subset_size", subset_size, minimum=2)
    degree = check_positive_int("degree", degree)
    for name, feats in (("real_features", real), ("fake_features", fake)):
        if feats.shape[0] < subset_size:
            raise ValueError(
                f"KID needs at least subset_size={subset_size} samples in {name}, got "
                f"{feats.shape[0]}: use more images or a smaller subset_size "
                f"(kid_subset_size in compute_metrics, --kid-subset-size on the command line)"
            )
    dim = real.shape[1]
    gamma = 1.0 / dim if gamma is None else float(gamma)
    real, fake = real.to(device), fake.to(device)
    rng = np.random.default_rng(seed)
    m = subset_size
    values = np.empty(num_subsets, dtype=np.float64)
    for s in range(num_subsets):
        x = real[torch.from_numpy(rng.choice(real.shape[0], m, replace=False)).to(device)]
        y = fake[torch.from_numpy(rng.choice(fake.shape[0], m, replace=False)).to(device)]
        x, y = x.to(torch.float64), y.to(torch.float64)
        kxx = _polynomial_kernel(x, x, gamma, coef0, degree)
        kyy = _polynomial_kernel(y, y, gamma, coef0, degree)
        kxy = _polynomial_kernel(x, y, gamma, coef0, degree)
        same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        values[s] = float(same - 2 * kxy.sum() / (m * m))
    return float(values.mean()), float(values.std())
