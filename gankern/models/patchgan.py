"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, Zhu et al. 2017).

A stack of 4x4 convolutions that classifies every overlapping patch of the input as real or
fake: its output is a map of logits, one per patch. With ``n_layers=3`` (the default, the
official ``--netD basic``) each output sees a 70x70 patch of the input. Structure, layer
for layer as the official ``NLayerDiscriminator`` (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``):

* conv 4x4 stride 2 (``ndf`` maps, with bias) + LeakyReLU(0.2), no normalization;
* ``n_layers - 1`` times: conv 4x4 stride 2 (``ndf * min(2**n, 8)`` maps) + norm + LeakyReLU;
* conv 4x4 stride 1 (``ndf * min(2**n_layers, 8)`` maps) + norm + LeakyReLU;
* conv 4x4 stride 1 to one map (with bias): the logits.

All convolutions pad by 1. The first layer's bias and LeakyReLU run as one fused
:func:`gankern.ops.bias_act`. Conditioned on the input image (pix2pix), the discriminator
takes ``D(x, y)`` and sees their concatenation ``[x, y]`` along channels; unconditional
(CycleGAN), ``D(y)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.img2img_layers import (
    NORMS,
    check_config_choice,
    check_config_int,
    conv_bias_with_norm,
    init_normal_,
    make_norm,
)
from gankern.nn import Conv2dAct, set_impl
from gankern.ops._checks import check_tensor


@dataclass(frozen=True)
class PatchGANConfig:
    """Shape of a :class:`PatchGANDiscriminator`.

    Args:
        img_channels: channels of the judged image ``y``.
        cond_channels: channels of the conditioning input ``x`` (pix2pix: the generator's
            input channels; 0 for an unconditional discriminator, CycleGAN).
        ndf: feature maps of the first layer (the official ``--ndf``, 64).
        n_layers: number of stride-2 convolutions (the official ``--n_layers_D``; 3 gives
            the 70x70 PatchGAN).
        norm: ``"batch"`` (pix2pix), ``"instance"`` (CycleGAN) or ``"none"``.
    """

    img_channels: int = 3
    cond_channels: int = 0
    ndf: int = 64
    n_layers: int = 3
    norm: str = "batch"

    def __post_init__(self):
        check_config_int(self, "img_channels", 1)
        check_config_int(self, "cond_channels", 0)
        check_config_int(self, "ndf", 1)
        check_config_int(self, "n_layers", 1)
        check_config_choice(self, "norm", NORMS)

    @property
    def in_channels(self) -> int:
        """Channels the first convolution sees: ``cond_channels + img_channels``."""
        return self.cond_channels + self.img_channels

    def build(self, impl: str = "auto") -> PatchGANDiscriminator:
        """A freshly initialized discriminator (N(0, 0.02), torch's global RNG)."""
        return PatchGANDiscriminator(self, impl=impl)


def receptive_field(layers: Iterable[tuple[int, int]]) -> int:
    """Side of the input region that one output pixel of a stack of convolutions sees.

    Args:
        layers: ``(kernel_size, stride)`` of each convolution, from the input to the output
            (padding does not change the size of the region, only where it lies).

    Each layer, read from the output back to the input, widens the region ``r`` seen so far
    to ``r * stride + kernel_size - stride``.
    """
    size = 1
    for kernel, stride in reversed(list(layers)):
        size = size * stride + kernel - stride
    return size


class PatchGANDiscriminator(nn.Module):
    """PatchGAN: ``D(y)`` or ``D(x, y)`` -> logits ``[N, 1, H', W']``, one per patch.

    Args:
        config: a :class:`PatchGANConfig`.
        impl: backend of the fused bias + activation (see :mod:`gankern.ops`).

    Attributes ``img_channels``, ``cond_channels`` and ``in_channels`` (their sum). The
    output side is ``H / 2**n_layers - 2`` (30x30 logits for 256x256 inputs and
    ``n_layers=3``); inputs must be at least ``3 * 2**n_layers`` pixels on each side. No
    sigmoid: the loss chooses.
    """

    def __init__(self, config: PatchGANConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, PatchGANConfig):
            raise TypeError(f"config must be a PatchGANConfig, got {type(config).__name__}")
        self.config = config
        self.img_channels = config.img_channels
        self.cond_channels = config.cond_channels
        self.in_channels = config.in_channels
        ndf, norm, bias = config.ndf, config.norm, conv_bias_with_norm(config.norm)

        def conv(cin, cout, stride, with_bias):
            return nn.Conv2d(cin, cout, kernel_size=4, stride=stride, padding=1, bias=with_bias)

        layers: list[nn.Module] = [Conv2dAct(self.in_channels, ndf, 4, stride=2, padding=1,
                                             act="lrelu", alpha=0.2, impl=impl)]
        mult = 1
        for n in range(1, config.n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < config.n_layers else 1
            layers += [conv(ndf * prev, ndf * mult, stride, bias), make_norm(norm, ndf * mult),
                       nn.LeakyReLU(0.2)]
        layers.append(conv(ndf * mult, 1, 1, True))
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    @property
    def receptive_field(self) -> int:
        """Side of the input patch each output logit sees (70 for ``n_layers=3``)."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        return receptive_field((m.kernel_size[0], m.stride[0]) for m in convs)

    def forward(self, *images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``D(y)`` (unconditional) or ``D(x, y)`` (conditioned on ``x``); ``[N, C, H, W]``.

        A class label ``c`` (keyword only) is accepted and ignored, as by the other
        unconditional discriminators.
        """
        expected = 2 if self.cond_channels else 1
        if len(images) != expected:
            usage = "D(x, y)" if self.cond_channels else "D(y)"
            raise TypeError(f"this discriminator is called as {usage} ({expected} image "
                            f"batch(es)), got {len(images)}")
        names = ("x", "y") if expected == 2 else ("y",)
        channels = (self.cond_channels, self.img_channels) if expected == 2 else (
            self.img_channels,)
        for name, image, want in zip(names, images, channels, strict=True):
            check_tensor(name, image, ndim=4)
            if image.shape[1] != want:
                raise ValueError(f"{name} must have {want} channel(s), got shape "
                                 f"{tuple(image.shape)}")
        if expected == 2 and (images[0].shape[0] != images[1].shape[0]
                              or images[0].shape[2:] != images[1].shape[2:]):
            raise ValueError(f"x and y must have the same batch size and image size, got "
                             f"{tuple(images[0].shape)} and {tuple(images[1].shape)}")
        min_side = 3 * 2**self.config.n_layers
        if min(images[-1].shape[2:]) < min_side:
            raise ValueError(f"images must be at least {min_side}x{min_side} for n_layers="
                             f"{self.config.n_layers}, got {tuple(images[-1].shape)}")
        x = torch.cat(images, dim=1) if expected == 2 else images[0]
        return self.model(x)

    def set_impl(self, impl: str) -> PatchGANDiscriminator:
        """Use backend ``impl`` for the fused ops of every layer."""
        return set_impl(self, impl)
