"""Improved precision and recall (Kynkäänniemi et al. 2019): k-NN manifolds of features.

Each set of features spans a "manifold": the union of balls around its points, the radius
of each ball being the distance to the point's k-th nearest neighbour in its own set (the
point itself excluded; k=3 is the standard). Precision is the fraction of generated points
inside the real manifold, recall the fraction of real points inside the generated manifold
(inside means distance <= radius). Distances are computed in batches so that memory stays
at ``row_batch x num`` elements.
"""

from __future__ import annotations

import torch

from gankern.metrics._validate import as_feature_matrix, check_positive_int

PR_NEIGHBORHOOD = 3


def _pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # |a|^2 + |b|^2 - 2 a.b (one matmul); clamp the rounding that can go below zero.
    sq = (a * a).sum(1, keepdim=True) + (b * b).sum(1) - 2 * (a @ b.T)
    return sq.clamp_min_(0).sqrt_()


def _knn_radii(points: torch.Tensor, k: int, row_batch: int) -> torch.Tensor:
    radii = []
    for start in range(0, points.shape[0], row_batch):
        dist = _pairwise_distances(points[start : start + row_batch], points)
        # The k+1 smallest distances include the point itself (distance 0).
        radii.append(dist.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, row_batch: int):
    inside = []
    for start in range(0, probes.shape[0], row_batch):
        dist = _pairwise_distances(probes[start : start + row_batch], manifold)
        inside.append((dist <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).to(torch.float64).mean())


def precision_recall(
    real_features,
    fake_features,
    *,
    k: int = PR_NEIGHBORHOOD,
    row_batch: int = 1024,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> tuple[float, float]:
    """Precision and recall of generated features against real ones.

    Args:
        real_features, fake_features: ``[num, dim]`` arrays or tensors (each set needs more
            than ``k`` points).
        k: neighbourhood size of the manifold radii.
        row_batch: rows of the distance matrix computed at once.
        device: where distances are computed.
        dtype: precision of the distances (float32 is faster on GPUs; float64 decides
            points on a ball's boundary exactly as a float64 brute force would).

    Returns:
        ``(precision, recall)``, each in [0, 1].
    """
    real = as_feature_matrix("real_features", real_features, dtype=None)
    fake = as_feature_matrix("fake_features", fake_features, dim=real.shape[1], dtype=None)
    k = check_positive_int("k", k)
    row_batch = check_positive_int("row_batch", row_batch)
    for name, feats in (("real_features", real), ("fake_features", fake)):
        if feats.shape[0] <= k:
            raise ValueError(
                f"precision/recall with k={k} needs more than {k} points in {name}, "
                f"got {feats.shape[0]}"
            )
    real, fake = real.to(device, dtype), fake.to(device, dtype)
    real_radii = _knn_radii(real, k, row_batch)
    fake_radii = _knn_radii(fake, k, row_batch)
    precision = _coverage(real, real_radii, fake, row_batch)
    recall = _coverage(fake, fake_radii, real, row_batch)
    return precision, recall
