"""The step of every family that generates images from noise: G(z, c) against D(x, c).

:class:`NoiseToImageFamily` is the objective that GAN, DCGAN, the conditional GANs, WGAN,
WGAN-GP, LSGAN, SNGAN, SAGAN, BigGAN, ProGAN and the StyleGANs share; a family only names
its networks, configurations and defaults, and overrides a hook where its paper adds a
term. Per phase (see :mod:`gankern.train.phases`):

* **G main**: ``generator_loss(D(G(z, c), c))``, plus the auxiliary classifier loss on
  ``c`` when D has a classifier head (ACGAN), plus the family's per-step terms.
* **D main**: ``discriminator_loss(D(x, c_x), D(G(z, c), c))`` on real images ``x`` and
  generated ones (made without gradients), plus ACGAN's classifier loss on both, plus the
  regularizer when it is not lazy.
* **D reg**: the regularizer alone (lazy: multiplied by its interval): R1
  ``gamma / 2 * |grad_x D(x)|^2`` on reals, R2 the same on generated images, or WGAN-GP
  ``gamma * (|grad D(x_hat)| - 1)^2`` on random interpolates.
* after each D step, WGAN's weight clipping when ``clip`` is set.

Every image D sees (real or generated) goes through the run's augmentation (ADA,
DiffAugment), if any. Terms are per sample; the trainer normalizes by the global batch.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from gankern.train.family import GANFamily, Phase, PhaseInputs, PhaseOutput
from gankern.train.losses import (
    auxiliary_classifier_loss,
    discriminator_loss,
    generator_loss,
)
from gankern.train.penalties import r1_penalty, r2_penalty, wgan_gp_penalty

# Hyperparameter options every noise-to-image family uses (see TrainingOptions).
NOISE_TO_IMAGE_KNOBS = (
    "optimizer", "glr", "dlr", "betas", "n_critic", "lr_schedule", "lr_decay_start", "loss",
    "d_reg", "gamma", "r1_interval", "clip", "ema_kimg", "ema_rampup", "ema_start_kimg",
)  # fmt: skip


@torch.no_grad()
def clip_weights_(module: torch.nn.Module, bound: float) -> None:
    """WGAN's weight clipping: clamp every parameter of ``module`` to ``[-bound, bound]``."""
    for p in module.parameters():
        p.clamp_(-bound, bound)


class NoiseToImageFamily(GANFamily):
    """The objective of the families that draw images from noise (see the module doc).

    Subclasses provide the networks (:meth:`network_config` and friends) and may override
    :meth:`generate` (how G is run for training), :meth:`run_discriminator` (how D is
    called), :meth:`generator_step_terms` / :meth:`discriminator_step_terms` (per-step terms
    such as BigGAN's orthogonal regularization) and :meth:`discriminator_extra_loss`
    (per-sample terms such as ProGAN's drift).
    """

    knobs = NOISE_TO_IMAGE_KNOBS
    aux_weight: float = 1.0  # weight of ACGAN's classifier loss (when D has a class head)

    # --- running the networks ------------------------------------------------------------

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Generated images for training (G in training mode)."""
        return self.networks["G"](z, c)

    def run_D_full(self, img: torch.Tensor, c: torch.Tensor):
        """``(logits [N], class_logits [N, c_dim] or None)`` for (augmented) images."""
        if self.augment is not None:
            img = self.augment(img)
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        out = self.run_discriminator(img, c)
        class_logits = None
        if isinstance(out, tuple):
            out, class_logits = out
        return out.float().reshape(-1), class_logits

    def run_discriminator(self, img: torch.Tensor, c: torch.Tensor):
        """D's raw output for images that are ready for it (augmented, in the memory
        format): ``D(img, c)``. A progressive family passes its growth level and fade-in."""
        return self.networks["D"](img, c)

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """D's logits ``[N]`` for (augmented) images."""
        return self.run_D_full(img, c)[0]

    def _recording_D(self):
        """A ``D(img, c) -> logits`` for the penalties that keeps the class logits aside."""
        box: dict = {}

        def call(img, c):
            logits, box["class_logits"] = self.run_D_full(img, c)
            return logits

        return call, box

    # --- hooks ---------------------------------------------------------------------------

    def generator_step_terms(self) -> dict[str, torch.Tensor]:
        """Per-step terms of the G main phase (scalars, counted once per step)."""
        return {}

    def discriminator_step_terms(self) -> dict[str, torch.Tensor]:
        """Per-step terms of the D main phase (scalars, counted once per step)."""
        return {}

    def discriminator_extra_loss(self, real_logits: torch.Tensor) -> torch.Tensor | None:
        """A per-sample term added to D's loss (None: none)."""
        return None

    # --- the terms -----------------------------------------------------------------------

    def has_discriminator_regularizer(self) -> bool:
        s = self.settings
        return s.d_reg != "none" and s.gamma > 0

    def generator_main(self, z, c) -> tuple[torch.Tensor, dict]:
        """G's loss per sample, and statistics."""
        img = self.generate(z, c)
        logits, class_logits = self.run_D_full(img, c)
        loss = generator_loss(self.settings.loss, logits)
        stats = {"Loss/scores/fake": logits, "Loss/signs/fake": logits.sign()}
        if class_logits is not None:
            aux = auxiliary_classifier_loss(class_logits, c)
            loss = loss + aux * self.aux_weight
            stats["Loss/G/aux"] = aux
        stats["Loss/G/loss"] = loss
        return loss, stats

    def _regularizer(self, real, real_c, fake, c, call):
        """The (unweighted by interval) regularizer per sample on this slice."""
        s = self.settings
        if s.d_reg == "r1":
            return r1_penalty(call, real, real_c, reduction="none") * (s.gamma / 2)
        if s.d_reg == "r2":
            return r2_penalty(call, fake, c, reduction="none") * (s.gamma / 2)
        if s.d_reg == "gp":
            # Interpolates between a real and a generated image are judged with the real
            # image's label.
            return wgan_gp_penalty(call, real, fake, real_c, reduction="none") * s.gamma
        raise ValueError(f"unknown d_reg {s.d_reg!r}")

    def discriminator_main(self, real, real_c, z, c, with_reg: bool = False):
        """D's loss per sample (fake and real terms), optionally plus the regularizer.

        Returns ``(main_loss, reg or None, real_logits, stats)``; R1 reuses the real logits
        when computed in the same pass.
        """
        s = self.settings
        with torch.no_grad():
            fake = self.generate(z, c)
        fake_logits, fake_class = self.run_D_full(fake, c)
        call, box = self._recording_D()
        reg = None
        if with_reg and s.d_reg == "r1":
            penalty, real_logits = r1_penalty(call, real, real_c, reduction="none",
                                              return_logits=True)
            real_class = box["class_logits"]
            reg = penalty * (s.gamma / 2)
        else:
            real_logits, real_class = self.run_D_full(real.detach(), real_c)
            if with_reg:
                reg = self._regularizer(real, real_c, fake, c, call)
        loss = discriminator_loss(s.loss, real_logits, fake_logits)
        stats = {"Loss/scores/fake": fake_logits, "Loss/scores/real": real_logits,
                 "Loss/signs/real": real_logits.sign()}
        extra = self.discriminator_extra_loss(real_logits)
        if extra is not None:
            loss = loss + extra
        if fake_class is not None and real_class is not None:
            aux = (auxiliary_classifier_loss(real_class, real_c)
                   + auxiliary_classifier_loss(fake_class, c))
            loss = loss + aux * self.aux_weight
            stats["Loss/D/aux"] = aux
        stats["Loss/D/loss"] = loss
        if reg is not None:
            stats[f"Loss/{s.d_reg}_penalty"] = reg
        return loss, reg, real_logits.detach(), stats

    def discriminator_reg(self, real, real_c, z, c) -> tuple[torch.Tensor, dict]:
        """The regularizer per sample (lazy phase), and statistics."""
        fake = None
        if self.settings.d_reg in ("r2", "gp"):
            with torch.no_grad():
                fake = self.generate(z, c)
        call, _ = self._recording_D()
        reg = self._regularizer(real, real_c, fake, c, call)
        return reg, {f"Loss/{self.settings.d_reg}_penalty": reg}

    def generator_reg(self, inputs: PhaseInputs, phase: Phase, out: PhaseOutput) -> None:
        """Add G's regularization terms to ``out`` (families with one override this)."""
        raise NotImplementedError(f"model {self.name!r} has no generator regularizer")

    # --- the phase -----------------------------------------------------------------------

    def compute(self, phase: Phase, inputs: PhaseInputs) -> PhaseOutput:
        out = PhaseOutput()
        real, real_c = inputs.real
        if phase.trains_generator:
            if phase.main:
                g_loss, stats = self.generator_main(inputs.z, inputs.c)
                out.terms.append(g_loss.sum() / inputs.batch)
                out.stats.update(stats)
                self._add_step_terms(out, self.generator_step_terms(), inputs)
            if phase.reg:
                self.generator_reg(inputs, phase, out)
            return out
        if phase.main:
            d_loss, reg, real_logits, stats = self.discriminator_main(
                real, real_c, inputs.z, inputs.c, with_reg=phase.reg)
            out.terms.append(d_loss.sum() / inputs.batch)
            if reg is not None:
                out.terms.append(reg.sum() * (phase.reg_gain / inputs.batch))
            out.real_logits = real_logits
            out.stats.update(stats)
            self._add_step_terms(out, self.discriminator_step_terms(), inputs)
        else:
            reg, stats = self.discriminator_reg(real, real_c, inputs.z, inputs.c)
            out.terms.append(reg.sum() * (phase.reg_gain / inputs.batch))
            out.stats.update(stats)
        return out

    @staticmethod
    def _add_step_terms(out: PhaseOutput, terms: Mapping[str, torch.Tensor],
                        inputs: PhaseInputs) -> None:
        for name, value in terms.items():
            out.terms.append(value / inputs.num_slices)
            out.stats[name] = value.detach().reshape(1)

    def after_step(self, phase: Phase, extras) -> None:
        if not phase.trains_generator and self.settings.clip is not None:
            for name in self.players[phase.player]:
                clip_weights_(self.networks[name], self.settings.clip)
