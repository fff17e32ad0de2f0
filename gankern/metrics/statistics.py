"""Streaming feature statistics: mean and covariance accumulated in float64.

Batches are merged with the parallel form of Welford's algorithm (Chan et al.): each batch
contributes its own mean and centered scatter matrix, so no large raw second moment is ever
formed and the covariance stays accurate when the mean is large compared with the spread.
"""

from __future__ import annotations

import numpy as np
import torch


class FeatureStats:
    """Running mean and covariance of feature vectors, optionally keeping the vectors.

    Args:
        keep_features: also keep every vector (float32), for the metrics that need them
            (KID, precision/recall).
        max_items: stop accepting vectors after this many (None: no limit). Extra rows of a
            batch that crosses the limit are dropped.

    Feed batches with :meth:`update`; read :attr:`mean`, :attr:`cov`, :attr:`features`.
    """

    def __init__(self, keep_features: bool = False, max_items: int | None = None):
        self.keep_features = bool(keep_features)
        self.max_items = max_items
        self.num = 0
        self.dim: int | None = None
        self._mean: torch.Tensor | None = None  # float64 [dim]
        # float64 [dim, dim]: the sum of outer products of the centered vectors.
        self._scatter: torch.Tensor | None = None
        self._features: list[torch.Tensor] = []

    @property
    def full(self) -> bool:
        """True once ``max_items`` vectors have been accepted."""
        return self.max_items is not None and self.num >= self.max_items

    def update(self, features: torch.Tensor) -> None:
        """Add a batch of feature vectors of shape ``[batch, dim]`` (any float dtype, device)."""
        if not isinstance(features, torch.Tensor):
            features = torch.as_tensor(np.asarray(features))
        if features.ndim != 2:
            raise ValueError(f"features must have shape [batch, dim], got {tuple(features.shape)}")
        if not features.dtype.is_floating_point:
            raise TypeError(f"features must be a floating point tensor, got {features.dtype}")
        if self.dim is None:
            self.dim = features.shape[1]
        elif features.shape[1] != self.dim:
            raise ValueError(
                f"features must have {self.dim} columns like the earlier batches, "
                f"got shape {tuple(features.shape)}"
            )
        if self.max_items is not None:
            features = features[: max(0, self.max_items - self.num)]
        n_new = features.shape[0]
        if n_new == 0:
            return
        if not torch.isfinite(features).all():
            raise ValueError("features contain NaN or Inf (check the images and the extractor)")
        x = features.detach().to(torch.float64)
        batch_mean = x.mean(dim=0)
        centered = x - batch_mean
        batch_scatter = centered.T @ centered
        if self._mean is None:
            self._mean, self._scatter = batch_mean, batch_scatter
        else:
            self._mean = self._mean.to(x.device)
            self._scatter = self._scatter.to(x.device)
            n_old = self.num
            total = n_old + n_new
            delta = batch_mean - self._mean
            self._mean = self._mean + delta * (n_new / total)
            self._scatter = self._scatter + batch_scatter + torch.outer(delta, delta) * (
                n_old * n_new / total
            )
        self.num += n_new
        if self.keep_features:
            self._features.append(features.detach().to("cpu", torch.float32))

    def _require(self, what: str, min_num: int = 1) -> None:
        if self.num < min_num:
            raise ValueError(f"{what} needs at least {min_num} feature vectors, got {self.num}")

    @property
    def mean(self) -> np.ndarray:
        """The mean vector, float64 ``[dim]``."""
        self._require("the mean")
        return self._mean.cpu().numpy()

    @property
    def cov(self) -> np.ndarray:
        """The unbiased covariance (divided by ``num - 1``, as ``numpy.cov``), float64."""
        self._require("the covariance", 2)
        return (self._scatter / (self.num - 1)).cpu().numpy()

    @property
    def features(self) -> np.ndarray:
        """All vectors seen, float32 ``[num, dim]`` (needs ``keep_features=True``)."""
        if not self.keep_features:
            raise ValueError("features were not kept: create FeatureStats(keep_features=True)")
        self._require("features")
        return torch.cat(self._features).numpy()

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save (see :meth:`from_state`)."""
        self._require("saving statistics")
        out = {
            "num": np.asarray(self.num, dtype=np.int64),
            "mean": self._mean.cpu().numpy(),
            "scatter": self._scatter.cpu().numpy(),
        }
        if self.keep_features:
            out["features"] = self.features
        return out

    @classmethod
    def from_state(cls, state) -> FeatureStats:
        """Rebuild statistics saved with :meth:`state` (a dict or an ``np.load`` result)."""
        stats = cls(keep_features="features" in state)
        stats.num = int(state["num"])
        stats._mean = torch.from_numpy(np.array(state["mean"], dtype=np.float64))
        stats._scatter = torch.from_numpy(np.array(state["scatter"], dtype=np.float64))
        stats.dim = int(stats._mean.shape[0])
        if stats.keep_features:
            stats._features = [torch.from_numpy(np.array(state["features"], dtype=np.float32))]
        return stats
