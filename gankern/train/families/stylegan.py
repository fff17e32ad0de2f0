"""StyleGAN (v1; Karras, Laine & Aila 2019, "A Style-Based Generator Architecture for
Generative Adversarial Networks"; official code NVlabs/stylegan).

The networks are :mod:`gankern.models.stylegan`'s (mapping network, AdaIN, noise inputs,
learned constant, ProGAN's discriminator with blur). The recipe is the official
``train.py`` for FFHQ:

* non-saturating logistic loss, and R1 ``gamma / 2 * |grad D(x)|^2`` on the reals with
  gamma 10 in every D step (``D_logistic_simplegp``);
* style mixing regularization with probability 0.9, the crossover point drawn among the ws
  the current level uses (shared with StyleGAN2: :mod:`gankern.train.families._style`);
* Adam with betas (0, 0.99), eps 1e-8, lr 0.001 (0.0015 at 128 px, 0.002 at 256 px, 0.003
  from 512 px on); a moving average of G with a half-life of 10k images;
* progressive growing from 8x8 with ProGAN's schedule (``stylegan``: the official 8-GPU
  run, 600k images per phase, 25M in all; :mod:`gankern.train.families._progressive`), or
  a fixed resolution (``--progressive false``, the official ``structure='fixed'``);
* the truncation trick for sampling (``gankern generate --trunc 0.7 --trunc-cutoff 8`` for
  the paper's figures; ``--mode mixing`` draws style-mixing grids).

Configurations: ``stylegan`` (the official FFHQ networks: 26,219,627 generator parameters
at 1024 px; batch 32 as 8 passes of 4, the official minibatch at 1024 px on 8 GPUs) and
``digits`` (64 maps at most, z and w 64, 2 mapping layers, the ``digits`` schedule) for the
built-in digits.
"""

from __future__ import annotations

import dataclasses

from gankern.models.progressive_schedule import SCHEDULES
from gankern.models.stylegan import (
    DIGITS_TRAINING,
    STYLEGAN_TRAINING,
    DiscriminatorConfig,
    GeneratorConfig,
    stylegan_config,
)
from gankern.train.families._configured import ConfigEntry, ConfiguredFamily
from gankern.train.families._progressive import (
    PROGRESSIVE_KNOBS,
    ProgressiveGrowing,
    reset_option,
    scale_option,
    schedule_hyperparameters,
    schedule_option,
)
from gankern.train.families._style import StyleBased
from gankern.train.family import option


@dataclasses.dataclass(frozen=True)
class StyleGANOptions:
    """StyleGAN's own options."""

    progressive: bool = option(True, "grow from 8x8 with fade-ins (the official); false: "
                               "train at the full resolution from the start")
    schedule: str = schedule_option(SCHEDULES)
    schedule_scale: float = scale_option()
    reset_optimizer: bool = reset_option()


def stylegan_networks(name: str):
    """``networks(data, options)`` of a configuration of :func:`stylegan_config`."""

    def make(data, options):
        G, D = stylegan_config(name, resolution=data.resolution, img_channels=data.channels,
                               c_dim=data.c_dim)
        return {"G": dataclasses.replace(G, progressive=options.progressive), "D": D}

    return make


def stylegan_hyperparameters(cfg: str):
    """``recommended(data, options)`` of a configuration: the schedule's batch and rates,
    the official loss, R1, moving average and style mixing."""

    def recommended(data, options):
        training = StyleGANFamily.trainings[cfg]
        schedule = StyleGANFamily.growth_schedule(options, cfg, data.resolution)
        return schedule_hyperparameters(
            schedule, data.resolution, optimizer="adam", betas=tuple(training.betas),
            eps=training.eps, loss=training.loss, d_reg="r1", gamma=training.r1_gamma,
            r1_interval=0, ema_kimg=training.ema_kimg, style_mixing=training.style_mixing_prob,
        )  # fmt: skip

    return recommended


class StyleGANFamily(ProgressiveGrowing, StyleBased, ConfiguredFamily):
    """StyleGAN v1 (see the module docstring)."""

    name = "stylegan"
    title = "StyleGAN (Karras et al. 2019): style-based G, mixing, progressive or fixed, R1"
    knobs = PROGRESSIVE_KNOBS + ("style_mixing",)
    options_type = StyleGANOptions
    configs = {
        "stylegan": ConfigEntry(stylegan_networks("stylegan"),
                                stylegan_hyperparameters("stylegan"),
                                "the official FFHQ networks (512 maps at most)"),
        "digits": ConfigEntry(stylegan_networks("digits"),
                              stylegan_hyperparameters("digits"),
                              "64 maps at most, z and w 64, the digits schedule"),
    }  # fmt: skip
    default_config = "stylegan"
    standard_configs = {256: "stylegan", 1024: "stylegan"}
    config_classes = {"G": GeneratorConfig, "D": DiscriminatorConfig}
    trainings = {"stylegan": STYLEGAN_TRAINING, "digits": DIGITS_TRAINING}
    sampling_kwargs = {"noise_mode": "const"}

    def synthesis_kwargs(self) -> dict:
        return self.growth_kwargs()

    def active_ws(self) -> int:
        return self.networks["G"].synthesis.num_ws_at(self.growth.level)

    def generate_at_level(self, z, c):
        return self.run_G(z, c)[0]
