"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic with a gradient penalty
``10 * (|grad D(x_hat)| - 1)^2`` on random interpolates of real and generated images
(:func:`gankern.train.penalties.wgan_gp_penalty`), 5 critic steps per G step, Adam with
betas (0, 0.9), and no batch norm in the critic.

Configurations: ``resnet32`` (the CIFAR-10 ResNets of the official ``gan_cifar_resnet.py``
and its settings: lr 2e-4 decayed linearly to 0 over 100k G steps; G's batch there is twice
D's, here it is D's), ``dcgan64`` (DCGAN's networks with a critic without normalization,
the paper's Algorithm 1 settings: lr 1e-4, no decay), ``digits`` (the DCGAN digits networks
with an unnormalized critic, which learns within a CPU minute) and ``resnet_digits`` (narrow
ResNets for the built-in digits at 32 px, slower to learn).
"""

from __future__ import annotations

import dataclasses

from gankern.models.dcgan import DCGAN_HYPERPARAMS
from gankern.models.sngan import SNGAN_HYPERPARAMS
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily, from_paper
from gankern.train.families.dcgan import dcgan_networks
from gankern.train.families.sngan import paper_length_kimg, resnet_networks

_RESNET = SNGAN_HYPERPARAMS["wgan_gp_resnet"]
# The digits: the paper's Algorithm 1 settings with the ResNet code's lr 2e-4 and batches of
# 16, so that a short CPU run makes enough G steps (5 critic steps each); measured in
# tests/test_train_learning.py.
DIGITS = dataclasses.replace(from_paper(DCGAN_HYPERPARAMS["wgan_gp"], total_kimg=60),
                             batch=16, glr=2e-4, dlr=2e-4)


class WGANGPFamily(ConfiguredFamily):
    """WGAN with gradient penalty."""

    name = "wgan-gp"
    title = "WGAN-GP (Gulrajani et al. 2017): Wasserstein critic, gradient penalty 10"
    configs = {
        "resnet32": ConfigEntry(resnet_networks("wgangp32"),
                                from_paper(_RESNET, paper_length_kimg(_RESNET)),
                                "CIFAR-10 ResNets of gan_cifar_resnet.py (DIM 128)"),
        "dcgan64": ConfigEntry(dcgan_networks("dcgan64", d_norm="none"),
                               from_paper(DCGAN_HYPERPARAMS["wgan_gp"], total_kimg=5000),
                               "DCGAN's networks, critic without batch norm"),
        "digits": ConfigEntry(dcgan_networks("dcgan_digits", d_norm="none"), DIGITS,
                              "DCGAN's digits networks, critic without batch norm"),
        "resnet_digits": ConfigEntry(resnet_networks("wgangp_digits"), DIGITS,
                                     "narrow ResNets for the built-in digits (32 px)"),
    }
    default_config = "resnet32"
    standard_configs = {32: "resnet32"}

    @classmethod
    def config_from_metadata(cls, key, values):
        from gankern.models.dcgan import DCGANDiscriminatorConfig, DCGANGeneratorConfig
        from gankern.models.sngan import ResNetDiscriminatorConfig, ResNetGeneratorConfig

        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        # Which network family the config describes: DCGAN's has base_channels.
        dcgan = "base_channels" in values
        if key == "G":
            return (DCGANGeneratorConfig if dcgan else ResNetGeneratorConfig)(**values)
        return (DCGANDiscriminatorConfig if dcgan else ResNetDiscriminatorConfig)(**values)


