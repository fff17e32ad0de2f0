"""Directions and their files, on small random generators of both StyleGAN families:
the style layers found by probing against the architectures' wiring, GANSpace against a
numpy PCA, SeFa against an SVD of the affine weights, edits against edited parameters."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from editing_utils import untrained_stylegan1, untrained_stylegan2

from gankern.editing import (
    Direction,
    apply_direction,
    edit_grid,
    ganspace,
    load_direction,
    network_signature,
    sample_ws,
    save_direction,
    sefa,
    style_layers,
)
from gankern.editing.layers import style_offsets, styles_from_ws

# StyleGAN2 at 8 px (blocks b4, b8; "skip"): a block's ToRGB and the next block's first conv
# share a w (StyleGAN2-ADA's SynthesisNetwork), so num_ws = 4.
STYLEGAN2_WIRING = [("b4.conv1.affine", 0), ("b4.torgb.affine", 1), ("b8.conv0.affine", 1),
                    ("b8.conv1.affine", 2), ("b8.torgb.affine", 3)]
# StyleGAN v1 at 8 px: ws 2k and 2k + 1 style the two layers of block k; AdaIN's affine gives
# a scale and a shift per channel (2 * 8 values).
STYLEGAN1_WIRING = [("b4.style0.adain.affine", 0), ("b4.style1.adain.affine", 1),
                    ("b8.style0.adain.affine", 2), ("b8.style1.adain.affine", 3)]


def _hooked_styles(G, ws):
    """The affine layers' outputs while G.synthesis renders ws (captured by hooks)."""
    seen = {}
    modules = [(n, m) for n, m in G.synthesis.named_modules() if n.endswith("affine")]
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
             for n, m in modules]
    with torch.no_grad():
        G.synthesis(ws, noise_mode="const")
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("family, wiring, channels", [
    ("stylegan2", STYLEGAN2_WIRING, [8, 8, 8, 8, 8]),
    ("stylegan", STYLEGAN1_WIRING, [16, 16, 16, 16]),
])
def test_style_layers_follow_each_architectures_wiring(family, wiring, channels):
    G = untrained_stylegan2() if family == "stylegan2" else untrained_stylegan1()
    layers = style_layers(G)
    assert [(l.name, l.ws_index) for l in layers] == wiring
    assert [l.channels for l in layers] == channels
    # styles_from_ws gives what the synthesis network itself computes, for ws whose rows differ.
    ws = torch.randn([3, G.num_ws, G.w_dim])
    hooked = _hooked_styles(G, ws)
    with torch.no_grad():
        direct = styles_from_ws(G, ws, layers)
    torch.testing.assert_close(direct, torch.cat([hooked[l.name] for l in layers], dim=1))


def _numpy_pca(samples: np.ndarray):
    values, vectors = np.linalg.eigh(np.cov(samples.T))
    return values[::-1], vectors[:, ::-1].T


def _assert_same_axes(ours, reference, k):
    """Rows equal up to sign (the first k, whose eigenvalues are distinct)."""
    dots = np.abs(np.sum(ours[:k] * reference[:k], axis=1))
    np.testing.assert_allclose(dots, 1, atol=1e-4)


def _assert_orthonormal(vectors):
    v = vectors.double()
    torch.testing.assert_close(v @ v.T, torch.eye(len(v), dtype=torch.double), atol=1e-5,
                               rtol=0)


def test_ganspace_in_w_is_numpys_pca():
    G = untrained_stylegan2(w_dim=8)
    comps = ganspace(G, num_samples=400, seed=3)
    w = sample_ws(G, 400, seed=3)[:, 0].double().numpy()
    values, vectors = _numpy_pca(w)
    assert len(comps) == 8 and comps.space == "w" and comps.layers == (0, 1, 2, 3)
    _assert_orthonormal(comps.vectors)
    _assert_same_axes(comps.vectors.numpy(), vectors, 8)
    np.testing.assert_allclose(comps.values.numpy(), values, rtol=1e-4)
    np.testing.assert_allclose(comps.scales.numpy(), np.sqrt(values), rtol=1e-4)
    # The spread of the samples along each direction is its scale (one unit of strength).
    spread = (w - w.mean(0)) @ comps.vectors.double().numpy().T
    np.testing.assert_allclose(spread.std(0, ddof=1), comps.scales.numpy(), rtol=1e-4)


def test_ganspace_in_style_space_is_numpys_pca_of_the_chosen_layers():
    G = untrained_stylegan2(w_dim=8)
    chosen = ["b8.conv1.affine"]
    comps = ganspace(G, num_samples=300, space="style", layers=chosen, num_components=5)
    hooked = _hooked_styles(G, sample_ws(G, 300, seed=0))["b8.conv1.affine"]
    values, vectors = _numpy_pca(hooked.double().numpy())
    assert comps.vectors.shape == (5, 5 * 8)  # all 40 style channels of the network
    inside = comps.vectors[:, 24:32]  # b8.conv1 is the fourth layer of 8 channels
    outside = torch.cat([comps.vectors[:, :24], comps.vectors[:, 32:]], dim=1)
    assert float(outside.abs().max()) == 0
    _assert_orthonormal(inside)
    _assert_same_axes(inside.numpy(), vectors, 5)
    np.testing.assert_allclose(comps.values.numpy(), values[:5], rtol=1e-4)
    d = comps.direction(0)
    assert d.space == "style" and d.layers == ("b8.conv1.affine",)


@pytest.mark.parametrize("normalize", [True, False])
def test_sefa_is_the_svd_of_the_stacked_affine_weights(normalize):
    G = untrained_stylegan2(w_dim=8)
    rows = [0, 1]  # read by b4.conv1, b4.torgb and b8.conv0 (STYLEGAN2_WIRING)
    comps = sefa(G, layers=rows, normalize=normalize, num_samples=200)
    modules = dict(G.synthesis.named_modules())
    weights = [modules[name].weight.double() * modules[name].weight_gain
               for name, row in STYLEGAN2_WIRING if row in rows]
    a = torch.cat(weights).numpy()
    if normalize:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(a)
    assert comps.layers == (0, 1) and len(comps) == 8
    _assert_orthonormal(comps.vectors)
    _assert_same_axes(comps.vectors.numpy(), vt, 8)
    np.testing.assert_allclose(comps.values.numpy(), s**2, rtol=1e-4)
    with pytest.raises(ValueError, match=r"component must be in \[0, 7\] \(8 sefa"):
        comps.direction(8)


def test_both_methods_run_on_stylegan_v1():
    G = untrained_stylegan1()
    for comps in (ganspace(G, num_samples=100), sefa(G, num_samples=100)):
        _assert_orthonormal(comps.vectors)
        images = apply_direction(G, torch.randn(2, G.w_dim), comps.direction(0), 2.0)
        assert images.shape == (2, 1, 8, 8)


def test_a_w_direction_moves_the_ws_of_its_layers():
    G = untrained_stylegan2(w_dim=8)
    d = sefa(G, num_samples=100).direction(1, layers=[2, 3])
    w = torch.randn(3, G.w_dim)
    ws = w[:, None].repeat(1, G.num_ws, 1)
    edited = ws.clone()
    edited[:, 2:] += 1.5 * d.scale * d.vector
    with torch.no_grad():
        expected = G.synthesis(edited, noise_mode="const")
        torch.testing.assert_close(apply_direction(G, w, d, 1.5), expected)
        torch.testing.assert_close(apply_direction(G, ws, d, 0.0),
                                   G.synthesis(ws, noise_mode="const"))
    grid = edit_grid(G, w, d, [0.0, 1.5])  # rows: latents; columns: strengths
    torch.testing.assert_close(grid[1::2], expected)


def test_a_style_direction_shifts_the_affine_outputs():
    """Adding to a style channel is adding to that channel's affine bias."""
    G = untrained_stylegan2(w_dim=8)
    layers = style_layers(G)
    offsets = torch.zeros(sum(l.channels for l in layers))
    offsets[26] = 0.7  # b8.conv1.affine channel 2
    d = Direction(offsets, "style", ["b8.conv1.affine"], scale=2.0, method="test",
                  network=network_signature(G))
    shifted = copy.deepcopy(G)
    affine = dict(shifted.synthesis.named_modules())["b8.conv1.affine"]
    with torch.no_grad():
        affine.bias[2] += 2.0 * 0.7 * -1.5 / affine.bias_gain
        ws = torch.randn(2, G.num_ws, G.w_dim)
        torch.testing.assert_close(apply_direction(G, ws, d, -1.5),
                                   shifted.synthesis(ws, noise_mode="const"))
        # The hooks are gone afterwards.
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const"),
                                   untrained_stylegan2(w_dim=8).synthesis(ws, noise_mode="const"))
    with pytest.raises(ValueError, match="unknown style layers"), style_offsets(G, {"x": d.vector}):
        pass


def test_direction_files_round_trip(tmp_path):
    G = untrained_stylegan2(w_dim=8)
    d = ganspace(G, num_samples=50).direction(2, layers=[0, 1])
    path = save_direction(d, tmp_path / "d.safetensors")
    back = load_direction(path)
    torch.testing.assert_close(back.vector, d.vector, rtol=0, atol=0)
    assert back.metadata() == d.metadata()
    assert back.layers == (0, 1) and back.info["component"] == 2 and back.check_network(G)


def test_bad_direction_files_and_other_networks(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_direction(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="is not a direction file"):
        load_direction(tmp_path / "junk.safetensors")
    save_file({"vector": torch.zeros(8)}, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="without gankern's direction header"):
        load_direction(tmp_path / "plain.safetensors")

    G = untrained_stylegan2(w_dim=8)
    d = sefa(G, num_samples=50).direction(0)
    wider = untrained_stylegan2(w_dim=16)
    with pytest.raises(ValueError, match="found on another network: w_dim 8"):
        apply_direction(wider, torch.randn(1, 16), d, 1.0)
    twin = untrained_stylegan2(seed=1, w_dim=8)  # same shape, other weights
    assert not d.check_network(twin)
    with pytest.warns(UserWarning, match="another generator of the same shape"):
        apply_direction(twin, torch.randn(1, 8), d, 1.0)
    with pytest.raises(ValueError, match=r"w must be \[N, 8\] or \[N, 4, 8\]"):
        apply_direction(G, torch.randn(1, 3, 8), d, 1.0)
    with pytest.raises(ValueError, match="layers must be distinct ws indices in"):
        sefa(G, layers=[0, 4])
