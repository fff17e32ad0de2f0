"""Shared helpers of the StyleGAN2 tests: tiny network builders and state randomization."""

from __future__ import annotations

import torch

from gankern.models.stylegan2 import Discriminator, Generator

# 16x16 RGB, 8 feature maps at 4 and 8 px, 4 at 16 px: small enough for per-sample references.
TINY = dict(resolution=16, channel_base=64, channel_max=8, w_dim=8, z_dim=8, mapping_layers=2)


def tiny_generator(c_dim=0, architecture="skip", conv_clamp=None, num_fp16_res=0, **kwargs):
    return Generator(
        z_dim=TINY["z_dim"],
        c_dim=c_dim,
        w_dim=TINY["w_dim"],
        img_resolution=kwargs.pop("resolution", TINY["resolution"]),
        img_channels=kwargs.pop("img_channels", 3),
        mapping_kwargs=dict(num_layers=TINY["mapping_layers"]),
        synthesis_kwargs=dict(
            channel_base=TINY["channel_base"],
            channel_max=TINY["channel_max"],
            architecture=architecture,
            conv_clamp=conv_clamp,
            num_fp16_res=num_fp16_res,
            **kwargs,
        ),
    )


def tiny_discriminator(c_dim=0, architecture="resnet", conv_clamp=None, num_fp16_res=0, **kwargs):
    return Discriminator(
        c_dim=c_dim,
        img_resolution=kwargs.pop("resolution", TINY["resolution"]),
        img_channels=kwargs.pop("img_channels", 3),
        architecture=architecture,
        channel_base=TINY["channel_base"],
        channel_max=TINY["channel_max"],
        conv_clamp=conv_clamp,
        num_fp16_res=num_fp16_res,
        mapping_kwargs=dict(num_layers=2),
        **kwargs,
    )


@torch.no_grad()
def randomize_(module: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> torch.nn.Module:
    """Perturb every parameter and the w average so that biases, noise strengths etc. matter."""
    g = torch.Generator().manual_seed(seed)
    for p in module.parameters():
        p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    for name, b in module.named_buffers():
        if name.endswith("w_avg"):
            b.copy_(torch.randn(b.shape, generator=g, dtype=b.dtype))
    return module


def state64(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().double() for k, v in module.state_dict().items()}
