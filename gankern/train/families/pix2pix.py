"""Pix2Pix (Isola et al. 2017): a U-Net translates the input, a PatchGAN conditioned on the
input judges (input, output) pairs, and an L1 loss pulls the output to the target.

Per phase, with ``x`` the input and ``y`` the target of a pair, ``D(x, .)`` a map of patch
logits averaged per image:

* **G**: ``generator_loss(D(x, G(x))) + lambda_l1 * mean|G(x) - y|`` (the official
  ``loss_G_GAN + loss_G_L1``; ``--loss nonsaturating`` is the official "vanilla" BCE with
  real labels);
* **D**: ``0.5 * discriminator_loss(D(x, y), D(x, G(x)))`` (the paper halves D's
  objective), with ``G(x)`` made without gradients by the current G.

Configurations (``--cfg``): ``unet256`` and ``unet128`` (the official U-Nets with the
70x70 PatchGAN; 54,413,955 and 2,768,705 parameters at 3 -> 3 channels), trained as the
paper: Adam 2e-4, betas (0.5, 0.999), batch 1, 100 epochs of your data at the initial rate
then 100 of linear decay to zero (``lr_schedule=linear``, ``lr_decay_start=0.5``);
``digits`` (a small U-Net, 5 levels at 32 px and fewer for smaller images, and a 34x34
PatchGAN for the 32x32 built-in ``builtin:digits-edges``, batch 16, a CPU run of
minutes). Options (``--lambda-l1``, ``--norm``, ``--n-layers``, ``--direction``) default to
the paper's. Not reproduced: the
random jitter (resize to 286, crop 256; give the data at the training size) and the
paper's test-time dropout (grids and ``gankern translate`` run G in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gankern.data.paired import DIRECTIONS
from gankern.models.img2img_layers import NORMS, check_resolution_multiple
from gankern.models.patchgan import PatchGANConfig
from gankern.models.pix2pix import PIX2PIX_PAPER_HYPERPARAMS, UNetGeneratorConfig, pix2pix_config
from gankern.train.families._configured import from_paper
from gankern.train.families._img2img import (
    ImageToImageFamily,
    TranslationConfig,
    epochs_kimg,
    l1_per_image,
    per_image_mean,
    replace_fields,
)
from gankern.train.family import Hyperparameters, PhaseInputs, PhaseOutput, option
from gankern.train.losses import discriminator_loss, generator_loss

PAPER = PIX2PIX_PAPER_HYPERPARAMS
# The paper's own run: facades, 400 pairs, 200 epochs of batch 1 (for --help's defaults).
PAPER_KIMG = PAPER.gan.total_g_steps * PAPER.gan.batch / 1000
# gankern's settings of the small digits networks (measured: tests/test_train_img2img_learning.py).
DIGITS = Hyperparameters(batch=16, glr=2e-4, dlr=2e-4, total_kimg=20, betas=(0.5, 0.999),
                         loss="nonsaturating", lr_schedule="linear", lr_decay_start=0.5)


@dataclass(frozen=True)
class Pix2PixOptions:
    """Pix2Pix's own options (defaults: the paper's)."""

    direction: str = option("AtoB", "which image of a pair is the input: AtoB (A, the left "
                            "half or A/, to B) or BtoA", DIRECTIONS)
    lambda_l1: float = option(PAPER.lambda_l1, "weight of G's L1 distance to the target")
    norm: str = option("batch", "normalization of G and D", NORMS)
    n_layers: int = option(0, "stride-2 convolutions of the PatchGAN (0: the configuration's; "
                           "3 is the 70x70 PatchGAN, 2 a 34x34 one)")


def _digits_levels(resolution: int) -> int:
    """U-Net levels of the ``digits`` configuration: 5 (down to 1x1 at 32 px), fewer for
    smaller images (4 at 16 px)."""
    levels = 5
    while levels > 2 and resolution % 2**levels:
        levels -= 1
    return levels


def _networks(name: str):
    def make(data, options: Pix2PixOptions):
        resolution = data.resolution
        if name == "digits":  # the CPU configuration also runs below its 32 px
            resolution = None
        G, D = pix2pix_config(name, resolution=resolution, in_channels=data.channels,
                              out_channels=data.channels_b)
        if name == "digits":
            G = replace_fields(G, num_downs=_digits_levels(data.resolution))
            check_resolution_multiple(data.resolution, 2**G.num_downs)
        G = replace_fields(G, norm=options.norm)
        D = replace_fields(D, norm=options.norm, n_layers=options.n_layers or None)
        return {"G": G, "D": D}

    return make


def _published(data, options) -> Hyperparameters:
    epochs = PAPER.n_epochs + PAPER.n_epochs_decay
    return from_paper(PAPER.gan, total_kimg=epochs_kimg(epochs, data, PAPER_KIMG))


class Pix2PixFamily(ImageToImageFamily):
    """Pix2Pix's recipe on the one trainer (see the module docstring)."""

    name = "pix2pix"
    title = "Pix2Pix (Isola et al. 2017): U-Net + PatchGAN, GAN + L1, paired data"
    data_kind = "paired"
    default_data = "builtin:digits-edges"
    options_type = Pix2PixOptions
    supports_augment = False
    configs = {
        "unet256": TranslationConfig(_networks("unet256"), _published,
                                     "official unet_256 + 70x70 PatchGAN, 64 maps"),
        "unet128": TranslationConfig(_networks("unet128"), _published,
                                     "official unet_128 + 70x70 PatchGAN, 64 maps"),
        "digits": TranslationConfig(_networks("digits"), lambda data, options: DIGITS,
                                    "5-level U-Net of 16 maps, 34x34 PatchGAN (CPU)"),
    }
    default_config = "unet256"
    standard_configs = {256: "unet256"}
    config_classes = {"G": UNetGeneratorConfig, "D": PatchGANConfig}

    def data_options(self) -> dict:
        return {"direction": self.options.direction}

    @classmethod
    def directions(cls, model_options) -> dict[str, str]:
        return {cls.make_options(model_options).direction: "G"}

    @classmethod
    def input_multiple(cls, G) -> int:
        return 2**G.config.num_downs

    @classmethod
    def grid_columns(cls, nets, batch):
        x, y = batch
        return [x, nets["G"](x), y]

    # --- the objective -------------------------------------------------------------------

    def compute(self, phase, inputs: PhaseInputs) -> PhaseOutput:
        out = PhaseOutput()
        x, y = inputs.real
        n, loss = x.shape[0], self.settings.loss
        G = self.networks["G"]
        if phase.trains_generator:
            fake = G(x)
            logits = self.run_D("D", x, fake)
            adversarial = per_image_mean(generator_loss(loss, logits.reshape(-1)), n)
            l1 = l1_per_image(fake, y)
            total = adversarial + self.options.lambda_l1 * l1
            out.terms.append(total.sum() / inputs.batch)
            out.stats.update({"Loss/G/loss": total, "Loss/G/adversarial": adversarial,
                              "Loss/G/L1": l1, "Loss/scores/fake": logits.mean(1)})
            return out
        with torch.no_grad():
            fake = G(x)
        real_logits = self.run_D("D", x, y)
        fake_logits = self.run_D("D", x, fake)
        per_patch = discriminator_loss(loss, real_logits.reshape(-1), fake_logits.reshape(-1))
        total = per_image_mean(per_patch, n) * PAPER.d_loss_scale
        out.terms.append(total.sum() / inputs.batch)
        out.real_logits = real_logits.detach().mean(1)
        out.stats.update({"Loss/D/loss": total, "Loss/scores/real": real_logits.mean(1),
                          "Loss/scores/fake": fake_logits.mean(1),
                          "Loss/signs/real": real_logits.sign().mean(1)})
        return out
