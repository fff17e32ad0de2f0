"""StyleGAN2's training objective: what to compute in each phase of a step.

* Generator, main: non-saturating logistic loss ``softplus(-D(G(z)))``.
* Generator, regularization: path length penalty ``pl_weight * (|J^T y| - a)^2``.
* Discriminator, main: logistic loss ``softplus(D(G(z))) + softplus(-D(x))``.
* Discriminator, regularization: R1, ``gamma / 2 * |grad_x D(x)|^2`` on reals.

Every method returns *per-sample* terms; the loop decides the weights (batch
normalization, lazy-regularization interval) and when to run what. Generated images go
through style mixing (:func:`gankern.models.stylegan2.mapping_with_mixing`), and every
image shown to D (real or fake) through the augmentation, if any.

The path length running mean is the one thing with state. To make N processes (or N
accumulation rounds) compute exactly what one process computes over the whole batch, every
slice of a step's batch uses the mean as it was at the start of the step (moved towards its
own slice mean by ``decay``, like StyleGAN2 does for its batch), and the loop moves the
stored mean once per step, towards the mean over the whole batch (:meth:`update_pl_mean`).
With one process and no accumulation this is StyleGAN2's rule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gankern.models.stylegan2 import mapping_with_mixing
from gankern.train.penalties import PathLengthPenalty, r1_penalty


class StyleGAN2Loss:
    """The terms of StyleGAN2's objective for generator ``G`` and discriminator ``D``.

    Args:
        G, D: the networks (StyleGAN2-ADA API: ``G.mapping``, ``G.synthesis``, ``D(img, c)``).
        r1_gamma: R1 weight.
        pl_weight: path length weight (0 disables the penalty).
        pl_decay: decay of the path length running mean.
        style_mixing_prob: probability that a generated batch mixes two latents.
        augment: applied to every image D sees (ADA's pipeline, DiffAugment), or None.
        channels_last: feed D channels_last images.
    """

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        *,
        r1_gamma: float,
        pl_weight: float,
        pl_decay: float,
        style_mixing_prob: float,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        channels_last: bool = False,
    ):
        self.G = G
        self.D = D
        self.augment = augment
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.channels_last = channels_last
        self.path_length = PathLengthPenalty(decay=pl_decay, weight=pl_weight)
        self.path_length.to(next(G.parameters()).device)

    # --- running the networks -----------------------------------------------------------

    def run_G(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ws, with style mixing; random noise inputs."""
        ws = mapping_with_mixing(self.G.mapping, z, c, self.style_mixing_prob)
        img = self.G.synthesis(ws, noise_mode="random")
        return img, ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """D's logits ``[N]`` for (augmented) images."""
        if self.augment is not None:
            img = self.augment(img)
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        return self.D(img, c).float().reshape(-1)

    # --- the terms ----------------------------------------------------------------------

    def generator_main(self, z, c) -> tuple[torch.Tensor, dict]:
        """``softplus(-D(G(z)))`` per sample, and statistics."""
        img, _ = self.run_G(z, c)
        logits = self.run_D(img, c)
        loss = F.softplus(-logits)
        return loss, {"Loss/scores/fake": logits, "Loss/signs/fake": logits.sign(),
                      "Loss/G/loss": loss}

    def generator_path_length(self, z, c) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Weighted path length penalty per sample, the path lengths, and statistics."""
        img, ws = self.run_G(z, c)
        lengths = self.path_length.path_lengths(img, ws)
        start = self.path_length.pl_mean.to(lengths.device)
        mean = start.lerp(lengths.mean(), self.path_length.decay)
        penalty = (lengths - mean).square() * self.path_length.weight
        return penalty, lengths.detach(), {"Loss/pl_penalty": penalty}

    def discriminator_main(self, real, real_c, z, c, with_r1: bool = False):
        """Logistic loss per sample (fake and real terms), optionally plus R1.

        Returns ``(main_loss, r1_loss or None, real_logits, stats)``; R1 (with the
        ``gamma / 2`` factor) reuses the real logits when computed in the same pass.
        """
        with torch.no_grad():
            fake, _ = self.run_G(z, c)
        fake_logits = self.run_D(fake, c)
        if with_r1:
            penalty, real_logits = r1_penalty(
                self.run_D, real, real_c, reduction="none", return_logits=True
            )
            r1 = penalty * (self.r1_gamma / 2)
        else:
            real_logits = self.run_D(real.detach(), real_c)
            r1 = None
        loss = F.softplus(fake_logits) + F.softplus(-real_logits)
        stats = {"Loss/scores/fake": fake_logits, "Loss/scores/real": real_logits,
                 "Loss/signs/real": real_logits.sign(), "Loss/D/loss": loss}
        if r1 is not None:
            stats["Loss/r1_penalty"] = r1
        return loss, r1, real_logits.detach(), stats

    def discriminator_r1(self, real, real_c) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """R1 per sample (``gamma / 2 * |grad|^2``), the real logits, and statistics."""
        penalty, real_logits = r1_penalty(
            self.run_D, real, real_c, reduction="none", return_logits=True
        )
        r1 = penalty * (self.r1_gamma / 2)
        return r1, real_logits.detach(), {"Loss/r1_penalty": r1}

    # --- state --------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The loss's own state (the path length running mean), for checkpoints."""
        return self.path_length.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.path_length.load_state_dict(state)

    @torch.no_grad()
    def update_pl_mean(self, batch_mean_length: torch.Tensor) -> None:
        """Move the path length running mean towards the whole batch's mean length."""
        pl = self.path_length
        pl.pl_mean.copy_(pl.pl_mean.lerp(batch_mean_length.to(pl.pl_mean), pl.decay))
