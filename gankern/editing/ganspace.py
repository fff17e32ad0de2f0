"""GANSpace (Härkönen et al. 2020): principal components of the latents as edit directions.

Random latents are mapped to w (or, with ``space="style"``, on to the styles of the chosen
style layers) and PCA (scikit-learn) gives orthonormal directions ordered by the variance
of the samples along them. The paper applies a component to a range of ws only (its
``E(v_i, j-k)`` edits); :meth:`Components.direction` takes those ``layers``.
"""

from __future__ import annotations

import numpy as np
import torch

from gankern.editing.components import (
    Components,
    canonical_signs,
    check_count,
    check_ws_layers,
)
from gankern.editing.directions import SPACES, network_signature
from gankern.editing.layers import (
    check_style_based,
    embed_in_style_space,
    sample_ws,
    select_style_layers,
    styles_from_ws,
)

__all__ = ["ganspace"]


@torch.no_grad()
def ganspace(G, num_samples: int = 10_000, space: str = "w", num_components: int | None = None,
             layers=None, class_idx: int | None = None, truncation_psi: float = 1.0,
             seed: int = 0) -> Components:
    """Principal components of ``num_samples`` random latents of ``G``.

    Args:
        G: a style-based generator (StyleGAN2-ADA's API).
        num_samples: latents to draw (the paper: 10^6 for big models; a few times the
            dimension is enough for the leading components).
        space: ``"w"`` (PCA of w) or ``"style"`` (PCA of the styles, StyleSpace's S).
        num_components: components to keep (default: all, ``min(dimension, num_samples)``).
        layers: space ``"w"``: the ws rows the components move by default (None: all);
            space ``"style"``: the names of the style layers whose styles enter the PCA
            (None: all).
        class_idx: class of a conditional model (None: random classes).
        truncation_psi: truncation of the samples.
        seed: seed of the latents (and of the randomized solver, if scikit-learn uses it).

    Returns:
        :class:`Components` with ``values`` the variance along each component, ``scales``
        its standard deviation, ``info["explained_variance_ratio"]``.
    """
    from sklearn.decomposition import PCA

    check_style_based(G)
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    num_samples = check_count("num_samples", num_samples, 2)
    ws = sample_ws(G, num_samples, seed=seed, class_idx=class_idx,
                   truncation_psi=truncation_psi)
    if space == "w":
        edit_layers = check_ws_layers(layers, G.num_ws)
        samples = ws[:, 0]
    else:
        chosen = select_style_layers(G, layers)
        edit_layers = tuple(layer.name for layer in chosen)
        samples = styles_from_ws(G, ws, chosen)
    limit = min(samples.shape[1], num_samples)
    k = limit if num_components is None else check_count("num_components", num_components, 1)
    if k > limit:
        raise ValueError(f"num_components must be <= {limit} (the dimension {samples.shape[1]} "
                         f"and num_samples {num_samples}), got {k}")
    pca = PCA(n_components=k, svd_solver="full").fit(samples.double().cpu().numpy())
    vectors = canonical_signs(torch.from_numpy(pca.components_).float())
    if space == "style":
        vectors = embed_in_style_space(G, vectors, chosen)
    variance = torch.from_numpy(pca.explained_variance_).float()
    info = {"num_samples": num_samples, "truncation_psi": float(truncation_psi), "seed": seed,
            "explained_variance_ratio": np.round(pca.explained_variance_ratio_, 6).tolist()}
    return Components(vectors=vectors, values=variance, scales=variance.sqrt(), space=space,
                      method="ganspace", network=network_signature(G), layers=edit_layers,
                      info=info)
