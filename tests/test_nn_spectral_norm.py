"""gankern.nn spectral normalization against torch.linalg.svdvals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankern.nn import apply_spectral_norm, has_spectral_norm, spectral_norm


def _top_singular_value(weight: torch.Tensor, out_dim: int = 0) -> float:
    """Largest singular value of the weight as a matrix [out, -1] (Miyato et al.'s view)."""
    mat = weight.detach().movedim(out_dim, 0).reshape(weight.shape[out_dim], -1).double()
    return float(torch.linalg.svdvals(mat)[0])


def _converge(module: nn.Module, steps: int = 60) -> None:
    # In training mode every access to .weight runs one power iteration.
    module.train()
    for _ in range(steps):
        _ = module.weight
    module.eval()


@pytest.mark.parametrize(
    "make, out_dim",
    [
        (lambda: nn.Conv2d(5, 7, 3), 0),
        (lambda: nn.Linear(12, 9), 0),
        (lambda: nn.Embedding(10, 6), 0),
        # torch normalizes a transposed convolution over its output channels (dim 1)
        (lambda: nn.ConvTranspose2d(6, 4, 4), 1),
    ],
)
def test_largest_singular_value_becomes_one(make, out_dim):
    module = make()
    with torch.no_grad():
        module.weight.mul_(3.7)  # far from 1 before normalization
    assert _top_singular_value(module.weight, out_dim) > 1.5
    spectral_norm(module)
    _converge(module)
    assert _top_singular_value(module.weight, out_dim) == pytest.approx(1.0, abs=1e-4)
    # the stored parameter is untouched and is what the optimizer sees
    original = module.parametrizations.weight.original
    assert _top_singular_value(original, out_dim) > 1.5
    # spectral norm adds no parameter: the weight moves under parametrizations
    names = {n for n, _ in module.named_parameters()}
    assert names == {n for n, _ in make().named_parameters()} - {"weight"} | {
        "parametrizations.weight.original"
    }


def test_one_power_iteration_per_training_forward():
    torch.manual_seed(1)
    layer = spectral_norm(nn.Linear(8, 6))
    u0 = layer.parametrizations.weight[0]._u.clone()
    layer(torch.randn(2, 8))
    u1 = layer.parametrizations.weight[0]._u.clone()
    assert not torch.equal(u0, u1)
    # the same update by hand: v = normalize(W^T u), u = normalize(W v)
    w = layer.parametrizations.weight.original.detach()
    v = nn.functional.normalize(w.t() @ u0, dim=0, eps=1e-12)
    u = nn.functional.normalize(w @ v, dim=0, eps=1e-12)
    torch.testing.assert_close(u1, u)
    layer.eval()
    layer(torch.randn(2, 8))
    torch.testing.assert_close(layer.parametrizations.weight[0]._u, u1)  # frozen in eval


def test_apply_spectral_norm_reaches_every_weight_layer_once():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Sequential(nn.ConvTranspose2d(4, 4, 2), nn.ReLU()),
        nn.Flatten(),
        nn.Linear(16, 2),
    )
    net.embed = nn.Embedding(3, 2)
    apply_spectral_norm(net)
    normalized = [m for m in net.modules() if has_spectral_norm(m)]
    assert len(normalized) == 4
    assert not has_spectral_norm(net[1])  # batch norm keeps its affine weight
    apply_spectral_norm(net)  # idempotent
    assert all(len(m.parametrizations.weight) == 1 for m in normalized)
    state = net.state_dict()
    assert (
        "0.parametrizations.weight.original" in state and "0.parametrizations.weight.0._u" in state
    )


def test_apply_spectral_norm_types_and_options():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2))
    apply_spectral_norm(net, types=(nn.Linear,), n_power_iterations=3, eps=1e-8)
    assert not has_spectral_norm(net[0])
    sn = net[1].parametrizations.weight[0]
    assert sn.n_power_iterations == 3 and sn.eps == 1e-8


def test_errors():
    layer = spectral_norm(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="already spectrally normalized"):
        spectral_norm(layer)
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral_norm(nn.Linear(3, 3), n_power_iterations=0)
    with pytest.raises(ValueError, match="eps"):
        spectral_norm(nn.Linear(3, 3), eps=0.0)
    with pytest.raises(ValueError, match="'weight' with at least 2 dimensions"):
        spectral_norm(nn.ReLU())
    with pytest.raises(TypeError, match="module"):
        apply_spectral_norm("net")
    with pytest.raises(TypeError, match="types"):
        apply_spectral_norm(nn.Linear(2, 2), types=[nn.Linear])
