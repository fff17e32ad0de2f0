"""The model families of ``gankern train --model NAME``, one module each.

A family (a subclass of :class:`gankern.train.family.GANFamily`) is the training recipe of
one model: its networks (from :mod:`gankern.models`), named configurations with the paper's
hyperparameters, and the loss terms of each phase. They are imported on demand, by name.
"""

from __future__ import annotations

import importlib

# --model name -> "module:class", in the order `gankern train --help` lists them.
FAMILIES = {
    "stylegan2": "gankern.train.families.stylegan2:StyleGAN2Family",
    "gan": "gankern.train.families.gan:MLPGANFamily",
    "cgan": "gankern.train.families.gan:ConditionalGANFamily",
    "dcgan": "gankern.train.families.dcgan:DCGANFamily",
    "acgan": "gankern.train.families.acgan:ACGANFamily",
    "wgan": "gankern.train.families.wgan:WGANFamily",
    "lsgan": "gankern.train.families.lsgan:LSGANFamily",
    "hinge": "gankern.train.families.hinge:HingeGANFamily",
    "wgan-gp": "gankern.train.families.wgan_gp:WGANGPFamily",
    "sngan": "gankern.train.families.sngan:SNGANFamily",
    "sagan": "gankern.train.families.sagan:SAGANFamily",
    "biggan": "gankern.train.families.biggan:BigGANFamily",
    "progan": "gankern.train.families.progan:ProGANFamily",
    "stylegan": "gankern.train.families.stylegan:StyleGANFamily",
    "pix2pix": "gankern.train.families.pix2pix:Pix2PixFamily",
    "cyclegan": "gankern.train.families.cyclegan:CycleGANFamily",
    "srgan": "gankern.train.families.srgan:SRGANFamily",
    "srresnet": "gankern.train.families.srgan:SRResNetFamily",
}

DEFAULT_MODEL = "stylegan2"


def family_names() -> tuple[str, ...]:
    """The ``--model`` names."""
    return tuple(FAMILIES)


def get_family(name: str):
    """The family class registered as ``name`` (a ``ValueError`` listing them otherwise)."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise ValueError(f"model must be one of {', '.join(FAMILIES)}, got {name!r}")
    module, cls = FAMILIES[name].split(":")
    return getattr(importlib.import_module(module), cls)
