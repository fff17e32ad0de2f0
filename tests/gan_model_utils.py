"""Helpers shared by the GAN model tests (ProGAN, StyleGAN v1, SAGAN, BigGAN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def count_params(module: torch.nn.Module) -> int:
    """Number of parameter elements (spectrally normalized weights count once)."""
    return sum(p.numel() for p in module.parameters())


def assert_finite_nonzero_grads(module: torch.nn.Module, skip=()) -> None:
    """Every parameter of ``module`` (but the names in ``skip``) has a finite, non-zero
    gradient."""
    for name, p in module.named_parameters():
        if name in skip:
            continue
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has a zero gradient"


@torch.no_grad()
def randomize_with_bn_stats_(module: torch.nn.Module, seed: int = 5) -> torch.nn.Module:
    """Perturb every parameter and give the batch norms non-trivial running statistics (for
    comparisons in eval mode, where the statistics are used)."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    for name, b in module.named_buffers():
        if name.endswith("running_mean"):
            b.copy_(0.3 * torch.randn(b.shape, generator=g))
        elif name.endswith("running_var"):
            b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return module


def conv_params(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    """Parameters of a ``k x k`` convolution ``c_in -> c_out`` (a linear layer for k = 1)."""
    return k * k * c_in * c_out + (c_out if bias else 0)


def attention_params(c: int) -> int:
    """SAGAN's attention block on ``c`` maps: theta, phi (c -> c/8), g (c -> c/2), o
    (c/2 -> c), all bias-free 1x1, and gamma."""
    return 2 * conv_params(1, c, c // 8, False) + 2 * conv_params(1, c, c // 2, False) + 1


# Functional references of the SAGAN / BigGAN layers (BigGAN-PyTorch's formulas written out).


def ref_conv(x, layer):
    """``layer`` (a conv with its current, e.g. spectrally normalized, weight), 'same' padding."""
    return F.conv2d(x, layer.weight, layer.bias, padding=layer.weight.shape[-1] // 2)


def ref_batch_norm_eval(x, bn):
    """``(x - running_mean) / sqrt(running_var + eps)``, times the affine gain and bias if any."""
    x = (x - bn.running_mean.view(1, -1, 1, 1)) / (bn.running_var.view(1, -1, 1, 1) + bn.eps).sqrt()
    if bn.weight is not None:
        x = x * bn.weight.view(1, -1, 1, 1) + bn.bias.view(1, -1, 1, 1)
    return x


def ref_attention(block, x):
    """BigGAN-PyTorch's ``Attention.forward``: bmm, softmax over the keys, bmm."""
    n, _, h, w = x.shape
    theta = F.conv2d(x, block.theta.weight).flatten(2)
    phi = F.max_pool2d(F.conv2d(x, block.phi.weight), 2).flatten(2)
    g = F.max_pool2d(F.conv2d(x, block.g.weight), 2).flatten(2)
    beta = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)
    o = (g @ beta.transpose(1, 2)).view(n, -1, h, w)
    return x + block.gamma * F.conv2d(o, block.o.weight)


def ref_resnet_generator(G, z0, conditions, cbn):
    """BigGAN-PyTorch's ``Generator.forward`` after the conditioning: ``linear(z0)``, the
    GBlocks (``cbn(x, norm_module, condition)`` for their batch norms) and attention, then
    BN -> ReLU -> conv -> tanh (eval mode)."""
    h = F.linear(z0, G.linear.weight, G.linear.bias).view(z0.shape[0], -1, 4, 4)
    for layers, y in zip(G.blocks, conditions, strict=True):
        block = layers[0]
        t = F.interpolate(F.relu(cbn(h, block.bn1, y)), scale_factor=2)
        t = ref_conv(F.relu(cbn(ref_conv(t, block.conv1), block.bn2, y)), block.conv2)
        h = t + ref_conv(F.interpolate(h, scale_factor=2), block.conv_sc)
        for attention in layers[1:]:
            h = ref_attention(attention, h)
    return torch.tanh(ref_conv(F.relu(ref_batch_norm_eval(h, G.bn)), G.conv_out))
