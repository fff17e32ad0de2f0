"""GAN (Goodfellow et al. 2014) and cGAN (Mirza & Osindero 2014): MLP generator and
discriminator, the minimax game with the non-saturating generator loss.

Configurations: ``mnist`` (the paper's MNIST networks and its SGD settings; the paper's
exponential learning-rate decay and momentum ramp are not reproduced) and ``digits`` (small
MLPs for the built-in digits, trained with Adam as most reimplementations do, so that a
CPU run of a minute draws digits). ``--loss minimax`` trains G on the saturating
``log(1 - D(G(z)))`` of the paper's equation 1 instead. ``cgan`` is the same networks
with the label appended to G's and D's inputs, on labeled data.
"""

from __future__ import annotations

from gankern.models.gan import (
    GAN_HYPERPARAMS,
    MLPDiscriminatorConfig,
    MLPGeneratorConfig,
    gan_config,
)
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily, from_paper
from gankern.train.family import Hyperparameters

# gankern's settings of the small digits MLPs (measured: see tests/test_train_learning.py).
DIGITS = Hyperparameters(batch=64, glr=2e-4, dlr=2e-4, total_kimg=60, optimizer="adam",
                         betas=(0.5, 0.999), loss="nonsaturating")


def _networks(name: str):
    def make(data, options):
        G, D = gan_config(name, resolution=data.resolution, img_channels=data.channels,
                          c_dim=data.c_dim)
        return {"G": G, "D": D}

    return make


class MLPGANFamily(ConfiguredFamily):
    """The original GAN."""

    name = "gan"
    title = "GAN (Goodfellow et al. 2014): MLPs, minimax / non-saturating loss"
    configs = {
        "mnist": ConfigEntry(_networks("gan_mnist"),
                             from_paper(GAN_HYPERPARAMS["gan"], total_kimg=3000),
                             "the paper's MNIST networks (maxout D) and SGD settings"),
        "digits": ConfigEntry(_networks("gan_digits"), DIGITS,
                              "small MLPs for the built-in digits (Adam)"),
    }
    default_config = "mnist"
    config_classes = {"G": MLPGeneratorConfig, "D": MLPDiscriminatorConfig}


class ConditionalGANFamily(MLPGANFamily):
    """cGAN: the label concatenated to G's and D's inputs (always conditional)."""

    name = "cgan"
    title = "cGAN (Mirza & Osindero 2014): MLPs with the label concatenated"
    labels = "always"
    configs = {
        "mnist": ConfigEntry(_networks("gan_mnist"),
                             from_paper(GAN_HYPERPARAMS["cgan"], total_kimg=3000),
                             "the GAN paper's MNIST networks with labels, SGD"),
        "digits": MLPGANFamily.configs["digits"],
    }
