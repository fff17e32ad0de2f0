"""Fréchet distance between two Gaussians (the "FID" once the Gaussians are fitted to features).

    d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))

Two ways to get the last trace:

* ``"sqrtm"`` (default, the standard tools' way): ``scipy.linalg.sqrtm(sigma1 @ sigma2)``;
  if the result is not finite (singular product), retry with ``eps`` added to both
  diagonals; a real part is kept when the imaginary part is negligible.
* ``"eigh"``: ``sigma1 sigma2`` is similar to the symmetric ``A = sigma1^(1/2) sigma2
  sigma1^(1/2)``, so the trace is the sum of the square roots of A's eigenvalues. It never
  goes complex and is more robust for ill-conditioned covariances.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

FID_EPS = 1e-6  # diagonal offset of the standard fallback (pytorch-fid, StyleGAN2-ADA's tools)
_IMAG_TOLERANCE = 1e-3  # the standard tools' limit on the imaginary part of sqrtm's diagonal


def _as_mean_cov(name_mu: str, mu, name_sigma: str, sigma) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"{name_mu} must be a non-empty vector, got shape {mu.shape}")
    if sigma.shape != (mu.size, mu.size):
        raise ValueError(
            f"{name_sigma} must have shape {(mu.size, mu.size)} to match {name_mu}, "
            f"got {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{name_mu} and {name_sigma} must be finite")
    return mu, sigma


def _sqrtm(a: np.ndarray) -> np.ndarray:
    # scipy warns about singular inputs; the caller checks the result and falls back itself.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return scipy.linalg.sqrtm(a)


def _trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        worst = float(np.max(np.abs(np.diagonal(covmean).imag)))
        if worst > _IMAG_TOLERANCE:
            raise ValueError(
                f"the matrix square root of sigma1 @ sigma2 has an imaginary component of "
                f"{worst:.3g} on its diagonal (the covariances are too ill-conditioned, "
                f"usually too few samples for the feature size); use method='eigh'"
            )
        covmean = covmean.real
    return float(np.trace(covmean))


def _trace_sqrt_product_eigh(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    # Symmetrize first: accumulated covariances are symmetric only up to rounding.
    w1, v1 = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt1 = (v1 * np.sqrt(np.clip(w1, 0, None))) @ v1.T
    inner = sqrt1 @ sigma2 @ sqrt1
    w = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = FID_EPS, method: str = "sqrtm"):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64.

    Args:
        mu1, mu2: mean vectors ``[dim]`` (numpy arrays or anything ``np.asarray`` takes).
        sigma1, sigma2: covariance matrices ``[dim, dim]``.
        eps: diagonal offset used by ``"sqrtm"`` when the plain square root is not finite.
        method: ``"sqrtm"`` (the standard tools' computation) or ``"eigh"`` (symmetric
            eigenvalue formulation, see the module docstring).

    Returns:
        The squared Fréchet distance as a Python float (the number reported as FID).
    """
    mu1, sigma1 = _as_mean_cov("mu1", mu1, "sigma1", sigma1)
    mu2, sigma2 = _as_mean_cov("mu2", mu2, "sigma2", sigma2)
    if mu1.size != mu2.size:
        raise ValueError(
            f"mu1 and mu2 must have the same feature size, got {mu1.size} and {mu2.size} "
            f"(statistics from different extractors?)"
        )
    if method == "sqrtm":
        tr_covmean = _trace_sqrt_product_sqrtm(sigma1, sigma2, float(eps))
    elif method == "eigh":
        tr_covmean = _trace_sqrt_product_eigh(sigma1, sigma2)
    else:
        raise ValueError(f"method must be 'sqrtm' or 'eigh', got {method!r}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
