"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): a ResNet generator, the PatchGAN discriminator and the image pool.

* ``G = ResnetGeneratorConfig(in_channels=3, out_channels=3).build()``; ``G(x)`` -> images
  ``[N, out_channels, H, W]`` in [-1, 1] (tanh); H and W multiples of
  ``2**n_downsampling``.
* ``D = PatchGANConfig(img_channels=3, norm="instance").build()``; ``D(y)`` -> patch logits
  (see :mod:`gankern.models.patchgan`).
* :class:`~gankern.models.image_pool.ImagePool`: the 50-image history of the discriminators.
* ``cyclegan_config(name, resolution, in_channels, out_channels)`` -> ``(G config, D
  config)`` for the translation A -> B (the generator A -> B and the discriminator of domain
  B); the reverse pair is ``cyclegan_config(name, resolution, out_channels, in_channels)``.
  :data:`CYCLEGAN_PAPER_HYPERPARAMS` holds the paper's training hyperparameters.

The generator follows the official ``ResnetGenerator`` (Johnson et al.'s architecture;
junyanz/pytorch-CycleGAN-and-pix2pix, ``models/networks.py``) layer for layer: reflection
padding and a 7x7 convolution to ``ngf`` maps, ``n_downsampling`` 3x3 stride-2 convolutions
doubling the maps, ``n_blocks`` residual blocks (reflection pad, 3x3 conv, norm, ReLU,
[dropout], reflection pad, 3x3 conv, norm, plus the input), as many 3x3 stride-2 transposed
convolutions back, and a reflection-padded 7x7 convolution with bias and tanh (one fused
:func:`gankern.ops.bias_act`). Every convolution but the last is followed by the
normalization and ReLU. ``resnet9`` at 256 px has the official 11,378,179 generator and
2,764,737 discriminator parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.hyperparams import GANHyperparams
from gankern.models.image_pool import ImagePool
from gankern.models.img2img_layers import (
    NORMS,
    check_config_choice,
    check_config_int,
    check_config_number,
    check_resolution_multiple,
    conv_bias_with_norm,
    init_normal_,
    make_norm,
    named_config,
)
from gankern.models.patchgan import PatchGANConfig
from gankern.nn import Conv2dAct, set_impl
from gankern.ops._checks import check_tensor

__all__ = [
    "CYCLEGAN_CONFIGS",
    "CYCLEGAN_PAPER_HYPERPARAMS",
    "CycleGANHyperparams",
    "ImagePool",
    "ResnetBlock",
    "ResnetGenerator",
    "ResnetGeneratorConfig",
    "cyclegan_config",
]


@dataclass(frozen=True)
class ResnetGeneratorConfig:
    """Shape of a :class:`ResnetGenerator`.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        ngf: feature maps of the first layer (the official ``--ngf``, 64).
        n_blocks: residual blocks at the lowest resolution (9: ``resnet_9blocks``, the paper's
            choice for 256x256 images; 6: ``resnet_6blocks`` for 128x128).
        n_downsampling: stride-2 convolutions down (and transposed convolutions up); the
            official code fixes it at 2.
        norm: ``"instance"`` (CycleGAN), ``"batch"`` or ``"none"``.
        dropout: dropout probability inside the residual blocks (0: none, the CycleGAN
            default; the official ``--no_dropout`` is on for CycleGAN).
        outer_kernel: side of the first and last convolutions (odd; 7 in the official code,
            where it spans 7/256 of the image). The small CPU configuration uses 3 on its
            32x32 images: a 7x7 convolution's backward pass is several times slower than a
            3x3 one's on CPUs at these sizes (measured 3.4 ms vs 1.0 ms, batch 16, one thread).
    """

    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64
    n_blocks: int = 9
    n_downsampling: int = 2
    norm: str = "instance"
    dropout: float = 0.0
    outer_kernel: int = 7

    def __post_init__(self):
        check_config_int(self, "in_channels", 1)
        check_config_int(self, "out_channels", 1)
        check_config_int(self, "ngf", 1)
        check_config_int(self, "n_blocks", 0)
        check_config_int(self, "n_downsampling", 0)
        check_config_choice(self, "norm", NORMS)
        check_config_number(self, "dropout", 0.0, 1.0)
        if self.dropout == 1.0:
            raise ValueError("ResnetGeneratorConfig.dropout must be < 1, got 1.0")
        check_config_int(self, "outer_kernel", 1)
        if self.outer_kernel % 2 == 0:
            raise ValueError(f"ResnetGeneratorConfig.outer_kernel must be odd, got "
                             f"{self.outer_kernel}")

    def build(self, impl: str = "auto") -> ResnetGenerator:
        """A freshly initialized generator (N(0, 0.02), torch's global RNG)."""
        return ResnetGenerator(self, impl=impl)


class ResnetBlock(nn.Module):
    """``x + F(x)`` with ``F`` = reflection pad, 3x3 conv, norm, ReLU, [dropout], reflection
    pad, 3x3 conv, norm.

    Args:
        channels: feature maps in and out.
        norm: ``"instance"``, ``"batch"`` or ``"none"``.
        dropout: dropout probability after the first ReLU (0: none).
    """

    def __init__(self, channels: int, norm: str, dropout: float = 0.0):
        super().__init__()
        bias = conv_bias_with_norm(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                  make_norm(norm, channels), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                   make_norm(norm, channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The CycleGAN generator: ``G(x)`` -> ``[N, out_channels, H, W]`` in [-1, 1].

    Args:
        config: a :class:`ResnetGeneratorConfig`.
        impl: backend of the fused output bias + tanh (see :mod:`gankern.ops`).

    Attributes ``in_channels``, ``out_channels``.
    """

    def __init__(self, config: ResnetGeneratorConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, ResnetGeneratorConfig):
            raise TypeError(f"config must be a ResnetGeneratorConfig, got "
                            f"{type(config).__name__}")
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        ngf, norm, bias = config.ngf, config.norm, conv_bias_with_norm(config.norm)
        k = config.outer_kernel

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(k // 2), nn.Conv2d(self.in_channels, ngf, k, bias=bias),
            make_norm(norm, ngf), nn.ReLU(),
        ]
        for i in range(config.n_downsampling):
            cin, cout = ngf * 2**i, ngf * 2 ** (i + 1)
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias),
                       make_norm(norm, cout), nn.ReLU()]
        width = ngf * 2**config.n_downsampling
        layers += [ResnetBlock(width, norm, config.dropout) for _ in range(config.n_blocks)]
        for i in range(config.n_downsampling, 0, -1):
            cin, cout = ngf * 2**i, ngf * 2 ** (i - 1)
            layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       make_norm(norm, cout), nn.ReLU()]
        layers += [nn.ReflectionPad2d(k // 2),
                   Conv2dAct(ngf, self.out_channels, k, act="tanh", impl=impl)]
        self.model = nn.Sequential(*layers)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, in_channels, H, W]``, H and W multiples of ``2**n_downsampling``."""
        check_tensor("x", x, ndim=4)
        step = 2**self.config.n_downsampling
        if x.shape[1] != self.in_channels or x.shape[2] % step or x.shape[3] % step:
            raise ValueError(
                f"x must be [N, {self.in_channels}, H, W] with H and W multiples of "
                f"2**n_downsampling = {step}, got shape {tuple(x.shape)}"
            )
        return self.model(x)

    def set_impl(self, impl: str) -> ResnetGenerator:
        """Use backend ``impl`` for the fused ops of every layer."""
        return set_impl(self, impl)


@dataclass(frozen=True)
class CycleGANHyperparams:
    """Training hyperparameters of CycleGAN (see :data:`CYCLEGAN_PAPER_HYPERPARAMS`): the
    adversarial settings as every model records them, plus CycleGAN's own."""

    gan: GANHyperparams  # loss, optimizer, learning rates, batch, schedule
    lambda_cycle: float  # weight of each cycle-consistency L1 loss (lambda_A = lambda_B)
    lambda_identity: float  # identity L1 weight, relative: the loss weight is this * lambda
    d_loss_scale: float  # each D's objective is multiplied by this (halved in the paper)
    pool_size: int  # image history of each discriminator
    n_epochs: int  # epochs at the initial learning rate ...
    n_epochs_decay: int  # ... then epochs of linear decay to zero
    load_size: int  # random jitter: resize to load_size, then a random crop_size crop
    crop_size: int
    xflip: bool


# Zhu et al. 2017, Sec. 4 and Appendix 7.1 ("Training details": least-squares GAN loss;
# lambda = 10; Adam with batch size 1, lr 0.0002 kept for 100 epochs then linearly decayed to
# zero over the next 100; the discriminators see a buffer of the 50 previously generated
# images; the D objective divided by 2; 256x256 images from 286x286 random crops, flips);
# identity loss weight 0.5 * lambda (Sec. 5.2); the official code's defaults
# (options/train_options.py, models/cycle_gan_model.py: lambda_A = lambda_B = 10,
# lambda_identity 0.5, pool_size 50, gan_mode lsgan, beta1 0.5).
CYCLEGAN_PAPER_HYPERPARAMS = CycleGANHyperparams(
    gan=GANHyperparams(
        source="Zhu et al. 2017, Sec. 4, 5.2, Appendix 7.1; junyanz/pytorch-CycleGAN-and-pix2pix",
        loss="least_squares", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
        batch=1, lr_schedule="linear", lr_decay_start=133_400, total_g_steps=266_800,
        notes="the steps are horse2zebra's (an epoch is max(1067 horses, 1334 zebras) "
              "steps of batch 1): 100 epochs at the initial rate, then 100 of linear decay "
              "to zero; each D's objective is halved; targets real 1, fake 0",
    ),
    lambda_cycle=10.0, lambda_identity=0.5, d_loss_scale=0.5, pool_size=50, n_epochs=100,
    n_epochs_decay=100, load_size=286, crop_size=256, xflip=True,
)


def _resnet(n_blocks, ngf, resolution, in_channels, out_channels, *, ndf, n_layers,
            outer_kernel=7):
    g = ResnetGeneratorConfig(in_channels=in_channels, out_channels=out_channels, ngf=ngf,
                              n_blocks=n_blocks, outer_kernel=outer_kernel)
    d = PatchGANConfig(img_channels=out_channels, ndf=ndf, n_layers=n_layers, norm=g.norm)
    check_resolution_multiple(resolution, 2**g.n_downsampling)
    return g, d


# name -> (native resolution, factory(resolution, in_channels, out_channels)).
CYCLEGAN_CONFIGS = {
    # The official resnet_9blocks (256 px) and resnet_6blocks (128 px) with the basic
    # 70x70 PatchGAN, 64 channels, instance norm.
    "resnet9": (256, lambda r, i, o: _resnet(9, 64, r, i, o, ndf=64, n_layers=3)),
    "resnet6": (128, lambda r, i, o: _resnet(6, 64, r, i, o, ndf=64, n_layers=3)),
    # gankern's CPU configuration for the 32x32 built-in tasks (builtin:digits-inverted,
    # builtin:digits-color): 3 residual blocks of 16 maps at 8x8, 3x3 outer convolutions,
    # a 34x34 PatchGAN. A whole CycleGAN step (2 G, 2 D, 6 generator passes) of batch 16
    # took 79 ms of CPU time on one thread here (a busy 2-core machine, load ~8).
    "digits": (32, lambda r, i, o: _resnet(3, 4, r, i, o, ndf=8, n_layers=2, outer_kernel=3)),
}


def cyclegan_config(name: str = "resnet9", resolution: int | None = None, in_channels: int = 3,
                    out_channels: int = 3) -> tuple[ResnetGeneratorConfig, PatchGANConfig]:
    """The (generator A -> B, discriminator of B) configs of a named CycleGAN configuration.

    Args:
        name: ``"resnet9"``, ``"resnet6"`` (official) or ``"digits"`` (small, for CPUs).
        resolution: image side (None: the configuration's own); a multiple of 4. The networks
            are fully convolutional: this is a check.
        in_channels, out_channels: channels of domain A and domain B. Swap them for the
            generator B -> A and the discriminator of A.
    """
    return named_config(CYCLEGAN_CONFIGS, name, resolution, in_channels, out_channels)
