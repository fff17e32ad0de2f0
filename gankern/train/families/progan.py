"""ProGAN (Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation"; official code tkarras/progressive_growing_of_gans).

The networks are :mod:`gankern.models.progan`'s (pixel norm, minibatch standard deviation,
equalized learning rate, ``torgb`` / ``fromrgb`` at every resolution), grown from 4x4 with a
fade-in of every new resolution (:mod:`gankern.train.families._progressive`: the level,
fade-in, learning rates and optimizer resets follow the published schedule as a function of
the images seen; ``--schedule-scale`` shrinks the phases for short runs). The recipe is the
official ``config.py`` / ``loss.py``:

* WGAN-GP: G minimizes ``-D(G(z))``, D minimizes ``D(G(z)) - D(x)`` plus the gradient penalty
  ``10 * (|grad D(x_hat)| - 1)^2`` on interpolates, every step, and the drift term
  ``0.001 * D(x)^2`` on the reals (``--drift``, the official ``wgan_epsilon``);
* Adam with lr 0.001 (0.0015 at 1024 px), betas (0, 0.99), eps 1e-8, one D step per G step;
  Adam's moments reset when a fade-in starts and ends (``--reset-optimizer``);
* a moving average of G with decay 0.999 per minibatch (``G_smoothing``), as ``ema_kimg``;
* with ``--cond``, the official AC-GAN variant: D's class logits and their cross-entropy on
  real and generated images (weight 1).

Configurations: ``progan`` (the official networks, 512 maps at most: about 23.1 million
parameters each at 1024 px; the ``progan`` schedule: 600k images per phase, 12M in all, the
released config's minibatch at the final resolution) and ``digits`` (64 maps at most, the
``digits`` schedule: 4k images per phase, batch 16) for the built-in digits. The official
minibatch grows smaller with the resolution (128 at 4-16 px ... 4 at 1024 px); here a run
keeps the batch of its final resolution throughout (see the module above).
"""

from __future__ import annotations

import dataclasses

from gankern.models.progan import (
    DIGITS_TRAINING,
    PROGAN_TRAINING,
    DiscriminatorConfig,
    GeneratorConfig,
    progan_config,
)
from gankern.models.progressive_schedule import SCHEDULES
from gankern.train.families._configured import (
    ConfigEntry,
    ConfiguredFamily,
    ema_kimg_from_decay,
)
from gankern.train.families._progressive import (
    ProgressiveGrowing,
    reset_option,
    scale_option,
    schedule_hyperparameters,
    schedule_option,
)
from gankern.train.family import option
from gankern.train.losses import drift_penalty

# The digits (measured: tests/test_train_learning.py): the official recipe with the paper's
# minibatch of 16 (its CelebA-HQ setting up to 128 px; with the digits schedule's 32 a short
# run learns less per image) and a moving average of a shorter half-life (the official 0.999
# per minibatch would average over 11k images, most of a CPU-sized run).
DIGITS_BATCH = 16
DIGITS_EMA_KIMG = 1.0


@dataclasses.dataclass(frozen=True)
class ProGANOptions:
    """ProGAN's own options."""

    schedule: str = schedule_option(SCHEDULES)
    schedule_scale: float = scale_option()
    reset_optimizer: bool = reset_option()
    drift: float = option(PROGAN_TRAINING.drift_weight, "weight of the drift term "
                          "E[D(x)^2] on real images (the official wgan_epsilon)")


def progan_networks(name: str):
    """``networks(data, options)`` of a configuration of :func:`progan_config`."""

    def make(data, options):
        G, D = progan_config(name, resolution=data.resolution, img_channels=data.channels,
                             c_dim=data.c_dim)
        return {"G": G, "D": D}

    return make


def progan_hyperparameters(cfg: str, ema_kimg: float | None = None, batch: int | None = None):
    """``recommended(data, options)`` of a configuration: the schedule's batch (or
    ``batch``) and rates, the official WGAN-GP settings and moving average (or a half-life
    of ``ema_kimg``)."""

    def recommended(data, options):
        training = ProGANFamily.trainings[cfg]
        schedule = ProGANFamily.growth_schedule(options, cfg, data.resolution)
        hp = schedule_hyperparameters(
            schedule, data.resolution, optimizer="adam", betas=tuple(training.betas),
            eps=training.eps, loss="wasserstein", d_reg="gp", gamma=training.gp_weight,
            r1_interval=0, n_critic=training.n_critic,
        )  # fmt: skip
        if batch is not None:
            hp = dataclasses.replace(hp, batch=batch, batch_gpu=batch)
        # G_smoothing: a decay per minibatch, i.e. per step of the run's batch.
        ema = ema_kimg if ema_kimg is not None else ema_kimg_from_decay(training.ema_beta,
                                                                        hp.batch)
        return dataclasses.replace(hp, ema_kimg=ema)

    return recommended


class ProGANFamily(ProgressiveGrowing, ConfiguredFamily):
    """ProGAN (see the module docstring)."""

    name = "progan"
    title = ("ProGAN (Karras et al. 2018): progressive growing, WGAN-GP with drift, "
             "equalized lr")
    options_type = ProGANOptions
    configs = {
        "progan": ConfigEntry(progan_networks("progan"),
                              progan_hyperparameters("progan"),
                              "the official networks (512 maps at most)"),
        "digits": ConfigEntry(progan_networks("digits"),
                              progan_hyperparameters("digits", DIGITS_EMA_KIMG, DIGITS_BATCH),
                              "64 maps at most, the digits schedule"),
    }  # fmt: skip
    default_config = "progan"
    standard_configs = {256: "progan", 1024: "progan"}
    config_classes = {"G": GeneratorConfig, "D": DiscriminatorConfig}
    trainings = {"progan": PROGAN_TRAINING, "digits": DIGITS_TRAINING}

    def discriminator_extra_loss(self, real_logits):
        """The drift term ``drift * D(x)^2`` per real image."""
        return drift_penalty(real_logits) * self.options.drift
