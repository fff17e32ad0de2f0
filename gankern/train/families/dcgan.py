"""DCGAN (Radford et al. 2016) and the losses trained on its networks: LSGAN (Mao et al.
2017), WGAN (Arjovsky et al. 2017) and the hinge loss (Lim & Ye 2017), and ACGAN (Odena
et al. 2017).

The networks are :mod:`gankern.models.dcgan`'s (pytorch/examples' DCGAN). Configurations:
``dcgan64`` (z 100, 64 base channels: the standard 3,576,704 / 2,765,568 parameters at
64x64 RGB), ``dcgan32`` (the same widths, CIFAR-sized) and ``digits`` (16 base channels for
the built-in digits on a CPU); the resolution and channels come from the data. With
``--cond`` the networks are conditioned as ``--cond-mode`` says (label concatenation,
ACGAN's auxiliary classifier, or the projection discriminator with conditional batch norm
in G; that D is spectrally normalized instead of batch-normalized, as Miyato & Koyama's).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from gankern.models.dcgan import (
    DCGAN_HYPERPARAMS,
    DCGANDiscriminatorConfig,
    DCGANGeneratorConfig,
    dcgan_config,
)
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily, from_paper
from gankern.train.family import option

COND_MODES = ("concat", "acgan", "projection")


@dataclass(frozen=True)
class DCGANOptions:
    """Options of the DCGAN-based models."""

    cond_mode: str = option("concat", "how a conditional model (--cond) takes the label: "
                            "concat (cGAN), acgan (auxiliary classifier), projection "
                            "(projection D, conditional batch norm in G)", COND_MODES)


def dcgan_networks(name: str, d_norm: str = "batch", d_spectral_norm: bool = False,
                   cond: str | None = None):
    """``networks(data, options)`` of a DCGAN configuration (see ConfigEntry)."""

    def make(data, options):
        mode = cond or (options.cond_mode if options is not None else "concat")
        norm, sn = d_norm, d_spectral_norm
        if data.c_dim and mode == "projection":
            # Miyato & Koyama's projection discriminator has no batch norm (with it, D's
            # per-batch statistics let D win and G drew gray images: measured on the
            # digits); it is spectrally normalized instead.
            norm, sn = "none", True
        G, D = dcgan_config(name, resolution=data.resolution, img_channels=data.channels,
                            c_dim=data.c_dim, cond=mode if data.c_dim else "none",
                            d_norm=norm, d_spectral_norm=sn)
        return {"G": G, "D": D}

    return make


def dcgan_table(hyper: dict, **network_options) -> dict:
    """The three DCGAN configurations with the given recommended hyperparameters
    (``hyper``: config name -> Hyperparameters)."""
    return {
        "dcgan64": ConfigEntry(dcgan_networks("dcgan64", **network_options), hyper["dcgan64"],
                               "z 100, 64 base channels (pytorch/examples)"),
        "dcgan32": ConfigEntry(dcgan_networks("dcgan32", **network_options), hyper["dcgan32"],
                               "the same widths, one block less (CIFAR-sized)"),
        "digits": ConfigEntry(dcgan_networks("dcgan_digits", **network_options),
                              hyper["digits"], "16 base channels, for the built-in digits"),
    }


def paper_and_digits(paper, published_kimg: float, **digits_changes) -> dict:
    """The paper's hyperparameters for the published configurations (a run of
    ``published_kimg``) and, for ``digits``, the same with ``digits_changes`` (a shorter
    run, a smaller batch)."""
    published = from_paper(paper, total_kimg=published_kimg)
    digits = dataclasses.replace(published, **digits_changes)
    return {"dcgan64": published, "dcgan32": published, "digits": digits}


class DCGANFamily(ConfiguredFamily):
    """DCGAN: non-saturating loss, Adam 2e-4, betas (0.5, 0.999), batch 128."""

    name = "dcgan"
    title = "DCGAN (Radford et al. 2016)"
    options_type = DCGANOptions
    configs = dcgan_table(paper_and_digits(DCGAN_HYPERPARAMS["dcgan"], 5000, batch=64,
                                           total_kimg=60))
    default_config = "dcgan64"
    config_classes = {"G": DCGANGeneratorConfig, "D": DCGANDiscriminatorConfig}
