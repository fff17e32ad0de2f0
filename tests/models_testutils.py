"""Checks shared by the tests of the classic GAN model files (gan, dcgan, sngan)."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from gankern.nn import set_impl
from gankern.ops import BackendUnavailableError


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def one_hot(labels, num_classes: int) -> torch.Tensor:
    return F.one_hot(torch.as_tensor(labels), num_classes).float()


def random_labels(n: int, c_dim: int) -> torch.Tensor:
    """One-hot labels [n, c_dim] ([n, 0] for an unconditional network)."""
    if c_dim == 0:
        return torch.zeros(n, 0)
    return one_hot(torch.randint(0, c_dim, (n,)), c_dim)


def assert_every_param_gets_a_gradient(module: torch.nn.Module, loss: torch.Tensor) -> None:
    """Backward ``loss``: each parameter gets a finite gradient that is not all zero."""
    module.zero_grad(set_to_none=True)
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def assert_config_roundtrips(config, build_kwargs=None) -> None:
    """asdict -> JSON -> Config(**dict) rebuilds the same network (tuples come back as lists)."""
    data = json.loads(json.dumps(dataclasses.asdict(config)))
    again = type(config)(**data)
    assert again == config
    net = config.build(**(build_kwargs or {}))
    net2 = again.build(**(build_kwargs or {}))
    net2.load_state_dict(net.state_dict())
    assert count_params(net2) == count_params(net)


def assert_set_impl_switches_every_layer(net: torch.nn.Module, run, min_layers: int) -> None:
    """``set_impl`` reaches every fused layer: ref and auto agree on the CPU, and forcing the
    CUDA backend makes the (CPU) forward pass fail, so the layers do pass their impl down."""
    net = copy.deepcopy(net).eval()
    layers = [m for m in net.modules() if isinstance(getattr(m, "impl", None), str)]
    assert len(layers) >= min_layers
    set_impl(net, "ref")
    torch.manual_seed(0)
    expected = run(net)
    set_impl(net, "auto")
    torch.manual_seed(0)
    actual = run(net)
    for a, e in zip(_flat(actual), _flat(expected), strict=True):
        assert torch.equal(a, e)
    set_impl(net, "cuda")
    assert all(m.impl == "cuda" for m in layers)
    with pytest.raises(BackendUnavailableError):
        run(net)


def assert_set_impl_switches_both(G, D, c_dim: int, g_layers: int, d_layers: int) -> None:
    """:func:`assert_set_impl_switches_every_layer` for a generator and its discriminator."""
    z, c = torch.randn(2, G.z_dim), random_labels(2, c_dim)
    assert_set_impl_switches_every_layer(G, lambda g: g(z, c), min_layers=g_layers)
    img = torch.randn(2, D.img_channels, D.img_resolution, D.img_resolution)
    assert_set_impl_switches_every_layer(D, lambda d: d(img, c), min_layers=d_layers)


def _flat(out):
    return out if isinstance(out, tuple) else (out,)
