"""Projection's mechanics on a small random generator: W+ and noise maps, the saved latent
reproducing the image, the schedule and the noise regularization against hand-computed
values, the distances available offline, and bad targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from editing_utils import untrained_stylegan2

from gankern.editing import load_projection, project, resolve_distance, save_projection, with_noise
from gankern.editing.projection import _learning_rate, _noise_regularization, noise_buffers
from gankern.metrics import WeightsNotFoundError


def test_wplus_with_noise_maps_saves_what_reproduces_the_image(tmp_path):
    G = untrained_stylegan2(w_dim=8)
    stored = {k: v.clone() for k, v in noise_buffers(G).items()}
    target = torch.rand(1, 8, 8) * 2 - 1
    result = project(G, target, num_steps=30, w_plus=True, optimize_noise=True,
                     distance="mse", w_avg_samples=100, record_every=7)
    assert result.ws.shape == (1, G.num_ws, 8) and result.w_plus
    assert not torch.equal(result.ws[0, 0], result.ws[0, -1])  # one w per layer
    assert result.frame_steps == [1, 8, 15, 22, 29, 30] and len(result.frames) == 6
    assert sorted(result.noise) == sorted(stored)
    for name, noise in result.noise.items():  # renormalized after every step
        assert abs(float(noise.mean())) < 1e-5 and abs(float(noise.std(correction=0)) - 1) < 1e-4
        assert torch.equal(noise_buffers(G)[name], stored[name])  # G itself is unchanged
    assert len(result.distances) == 30 and result.distances[-1] < result.distances[0]

    path = save_projection(result, tmp_path / "projected_w.npz")
    ws, noise = load_projection(path)
    torch.testing.assert_close(ws, result.ws, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(with_noise(G, noise).synthesis(ws, noise_mode="const"),
                                   result.image)
        # Without its noise maps the image differs (the strengths are not zero).
        assert not torch.allclose(G.synthesis(ws, noise_mode="const"), result.image)


def test_one_w_for_all_layers_keeps_the_stored_noise():
    G = untrained_stylegan2(w_dim=8)
    result = project(G, torch.zeros(1, 8, 8, dtype=torch.uint8) + 128, num_steps=5,
                     distance="mse", w_avg_samples=50)
    assert result.noise == {} and not result.w_plus
    assert torch.equal(result.ws[0, 0], result.ws[0, -1])
    with torch.no_grad():
        torch.testing.assert_close(G.synthesis(result.ws, noise_mode="const"), result.image)


def test_learning_rate_schedule_and_noise_regularization_by_hand():
    peak = 0.1  # ramp up over the first 5% of the steps, cosine down over the last 25%
    for t, expected in ((0.0, 0.0), (0.025, peak / 2), (0.05, peak), (0.5, peak),
                        (0.75, peak), (0.875, peak / 2), (0.999, peak * 0.5 * (
                            1 - math.cos(math.pi * 0.004)))):
        assert _learning_rate(t, peak, 0.25, 0.05) == pytest.approx(expected, abs=1e-12), t
    # A constant map correlates perfectly with its shifts: (1)^2 per direction per level;
    # a 16 px map has the levels 16 and 8.
    assert float(_noise_regularization([torch.ones(16, 16)])) == pytest.approx(4.0)
    # A checkerboard anticorrelates at one pixel (-1)^2 = 1 per direction; at 8 px it
    # averages to 0.
    board = torch.tensor([[(-1.0) ** (i + j) for j in range(16)] for i in range(16)])
    assert float(_noise_regularization([board])) == pytest.approx(2.0)


def test_distances_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKERN_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("GANKERN_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("GANKERN_LPIPS_WEIGHTS", raising=False)
    fn, name, note = resolve_distance("auto", "cpu")
    assert name == "mse" and "no perceptual network available offline" in note
    assert "MSE only" in note
    a, b = torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    np.testing.assert_allclose(fn(a, b).numpy(), ((a - b) ** 2).mean(dim=(1, 2, 3)).numpy())
    for explicit in ("lpips", "vgg16"):
        with pytest.raises(WeightsNotFoundError, match="gankern never downloads"):
            resolve_distance(explicit, "cpu")
    with pytest.raises(ValueError, match="distance must be one of"):
        resolve_distance("l2", "cpu")


def test_bad_targets():
    G = untrained_stylegan2(w_dim=8)
    with pytest.raises(ValueError, match=r"target must have shape \[1, 8, 8\]"):
        project(G, torch.zeros(1, 16, 16), num_steps=1)
    with pytest.raises(ValueError, match="pass uint8 pixels for 0..255"):
        project(G, torch.full((1, 8, 8), 200.0), num_steps=1)
    with pytest.raises(ValueError, match="num_steps must be an integer >= 1"):
        project(G, torch.zeros(1, 8, 8), num_steps=0)
