"""Pix2Pix (Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial
Networks"): a U-Net generator and a PatchGAN discriminator conditioned on the input.

* ``G = UNetGeneratorConfig(in_channels=3, out_channels=3).build()``; ``G(x)`` -> images
  ``[N, out_channels, H, W]`` in [-1, 1] (tanh). ``H`` and ``W`` must be multiples of
  ``2**num_downs``.
* ``D = PatchGANConfig(img_channels=3, cond_channels=3).build()``; ``D(x, y)`` -> patch
  logits ``[N, 1, H', W']`` (see :mod:`gankern.models.patchgan`).
* ``pix2pix_config(name, resolution, in_channels, out_channels)`` -> ``(G config, D config)``
  for the named configurations; :data:`PIX2PIX_PAPER_HYPERPARAMS` holds the paper's
  training hyperparameters.

The U-Net follows the official ``UnetGenerator`` (junyanz/pytorch-CycleGAN-and-pix2pix,
``models/networks.py``) layer for layer, so the parameter counts are the official ones
(``unet256``: 54,413,955 generator and 2,768,705 discriminator parameters). Level ``k`` of
``num_downs`` (1 = outermost) downsamples with a 4x4 stride-2 convolution to
``ngf * min(2**(k-1), 8)`` maps and upsamples with a 4x4 stride-2 transposed convolution;
the encoder uses LeakyReLU(0.2), the decoder ReLU, the skip connection concatenates each
encoder output to the decoder input of its level. The outermost encoder convolution and the
innermost one have no normalization after them; the outermost decoder layer ends in a bias
and tanh (one fused :func:`gankern.ops.bias_act`). Dropout (0.5) follows the decoder
convolutions of the levels just outside the innermost, the official
``num_downs - 5`` of them: the paper's only source of noise (it stays on at test time in
the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.hyperparams import GANHyperparams
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
from gankern.nn import ConvTranspose2dAct, set_impl
from gankern.ops._checks import check_tensor


@dataclass(frozen=True)
class UNetGeneratorConfig:
    """Shape of a :class:`UNetGenerator`.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output image.
        num_downs: number of stride-2 levels (8 for ``unet_256``: a 256x256 input reaches
            1x1 at the bottleneck; 7 for ``unet_128``).
        ngf: feature maps of the outermost level (the official ``--ngf``, 64).
        norm: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
        dropout: dropout probability in the decoder (0 disables it; the official
            ``--no_dropout``).
        num_dropout: how many decoder levels next to the innermost one get dropout (the
            innermost itself never does); None: the official ``max(num_downs - 5, 0)``.
    """

    in_channels: int = 3
    out_channels: int = 3
    num_downs: int = 8
    ngf: int = 64
    norm: str = "batch"
    dropout: float = 0.5
    num_dropout: int | None = None

    def __post_init__(self):
        check_config_int(self, "in_channels", 1)
        check_config_int(self, "out_channels", 1)
        check_config_int(self, "num_downs", 2)
        check_config_int(self, "ngf", 1)
        check_config_choice(self, "norm", NORMS)
        check_config_number(self, "dropout", 0.0, 1.0)
        if self.dropout == 1.0:
            raise ValueError("UNetGeneratorConfig.dropout must be < 1, got 1.0")
        if self.num_dropout is not None:
            check_config_int(self, "num_dropout", 0)
            if self.num_dropout > self.num_downs - 2:
                raise ValueError(
                    f"UNetGeneratorConfig.num_dropout must be <= num_downs - 2 = "
                    f"{self.num_downs - 2} (levels between the outermost and the innermost), "
                    f"got {self.num_dropout}"
                )

    @property
    def dropout_levels(self) -> int:
        """Number of decoder levels with dropout (resolving ``num_dropout=None``)."""
        if self.dropout == 0:
            return 0
        return max(self.num_downs - 5, 0) if self.num_dropout is None else self.num_dropout

    def level_channels(self) -> list[int]:
        """Feature maps after each encoder level, outermost first."""
        return [self.ngf * min(2**k, 8) for k in range(self.num_downs)]

    def build(self, impl: str = "auto") -> UNetGenerator:
        """A freshly initialized generator (N(0, 0.02), torch's global RNG)."""
        return UNetGenerator(self, impl=impl)


class UNetGenerator(nn.Module):
    """The pix2pix U-Net: ``G(x)`` -> ``[N, out_channels, H, W]`` in [-1, 1].

    Args:
        config: a :class:`UNetGeneratorConfig`.
        impl: backend of the fused output bias + tanh (see :mod:`gankern.ops`).

    ``down[i]`` and ``up[i]`` are the encoder and decoder layers of level ``i + 1``
    (0: outermost). Attributes ``in_channels``, ``out_channels``.
    """

    def __init__(self, config: UNetGeneratorConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, UNetGeneratorConfig):
            raise TypeError(f"config must be a UNetGeneratorConfig, got {type(config).__name__}")
        self.config = config
        self.in_channels = config.in_channels
        self.out_channels = config.out_channels
        n, norm, bias = config.num_downs, config.norm, conv_bias_with_norm(config.norm)
        ch = config.level_channels()
        first_dropout = n - 1 - config.dropout_levels  # levels first_dropout..n-2 (0-based)

        def down_conv(cin, cout):
            return nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=bias)

        def up_conv(cin, cout):
            return nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=bias)

        self.down = nn.ModuleList([down_conv(self.in_channels, ch[0])])
        for i in range(1, n):
            layers = [nn.LeakyReLU(0.2), down_conv(ch[i - 1], ch[i])]
            if i < n - 1:  # the innermost level has no normalization
                layers.append(make_norm(norm, ch[i]))
            self.down.append(nn.Sequential(*layers))

        up: list[nn.Module] = [nn.Sequential(
            nn.ReLU(),
            ConvTranspose2dAct(2 * ch[0], self.out_channels, 4, stride=2, padding=1, act="tanh",
                               impl=impl),
        )]
        for i in range(1, n):
            skip = 1 if i == n - 1 else 2  # the innermost decoder sees no concatenation
            layers = [nn.ReLU(), up_conv(skip * ch[i], ch[i - 1]), make_norm(norm, ch[i - 1])]
            if first_dropout <= i < n - 1:
                layers.append(nn.Dropout(config.dropout))
            up.append(nn.Sequential(*layers))
        self.up = nn.ModuleList(up)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[N, in_channels, H, W]`` with H and W multiples of ``2**num_downs``."""
        check_tensor("x", x, ndim=4)
        step = 2**self.config.num_downs
        if x.shape[1] != self.in_channels or x.shape[2] % step or x.shape[3] % step:
            raise ValueError(
                f"x must be [N, {self.in_channels}, H, W] with H and W multiples of "
                f"2**num_downs = {step}, got shape {tuple(x.shape)}"
            )
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = self.up[-1](skips[-1])
        for i in range(len(self.up) - 2, -1, -1):
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return x

    def set_impl(self, impl: str) -> UNetGenerator:
        """Use backend ``impl`` for the fused ops of every layer."""
        return set_impl(self, impl)


@dataclass(frozen=True)
class Pix2PixHyperparams:
    """Training hyperparameters of pix2pix (see :data:`PIX2PIX_PAPER_HYPERPARAMS`): the
    adversarial settings as every model records them, plus pix2pix's own."""

    gan: GANHyperparams  # loss, optimizer, learning rates, batch, schedule
    lambda_l1: float  # weight of the L1 reconstruction loss of G
    d_loss_scale: float  # D's objective is multiplied by this (the paper halves it)
    pool_size: int  # image history pool of D (0: none)
    n_epochs: int  # epochs at the initial learning rate ...
    n_epochs_decay: int  # ... then epochs of linear decay to zero
    load_size: int  # random jitter: resize to load_size ...
    crop_size: int  # ... then a random crop of crop_size
    xflip: bool  # random horizontal flips of the pair
    dropout_at_test: bool  # the paper keeps dropout (and batch statistics) on at test time


# Isola et al. 2017, Sec. 3.3 and 4 ("minibatch SGD and apply the Adam solver, with a learning
# rate of 0.0002, and momentum parameters beta1 = 0.5, beta2 = 0.999"; "we divide the objective
# by 2 while optimizing D"; lambda = 100; batch sizes between 1 and 10, facades with batch 1;
# random jitter by resizing 256 -> 286 and cropping back, mirroring), and the official code's
# defaults (options/train_options.py: n_epochs 100 + n_epochs_decay 100, lr_policy linear;
# models/pix2pix_model.py: gan_mode vanilla, i.e. BCE with real labels for G, pool_size 0,
# lambda_L1 100).
PIX2PIX_PAPER_HYPERPARAMS = Pix2PixHyperparams(
    gan=GANHyperparams(
        source="Isola et al. 2017, Sec. 3.3, 4; junyanz/pytorch-CycleGAN-and-pix2pix options",
        loss="nonsaturating", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
        batch=1, lr_schedule="linear", lr_decay_start=40_000, total_g_steps=80_000,
        notes="the steps are facades' (400 training pairs, batch 1): 100 epochs at the "
              "initial rate, then 100 of linear decay to zero; D's objective is halved",
    ),
    lambda_l1=100.0, d_loss_scale=0.5, pool_size=0, n_epochs=100, n_epochs_decay=100,
    load_size=286, crop_size=256, xflip=True, dropout_at_test=True,
)


def _unet(num_downs, ngf, resolution, in_channels, out_channels, *, ndf, n_layers,
          num_dropout=None) -> tuple[UNetGeneratorConfig, PatchGANConfig]:
    g = UNetGeneratorConfig(in_channels=in_channels, out_channels=out_channels,
                            num_downs=num_downs, ngf=ngf, num_dropout=num_dropout)
    d = PatchGANConfig(img_channels=out_channels, cond_channels=in_channels, ndf=ndf,
                       n_layers=n_layers, norm=g.norm)
    check_resolution_multiple(resolution, 2**num_downs)
    return g, d


# name -> (native resolution, factory(resolution, in_channels, out_channels)).
PIX2PIX_CONFIGS = {
    # The official unet_256 / unet_128 with the basic (70x70) PatchGAN, 64 channels.
    "unet256": (256, lambda r, i, o: _unet(8, 64, r, i, o, ndf=64, n_layers=3)),
    "unet128": (128, lambda r, i, o: _unet(7, 64, r, i, o, ndf=64, n_layers=3)),
    # gankern's CPU configuration for the 32x32 built-in tasks (builtin:digits-edges): five
    # levels down to 1x1, one dropout level, a 34x34 PatchGAN (n_layers=2). A step of batch
    # 16 (D and G) took 33 ms of CPU time on one thread here (busy 2-core machine).
    "digits": (32, lambda r, i, o: _unet(5, 16, r, i, o, ndf=16, n_layers=2, num_dropout=1)),
}


def pix2pix_config(name: str = "unet256", resolution: int | None = None, in_channels: int = 3,
                   out_channels: int = 3) -> tuple[UNetGeneratorConfig, PatchGANConfig]:
    """The (generator, discriminator) configs of a named pix2pix configuration.

    Args:
        name: ``"unet256"``, ``"unet128"`` (the official ``--netG unet_256/unet_128`` with
            ``--netD basic``) or ``"digits"`` (a small CPU configuration for 32x32 images).
        resolution: image side the networks will see (None: the configuration's own); it
            must be a multiple of ``2**num_downs``. The networks are fully convolutional, so
            this is a check, not a shape parameter.
        in_channels, out_channels: channels of the input and output images.
    """
    return named_config(PIX2PIX_CONFIGS, name, resolution, in_channels, out_channels)
