"""SAGAN: self-attention GAN (Zhang et al., 2019), after the official TF code.

brain-research/self-attention-gan (``generator.py`` ``generator_test``,
``discriminator.py`` ``discriminator_test``, ``non_local.py``, ``ops.py``), with the block
structure and the width tables of ajbrock/BigGAN-PyTorch (``BigGAN.py`` ``G_arch`` /
``D_arch``, the same networks), which BigGAN (:mod:`gankern.models.biggan`) reuses:

* Generator: ``z`` -> linear -> ``[16 ch, 4, 4]``; residual up-blocks ``BN -> ReLU ->
  nearest 2x -> conv3x3 -> BN -> ReLU -> conv3x3`` with a learned 1x1 shortcut of the
  upsampled input; class-conditional batch norm (a gain and a bias per class,
  :class:`gankern.nn.ConditionalBatchNorm2d`) in the blocks; self-attention
  (:class:`gankern.nn.SelfAttention`) after the block of the chosen resolution(s); ``BN ->
  ReLU -> conv3x3 -> tanh``.
* Discriminator: residual down-blocks (the first without pre-activation; "wide": the hidden
  width is the output's), ``conv3x3 -> ReLU -> conv3x3 -> avgpool`` with a 1x1 shortcut,
  self-attention after the chosen resolution, ReLU, global sum pooling, and the projection
  head ``linear(h) + <embed(c), h>`` (:class:`gankern.nn.ProjectionHead`).
* Spectral normalization of every convolution and linear layer of both networks (and of
  D's class embedding), Xavier-uniform weights and zero biases (the TF code's).

Named configurations: :func:`sagan_config` (``sagan128``: the paper's ImageNet model,
``sagan64``, ``sagan32``, ``digits``); training settings: :data:`SAGAN_TRAINING`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from gankern.models._netutils import (
    check_discriminator_inputs,
    check_float_field,
    check_generator_inputs,
    check_int_field,
    int_tuple_field,
    set_field,
)
from gankern.models.hyperparams import GANHyperparams
from gankern.nn import (
    Activation,
    ConditionalBatchNorm2d,
    Conv2dAct,
    Downsample,
    ProjectionHead,
    SelfAttention,
    Upsample,
    apply_spectral_norm,
    set_impl,
)
from gankern.nn._validate import check_bool, check_choice

BOX = (1, 1)  # the FIR filter of nearest upsampling and 2x2 average pooling
INITS = ("xavier", "ortho", "N02")

# BigGAN-PyTorch's width multipliers of ch per resolution (G_arch, D_arch): the generator's
# input width then each up-block's output width; the discriminator's block output widths
# (the first block reads the image) and which blocks halve the size. 16 px is gankern's
# (the 32 px tables one block shorter, for small CPU runs on the built-in digits).
G_WIDTHS = {
    16: (4, 4, 4),
    32: (4, 4, 4, 4),
    64: (16, 16, 8, 4, 2),
    128: (16, 16, 8, 4, 2, 1),
    256: (16, 16, 8, 8, 4, 2, 1),
    512: (16, 16, 8, 8, 4, 2, 1, 1),
}
D_WIDTHS = {
    16: ((4, 4, 4), (True, True, False)),
    32: ((4, 4, 4, 4), (True, True, False, False)),
    64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)),
    256: ((1, 2, 4, 8, 8, 16, 16), (True, True, True, True, True, True, False)),
}


def _check_common(cfg, widths: dict) -> None:
    if cfg.img_resolution not in widths:
        raise ValueError(
            f"img_resolution must be one of {sorted(widths)}, got {cfg.img_resolution!r}"
        )
    check_int_field("img_channels", cfg.img_channels, 1)
    check_int_field("c_dim", cfg.c_dim, 0)
    check_int_field("ch", cfg.ch, 1)
    set_field(cfg, "attention", int_tuple_field("attention", cfg.attention, min_len=0))
    check_float_field("sn_eps", cfg.sn_eps, 0.0)
    check_choice("init", cfg.init, INITS)


def check_generator_config(cfg) -> None:
    """Validate the fields SAGAN's and BigGAN's generator configurations share."""
    _check_common(cfg, G_WIDTHS)
    check_int_field("z_dim", cfg.z_dim, 1)
    check_float_field("bn_eps", cfg.bn_eps, 0.0)
    check_float_field("bn_momentum", cfg.bn_momentum, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class GeneratorConfig:
    """Shape of a SAGAN generator (see :class:`Generator`).

    Attributes:
        img_resolution: output resolution, one of 16, 32, 64, 128, 256, 512.
        img_channels: image channels.
        c_dim: number of classes (0: unconditional, plain batch norm).
        z_dim: latent length (128).
        ch: width multiplier (SAGAN 64: 1024 maps at 4x4 for 128 px).
        attention: resolutions after whose block a self-attention block sits (SAGAN: 32).
        bn_eps: batch-norm epsilon (1e-5).
        bn_momentum: running-statistics momentum (the TF code's decay 0.999: 0.001).
        sn_eps: epsilon of the spectral normalization (the TF code's 1e-12).
        init: weight initialization, ``xavier`` (SAGAN), ``ortho`` (BigGAN) or ``N02``.
    """

    img_resolution: int = 128
    img_channels: int = 3
    c_dim: int = 1000
    z_dim: int = 128
    ch: int = 64
    attention: tuple = (32,)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.001
    sn_eps: float = 1e-12
    init: str = "xavier"

    def __post_init__(self):
        check_generator_config(self)

    def build(self, impl: str = "auto", init: bool = True) -> Generator:
        """A freshly initialized :class:`Generator` (``init=False`` leaves torch's default
        initialization, e.g. to count the parameters of a large configuration quickly)."""
        return Generator(**dataclasses.asdict(self), impl=impl, init_weights=init)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Shape of a SAGAN (or BigGAN) discriminator (see :class:`Discriminator`).

    Attributes:
        img_resolution: input resolution, one of 16, 32, 64, 128, 256.
        img_channels: image channels.
        c_dim: number of classes (0: unconditional, no projection).
        ch: width multiplier (SAGAN 64, BigGAN 96).
        attention: resolutions after whose block a self-attention block sits.
        wide: hidden width of the blocks is the output's (SAGAN, BigGAN) instead of the
            input's (SNGAN).
        sn_eps: epsilon of the spectral normalization.
        init: weight initialization, ``xavier``, ``ortho`` or ``N02``.
    """

    img_resolution: int = 128
    img_channels: int = 3
    c_dim: int = 1000
    ch: int = 64
    attention: tuple = (32,)
    wide: bool = True
    sn_eps: float = 1e-12
    init: str = "xavier"

    def __post_init__(self):
        _check_common(self, D_WIDTHS)
        check_bool("wide", self.wide)

    def build(self, impl: str = "auto", init: bool = True) -> Discriminator:
        """A freshly initialized :class:`Discriminator` (``init=False``: torch's defaults)."""
        return Discriminator(**dataclasses.asdict(self), impl=impl, init_weights=init)


# SAGAN paper, section 5 (ImageNet 128): hinge loss, TTUR with lr 1e-4 (G) and 4e-4 (D),
# Adam beta1 0, beta2 0.9, one D step per G step, batch 256 (the TF code: 64 per tower x 4
# towers; its AdamOptimizer leaves beta2 at TF's default 0.999).
SAGAN_TRAINING = GANHyperparams(
    source="Zhang et al. 2019, sec. 5; brain-research/self-attention-gan train_imagenet.py",
    loss="hinge",
    optimizer="adam",
    lr_g=1e-4,
    lr_d=4e-4,
    betas=(0.0, 0.9),
    batch=256,
    n_critic=1,
    notes="the official TF code runs Adam with beta2 = 0.999 (TF's default)",
)
# gankern's digits setting: the same TTUR rates, batch 32.
DIGITS_TRAINING = dataclasses.replace(
    SAGAN_TRAINING, source="gankern (CPU digits)", batch=32, notes=""
)


def sagan_config(
    name: str = "sagan128",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int | None = None,
) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """A named (generator, discriminator) configuration pair.

    Args:
        name: ``sagan128`` (the paper's ImageNet model: ch 64, attention at 32x32 in both
            networks as the official ``generator_test`` / ``discriminator_test``, 1000
            classes), ``sagan64`` (attention at 32x32), ``sagan32`` (CIFAR-sized: ch 64, i.e.
            256 maps throughout, attention at 16x16) or ``digits`` (CPU-sized, 32x32
            grayscale, 10 classes: ch 8, i.e. 32 maps, attention at 16x16). The 64 and 32 px
            variants are gankern's (the paper has ImageNet 128 only), with BigGAN-PyTorch's
            width tables.
        resolution: image resolution (default: the configuration's).
        img_channels: image channels (default: the configuration's).
        c_dim: number of classes (default: the configuration's).
    """
    table = {
        "sagan128": (128, 3, 1000, 64, (32,)),
        "sagan64": (64, 3, 1000, 64, (32,)),
        "sagan32": (32, 3, 10, 64, (16,)),
        "digits": (32, 1, 10, 8, (16,)),
    }
    if name not in table:
        raise ValueError(f"name must be one of {tuple(table)}, got {name!r}")
    res, ch_img, classes, ch, attention = table[name]
    data = dict(
        img_resolution=res if resolution is None else resolution,
        img_channels=ch_img if img_channels is None else img_channels,
        c_dim=classes if c_dim is None else c_dim,
        ch=ch,
        attention=attention,
    )
    extra = dict(z_dim=64) if name == "digits" else {}
    return GeneratorConfig(**data, **extra), DiscriminatorConfig(**data)


# ---------------------------------------------------------------------------------------------
# Building blocks


def initialize_weights(module: nn.Module, style: str) -> nn.Module:
    """Initialize the ``Conv2d``, ``Linear`` and ``Embedding`` weights of ``module``.

    ``xavier``: Xavier-uniform weights and zero biases (SAGAN's TF code); ``ortho``
    (BigGAN) and ``N02`` (N(0, 0.02)): the weights only, biases keep torch's default, as
    BigGAN-PyTorch's ``init_weights``. The per-class gain and bias tables of
    :class:`gankern.nn.ConditionalBatchNorm2d` keep their 1 and 0 (SAGAN's conditional batch
    norm). Call before spectral normalization. Returns ``module``.
    """
    check_choice("init", style, INITS)
    skip = set()
    for m in module.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            skip.update((id(m.gains), id(m.biases)))
    for m in module.modules():
        if id(m) in skip or not isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            continue
        if style == "xavier":
            nn.init.xavier_uniform_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif style == "ortho":
            nn.init.orthogonal_(m.weight)
        else:
            nn.init.normal_(m.weight, 0.0, 0.02)
    return module


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that accepts (and ignores) a condition, as the conditional ones."""

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x)


class GBlock(nn.Module):
    """Residual up-block: ``conv2(act(bn2(conv1(up(act(bn1(x, y)))), y))) + up(conv_sc(x))``.

    Args:
        in_channels, out_channels: widths.
        norm: ``norm(channels)`` builds a batch norm called as ``bn(x, y)``.
        impl: backend of the activations and of the upsampling.

    The 1x1 shortcut runs before the nearest upsampling (they commute).
    """

    def __init__(self, in_channels: int, out_channels: int, norm, impl: str):
        super().__init__()
        self.bn1, self.bn2 = norm(in_channels), norm(out_channels)
        self.act = Activation("relu", impl=impl)
        self.up = Upsample(2, filter=BOX, impl=impl)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_sc = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(self.up(self.act(self.bn1(x, y))))
        h = self.conv2(self.act(self.bn2(h, y)))
        return h + self.up(self.conv_sc(x))


class DBlock(nn.Module):
    """Residual down-block: ``conv2(relu(conv1(relu?(x)))) [-> avgpool]`` plus the shortcut.

    Args:
        in_channels, out_channels: widths.
        wide: hidden width ``out_channels`` (SAGAN, BigGAN) or ``in_channels``.
        preactivation: ReLU on the input (every block but the first).
        downsample: halve the size by 2x2 average pooling.
        impl: backend of the activations and of the pooling.

    The shortcut is a 1x1 convolution when the width or the size changes (else the
    identity); it runs after the pooling (they commute).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        wide: bool,
        preactivation: bool,
        downsample: bool,
        impl: str,
    ):
        super().__init__()
        hidden = out_channels if wide else in_channels
        self.act = Activation("relu", impl=impl) if preactivation else None
        self.conv1 = Conv2dAct(in_channels, hidden, 3, padding=1, act="relu", impl=impl)
        self.conv2 = nn.Conv2d(hidden, out_channels, 3, padding=1)
        self.pool = Downsample(2, filter=BOX, impl=impl) if downsample else None
        learnable = downsample or in_channels != out_channels
        self.conv_sc = nn.Conv2d(in_channels, out_channels, 1) if learnable else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.conv1(self.act(x) if self.act is not None else x))
        if self.pool is not None:
            h, x = self.pool(h), self.pool(x)
        return h + (self.conv_sc(x) if self.conv_sc is not None else x)


# ---------------------------------------------------------------------------------------------
# Networks


class ResidualGenerator(nn.Module):
    """The ResNet generator of SAGAN and BigGAN; subclasses say how z and c condition it.

    Args:
        img_resolution, img_channels, ch, attention: as :class:`GeneratorConfig`.
        linear_in: input length of the first linear layer.
        norm: ``norm(channels)``: the blocks' batch norm, called as ``bn(x, y)``.
        bn_eps, bn_momentum: of the last (unconditional) batch norm.
        sn_eps: epsilon of the spectral normalization.
        init: ``xavier``, ``ortho`` or ``N02`` (None: torch's default initialization).
        impl: backend of the fused activations and of the resampling.
        shared: BigGAN's class embedding shared by the blocks (registered as ``shared``,
            initialized with the rest, not spectrally normalized); None for SAGAN.
    """

    def __init__(
        self, img_resolution, img_channels, ch, attention, linear_in, norm, bn_eps, bn_momentum,
        sn_eps, init, impl, shared: nn.Module | None = None,
    ):  # fmt: skip
        super().__init__()
        self.shared = shared
        self.img_resolution, self.img_channels = img_resolution, img_channels
        widths = [ch * m for m in G_WIDTHS[img_resolution]]
        self.bottom_width = 4
        self.linear = nn.Linear(linear_in, widths[0] * self.bottom_width**2)
        blocks = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers = [GBlock(c_in, c_out, norm, impl)]
            if self.bottom_width * 2 ** (i + 1) in attention:
                layers.append(SelfAttention(c_out))
            blocks.append(nn.ModuleList(layers))
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(widths[-1], eps=bn_eps, momentum=bn_momentum)
        self.act = Activation("relu", impl=impl)
        self.conv_out = Conv2dAct(widths[-1], img_channels, 3, padding=1, act="tanh", impl=impl)
        _check_attention(attention, [self.bottom_width * 2 ** (i + 1) for i in range(len(blocks))])
        if init is not None:
            initialize_weights(self, init)
        apply_spectral_norm(self, eps=sn_eps, types=(nn.Conv2d, nn.Linear))
        set_impl(self, impl)

    def conditions(self, z: torch.Tensor, c: torch.Tensor | None):
        """``(input of the first linear layer, [condition of each block])``."""
        raise NotImplementedError

    def render(self, z0: torch.Tensor, ys) -> torch.Tensor:
        """Images from the first layer's input ``z0`` and the blocks' conditions ``ys``."""
        bw = self.bottom_width
        h = self.linear(z0).view(z0.shape[0], -1, bw, bw)
        for layers, y in zip(self.blocks, ys, strict=True):
            h = layers[0](h, y)
            for attention in layers[1:]:
                h = attention(h)
        return self.conv_out(self.act(self.bn(h)))

    def set_impl(self, impl: str) -> nn.Module:
        """Use backend ``impl`` (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``) everywhere."""
        return set_impl(self, impl)


def _check_attention(attention, resolutions) -> None:
    unknown = sorted(set(attention) - set(resolutions))
    if unknown:
        raise ValueError(
            f"attention resolutions must be among the blocks' output resolutions "
            f"{sorted(set(resolutions))}, got {unknown}"
        )


class Generator(ResidualGenerator):
    """SAGAN generator: ``forward(z, c)`` -> images ``[N, img_channels, R, R]`` in [-1, 1].

    Args: the fields of :class:`GeneratorConfig`; ``impl``, the backend of the fused
    activations and of the resampling; ``init_weights`` (False: torch's default
    initialization).

    ``z`` ``[N, z_dim]``; ``c`` one-hot ``[N, c_dim]`` or class indices ``[N]`` (ignored, may
    be None, when ``c_dim == 0``).
    """

    def __init__(
        self,
        img_resolution: int = 128,
        img_channels: int = 3,
        c_dim: int = 1000,
        z_dim: int = 128,
        ch: int = 64,
        attention=(32,),
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.001,
        sn_eps: float = 1e-12,
        init: str = "xavier",
        impl: str = "auto",
        init_weights: bool = True,
    ):
        cfg = GeneratorConfig(
            img_resolution, img_channels, c_dim, z_dim, ch, attention, bn_eps, bn_momentum,
            sn_eps, init,
        )  # fmt: skip

        def norm(channels):
            if c_dim:
                return ConditionalBatchNorm2d(channels, c_dim, eps=bn_eps, momentum=bn_momentum)
            return BatchNorm2d(channels, eps=bn_eps, momentum=bn_momentum)

        super().__init__(
            img_resolution, img_channels, ch, cfg.attention, z_dim, norm, bn_eps, bn_momentum,
            sn_eps, init if init_weights else None, impl,
        )  # fmt: skip
        self.z_dim, self.c_dim = z_dim, c_dim

    def conditions(self, z: torch.Tensor, c: torch.Tensor | None):
        return z, [c] * len(self.blocks)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_generator_inputs(z, c, self.z_dim, self.c_dim)
        return self.render(*self.conditions(z, c))

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, img_resolution={self.img_resolution}"


class Discriminator(nn.Module):
    """SAGAN / BigGAN discriminator: ``forward(img, c)`` -> logits ``[N, 1]``.

    Args: the fields of :class:`DiscriminatorConfig`; ``impl``; ``init_weights`` (False:
    torch's default initialization).

    ``img`` ``[N, img_channels, R, R]``; ``c`` one-hot ``[N, c_dim]`` or class indices
    (ignored, may be None, when ``c_dim == 0``). The logit is ``linear(h) + <embed(c), h>``
    for the ReLU'd, sum-pooled features ``h`` (:meth:`features`).
    """

    def __init__(
        self,
        img_resolution: int = 128,
        img_channels: int = 3,
        c_dim: int = 1000,
        ch: int = 64,
        attention=(32,),
        wide: bool = True,
        sn_eps: float = 1e-12,
        init: str = "xavier",
        impl: str = "auto",
        init_weights: bool = True,
    ):
        super().__init__()
        cfg = DiscriminatorConfig(
            img_resolution, img_channels, c_dim, ch, attention, wide, sn_eps, init
        )
        self.img_resolution, self.img_channels, self.c_dim = img_resolution, img_channels, c_dim
        multipliers, downsample = D_WIDTHS[img_resolution]
        widths = [img_channels] + [ch * m for m in multipliers]
        blocks, res, resolutions = [], img_resolution, []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers = [DBlock(c_in, c_out, wide, i > 0, downsample[i], impl)]
            res = res // 2 if downsample[i] else res
            resolutions.append(res)
            if res in cfg.attention and res not in resolutions[:-1]:
                layers.append(SelfAttention(c_out))
            blocks.append(nn.ModuleList(layers))
        _check_attention(cfg.attention, resolutions)
        self.blocks = nn.ModuleList(blocks)
        self.act = Activation("relu", impl=impl)
        if c_dim:
            self.head = ProjectionHead(widths[-1], c_dim)
        else:
            self.linear = nn.Linear(widths[-1], 1)
        if init_weights:
            initialize_weights(self, init)
        apply_spectral_norm(self, eps=sn_eps)
        set_impl(self, impl)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """ReLU'd, sum-pooled features ``[N, 16 ch]`` of images ``[N, C, R, R]``."""
        h = img
        for layers in self.blocks:
            for layer in layers:
                h = layer(h)
        return self.act(h).sum(dim=(2, 3))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_discriminator_inputs(img, c, self.img_channels, self.img_resolution, self.c_dim)
        h = self.features(img)
        return self.head(h, c) if self.c_dim else self.linear(h)

    def set_impl(self, impl: str) -> nn.Module:
        """Use backend ``impl`` (``"auto"``, ``"cuda"``, ``"triton"``, ``"ref"``) everywhere."""
        return set_impl(self, impl)

    def extra_repr(self) -> str:
        return f"c_dim={self.c_dim}, img_resolution={self.img_resolution}"
