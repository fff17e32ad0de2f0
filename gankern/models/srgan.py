"""SRGAN (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network"): the SRResNet generator and the SRGAN discriminator.

* ``G = SRResNetConfig().build()``; ``G(lr)`` -> ``[N, out_channels, scale * h, scale * w]``
  from a low-resolution ``[N, in_channels, h, w]``.
* ``D = SRGANDiscriminatorConfig(img_resolution=96).build()``; ``D(hr)`` -> logits ``[N, 1]``.
* Low-resolution inputs are made from high-resolution images on the fly with
  :class:`gankern.nn.BicubicDownsample` (``BicubicDownsample(scale)(hr)``: the bicubic
  kernel of the paper, on :func:`gankern.ops.upfirdn2d`), so any folder of images is
  training data.
* The content loss's feature network is VGG19 up to ``relu5_4`` (the paper's
  ``phi_{5,4}``), :func:`content_network`; :data:`SRGAN_PAPER_HYPERPARAMS` holds the
  paper's training hyperparameters; ``srgan_config(name, resolution, img_channels)``
  gives the (generator, discriminator) configs.

Architecture (the paper's Fig. 4; "kKnNsS" is a KxK convolution to N maps with stride S):

* generator: k9n64s1 + PReLU; 16 residual blocks (k3n64s1, BN, PReLU, k3n64s1, BN, plus the
  block's input); k3n64s1, BN, plus the output of the first layer; ``log2(scale)`` times
  (k3n256s1, pixel shuffle x2, PReLU); k9n3s1, then tanh (the high-resolution images are in
  [-1, 1]; ``output_act="linear"`` leaves it out as the figure does).
* discriminator: k3n64s1 + LeakyReLU(0.2); k3n64s2, k3n128s1, k3n128s2, k3n256s1, k3n256s2,
  k3n512s1, k3n512s2, each with BN and LeakyReLU(0.2); dense 1024 + LeakyReLU(0.2); dense 1
  (the logit; the paper's sigmoid belongs to the loss here).

The figure does not say whether a convolution followed by batch norm has a bias: here it
has none (the norm's shift replaces it), as in TensorLayer's widely used SRGAN
implementation (tensorlayer/srgan, ``b_init=None`` before ``BatchNorm2d``), which also gives
the initialization used here: weights N(0, 0.02), batch-norm scales N(1, 0.02) (Ledig et
al. released no code). PReLU slopes start at 0.25 (He et al. 2015), one per channel
(``prelu="channel"``, He et al.'s channel-wise form) or one per layer (``"shared"``). That
makes SRResNet 1,548,547 parameters (1,547,350 shared), the discriminator at 96x96 RGB
23,563,649 (the dense layer on the 6x6x512 features holds 18.9 M of them). Layers whose
bias directly precedes an activation (the discriminator's first convolution and first dense
layer, the generator's output with tanh) use the fused :func:`gankern.ops.bias_act`.

Content loss without VGG19 weights (the documented fallback): :func:`content_network`
returns None when ``vgg19-dcbb9e9d.pth`` is not found, and the recipe then trains with the
pixel-wise MSE content loss, which is the paper's own "SRGAN-MSE" variant (Sec. 3.4,
Table 1), or with any frozen feature network of its choice (e.g. gankern's built-in digits
classifier from :mod:`gankern.metrics` on the built-in digits). The models layer cannot
import the metrics, so that choice is the recipe's.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models.hyperparams import GANHyperparams
from gankern.models.img2img_layers import (
    check_config_choice,
    check_config_int,
    check_resolution_multiple,
    init_normal_,
    named_config,
)
from gankern.models.vgg import VGG19Features, find_vgg19_weights, load_vgg19_features
from gankern.nn import Conv2dAct, LinearAct, set_impl
from gankern.nn.bicubic import BicubicDownsample
from gankern.ops._checks import check_tensor

__all__ = [
    "SRGAN_CONFIGS",
    "SRGAN_PAPER_HYPERPARAMS",
    "BicubicDownsample",
    "SRGANDiscriminator",
    "SRGANDiscriminatorConfig",
    "SRGANHyperparams",
    "SRResNet",
    "SRResNetConfig",
    "content_network",
    "srgan_config",
]

PRELU_MODES = ("channel", "shared")
OUTPUT_ACTS = ("tanh", "linear")


@dataclass(frozen=True)
class SRResNetConfig:
    """Shape of an :class:`SRResNet`.

    Args:
        in_channels: channels of the low-resolution input.
        out_channels: channels of the high-resolution output.
        channels: feature maps of the trunk (64 in the paper).
        n_blocks: residual blocks (16 in the paper).
        scale: upscaling factor, a power of two (4 in the paper): ``log2(scale)`` pixel
            shuffle stages of x2.
        prelu: ``"channel"`` (one PReLU slope per feature map) or ``"shared"`` (one per
            layer).
        output_act: ``"tanh"`` (outputs in [-1, 1]) or ``"linear"``.
    """

    in_channels: int = 3
    out_channels: int = 3
    channels: int = 64
    n_blocks: int = 16
    scale: int = 4
    prelu: str = "channel"
    output_act: str = "tanh"

    def __post_init__(self):
        check_config_int(self, "in_channels", 1)
        check_config_int(self, "out_channels", 1)
        check_config_int(self, "channels", 1)
        check_config_int(self, "n_blocks", 0)
        check_config_int(self, "scale", 1)
        if self.scale & (self.scale - 1):
            raise ValueError(f"SRResNetConfig.scale must be a power of two, got {self.scale}")
        check_config_choice(self, "prelu", PRELU_MODES)
        check_config_choice(self, "output_act", OUTPUT_ACTS)

    def build(self, impl: str = "auto") -> SRResNet:
        """A freshly initialized generator (N(0, 0.02), torch's global RNG)."""
        return SRResNet(self, impl=impl)


def _prelu(mode: str, channels: int) -> nn.PReLU:
    return nn.PReLU(channels if mode == "channel" else 1, init=0.25)


def _conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """A 3x3 convolution without bias, then batch norm."""
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout)]


class SRResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))``, 3x3 convolutions without bias."""

    def __init__(self, channels: int, prelu: str):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(channels, channels), _prelu(prelu, channels),
                                  *_conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRGAN generator: ``G(lr)`` -> ``[N, out_channels, scale * h, scale * w]``.

    Args:
        config: an :class:`SRResNetConfig`.
        impl: backend of the fused output bias + activation (see :mod:`gankern.ops`).

    Attributes ``in_channels``, ``out_channels``, ``scale``.
    """

    def __init__(self, config: SRResNetConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, SRResNetConfig):
            raise TypeError(f"config must be an SRResNetConfig, got {type(config).__name__}")
        self.config = config
        self.in_channels, self.out_channels = config.in_channels, config.out_channels
        self.scale = config.scale
        c = config.channels
        self.head = nn.Sequential(nn.Conv2d(self.in_channels, c, 9, padding=4),
                                  _prelu(config.prelu, c))
        self.blocks = nn.Sequential(*[SRResidualBlock(c, config.prelu)
                                      for _ in range(config.n_blocks)])
        self.trunk_end = nn.Sequential(*_conv_bn(c, c))
        upsample: list[nn.Module] = []
        for _ in range(int(math.log2(config.scale))):
            upsample += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2),
                         _prelu(config.prelu, c)]
        self.upsample = nn.Sequential(*upsample)
        self.tail = Conv2dAct(c, self.out_channels, 9, padding=4, act=config.output_act,
                              impl=impl)
        init_normal_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: low-resolution images ``[N, in_channels, h, w]``."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must have {self.in_channels} channel(s), got shape "
                             f"{tuple(x.shape)}")
        features = self.head(x)
        x = features + self.trunk_end(self.blocks(features))
        return self.tail(self.upsample(x))

    def set_impl(self, impl: str) -> SRResNet:
        """Use backend ``impl`` for the fused ops of every layer."""
        return set_impl(self, impl)


@dataclass(frozen=True)
class SRGANDiscriminatorConfig:
    """Shape of an :class:`SRGANDiscriminator`.

    Args:
        img_channels: channels of the high-resolution images.
        img_resolution: their side (96 in the paper); a multiple of 16 (the dense layer's
            input is ``(img_resolution / 16)**2 * 8 * channels`` features).
        channels: feature maps of the first two convolutions (64); the later pairs have 2x,
            4x and 8x as many.
        dense: width of the hidden dense layer (1024).
    """

    img_channels: int = 3
    img_resolution: int = 96
    channels: int = 64
    dense: int = 1024

    def __post_init__(self):
        check_config_int(self, "img_channels", 1)
        check_config_int(self, "channels", 1)
        check_config_int(self, "dense", 1)
        check_resolution_multiple(self.img_resolution, 16)

    def build(self, impl: str = "auto") -> SRGANDiscriminator:
        """A freshly initialized discriminator (N(0, 0.02), torch's global RNG)."""
        return SRGANDiscriminator(self, impl=impl)


class SRGANDiscriminator(nn.Module):
    """The SRGAN discriminator: ``D(hr)`` -> logits ``[N, 1]``.

    Args:
        config: an :class:`SRGANDiscriminatorConfig`.
        impl: backend of the fused bias + LeakyReLU layers (see :mod:`gankern.ops`).

    Attributes ``img_channels``, ``img_resolution``.
    """

    def __init__(self, config: SRGANDiscriminatorConfig, impl: str = "auto"):
        super().__init__()
        if not isinstance(config, SRGANDiscriminatorConfig):
            raise TypeError(f"config must be an SRGANDiscriminatorConfig, got "
                            f"{type(config).__name__}")
        self.config = config
        self.img_channels, self.img_resolution = config.img_channels, config.img_resolution
        c = config.channels
        widths = [c, c, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
        layers: list[nn.Module] = [Conv2dAct(self.img_channels, c, 3, padding=1, act="lrelu",
                                             alpha=0.2, impl=impl)]
        for i in range(1, len(widths)):
            layers += [*_conv_bn(widths[i - 1], widths[i], stride=2 if i % 2 else 1),
                       nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        side = config.img_resolution // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),
            LinearAct(widths[-1] * side * side, config.dense, act="lrelu", alpha=0.2, impl=impl),
            nn.Linear(config.dense, 1),
        )
        init_normal_(self)

    def forward(self, images: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``images``: ``[N, img_channels, img_resolution, img_resolution]``; ``c`` is ignored."""
        check_tensor("images", images, ndim=4)
        r = self.img_resolution
        if images.shape[1:] != (self.img_channels, r, r):
            raise ValueError(f"images must be [N, {self.img_channels}, {r}, {r}], got shape "
                             f"{tuple(images.shape)}")
        return self.classifier(self.features(images))

    def set_impl(self, impl: str) -> SRGANDiscriminator:
        """Use backend ``impl`` for the fused ops of every layer."""
        return set_impl(self, impl)


def content_network(weights: str | os.PathLike | None = None, layer: str = "relu5_4",
                    device=None) -> VGG19Features | None:
    """SRGAN's content-loss network, VGG19 up to ``layer``, or None without its weights.

    Args:
        weights: path of torchvision's ``vgg19-dcbb9e9d.pth``; None looks in
            ``$GANKERN_VGG19_WEIGHTS``, then ``<cache>/models/`` (never downloads).
        layer: ``"relu5_4"`` (the paper's VGG54, default) or ``"relu2_2"`` (VGG22).
        device: where to put it.

    None means no weights file was found: the recipe falls back (see the module doc). An
    explicit ``weights`` path that does not exist raises instead, as does a file that is not
    VGG19's.
    """
    if weights is None and find_vgg19_weights() is None:
        return None
    return load_vgg19_features(weights, layer=layer, device=device)


@dataclass(frozen=True)
class SRGANHyperparams:
    """Training hyperparameters of SRGAN (see :data:`SRGAN_PAPER_HYPERPARAMS`): the
    adversarial settings as every model records them, plus SRGAN's own."""

    gan: GANHyperparams  # loss, optimizer, learning rates, batch, schedule
    scale: int  # upscaling factor
    hr_crop: int  # random high-resolution crops of this side
    pretrain_iters: int  # SRResNet pre-training with the MSE loss (its own mode)
    gan_iters: int  # SRGAN updates at the initial lr ...
    gan_iters_low_lr: int  # ... then this many at lr * lr_decay
    lr_decay: float
    adversarial_weight: float  # weight of the adversarial loss in G's perceptual loss
    content_loss: str  # "vgg54": MSE of VGG19 relu5_4 features (fallback: "mse", pixels)
    vgg_rescale: float  # the VGG feature maps are multiplied by this before the MSE
    lr_range: tuple[float, float]  # value range of the low-resolution inputs
    hr_range: tuple[float, float]  # value range of the high-resolution images and outputs


# Ledig et al. 2017, Sec. 3.2 ("Training details and parameters"): 96x96 HR crops of 16
# distinct images per batch, LR made with a bicubic kernel, r = 4; LR in [0, 1], HR in
# [-1, 1]; Adam, beta1 = 0.9; SRResNet trained with MSE for 10^6 updates at lr 1e-4; SRGAN
# initialized from it, 10^5 updates at 1e-4 and 10^5 at 1e-5, alternating D and G (k = 1);
# VGG feature maps rescaled by 1/12.75 (for losses comparable to the MSE's); Sec. 2.2.2 and
# eq. (3): perceptual loss = content loss + 10^-3 * adversarial loss, the generator's
# adversarial loss -log D(G(I_LR)). The 1/12.75 was calibrated for the authors' VGG19 on
# their input scaling; with torchvision's weights (ImageNet-normalized inputs) the feature
# scale differs, so the recipe should treat it as a starting point.
SRGAN_PAPER_HYPERPARAMS = SRGANHyperparams(
    gan=GANHyperparams(
        source="Ledig et al. 2017, Sec. 2.2, 3.2",
        loss="nonsaturating", optimizer="adam", lr_g=1e-4, lr_d=1e-4, betas=(0.9, 0.999),
        batch=16, total_g_steps=200_000,
        notes="lr 1e-4 for 10^5 updates, then 1e-5 for 10^5 (a step the schedules do not "
              "express); G starts from an SRResNet trained with MSE for 10^6 updates",
    ),
    scale=4, hr_crop=96, pretrain_iters=1_000_000, gan_iters=100_000, gan_iters_low_lr=100_000,
    lr_decay=0.1, adversarial_weight=1e-3, content_loss="vgg54", vgg_rescale=1 / 12.75,
    lr_range=(0.0, 1.0), hr_range=(-1.0, 1.0),
)


def _srgan(resolution, img_channels, *, channels, n_blocks, d_channels, dense):
    g = SRResNetConfig(in_channels=img_channels, out_channels=img_channels, channels=channels,
                       n_blocks=n_blocks)
    d = SRGANDiscriminatorConfig(img_channels=img_channels, img_resolution=resolution,
                                 channels=d_channels, dense=dense)
    return g, d


# name -> (native high-resolution side, factory(resolution, img_channels)).
SRGAN_CONFIGS = {
    # The paper's networks for 96x96 crops, 4x.
    "srgan": (96, lambda r, c: _srgan(r, c, channels=64, n_blocks=16, d_channels=64,
                                      dense=1024)),
    # gankern's CPU configuration for builtin:digits-sr (32x32 from 8x8, 4x): a step of
    # batch 16 (D and G) took 49 ms of CPU time on one thread here (busy 2-core machine).
    "digits": (32, lambda r, c: _srgan(r, c, channels=16, n_blocks=4, d_channels=8,
                                       dense=64)),
}


def srgan_config(name: str = "srgan", resolution: int | None = None, img_channels: int = 3
                 ) -> tuple[SRResNetConfig, SRGANDiscriminatorConfig]:
    """The (generator, discriminator) configs of a named SRGAN configuration.

    Args:
        name: ``"srgan"`` (the paper's) or ``"digits"`` (small, for CPUs).
        resolution: side of the high-resolution images the discriminator sees (None: the
            configuration's own, 96 or 32); a multiple of 16. The low-resolution inputs are
            ``resolution / 4``.
        img_channels: channels of the images (3, or 1 for the built-in digits).
    """
    return named_config(SRGAN_CONFIGS, name, resolution, img_channels)
