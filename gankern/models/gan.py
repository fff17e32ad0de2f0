"""The original GAN (Goodfellow et al. 2014): MLP generator and discriminator.

``MLPGeneratorConfig(...).build()`` and ``MLPDiscriminatorConfig(...).build()`` make the
networks; :func:`gan_config` returns the pair for a named configuration. With ``c_dim > 0``
both become the conditional GAN of Mirza & Osindero 2014 by label concatenation: the
one-hot label is appended to ``z`` in G and to the flattened image in D. (Mirza & Osindero
first map ``z`` and the label through separate hidden layers; the concatenation at the input
is the form of most reimplementations.)

Hidden layers are ``Linear`` + ReLU/LeakyReLU fused through :func:`gankern.ops.bias_act`
(gain 1), or maxout units in D as in the paper; G ends in tanh (images in [-1, 1]; the
paper's MNIST generator ended in a sigmoid for [0, 1] pixels) and D in a raw logit.

Named configurations (:data:`GAN_CONFIGS`):

* ``gan_mnist``: the MNIST networks of Goodfellow et al.'s code (goodfeli/adversarial,
  ``mnist.yaml``): G 100 -> 1200 -> 1200 -> 784 with ReLU, D two maxout layers of 240 units
  with 5 pieces each and dropout (input 0.2, hidden 0.5), weights uniform in +-0.05 (G) and
  +-0.005 (D), zero biases. 28x28, 1 channel: 2,503,984 G and 1,231,441 D parameters.
* ``gan_digits``: small, for the built-in digits (32x32 or 16x16 grayscale) on one CPU core:
  G 64 -> 256 -> 512 -> R*R, D R*R -> 512 -> 256 -> 1 with LeakyReLU 0.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from gankern.models._netutils import (
    check_discriminator_inputs,
    check_float_field,
    check_generator_inputs,
    check_int_field,
    int_tuple_field,
    one_hot_labels,
    set_field,
)
from gankern.models.hyperparams import GANHyperparams
from gankern.nn import LinearAct, concat_labels
from gankern.nn._validate import check_choice
from gankern.nn.maxout import MaxoutLinear

G_ACTIVATIONS = ("relu", "lrelu")
D_ACTIVATIONS = ("relu", "lrelu", "maxout")


def _check_common(cfg) -> None:
    check_int_field("img_resolution", cfg.img_resolution, 1)
    check_int_field("img_channels", cfg.img_channels, 1)
    check_int_field("c_dim", cfg.c_dim, 0)
    check_float_field("alpha", cfg.alpha, 0.0)
    set_field(cfg, "hidden", int_tuple_field("hidden", cfg.hidden))
    if cfg.init_range is not None:
        check_float_field("init_range", cfg.init_range, 0.0)


@dataclass(frozen=True)
class MLPGeneratorConfig:
    """Shape of an MLP generator (see :class:`MLPGenerator`).

    Attributes:
        img_resolution: image side ``R`` (the output is ``[N, img_channels, R, R]``).
        img_channels: image channels.
        c_dim: number of classes (0: unconditional); labels are appended to ``z``.
        z_dim: latent length.
        hidden: widths of the hidden layers.
        act: hidden activation, ``relu`` or ``lrelu``.
        alpha: LeakyReLU slope.
        init_range: weights uniform in ``[-init_range, init_range]`` and zero biases
            (pylearn2's ``irange``); None: torch's default initialization.
    """

    img_resolution: int = 32
    img_channels: int = 1
    c_dim: int = 0
    z_dim: int = 100
    hidden: tuple[int, ...] = (256, 512, 1024)
    act: str = "relu"
    alpha: float = 0.2
    init_range: float | None = None

    def __post_init__(self):
        _check_common(self)
        check_int_field("z_dim", self.z_dim, 1)
        check_choice("act", self.act, G_ACTIVATIONS)

    def build(self, impl: str = "auto") -> MLPGenerator:
        """A freshly initialized :class:`MLPGenerator`."""
        return MLPGenerator(self, impl=impl)


@dataclass(frozen=True)
class MLPDiscriminatorConfig:
    """Shape of an MLP discriminator (see :class:`MLPDiscriminator`).

    Attributes:
        img_resolution, img_channels: the input images ``[N, img_channels, R, R]``.
        c_dim: number of classes (0: unconditional); labels are appended to the input.
        hidden: widths (maxout: units) of the hidden layers.
        act: hidden activation, ``relu``, ``lrelu`` or ``maxout``.
        alpha: LeakyReLU slope.
        maxout_pieces: linear pieces per maxout unit.
        input_dropout: dropout probability on the input (0: none).
        dropout: dropout probability on the input of every later layer (0: none).
        init_range: as :class:`MLPGeneratorConfig`.
    """

    img_resolution: int = 32
    img_channels: int = 1
    c_dim: int = 0
    hidden: tuple[int, ...] = (1024, 512, 256)
    act: str = "lrelu"
    alpha: float = 0.2
    maxout_pieces: int = 5
    input_dropout: float = 0.0
    dropout: float = 0.0
    init_range: float | None = None

    def __post_init__(self):
        _check_common(self)
        check_choice("act", self.act, D_ACTIVATIONS)
        check_int_field("maxout_pieces", self.maxout_pieces, 1)
        check_float_field("input_dropout", self.input_dropout, 0.0, 0.99)
        check_float_field("dropout", self.dropout, 0.0, 0.99)

    def build(self, impl: str = "auto") -> MLPDiscriminator:
        """A freshly initialized :class:`MLPDiscriminator`."""
        return MLPDiscriminator(self, impl=impl)


def _init_uniform(module: nn.Module, init_range: float | None) -> None:
    if init_range is None:
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.uniform_(layer.weight, -init_range, init_range)
            nn.init.zeros_(layer.bias)


class MLPGenerator(nn.Module):
    """``z`` (and the one-hot label) -> hidden layers -> tanh image.

    Args:
        config: an :class:`MLPGeneratorConfig`.
        impl: backend of the fused bias + activation (see :func:`gankern.nn.set_impl`).

    ``forward(z, c)``: ``z`` ``[N, z_dim]``, ``c`` one-hot ``[N, c_dim]`` (ignored, may be
    None, when ``c_dim == 0``); returns ``[N, img_channels, R, R]`` in [-1, 1].
    """

    def __init__(self, config: MLPGeneratorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim = config.z_dim, config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        widths = [config.z_dim + config.c_dim, *config.hidden]
        layers = [
            LinearAct(w_in, w_out, act=config.act, alpha=config.alpha, impl=impl)
            for w_in, w_out in pairwise(widths)
        ]
        out_features = config.img_channels * config.img_resolution**2
        layers.append(LinearAct(widths[-1], out_features, act="tanh", impl=impl))
        self.net = nn.Sequential(*layers)
        _init_uniform(self, config.init_range)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_generator_inputs(z, c, self.z_dim, self.c_dim)
        x = z if c is None else concat_labels(z, one_hot_labels(c, self.c_dim, z.dtype))
        img = self.net(x)
        return img.view(-1, self.img_channels, self.img_resolution, self.img_resolution)


class MLPDiscriminator(nn.Module):
    """Flattened image (and the one-hot label) -> hidden layers -> logit ``[N, 1]``.

    Args:
        config: an :class:`MLPDiscriminatorConfig`.
        impl: backend of the fused bias + activation.

    ``forward(img, c)``: ``img`` ``[N, img_channels, R, R]``, ``c`` one-hot ``[N, c_dim]``
    (ignored when ``c_dim == 0``); returns raw logits ``[N, 1]``.
    """

    def __init__(self, config: MLPDiscriminatorConfig, impl: str = "auto"):
        super().__init__()
        self.config = config
        self.c_dim = config.c_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        widths = [config.img_channels * config.img_resolution**2 + config.c_dim, *config.hidden]
        layers: list[nn.Module] = []
        for i, (w_in, w_out) in enumerate(pairwise(widths)):
            p = config.input_dropout if i == 0 else config.dropout
            if p > 0:
                layers.append(nn.Dropout(p))
            if config.act == "maxout":
                layers.append(MaxoutLinear(w_in, w_out, config.maxout_pieces))
            else:
                layers.append(LinearAct(w_in, w_out, act=config.act, alpha=config.alpha, impl=impl))
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        layers.append(LinearAct(widths[-1], 1, impl=impl))
        self.net = nn.Sequential(*layers)
        _init_uniform(self, config.init_range)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        c = check_discriminator_inputs(img, c, self.img_channels, self.img_resolution, self.c_dim)
        x = img.flatten(1)
        if c is not None:
            x = concat_labels(x, one_hot_labels(c, self.c_dim, x.dtype))
        return self.net(x)


# --- named configurations ------------------------------------------------------------------


def _gan_mnist(resolution, img_channels, c_dim):
    G = MLPGeneratorConfig(
        resolution or 28,
        img_channels or 1,
        c_dim,
        z_dim=100,
        hidden=(1200, 1200),
        act="relu",
        init_range=0.05,
    )
    D = MLPDiscriminatorConfig(
        resolution or 28,
        img_channels or 1,
        c_dim,
        hidden=(240, 240),
        act="maxout",
        maxout_pieces=5,
        input_dropout=0.2,
        dropout=0.5,
        init_range=0.005,
    )
    return G, D


def _gan_digits(resolution, img_channels, c_dim):
    # LeakyReLU in G and dropout in D: with ReLU and no dropout the small MLPs collapsed
    # to one image within 40 kimg on the digits (measured; see test_train_learning.py).
    G = MLPGeneratorConfig(
        resolution or 32, img_channels or 1, c_dim, z_dim=64, hidden=(256, 512), act="lrelu"
    )
    D = MLPDiscriminatorConfig(
        resolution or 32, img_channels or 1, c_dim, hidden=(512, 256), act="lrelu", alpha=0.2,
        dropout=0.3,
    )
    return G, D


_FACTORIES = {"gan_mnist": _gan_mnist, "gan_digits": _gan_digits}
GAN_CONFIGS: tuple[str, ...] = tuple(_FACTORIES)


def gan_config(
    name: str = "gan_digits",
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int = 0,
) -> tuple[MLPGeneratorConfig, MLPDiscriminatorConfig]:
    """The (G, D) configurations of a named GAN.

    Args:
        name: one of :data:`GAN_CONFIGS`.
        resolution: image side (default: the configuration's, 28 or 32).
        img_channels: image channels (default 1).
        c_dim: number of classes; > 0 gives the label-concatenation cGAN.
    """
    if name not in _FACTORIES:
        raise ValueError(f"name must be one of {GAN_CONFIGS}, got {name!r}")
    return _FACTORIES[name](resolution, img_channels, c_dim)


# --- the papers' training settings ---------------------------------------------------------

GAN_HYPERPARAMS: dict[str, GANHyperparams] = {
    # Goodfellow et al. 2014, goodfeli/adversarial mnist.yaml and AdversaryCost2: SGD with
    # momentum, G trained on -log D(G(z)) (the paper's Sec. 3 suggestion), D on half the
    # BCE of reals and fakes, one D step per G step (k = 1).
    "gan": GANHyperparams(
        source="Goodfellow et al. 2014; goodfeli/adversarial mnist.yaml",
        loss="nonsaturating",
        optimizer="sgd",
        lr_g=0.1,
        lr_d=0.1,
        momentum=0.5,
        batch=100,
        lr_schedule="exponential",
        latent="uniform",
        notes="lr divided by 1.000004 every step down to 1e-6; momentum raised linearly "
        "from 0.5 to 0.7 over epochs 1-250; z uniform on [-sqrt(3), sqrt(3)]; D "
        "dropout: input 0.2, hidden 0.5 (in gan_mnist)",
    ),
    # Mirza & Osindero 2014, Sec. 4.1 (MNIST).
    "cgan": GANHyperparams(
        source="Mirza & Osindero 2014, Sec. 4.1",
        loss="nonsaturating",
        optimizer="sgd",
        lr_g=0.1,
        lr_d=0.1,
        momentum=0.5,
        batch=100,
        lr_schedule="exponential",
        latent="uniform",
        notes="lr decayed by a factor 1.00004 per step down to 1e-6; momentum 0.5 raised to "
        "0.7; dropout 0.5 in G and D; z uniform on the unit hypercube",
    ),
}
