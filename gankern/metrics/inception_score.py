"""Inception Score: exp(E_x KL(p(y|x) || p(y))), mean and std over splits.

The images are cut into ``splits`` consecutive, equally sized chunks (the remainder after
``num // splits * splits`` is dropped, like the standard tools); in each chunk the marginal
p(y) is the mean of the class probabilities, and the score of the chunk is
exp(mean KL(p(y|x) || p(y))). The result is the mean and the standard deviation (ddof=0)
of the chunk scores. The standard setting is 10 splits of 50,000 images (Salimans et al.
2016).
"""

from __future__ import annotations

import torch

from gankern.metrics._validate import as_feature_matrix, check_positive_int

IS_SPLITS = 10


def inception_score(probs, *, splits: int = IS_SPLITS) -> tuple[float, float]:
    """Inception Score of class probabilities ``probs`` (``[num, classes]``, rows sum to 1).

    Returns:
        ``(mean, std)`` over the splits.
    """
    p = as_feature_matrix("probs", probs)
    splits = check_positive_int("splits", splits)
    if p.shape[0] < splits:
        raise ValueError(
            f"the Inception Score needs at least splits={splits} images, got {p.shape[0]}"
        )
    row_sums = p.sum(dim=1)
    if (p < 0).any() or not torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-3):
        raise ValueError("probs must be class probabilities: non-negative rows that sum to 1")
    chunk = p.shape[0] // splits
    scores = []
    for s in range(splits):
        part = p[s * chunk : (s + 1) * chunk]
        marginal = part.mean(dim=0, keepdim=True)
        # xlogy gives 0 for p = 0, the limit of p log p.
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal)).sum(dim=1)
        scores.append(torch.exp(kl.mean()))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(unbiased=False))
