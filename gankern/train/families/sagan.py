"""SAGAN (Zhang, Goodfellow, Metaxas & Odena 2019, "Self-Attention Generative Adversarial
Networks"; official code brain-research/self-attention-gan).

The networks are :mod:`gankern.models.sagan`'s: ResNets with self-attention, spectral
normalization in G *and* D; with ``--cond`` class-conditional batch norm in G and the
projection discriminator (without it, plain batch norm and a linear head). The recipe is the
paper's (section 5): hinge loss, two time-scale learning rates (G 1e-4, D 4e-4), Adam with
betas (0, 0.9), one D step per G step, batch 256 (the TF code: 64 per tower x 4 towers), no
moving average; the published curves run to 1M iterations (256,000 kimg).

Configurations: ``sagan128`` (the paper's ImageNet model), ``sagan64``, ``sagan32`` (gankern's
smaller variants on BigGAN-PyTorch's width tables) and ``digits`` (ch 8, for the built-in
digits on a CPU, with higher learning rates: see ``DIGITS``). On data of another resolution
the attention block keeps its place relative to the image size (``sagan128``'s 32x32
attention sits at 64x64 on 256 px images).
"""

from __future__ import annotations

import dataclasses

from gankern.models.sagan import (
    DIGITS_TRAINING,
    SAGAN_TRAINING,
    DiscriminatorConfig,
    GeneratorConfig,
    sagan_config,
)
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily, from_paper
from gankern.train.family import DataInfo

# The paper's training length: 1M iterations of 256 images.
PAPER_KIMG = 1_000_000 * 256 / 1000
# The digits (measured: tests/test_train_learning.py): the paper's loss and Adam betas with
# the D lr twice G's, both higher (G 8e-4, D 1.6e-3: at the paper's 1e-4 / 4e-4 neither the
# images nor the classes are learned in a CPU-sized run), batch 32; and G's batch-norm
# running statistics with momentum 0.1 instead of the TF code's 0.001 (too slow for a run
# of a few hundred steps: the generator samples in eval mode with them).
DIGITS = from_paper(DIGITS_TRAINING, total_kimg=20, glr=8e-4, dlr=1.6e-3)
DIGITS_BN_MOMENTUM = 0.1


def scaled_attention(attention: tuple, native: int, resolution: int) -> tuple:
    """Attention resolutions of a configuration made for ``native`` px, moved to
    ``resolution`` px at the same place relative to the image size."""
    return tuple(max(a * resolution // native, 1) for a in attention)


def at_resolution(config, data: DataInfo, **changes):
    """A network config (made for its native resolution) for ``data``: its resolution,
    channels and classes, the attention moved with the resolution, and ``changes``."""
    return dataclasses.replace(
        config, img_resolution=data.resolution, img_channels=data.channels,
        c_dim=data.c_dim,
        attention=scaled_attention(config.attention, config.img_resolution, data.resolution),
        **changes,
    )  # fmt: skip


def sagan_networks(name: str, **g_changes):
    """``networks(data, options)`` of a configuration of :func:`sagan_config` (with
    ``g_changes`` to the generator's config)."""

    def make(data, options):
        G, D = sagan_config(name)
        return {"G": at_resolution(G, data, **g_changes), "D": at_resolution(D, data)}

    return make


class SAGANFamily(ConfiguredFamily):
    """SAGAN, unconditional or (``--cond``) class-conditional (see the module docstring)."""

    name = "sagan"
    title = "SAGAN (Zhang et al. 2019): self-attention, spectral norm in G and D, hinge, TTUR"
    configs = {
        "sagan128": ConfigEntry(sagan_networks("sagan128"),
                                from_paper(SAGAN_TRAINING, PAPER_KIMG),
                                "the paper's ImageNet 128 model (ch 64, attention at 32)"),
        "sagan64": ConfigEntry(sagan_networks("sagan64"),
                               from_paper(SAGAN_TRAINING, PAPER_KIMG),
                               "64 px, ch 64, attention at 32"),
        "sagan32": ConfigEntry(sagan_networks("sagan32"),
                               from_paper(SAGAN_TRAINING, PAPER_KIMG),
                               "32 px (CIFAR-sized), 256 maps, attention at 16"),
        "digits": ConfigEntry(sagan_networks("digits", bn_momentum=DIGITS_BN_MOMENTUM), DIGITS,
                              "ch 8, attention at half the image size, for the digits"),
    }  # fmt: skip
    default_config = "sagan128"
    standard_configs = {128: "sagan128"}
    config_classes = {"G": GeneratorConfig, "D": DiscriminatorConfig}
