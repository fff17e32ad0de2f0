"""InterFaceGAN (Shen et al. 2020): a linear boundary in w between latents with and without
an attribute; its unit normal is the edit direction.

Random latents are rendered and scored by an attribute (:mod:`gankern.editing.attributes`,
or any ``f(images) -> [N]``); as in the paper, the ``ratio`` highest-scoring samples are the
positives and the ``ratio`` lowest the negatives, and a linear classifier (scikit-learn's
``LinearSVC`` or ``LogisticRegression``) is fit on a training split and checked on the
rest. The normal points towards higher scores.

Conditional manipulation: editing one attribute without moving others. The primal normal
``n`` is projected onto the orthogonal complement of the other boundaries' normals ``N``:
``n - N^T (N N^T)^-1 N n``, renormalized (the paper's formula, for any number of them).
"""

from __future__ import annotations

import numpy as np
import torch

from gankern.editing.attributes import attribute_name, resolve_attribute
from gankern.editing.components import check_count, check_ws_layers, spread_along
from gankern.editing.directions import Direction, network_signature
from gankern.editing.layers import (
    check_style_based,
    generator_device,
    render_kwargs,
    sample_ws,
)

METHODS = ("svm", "logistic")

__all__ = ["METHODS", "fit_boundary", "interfacegan", "project_out", "score_latents"]


@torch.no_grad()
def score_latents(G, attributes, num_samples: int, seed: int = 0, class_idx: int | None = None,
                  truncation_psi: float = 1.0,
                  batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Random w ``[N, w_dim]`` and their images' scores ``[N, len(attributes)]`` (CPU); the
    images are rendered with :func:`render_kwargs` (constant noise)."""
    check_style_based(G)
    num_samples = check_count("num_samples", num_samples, 2)
    ws = sample_ws(G, num_samples, seed=seed, class_idx=class_idx,
                   truncation_psi=truncation_psi)
    scores, kwargs = [], render_kwargs(G)
    for i in range(0, num_samples, batch_size):
        images = G.synthesis(ws[i : i + batch_size], **kwargs)
        scores.append(torch.stack([a(images).float().cpu() for a in attributes], dim=1))
    return ws[:, 0].cpu(), torch.cat(scores)


def fit_boundary(latents, scores, ratio: float = 0.2, method: str = "svm",
                 val_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, dict]:
    """A linear boundary between the top and bottom ``ratio`` of latents by score.

    Args:
        latents: ``[N, D]`` (tensor or array).
        scores: ``[N]``, larger meaning more of the attribute.
        ratio: fraction of the samples taken as positives (highest scores), and the same
            fraction as negatives (lowest), in (0, 0.5].
        method: ``"svm"`` (``LinearSVC``) or ``"logistic"`` (``LogisticRegression``).
        val_fraction: share of the chosen samples held out to measure the accuracy.
        seed: seed of the split.

    Returns:
        ``(normal, info)``: the unit normal ``[D]`` pointing towards higher scores, and the
        counts and the training and validation accuracies.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    x = np.asarray(latents, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(s):
        raise ValueError(f"latents must be [N, D] and scores [N], got {x.shape} and {s.shape}")
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must be in (0, 0.5], got {ratio}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    k = int(len(s) * ratio)
    if k < 2:
        raise ValueError(f"ratio {ratio} of {len(s)} samples leaves {k} per side; "
                         "draw more samples")
    order = np.argsort(s, kind="stable")
    chosen = np.concatenate([order[-k:], order[:k]])
    labels = np.concatenate([np.ones(k, dtype=int), np.zeros(k, dtype=int)])
    if s[order[-k]] <= s[order[k - 1]]:
        raise ValueError("the scores do not separate the samples (the top and bottom "
                         f"{ratio:.0%} overlap): the attribute does not vary on this generator")
    perm = np.random.RandomState(seed).permutation(len(chosen))
    chosen, labels = chosen[perm], labels[perm]
    num_val = max(1, int(round(len(chosen) * val_fraction)))
    train, val = slice(num_val, None), slice(None, num_val)
    clf = (LinearSVC(C=1.0, max_iter=20000) if method == "svm"
           else LogisticRegression(C=1.0, max_iter=5000))
    clf.fit(x[chosen[train]], labels[train])
    normal = clf.coef_.reshape(-1)
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm == 0:
        raise ValueError("the classifier found no boundary (zero normal)")
    info = {
        "num_samples": len(s), "num_per_side": k, "ratio": ratio, "method": method,
        "train_accuracy": float(clf.score(x[chosen[train]], labels[train])),
        "val_accuracy": float(clf.score(x[chosen[val]], labels[val])),
        "num_val": num_val,
    }  # fmt: skip
    return normal / norm, info


def project_out(primal, conditions) -> np.ndarray:
    """``primal`` (a unit normal ``[D]``) made orthogonal to every row of ``conditions``
    ``[K, D]`` (``n - N^T (N N^T)^-1 N n``), renormalized. ``ValueError`` when nothing is left
    (the primal lies in the span of the conditions)."""
    n = np.asarray(primal, dtype=np.float64).reshape(-1)
    cond = np.atleast_2d(np.asarray(conditions, dtype=np.float64))
    if cond.size == 0:
        return n / np.linalg.norm(n)
    if cond.shape[1] != n.shape[0]:
        raise ValueError(f"conditions must be [K, {n.shape[0]}], got {cond.shape}")
    coeffs = np.linalg.lstsq(cond @ cond.T, cond @ n, rcond=None)[0]
    rest = n - cond.T @ coeffs
    norm = np.linalg.norm(rest)
    if norm < 1e-6 * np.linalg.norm(n):
        raise ValueError("the primal boundary lies in the span of the conditions: nothing is "
                         "left after projecting them out")
    return rest / norm


def interfacegan(G, attribute, conditions=(), num_samples: int = 2000, ratio: float = 0.2,
                 method: str = "svm", layers=None, class_idx: int | None = None,
                 truncation_psi: float = 1.0, seed: int = 0,
                 batch_size: int = 128) -> Direction:
    """The InterFaceGAN direction of ``attribute`` in w, optionally conditioned.

    Args:
        G: a style-based generator (StyleGAN2-ADA's API).
        attribute: an attribute name (``"thickness"``, ``"class:A,B"``; see
            :mod:`gankern.editing.attributes`) or a callable ``f(images) -> [N]``.
        conditions: attributes to keep unchanged: their boundaries, fit on the same
            samples, are projected out of the direction.
        num_samples: random latents to render and score.
        ratio: fraction of the samples on each side of the boundary (the paper: 0.02 of
            500,000; more of fewer samples here).
        method: ``"svm"`` or ``"logistic"``.
        layers: the ws rows the direction moves (None: all).
        class_idx: class of a conditional model (None: random classes).
        truncation_psi: truncation of the samples.
        seed: seed of the latents and of the split.
        batch_size: images rendered at a time.

    Returns:
        A w-space :class:`Direction` (unit normal; strength in standard deviations of w
        along it); ``info`` holds the accuracies and, with conditions, the cosine between the
        primal normal and each condition's before the projection.
    """
    check_style_based(G)
    edit_layers = check_ws_layers(layers, G.num_ws)
    device = generator_device(G)
    primary = resolve_attribute(attribute, device)
    conds = [resolve_attribute(c, device) for c in conditions]
    w, scores = score_latents(G, [primary] + conds, num_samples, seed=seed,
                              class_idx=class_idx, truncation_psi=truncation_psi,
                              batch_size=batch_size)
    normal, info = fit_boundary(w, scores[:, 0], ratio=ratio, method=method, seed=seed)
    info = dict(info, attribute=attribute_name(primary))
    if conds:
        fitted = [fit_boundary(w, scores[:, j + 1], ratio=ratio, method=method, seed=seed)
                  for j in range(len(conds))]
        normals = np.stack([n for n, _ in fitted])
        info["conditions"] = [attribute_name(c) for c in conds]
        info["condition_val_accuracy"] = [i["val_accuracy"] for _, i in fitted]
        info["cosine_before"] = [float(c) for c in normals @ normal]
        normal = project_out(normal, normals)
    vector = torch.from_numpy(normal).float()
    scale = float(spread_along(w, vector[None])[0])
    info.update(truncation_psi=float(truncation_psi), seed=seed)
    return Direction(vector=vector, space="w", layers=edit_layers, scale=scale,
                     method="interfacegan", network=network_signature(G), info=info)
