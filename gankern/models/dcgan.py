"""DCGAN (Radford et al. 2016) as pytorch/examples' ``dcgan/main.py`` builds it.

Generator: ``z`` (as a 1x1 map) -> ``ConvTranspose2d(4, stride 1)`` to 4x4 -> one
``ConvTranspose2d(4, stride 2, padding 1)`` per doubling, channels halving, each followed by
batch norm and ReLU -> a last transposed convolution to the image channels and tanh. No
convolution has a bias. Discriminator: the mirror image, strided ``Conv2d(4, 2, 1)`` with
LeakyReLU 0.2 (batch norm on all but the first), then a ``Conv2d(4)`` on the 4x4 map to one
raw logit. Weights ``N(0, 0.02)``, batch-norm weights ``N(1, 0.02)`` and biases 0.

The standard 64x64 RGB configuration (``z_dim`` 100, 64 base channels) has exactly
3,576,704 generator and 2,765,568 discriminator parameters; every doubling of the
resolution adds one block to each network (and doubles the channels at 4x4).

Options for the recipes that reuse these networks:

* ``norm`` of D: ``batch`` (DCGAN, WGAN), ``none`` (WGAN-GP critics must not use batch norm;
  the convolutions then get biases, as in Gulrajani et al.'s DCGAN critic) or ``layer``
  (normalization over channels and pixels of each sample with a per-channel gain and bias,
  tflib's ``Layernorm`` over axes [1, 2, 3], i.e. ``GroupNorm(1, C)``).
* ``spectral_norm`` of D: spectral normalization of every D layer.
* ``cond`` (with ``c_dim > 0``):

  - ``concat`` (cGAN, Mirza & Osindero 2014): the one-hot label is appended to ``z``, and
    as constant maps to D's input channels.
  - ``acgan`` (ACGAN, Odena et al. 2017): G takes ``[z, one-hot]`` as ACGAN's generator
    does; D is unconditional and returns ``(logits, class_logits)``, the class logits from
    a linear auxiliary head on the flattened 4x4 features.
  - ``projection`` (Miyato & Koyama 2018): conditional batch norm in G, and D's last layer
    becomes a :class:`~gankern.nn.ProjectionHead` on the flattened 4x4 features (its linear
    part has the shape of the unconditional last convolution).

ReLU, LeakyReLU and tanh run through :func:`gankern.ops.bias_act` (gain 1), fused with the
convolution's bias where there is one; ``impl`` selects its backend.
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
    check_power_of_two,
    one_hot_labels,
)
from gankern.models.hyperparams import GANHyperparams
from gankern.nn import (
    Activation,
    ConditionalBatchNorm2d,
    Conv2dAct,
    ConvTranspose2dAct,
    ProjectionHead,
    apply_spectral_norm,
    concat_label_maps,
    concat_labels,
)
from gankern.nn._validate import check_bool, check_choice

D_NORMS = ("batch", "none", "layer")
CONDITIONINGS = ("none", "concat", "acgan", "projection")
LRELU_SLOPE = 0.2


def _check_cond(cfg) -> None:
    check_power_of_two("img_resolution", cfg.img_resolution, 8)
    check_int_field("img_channels", cfg.img_channels, 1)
    check_int_field("c_dim", cfg.c_dim, 0)
    check_int_field("base_channels", cfg.base_channels, 1)
    check_choice("cond", cfg.cond, CONDITIONINGS)
    if (cfg.c_dim > 0) != (cfg.cond != "none"):
        raise ValueError(
            f"cond must be 'none' exactly when c_dim == 0 (one of {CONDITIONINGS[1:]} for a "
            f"conditional network), got cond={cfg.cond!r} with c_dim={cfg.c_dim}"
        )


def _num_doublings(resolution: int) -> int:
    """Stride-2 blocks between the 4x4 map and the last layer: 3 at 64x64."""
    return int(math.log2(resolution)) - 3


@dataclass(frozen=True)
class DCGANGeneratorConfig:
    """Shape of a DCGAN generator (see :class:`DCGANGenerator`).

    Attributes:
        img_resolution: output side, a power of two >= 8.
        img_channels: output channels.
        c_dim: number of classes (0: unconditional).
        z_dim: latent length (``nz``).
        base_channels: channels of the last hidden layer (``ngf``); the 4x4 map has
            ``base_channels * img_resolution / 8``.
        cond: ``none``, ``concat``, ``acgan`` or ``projection`` (see the module docstring).
        bn_eps: batch-norm epsilon.
    """

    img_resolution: int = 64
    img_channels: int = 3
    c_dim: int = 0
    z_dim: int = 100
    base_channels: int = 64
    cond: str = "none"
    bn_eps: float = 1e-5

    def __post_init__(self):
        _check_cond(self)
        check_int_field("z_dim", self.z_dim, 1)
        check_float_field("bn_eps", self.bn_eps, 0.0)

    def build(self, impl: str = "auto") -> DCGANGenerator:
        """A freshly initialized :class:`DCGANGenerator`."""
        return DCGANGenerator(self, impl=impl)


@dataclass(frozen=True)
class DCGANDiscriminatorConfig:
    """Shape of a DCGAN discriminator (see :class:`DCGANDiscriminator`).

    Attributes:
        img_resolution: input side, a power of two >= 8.
        img_channels: input channels.
        c_dim: number of classes (0: unconditional).
        base_channels: channels of the first layer (``ndf``), doubling at each stride-2
            layer.
        cond: ``none``, ``concat``, ``acgan`` or ``projection``.
        norm: ``batch``, ``none`` or ``layer``.
        spectral_norm: spectrally normalize every layer.
        bn_eps: epsilon of the batch or layer norm.
    """

    img_resolution: int = 64
    img_channels: int = 3
    c_dim: int = 0
    base_channels: int = 64
    cond: str = "none"
    norm: str = "batch"
    spectral_norm: bool = False
    bn_eps: float = 1e-5

    def __post_init__(self):
        _check_cond(self)
        check_choice("norm", self.norm, D_NORMS)
        check_bool("spectral_norm", self.spectral_norm)
        check_float_field("bn_eps", self.bn_eps, 0.0)

    def build(self, impl: str = "auto") -> DCGANDiscriminator:
        """A freshly initialized :class:`DCGANDiscriminator`."""
        return DCGANDiscriminator(self, impl=impl)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialization: weights of convolutions, linear maps and embeddings
    ``N(0, 0.02)`` and their biases 0; batch-norm weights ``N(1, 0.02)``, biases 0.

    pytorch/examples' ``weights_init`` (convolutions and batch norm); the linear heads and
    embeddings of the conditional variants get the convolutions' rule, and conditional batch
    norm the batch-norm rule per class (gains ``N(1, 0.02)``, biases 0). Layer norm keeps
    torch's start (1, 0).
    """
    tables = set()
    for m in module.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            nn.init.normal_(m.gains.weight, 1.0, 0.02)
            nn.init.zeros_(m.biases.weight)
            tables.update((id(m.gains), id(m.biases)))
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            if id(m) in tables:
                continue
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)


class _Block(nn.Module):
    """convolution -> normalization -> activation; the normalization may take the labels."""

    def __init__(self, conv: nn.Module, norm: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.norm, self.act = conv, norm, act

    def forward(self, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        x = self.conv(x)
        x = self.norm(x, c) if isinstance(self.norm, ConditionalBatchNorm2d) else self.norm(x)
        return self.act(x)


class DCGANGenerator(nn.Module):
    """DCGAN generator: ``forward(z, c)`` -> images ``[N, img_channels, R, R]`` in [-1, 1].

    Args:
        config: a :class:`DCGANGeneratorConfig`.
        impl: backend of the fused activations (see :func:`gankern.nn.set_impl`).

    ``z`` ``[N, z_dim]``; ``c`` one-hot ``[N, c_dim]`` (ignored, may be None, when
    ``c_dim == 0``).
    """

    def __init__(self, config: DCGANGeneratorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim = config.z_dim, config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.cond = config.cond
        ch = config.base_channels * 2 ** _num_doublings(config.img_resolution)
        z_in = config.z_dim + (config.c_dim if config.cond in ("concat", "acgan") else 0)

        def block(c_in, c_out, stride, padding):
            conv = nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False)
            if config.cond == "projection":
                norm = ConditionalBatchNorm2d(c_out, config.c_dim, eps=config.bn_eps)
            else:
                norm = nn.BatchNorm2d(c_out, eps=config.bn_eps)
            return _Block(conv, norm, Activation("relu", impl=impl))

        blocks = [block(z_in, ch, 1, 0)]  # 1x1 -> 4x4
        for _ in range(_num_doublings(config.img_resolution)):
            blocks.append(block(ch, ch // 2, 2, 1))
            ch //= 2
        self.blocks = nn.ModuleList(blocks)
        self.to_img = ConvTranspose2dAct(
            ch, config.img_channels, 4, 2, 1, bias=False, act="tanh", impl=impl
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_generator_inputs(z, c, self.z_dim, self.c_dim)
        if c is not None and self.cond in ("concat", "acgan"):
            z = concat_labels(z, one_hot_labels(c, self.c_dim, z.dtype))
        x = z[:, :, None, None]
        for blk in self.blocks:
            x = blk(x, c)
        return self.to_img(x)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: ``forward(img, c)`` -> logits ``[N, 1]``.

    Args:
        config: a :class:`DCGANDiscriminatorConfig`.
        impl: backend of the fused activations.

    ``img`` ``[N, img_channels, R, R]``; ``c`` one-hot ``[N, c_dim]`` (ignored when
    ``c_dim == 0``). With ``cond="acgan"`` it returns ``(logits [N, 1], class_logits
    [N, c_dim])``.
    """

    def __init__(self, config: DCGANDiscriminatorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.cond = config.cond
        ch = config.base_channels
        c_in = config.img_channels + (config.c_dim if config.cond == "concat" else 0)
        # With norm "none" every convolution has a bias; with batch or layer norm none has
        # one (pytorch/examples' layers, whose first and last convolutions have none either).
        has_bias = config.norm == "none"
        lrelu = dict(act="lrelu", alpha=LRELU_SLOPE, impl=impl)
        self.from_img = Conv2dAct(c_in, ch, 4, 2, 1, bias=has_bias, **lrelu)
        blocks = []
        for _ in range(_num_doublings(config.img_resolution)):
            if config.norm == "none":
                blocks.append(Conv2dAct(ch, 2 * ch, 4, 2, 1, bias=True, **lrelu))
            else:
                norm = (
                    nn.BatchNorm2d(2 * ch, eps=config.bn_eps)
                    if config.norm == "batch"
                    else nn.GroupNorm(1, 2 * ch, eps=config.bn_eps)
                )
                conv = nn.Conv2d(ch, 2 * ch, 4, 2, 1, bias=False)
                blocks.append(nn.Sequential(conv, norm, Activation(**lrelu)))
            ch *= 2
        self.blocks = nn.Sequential(*blocks)
        features = ch * 4 * 4
        if config.cond == "projection":
            self.head = ProjectionHead(features, config.c_dim, bias=has_bias)
        else:
            self.out = nn.Conv2d(ch, 1, 4, 1, 0, bias=has_bias)  # the 4x4 map -> 1 logit
        if config.cond == "acgan":
            self.class_head = nn.Linear(features, config.c_dim)
        dcgan_init(self)
        if config.spectral_norm:
            apply_spectral_norm(self)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None):
        # ACGAN's discriminator is unconditional: it may be called without labels.
        c_dim = 0 if self.cond == "acgan" and c is None else self.c_dim
        c = check_discriminator_inputs(img, c, self.img_channels, self.img_resolution, c_dim)
        x = img
        if self.cond == "concat":
            x = concat_label_maps(x, one_hot_labels(c, self.c_dim, x.dtype))
        h = self.blocks(self.from_img(x))
        if self.cond == "projection":
            return self.head(h.flatten(1), c)
        logits = self.out(h).flatten(1)
        if self.cond == "acgan":
            return logits, self.class_head(h.flatten(1))
        return logits


# --- named configurations ------------------------------------------------------------------

_NAMED = {
    # name: (resolution, img_channels, z_dim, G base channels, D base channels)
    "dcgan64": (64, 3, 100, 64, 64),  # pytorch/examples' defaults (nz 100, ngf = ndf = 64)
    "dcgan32": (32, 3, 100, 64, 64),  # the same widths, one block less (CIFAR-sized)
    "dcgan_digits": (32, 1, 64, 16, 16),  # the built-in digits on one CPU core
}
DCGAN_CONFIGS: tuple[str, ...] = tuple(_NAMED)


def dcgan_config(
    name: str = "dcgan64",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int = 0,
    *,
    cond: str | None = None,
    d_norm: str = "batch",
    d_spectral_norm: bool = False,
) -> tuple[DCGANGeneratorConfig, DCGANDiscriminatorConfig]:
    """The (G, D) configurations of a named DCGAN.

    Args:
        name: one of :data:`DCGAN_CONFIGS` (``dcgan64``, ``dcgan32``, ``dcgan_digits``).
        resolution: image side (default: the configuration's).
        img_channels: image channels (default: the configuration's).
        c_dim: number of classes (0: unconditional).
        cond: conditioning (default ``concat`` when ``c_dim > 0``, else ``none``).
        d_norm: D's normalization, ``batch``, ``none`` or ``layer``.
        d_spectral_norm: spectral normalization in D.
    """
    if name not in _NAMED:
        raise ValueError(f"name must be one of {DCGAN_CONFIGS}, got {name!r}")
    res, channels, z_dim, g_ch, d_ch = _NAMED[name]
    res = res if resolution is None else resolution
    channels = channels if img_channels is None else img_channels
    if cond is None:
        cond = "concat" if c_dim else "none"
    G = DCGANGeneratorConfig(res, channels, c_dim, z_dim=z_dim, base_channels=g_ch, cond=cond)
    D = DCGANDiscriminatorConfig(
        res,
        channels,
        c_dim,
        base_channels=d_ch,
        cond=cond,
        norm=d_norm,
        spectral_norm=d_spectral_norm,
    )
    return G, D


# --- the papers' training settings ---------------------------------------------------------

DCGAN_HYPERPARAMS: dict[str, GANHyperparams] = {
    # Radford et al. 2016, Sec. 4 ("Details of adversarial training"); beta2 and the
    # non-saturating BCE from pytorch/examples dcgan/main.py.
    "dcgan": GANHyperparams(
        source="Radford et al. 2016, Sec. 4; pytorch/examples dcgan/main.py",
        loss="nonsaturating", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
        batch=128,
    ),
    # Arjovsky et al. 2017, Algorithm 1 (alpha = 5e-5, c = 0.01, m = 64, n_critic = 5);
    # the DCGAN critic keeps batch norm there.
    "wgan": GANHyperparams(
        source="Arjovsky et al. 2017, Algorithm 1; martinarjovsky/WassersteinGAN main.py",
        loss="wasserstein", optimizer="rmsprop", lr_g=5e-5, lr_d=5e-5, batch=64, n_critic=5,
        weight_clip=0.01,
        notes="the official code runs 100 critic steps per G step for the first 25 G steps "
              "and every 500th G step",
    ),
    # Gulrajani et al. 2017, Algorithm 1 (lambda = 10, n_critic = 5, alpha = 1e-4,
    # beta1 = 0, beta2 = 0.9); the critic has no batch norm (use d_norm="none" or "layer").
    "wgan_gp": GANHyperparams(
        source="Gulrajani et al. 2017, Algorithm 1",
        loss="wasserstein", optimizer="adam", lr_g=1e-4, lr_d=1e-4, betas=(0.0, 0.9),
        batch=64, n_critic=5, gp_weight=10.0,
    ),
    # Mao et al. 2017 (LSGAN): least squares with the 0-1 coding (a = 0, b = c = 1) on
    # DCGAN-style networks, Adam with beta1 = 0.5 as DCGAN.
    "lsgan": GANHyperparams(
        source="Mao et al. 2017 (LSGAN), on DCGAN's Adam settings",
        loss="least_squares", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
        batch=64,
        notes="targets a = 0 (fake), b = 1 (real), c = 1 (G); the paper's other coding is "
              "a = -1, b = 1, c = 0",
    ),
    # Odena et al. 2017 (ACGAN), appendix hyperparameter tables: Adam 2e-4, beta1 0.5,
    # batch 100; the class loss enters D and G with weight 1.
    "acgan": GANHyperparams(
        source="Odena et al. 2017, appendix",
        loss="nonsaturating", optimizer="adam", lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
        batch=100, aux_weight_d=1.0, aux_weight_g=1.0,
        notes="D maximizes L_S + L_C, G maximizes L_C - L_S (source and class "
              "log-likelihoods); use cond='acgan'",
    ),
}  # fmt: skip
