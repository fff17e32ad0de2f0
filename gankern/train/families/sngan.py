"""SNGAN (Miyato et al. 2018): the ResNet generator and a spectrally normalized ResNet
discriminator, hinge loss, 5 D steps per G step, Adam 2e-4 with betas (0, 0.9) and the
learning rates decayed linearly to 0; with ``--cond``, SNGAN-projection (Miyato & Koyama
2018): conditional batch norm in G and a projection discriminator.

The networks are :mod:`gankern.models.sngan`'s. Configurations: ``sngan32`` (CIFAR-10, the
official code's), ``sngan48`` (STL-10, the paper's Table 4), ``sngan64`` (the 64x64 ImageNet
projection model and its schedule) and ``digits`` (narrow, for the built-in digits). The
official code draws 128 fakes per G step against 64 reals per D step; here G's batch is
D's.
"""

from __future__ import annotations

import dataclasses

from gankern.models.hyperparams import GANHyperparams
from gankern.models.sngan import (
    SNGAN_HYPERPARAMS,
    ResNetDiscriminatorConfig,
    ResNetGeneratorConfig,
    sngan_config,
)
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily, from_paper


def resnet_networks(name: str):
    """``networks(data, options)`` of a configuration of :mod:`gankern.models.sngan`."""

    def make(data, options):
        G, D = sngan_config(name, resolution=data.resolution, img_channels=data.channels,
                            c_dim=data.c_dim)
        return {"G": G, "D": D}

    return make


def paper_length_kimg(hp: GANHyperparams) -> float:
    """The paper's training length in thousands of real images (D sees ``batch`` reals in
    each of its ``n_critic`` steps per G step)."""
    return hp.total_g_steps * hp.n_critic * hp.batch / 1000


_CIFAR = SNGAN_HYPERPARAMS["sngan"]
_IMAGENET64 = SNGAN_HYPERPARAMS["sngan_projection64"]
# The digits: the paper's recipe with batches of 16 and no decay, so that a short CPU run
# makes enough G steps (5 D steps each); measured in tests/test_train_learning.py.
DIGITS = dataclasses.replace(from_paper(_CIFAR, total_kimg=60), lr_schedule="constant",
                             batch=16)


class SNGANFamily(ConfiguredFamily):
    """SNGAN and SNGAN-projection."""

    name = "sngan"
    title = "SNGAN (Miyato et al. 2018): spectral norm, ResNets, hinge; projection with --cond"
    configs = {
        "sngan32": ConfigEntry(resnet_networks("sngan32"),
                               from_paper(_CIFAR, paper_length_kimg(_CIFAR)),
                               "CIFAR-10 ResNets (G ch 256, D ch 128)"),
        "sngan48": ConfigEntry(resnet_networks("sngan48"),
                               from_paper(_CIFAR, paper_length_kimg(_CIFAR)),
                               "STL-10 ResNets (the paper's Table 4)"),
        "sngan64": ConfigEntry(resnet_networks("sngan64"),
                               from_paper(_IMAGENET64, paper_length_kimg(_IMAGENET64)),
                               "64x64 ImageNet projection ResNets"),
        "digits": ConfigEntry(resnet_networks("sngan_digits"), DIGITS,
                              "narrow ResNets for the built-in digits"),
    }
    default_config = "sngan32"
    standard_configs = {32: "sngan32"}
    config_classes = {"G": ResNetGeneratorConfig, "D": ResNetDiscriminatorConfig}
