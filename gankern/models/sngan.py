"""The ResNet GANs of SNGAN (Miyato et al. 2018) and WGAN-GP (Gulrajani et al. 2017).

Both papers' code builds the same residual networks, so one pair of classes expresses both:

* Generator: ``z -> Linear -> [ch0, w, w]``, then up-blocks ``BN -> ReLU -> 2x nearest
  upsampling -> conv3x3 -> BN -> ReLU -> conv3x3`` with a shortcut ``conv1x1`` of the
  upsampled input (identity when the block keeps size and width), then ``BN -> ReLU ->
  conv3x3 -> tanh``. With labels, every block's batch norm is class-conditional
  (:class:`~gankern.nn.ConditionalBatchNorm2d`); the last one stays plain.
* Discriminator: an "optimized" first block ``conv3x3 -> ReLU -> conv3x3 -> avgpool`` with
  shortcut ``avgpool -> conv1x1``, then blocks ``ReLU -> conv3x3 -> ReLU -> conv3x3
  [-> avgpool]`` with shortcut ``conv1x1 [-> avgpool]`` where size or width change (the
  hidden width is the input's), then ReLU, global sum (SNGAN) or mean (WGAN-GP) pooling and
  a linear map to one logit; a projection head (SNGAN-projection) or an auxiliary
  classifier (WGAN-GP's ACGAN option) with labels.

SNGAN spectrally normalizes every layer of D (:func:`gankern.nn.apply_spectral_norm`,
one power iteration) and has no normalization in D; WGAN-GP uses neither.

Initialization follows both codes (chainer ``GlorotUniform``; tflib's uniform ``he_init``
is the same law): Glorot-uniform weights with gain sqrt(2) for the 3x3 convolutions of the
residual paths and 1 for the shortcuts, the input linear map, the output layers and the
embeddings; zero biases; batch norm 1 and 0.

Nearest 2x upsampling and 2x2 average pooling are :class:`gankern.nn.Upsample` /
:class:`gankern.nn.Downsample` with the box filter ``[1, 1]`` (they equal
``F.interpolate(mode="nearest")`` and ``F.avg_pool2d(2)``); ReLU and tanh run through
:func:`gankern.ops.bias_act` (gain 1), fused with the preceding convolution's bias where no
normalization sits between them. A shortcut's 1x1 convolution and its resampling commute, so
the 1x1 convolution runs at the lower resolution.

Named configurations (:data:`SNGAN_CONFIGS`): ``sngan32`` (CIFAR-10, official
``resnet_32.py`` / ``snresnet_32.py``), ``sngan48`` (STL-10, the paper's Table 4),
``sngan64`` (``resnet_64.py`` / ``snresnet_64.py``, the 64x64 ImageNet projection model),
``wgangp32`` (``gan_cifar_resnet.py``: DIM_G = DIM_D = 128, batch norm in G only, mean
pooling, no spectral norm) and the CPU-sized ``sngan_digits`` / ``wgangp_digits`` for the
built-in digits.
"""

from __future__ import annotations

import math
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
    Upsample,
    apply_spectral_norm,
)
from gankern.nn._validate import check_bool, check_choice

POOLINGS = ("sum", "mean")
D_NORMS = ("none", "layer")
D_CONDITIONINGS = ("none", "projection", "acgan")
BOX = (1, 1)  # the FIR filter of nearest upsampling and 2x2 average pooling


def _check_shape(cfg) -> None:
    check_int_field("img_resolution", cfg.img_resolution, 4)
    check_int_field("img_channels", cfg.img_channels, 1)
    check_int_field("c_dim", cfg.c_dim, 0)
    set_field(cfg, "channels", int_tuple_field("channels", cfg.channels, min_len=2))
    check_float_field("bn_eps", cfg.bn_eps, 0.0)


@dataclass(frozen=True)
class ResNetGeneratorConfig:
    """Shape of a ResNet generator (see :class:`ResNetGenerator`).

    Attributes:
        img_resolution: output side; must equal ``bottom_width * 2 ** (len(channels) - 1)``.
        img_channels: output channels.
        c_dim: number of classes (0: unconditional); > 0 makes the blocks' batch norms
            class-conditional.
        z_dim: latent length.
        bottom_width: side of the first feature map.
        channels: width of the first map, then the output width of each up-block.
        bn_eps: batch-norm epsilon (chainer's default in SNGAN's code is 2e-5, tflib's 1e-5).
    """

    img_resolution: int = 32
    img_channels: int = 3
    c_dim: int = 0
    z_dim: int = 128
    bottom_width: int = 4
    channels: tuple[int, ...] = (256, 256, 256, 256)
    bn_eps: float = 1e-5

    def __post_init__(self):
        _check_shape(self)
        check_int_field("z_dim", self.z_dim, 1)
        check_int_field("bottom_width", self.bottom_width, 1)
        expected = self.bottom_width * 2 ** (len(self.channels) - 1)
        if self.img_resolution != expected:
            raise ValueError(
                f"img_resolution must equal bottom_width * 2 ** (len(channels) - 1) = "
                f"{expected}, got {self.img_resolution}"
            )

    def build(self, impl: str = "auto") -> ResNetGenerator:
        """A freshly initialized :class:`ResNetGenerator`."""
        return ResNetGenerator(self, impl=impl)


@dataclass(frozen=True)
class ResNetDiscriminatorConfig:
    """Shape of a ResNet discriminator (see :class:`ResNetDiscriminator`).

    Attributes:
        img_resolution: input side; divisible by 2 for each downsampling block.
        img_channels: input channels.
        c_dim: number of classes (0: unconditional).
        channels: output width of each block (the first is the optimized block).
        downsample: per block, whether it halves the size (the first block must).
        pooling: global pooling of the last features, ``sum`` (SNGAN) or ``mean`` (WGAN-GP).
        spectral_norm: spectrally normalize every layer (SNGAN).
        out_bias: a bias in the output linear map (and projection head).
        norm: ``none`` or ``layer`` (WGAN-GP's NORMALIZATION_D: per-sample normalization
            over channels and pixels before each activation of the later blocks).
        cond: ``none``, ``projection`` or ``acgan``; not ``none`` exactly when ``c_dim > 0``.
        sn_eps: ``eps`` of the spectral normalization.
        bn_eps: epsilon of the layer norm.
    """

    img_resolution: int = 32
    img_channels: int = 3
    c_dim: int = 0
    channels: tuple[int, ...] = (128, 128, 128, 128)
    downsample: tuple[bool, ...] = (True, True, False, False)
    pooling: str = "sum"
    spectral_norm: bool = True
    out_bias: bool = False
    norm: str = "none"
    cond: str = "none"
    sn_eps: float = 1e-12
    bn_eps: float = 1e-5

    def __post_init__(self):
        _check_shape(self)
        if not isinstance(self.downsample, (list, tuple)) or len(self.downsample) != len(
            self.channels
        ):
            raise ValueError(
                f"downsample must be a list of {len(self.channels)} bools (one per block), "
                f"got {self.downsample!r}"
            )
        set_field(self, "downsample", tuple(
            check_bool(f"downsample[{i}]", v) for i, v in enumerate(self.downsample)
        ))  # fmt: skip
        if not self.downsample[0]:
            raise ValueError("downsample[0] must be True: the optimized first block pools")
        factor = 2 ** sum(self.downsample)
        if self.img_resolution % factor:
            raise ValueError(
                f"img_resolution must be divisible by {factor} (2 per downsampling block), "
                f"got {self.img_resolution}"
            )
        check_choice("pooling", self.pooling, POOLINGS)
        check_bool("spectral_norm", self.spectral_norm)
        check_bool("out_bias", self.out_bias)
        check_choice("norm", self.norm, D_NORMS)
        check_choice("cond", self.cond, D_CONDITIONINGS)
        if (self.c_dim > 0) != (self.cond != "none"):
            raise ValueError(
                f"cond must be 'none' exactly when c_dim == 0, got cond={self.cond!r} with "
                f"c_dim={self.c_dim}"
            )
        check_float_field("sn_eps", self.sn_eps, 0.0)

    def build(self, impl: str = "auto") -> ResNetDiscriminator:
        """A freshly initialized :class:`ResNetDiscriminator`."""
        return ResNetDiscriminator(self, impl=impl)


def _glorot(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain=gain)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv3x3(c_in, c_out, impl, act="linear") -> Conv2dAct:
    """A residual-path convolution (Glorot-uniform with gain sqrt(2))."""
    return _glorot(Conv2dAct(c_in, c_out, 3, padding=1, act=act, impl=impl), math.sqrt(2))


class _GBlock(nn.Module):
    def __init__(self, c_in, c_out, c_dim, bn_eps, impl):
        super().__init__()

        def norm(ch):
            if c_dim:
                return ConditionalBatchNorm2d(ch, c_dim, eps=bn_eps)
            return nn.BatchNorm2d(ch, eps=bn_eps)

        self.b1, self.b2 = norm(c_in), norm(c_out)
        self.act = Activation("relu", impl=impl)
        self.up = Upsample(2, filter=BOX, impl=impl)
        self.c1 = _conv3x3(c_in, c_out, impl)
        self.c2 = _conv3x3(c_out, c_out, impl)
        self.c_sc = _glorot(nn.Conv2d(c_in, c_out, 1))  # up-blocks always learn the shortcut

    def _norm(self, bn, x, c):
        return bn(x, c) if isinstance(bn, ConditionalBatchNorm2d) else bn(x)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        h = self.act(self._norm(self.b1, x, c))
        h = self.c1(self.up(h))
        h = self.act(self._norm(self.b2, h, c))
        return self.c2(h) + self.up(self.c_sc(x))


class _DBlock(nn.Module):
    def __init__(self, c_in, c_out, downsample, optimized, norm, bn_eps, impl):
        super().__init__()
        self.optimized, self.downsample = optimized, downsample
        hidden = c_out if optimized else c_in
        self.act = Activation("relu", impl=impl)
        if norm == "layer" and not optimized:
            self.n1 = nn.GroupNorm(1, c_in, eps=bn_eps)
            self.n2 = nn.GroupNorm(1, hidden, eps=bn_eps)
            self.c1 = _conv3x3(c_in, hidden, impl)
        else:
            self.n1 = self.n2 = None
            self.c1 = _conv3x3(c_in, hidden, impl, act="relu")  # bias + ReLU fused
        self.c2 = _conv3x3(hidden, c_out, impl)
        learnable_sc = optimized or downsample or c_in != c_out
        self.c_sc = _glorot(nn.Conv2d(c_in, c_out, 1)) if learnable_sc else None
        self.pool = Downsample(2, filter=BOX, impl=impl) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if not self.optimized:
            h = self.act(self.n1(h) if self.n1 is not None else h)
        h = self.c1(h)
        if self.n2 is not None:
            h = self.act(self.n2(h))
        h = self.c2(h)
        sc = x
        if self.pool is not None:
            h, sc = self.pool(h), self.pool(sc)
        if self.c_sc is not None:
            sc = self.c_sc(sc)  # a 1x1 convolution commutes with the average pooling
        return h + sc


class ResNetGenerator(nn.Module):
    """SNGAN / WGAN-GP ResNet generator: ``forward(z, c)`` -> images in [-1, 1].

    Args:
        config: a :class:`ResNetGeneratorConfig`.
        impl: backend of the fused activations and of the resampling.

    ``z`` ``[N, z_dim]``; ``c`` one-hot ``[N, c_dim]`` (ignored, may be None, when
    ``c_dim == 0``). Returns ``[N, img_channels, R, R]``.
    """

    def __init__(self, config: ResNetGeneratorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim = config.z_dim, config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        ch, bw = config.channels, config.bottom_width
        self.linear = _glorot(nn.Linear(config.z_dim, bw * bw * ch[0]))
        self.blocks = nn.ModuleList(
            _GBlock(c_in, c_out, config.c_dim, config.bn_eps, impl)
            for c_in, c_out in zip(ch[:-1], ch[1:], strict=True)
        )
        self.bn = nn.BatchNorm2d(ch[-1], eps=config.bn_eps)
        self.act = Activation("relu", impl=impl)
        self.to_img = _glorot(
            Conv2dAct(ch[-1], config.img_channels, 3, padding=1, act="tanh", impl=impl)
        )

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_generator_inputs(z, c, self.z_dim, self.c_dim)
        bw = self.config.bottom_width
        h = self.linear(z).view(z.shape[0], self.config.channels[0], bw, bw)
        for block in self.blocks:
            h = block(h, c)
        return self.to_img(self.act(self.bn(h)))


class ResNetDiscriminator(nn.Module):
    """SNGAN / WGAN-GP ResNet discriminator: ``forward(img, c)`` -> logits ``[N, 1]``.

    Args:
        config: a :class:`ResNetDiscriminatorConfig`.
        impl: backend of the fused activations and of the resampling.

    ``img`` ``[N, img_channels, R, R]``; ``c`` one-hot ``[N, c_dim]`` (ignored when
    ``c_dim == 0``). With ``cond="acgan"`` it returns ``(logits, class_logits [N, c_dim])``
    and needs no labels.
    """

    def __init__(self, config: ResNetDiscriminatorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.cond = config.cond
        widths = [config.img_channels, *config.channels]
        self.blocks = nn.Sequential(*(
            _DBlock(c_in, c_out, down, i == 0, config.norm, config.bn_eps, impl)
            for i, (c_in, c_out, down) in enumerate(
                zip(widths[:-1], widths[1:], config.downsample, strict=True)
            )
        ))  # fmt: skip
        self.act = Activation("relu", impl=impl)
        features = config.channels[-1]
        if config.cond == "projection":
            self.head = ProjectionHead(features, config.c_dim, bias=config.out_bias)
        else:
            self.linear = _glorot(nn.Linear(features, 1, bias=config.out_bias))
        if config.cond == "acgan":
            self.class_head = _glorot(nn.Linear(features, config.c_dim))
        if config.spectral_norm:
            apply_spectral_norm(self, eps=config.sn_eps)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """The pooled features ``[N, channels[-1]]`` that the output layers read."""
        h = self.act(self.blocks(img))
        return h.sum((2, 3)) if self.config.pooling == "sum" else h.mean((2, 3))

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None):
        c_dim = 0 if self.cond == "acgan" and c is None else self.c_dim
        c = check_discriminator_inputs(img, c, self.img_channels, self.img_resolution, c_dim)
        h = self.features(img)
        if self.cond == "projection":
            return self.head(h, c)
        logits = self.linear(h)
        if self.cond == "acgan":
            return logits, self.class_head(h)
        return logits


# --- named configurations ------------------------------------------------------------------


@dataclass(frozen=True)
class _Named:
    resolution: int
    img_channels: int
    z_dim: int
    bottom_width: int
    g_channels: tuple[int, ...]
    d_channels: tuple[int, ...]
    d_downsample: tuple[bool, ...]
    pooling: str
    spectral_norm: bool
    out_bias: bool
    bn_eps: float


_T, _F = True, False
_NAMED = {
    # pfnet-research/sngan_projection configs/sn_cifar10_*.yml: ResNetGenerator(ch=256,
    # dim_z=128, bottom_width=4), SNResNetProjectionDiscriminator(ch=128); chainer BN eps.
    "sngan32": _Named(32, 3, 128, 4, (256,) * 4, (128,) * 4, (_T, _T, _F, _F), "sum", _T, _F,
                      2e-5),
    # Miyato et al. 2018, Table 4 (STL-10 at 48x48; no official code, so the output bias
    # follows the 32x32 code: none).
    "sngan48": _Named(48, 3, 128, 6, (512, 256, 128, 64), (64, 128, 256, 512, 1024),
                      (_T, _T, _T, _T, _F), "sum", _T, _F, 2e-5),
    # configs/sn_projection_64.yml: resnet_64.py (ch=64), snresnet_64.py (ch=64).
    "sngan64": _Named(64, 3, 128, 4, (1024, 512, 256, 128, 64), (64, 128, 256, 512, 1024),
                      (_T,) * 5, "sum", _T, _T, 2e-5),
    # igul222/improved_wgan_training gan_cifar_resnet.py: DIM_G = DIM_D = 128, mean pooling,
    # biased output, no spectral norm; tflib's batch norm eps 1e-5.
    "wgangp32": _Named(32, 3, 128, 4, (128,) * 4, (128,) * 4, (_T, _T, _F, _F), "mean", _F,
                       _T, 1e-5),
    # CPU-sized, for the built-in digits (1 channel, 32x32): 8 channels at 32x32 keep a
    # batch-64 D step near 1.6 GFLOP (the digits are 8x8 scans upscaled, little detail).
    "sngan_digits": _Named(32, 1, 64, 4, (32, 16, 8, 8), (8, 16, 16, 16), (_T, _T, _F, _F),
                           "sum", _T, _F, 1e-5),
    "wgangp_digits": _Named(32, 1, 64, 4, (32, 16, 8, 8), (8, 16, 16, 16), (_T, _T, _F, _F),
                            "mean", _F, _T, 1e-5),
}  # fmt: skip
SNGAN_CONFIGS: tuple[str, ...] = tuple(_NAMED)


def sngan_config(
    name: str = "sngan32",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int = 0,
    *,
    d_cond: str | None = None,
) -> tuple[ResNetGeneratorConfig, ResNetDiscriminatorConfig]:
    """The (G, D) configurations of a named ResNet GAN.

    Args:
        name: one of :data:`SNGAN_CONFIGS`.
        resolution: image side (default: the configuration's). Another resolution changes
            the bottom width (``resolution / 2 ** up-blocks``), so it must be a multiple of
            that power of two.
        img_channels: image channels (default: the configuration's).
        c_dim: number of classes (0: unconditional); conditional G uses conditional batch
            norm.
        d_cond: D's conditioning, ``projection`` (default with labels) or ``acgan``.
    """
    if name not in _NAMED:
        raise ValueError(f"name must be one of {SNGAN_CONFIGS}, got {name!r}")
    n = _NAMED[name]
    res = n.resolution if resolution is None else resolution
    ups = len(n.g_channels) - 1
    if not isinstance(res, int) or res % 2**ups or res < 2**ups:
        raise ValueError(
            f"resolution must be a positive multiple of {2**ups} for {name!r}, got {res!r}"
        )
    channels = n.img_channels if img_channels is None else img_channels
    if d_cond is None:
        d_cond = "projection" if c_dim else "none"
    G = ResNetGeneratorConfig(
        res,
        channels,
        c_dim,
        z_dim=n.z_dim,
        bottom_width=res // 2**ups,
        channels=n.g_channels,
        bn_eps=n.bn_eps,
    )
    D = ResNetDiscriminatorConfig(
        res,
        channels,
        c_dim,
        channels=n.d_channels,
        downsample=n.d_downsample,
        pooling=n.pooling,
        spectral_norm=n.spectral_norm,
        out_bias=n.out_bias,
        cond=d_cond,
    )
    return G, D


# --- the papers' training settings ---------------------------------------------------------

SNGAN_HYPERPARAMS: dict[str, GANHyperparams] = {
    # Miyato et al. 2018 (ResNet on CIFAR-10) and sngan_projection's
    # configs/sn_cifar10_unconditional.yml: hinge loss, Adam(2e-4, 0, 0.9), n_dis = 5,
    # 64 reals per D step and 128 fakes per G step (n_gen_samples), 50k G steps with the
    # learning rate decayed linearly to 0 from step 0 (LinearShift in train.py).
    "sngan": GANHyperparams(
        source="Miyato et al. 2018; pfnet-research/sngan_projection sn_cifar10_*.yml",
        loss="hinge", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), batch=64,
        g_batch=128, n_critic=5, lr_schedule="linear", lr_decay_start=0,
        total_g_steps=50_000,
    ),
    # configs/sn_projection_64.yml (ImageNet 64x64, 1000 classes): linear decay over the last
    # 50k of 250k G steps.
    "sngan_projection64": GANHyperparams(
        source="pfnet-research/sngan_projection configs/sn_projection_64.yml",
        loss="hinge", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9), batch=64,
        n_critic=5, lr_schedule="linear", lr_decay_start=200_000, total_g_steps=250_000,
    ),
    # igul222/improved_wgan_training gan_cifar_resnet.py: LR = 2e-4 decayed linearly to 0
    # over ITERS = 100000 G steps, Adam betas (0, 0.9), N_CRITIC = 5, BATCH_SIZE = 64 for the
    # critic and GEN_BS_MULTIPLE = 2 (128) for G, penalty 10. (The paper's Algorithm 1
    # defaults, lr 1e-4 without decay, are DCGAN_HYPERPARAMS["wgan_gp"].)
    "wgan_gp_resnet": GANHyperparams(
        source="igul222/improved_wgan_training gan_cifar_resnet.py",
        loss="wasserstein", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.0, 0.9),
        batch=64, g_batch=128, n_critic=5, gp_weight=10.0, lr_schedule="linear",
        total_g_steps=100_000,
        notes="the published file trains the conditional ACGAN variant (ACGAN_SCALE 1 in D, "
              "ACGAN_SCALE_G 0.1 in G); the unconditional model sets CONDITIONAL = False",
    ),
}  # fmt: skip
