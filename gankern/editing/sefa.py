"""SeFa (Shen & Zhou 2021, "Closed-Form Factorization of Latent Semantics in GANs").

The styles of a layer are an affine function of w, ``s = A w + b``. Moving w by ``n`` moves
the styles by ``A n``; the unit directions that move the styles of the chosen layers most
are the leading eigenvectors of ``A^T A``, with ``A`` the affine layers' weights stacked.
As in the official code, each style channel's weight row is normalized to unit length first
(``normalize=True``), so that no layer dominates by the scale of its weights.

The weights are read off the layers themselves, ``A = affine(I) - affine(0)``, so any linear
``affine`` module works (StyleGAN2's equalized layers with their gains, StyleGAN v1's AdaIN).
"""

from __future__ import annotations

import torch

from gankern.editing.components import (
    Components,
    canonical_signs,
    check_count,
    check_ws_layers,
    spread_along,
)
from gankern.editing.directions import network_signature
from gankern.editing.layers import (
    check_style_based,
    generator_device,
    sample_ws,
    style_layers,
)

__all__ = ["affine_weights", "sefa"]


@torch.no_grad()
def affine_weights(G, layers=None) -> torch.Tensor:
    """The stacked weights ``A`` ``[style channels, w_dim]`` of the affine layers that read
    the ws rows ``layers`` (None: all), in the order of :func:`style_layers`."""
    check_style_based(G)
    rows = check_ws_layers(layers, G.num_ws)
    modules = dict(G.synthesis.named_modules())
    device = generator_device(G)
    eye = torch.eye(G.w_dim, device=device)
    zero = torch.zeros([1, G.w_dim], device=device)
    blocks = []
    for layer in style_layers(G):
        if layer.ws_index in rows:
            affine = modules[layer.name]
            blocks.append((affine(eye) - affine(zero)).T.double().cpu())
    if not blocks:
        raise ValueError(f"no style layer reads the ws rows {list(rows)}")
    return torch.cat(blocks)


@torch.no_grad()
def sefa(G, layers=None, normalize: bool = True, num_samples: int = 2000,
         seed: int = 0) -> Components:
    """Closed-form directions of ``G``: the eigenvectors of ``A^T A`` (largest first).

    Args:
        G: a style-based generator (StyleGAN2-ADA's API).
        layers: the ws rows whose affine layers are factorized, and which the directions
            move (None: all; the paper uses the early rows for pose and shape, the later
            ones for texture and color).
        normalize: normalize each style channel's weight row to unit length (official).
        num_samples: random latents used only to measure the spread of w along each
            direction (the unit of strength).
        seed: seed of those latents.

    Returns:
        :class:`Components` over w (``w_dim`` of them) with ``values`` the eigenvalues.
    """
    check_style_based(G)
    edit_layers = check_ws_layers(layers, G.num_ws)
    num_samples = check_count("num_samples", num_samples, 2)
    a = affine_weights(G, edit_layers)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    eigenvalues, eigenvectors = torch.linalg.eigh(a.T @ a)  # ascending
    order = torch.argsort(eigenvalues, descending=True)
    vectors = canonical_signs(eigenvectors[:, order].T.float())
    w = sample_ws(G, num_samples, seed=seed)[:, 0].cpu()
    info = {"normalize": bool(normalize), "factorized_rows": list(edit_layers),
            "num_samples": num_samples, "seed": seed}
    return Components(vectors=vectors, values=eigenvalues[order].float(),
                      scales=spread_along(w, vectors), space="w", method="sefa",
                      network=network_signature(G), layers=edit_layers, info=info)
