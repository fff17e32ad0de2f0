"""CycleGAN (Zhu et al. 2017): two generators translate between unpaired domains A and B,
two PatchGANs judge each domain, and cycle consistency ties the translations together.

Networks: ``G_AB`` (A -> B), ``G_BA`` (B -> A), ``D_A`` (judges domain A: real A against
``G_BA(b)``), ``D_B`` (judges B). One optimizer trains both generators (player ``G``),
another both discriminators (player ``D``), as the official code. Per phase, with ``a`` and
``b`` images of the two domains and patch logits averaged per image:

* **G**: ``generator_loss(D_B(G_AB(a))) + generator_loss(D_A(G_BA(b)))``
  ``+ lambda_cycle * (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)``
  ``+ lambda_cycle * lambda_identity * (|G_BA(a) - a| + |G_AB(b) - b|)`` (mean absolute
  differences; the identity terms need domains with the same channels);
* **D**: ``0.5 * discriminator_loss(D_A(a), D_A(pool_A(G_BA(b))))`` plus the same for B,
  the generated images made without gradients by the current generators and passed through
  each discriminator's 50-image history (:class:`gankern.models.ImagePool`).

The image pools are the objective's state: saved in every checkpoint (``image_pools``:
stored images, counts, the state of their random generators), so a resumed run makes the
same choices. With several processes the generated images of each accumulation round are
gathered, and every process applies the pool rule to all of them in slice order: the pools
are the same everywhere and the run computes what one process computes over the whole batch.
A phase skipped for a non-finite loss has still moved its images through the pools.

Configurations (``--cfg``): ``resnet9`` (256 px, the paper's) and ``resnet6`` (128 px): the
official ResNet generators (11,378,179 parameters for ``resnet9``) and 70x70 PatchGANs
(2,764,737), instance norm, least-squares loss, Adam 2e-4 with betas (0.5, 0.999), batch 1,
100 epochs of your data (an epoch is ``max(|A|, |B|)`` images) at the initial rate, then 100
of linear decay to zero; ``digits`` (tiny networks for the 32x32 ``builtin:digits-inverted``
and ``builtin:digits-color``, a CPU run of minutes). Not reproduced: the random jitter
(resize 286, crop 256).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from gankern.models.cyclegan import (
    CYCLEGAN_PAPER_HYPERPARAMS,
    ResnetGeneratorConfig,
    cyclegan_config,
)
from gankern.models.image_pool import ImagePool
from gankern.models.img2img_layers import NORMS
from gankern.models.patchgan import PatchGANConfig
from gankern.train.families._configured import from_paper
from gankern.train.families._img2img import (
    ImageToImageFamily,
    TranslationConfig,
    epochs_kimg,
    l1_per_image,
    per_image_mean,
    replace_fields,
    with_channels,
)
from gankern.train.family import Hyperparameters, PhaseInputs, PhaseOutput, option
from gankern.train.losses import discriminator_loss, generator_loss
from gankern.train.rng import make_generator

PAPER = CYCLEGAN_PAPER_HYPERPARAMS
PAPER_KIMG = PAPER.gan.total_g_steps * PAPER.gan.batch / 1000  # horse2zebra's 200 epochs
# gankern's settings of the tiny digits networks (measured: tests/test_train_img2img_learning.py).
DIGITS = Hyperparameters(batch=16, glr=2e-4, dlr=2e-4, total_kimg=10, betas=(0.5, 0.999),
                         loss="lsgan", lr_schedule="linear", lr_decay_start=0.5)
# Tag of the image pools' random streams (see gankern.train.rng).
POOL_STREAM = 11
DOMAINS = ("A", "B")


@dataclass(frozen=True)
class CycleGANOptions:
    """CycleGAN's own options (defaults: the paper's)."""

    lambda_cycle: float = option(PAPER.lambda_cycle, "weight of each cycle-consistency L1 loss")
    lambda_identity: float = option(PAPER.lambda_identity, "weight of the identity L1 losses, "
                                    "relative to lambda_cycle (0: none)")
    pool_size: int = option(PAPER.pool_size, "generated images in each discriminator's history "
                            "pool (0: none)")
    n_blocks: int = option(0, "residual blocks of each generator (0: the configuration's: 9 "
                           "for resnet9, 6 for resnet6, 3 for digits)")
    norm: str = option("instance", "normalization of the generators and discriminators", NORMS)


def _networks(name: str):
    def make(data, options: CycleGANOptions):
        g_ab, d_b = cyclegan_config(name, data.resolution, data.channels, data.channels_b)
        g_ba, d_a = cyclegan_config(name, data.resolution, data.channels_b, data.channels)
        blocks = options.n_blocks or None
        gens = [replace_fields(g, n_blocks=blocks, norm=options.norm) for g in (g_ab, g_ba)]
        discs = [replace_fields(d, norm=options.norm) for d in (d_a, d_b)]
        return {"G_AB": gens[0], "G_BA": gens[1], "D_A": discs[0], "D_B": discs[1]}

    return make


def _published(data, options) -> Hyperparameters:
    epochs = PAPER.n_epochs + PAPER.n_epochs_decay
    return from_paper(PAPER.gan, total_kimg=epochs_kimg(epochs, data, PAPER_KIMG))


def _gathered(images: torch.Tensor, world_size: int) -> list[torch.Tensor]:
    """This round's slices of every process, in process (= slice) order."""
    if world_size == 1:
        return [images]
    parts = [torch.empty_like(images) for _ in range(world_size)]
    dist.all_gather(parts, images.contiguous())
    return parts


class CycleGANFamily(ImageToImageFamily):
    """CycleGAN's recipe on the one trainer (see the module docstring)."""

    name = "cyclegan"
    title = "CycleGAN (Zhu et al. 2017): two ResNet G, two PatchGAN D, cycle loss, unpaired"
    data_kind = "unpaired"
    default_data = "builtin:digits-inverted"
    options_type = CycleGANOptions
    players = {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")}
    sampler = "G_AB"
    grid_networks = ("G_AB", "G_BA")
    state_name = "image_pools"
    configs = {
        "resnet9": TranslationConfig(_networks("resnet9"), _published,
                                     "official resnet_9blocks + 70x70 PatchGAN (256 px)"),
        "resnet6": TranslationConfig(_networks("resnet6"), _published,
                                     "official resnet_6blocks + 70x70 PatchGAN (128 px)"),
        "digits": TranslationConfig(_networks("digits"), lambda data, options: DIGITS,
                                    "3 blocks of 16 maps, 34x34 PatchGAN (CPU)"),
    }
    default_config = "resnet9"
    standard_configs = {256: "resnet9"}
    config_classes = {"G_AB": ResnetGeneratorConfig, "G_BA": ResnetGeneratorConfig,
                      "D_A": PatchGANConfig, "D_B": PatchGANConfig}

    @classmethod
    def directions(cls, model_options) -> dict[str, str]:
        return {"AtoB": "G_AB", "BtoA": "G_BA"}

    @classmethod
    def input_multiple(cls, G) -> int:
        return 2**G.config.n_downsampling

    @classmethod
    def grid_columns(cls, nets, batch):
        """Rows ``a | G_AB(a) | G_BA(G_AB(a))`` for the A images, then ``b | G_BA(b) |
        G_AB(G_BA(b))`` for the B images."""
        a, b = batch
        fake_b, fake_a = nets["G_AB"](a), nets["G_BA"](b)
        rows = [(a, fake_b, nets["G_BA"](fake_b)), (b, fake_a, nets["G_AB"](fake_a))]
        channels = max(a.shape[1], b.shape[1])
        return [torch.cat([with_channels(row[k], channels) for row in rows]) for k in range(3)]

    # --- the run -------------------------------------------------------------------------

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        o = self.options
        G_AB = networks["G_AB"]
        if o.lambda_identity > 0 and G_AB.in_channels != G_AB.out_channels:
            raise ValueError(f"the identity loss (lambda_identity {o.lambda_identity:g}) needs "
                             f"domains with the same channels, but A has {G_AB.in_channels} and "
                             f"B {G_AB.out_channels}; use --lambda-identity 0")
        device = next(G_AB.parameters()).device
        self.pools = {domain: ImagePool(o.pool_size, generator=make_generator(
            self.opts.seed, POOL_STREAM, k)).to(device) for k, domain in enumerate(DOMAINS)}

    def pooled(self, domain: str, fakes: torch.Tensor) -> torch.Tensor:
        """``fakes`` after domain ``domain``'s history pool (see the module docstring)."""
        pool = self.pools[domain]
        if pool.size == 0:
            return fakes
        world_size = self.settings.world_size
        results = [pool(part) for part in _gathered(fakes, world_size)]
        return results[dist.get_rank() if world_size > 1 else 0]

    def compute(self, phase, inputs: PhaseInputs) -> PhaseOutput:
        out = PhaseOutput()
        a, b = inputs.real
        n, loss, o = a.shape[0], self.settings.loss, self.options
        G_AB, G_BA = self.networks["G_AB"], self.networks["G_BA"]
        if phase.trains_generator:
            fake_b, fake_a = G_AB(a), G_BA(b)
            rec_a, rec_b = G_BA(fake_b), G_AB(fake_a)
            logits_b, logits_a = self.run_D("D_B", fake_b), self.run_D("D_A", fake_a)
            adv_ab = per_image_mean(generator_loss(loss, logits_b.reshape(-1)), n)
            adv_ba = per_image_mean(generator_loss(loss, logits_a.reshape(-1)), n)
            cycle_a, cycle_b = l1_per_image(rec_a, a), l1_per_image(rec_b, b)
            total = adv_ab + adv_ba + o.lambda_cycle * (cycle_a + cycle_b)
            out.stats.update({"Loss/G/adversarial_AB": adv_ab, "Loss/G/adversarial_BA": adv_ba,
                              "Loss/G/cycle_A": cycle_a, "Loss/G/cycle_B": cycle_b,
                              "Loss/scores/fake": torch.cat([logits_a, logits_b]).mean(1)})
            if o.lambda_identity > 0:
                idt_a, idt_b = l1_per_image(G_BA(a), a), l1_per_image(G_AB(b), b)
                total = total + o.lambda_cycle * o.lambda_identity * (idt_a + idt_b)
                out.stats.update({"Loss/G/identity_A": idt_a, "Loss/G/identity_B": idt_b})
            out.terms.append(total.sum() / inputs.batch)
            out.stats["Loss/G/loss"] = total
            return out
        with torch.no_grad():
            fake_b, fake_a = self.pooled("B", G_AB(a)), self.pooled("A", G_BA(b))
        totals, real_scores, fake_scores = [], [], []
        for domain, real, fake in (("A", a, fake_a), ("B", b, fake_b)):
            real_logits, fake_logits = self.run_D(f"D_{domain}", real), self.run_D(
                f"D_{domain}", fake)
            per_patch = discriminator_loss(loss, real_logits.reshape(-1),
                                           fake_logits.reshape(-1))
            d_loss = per_image_mean(per_patch, n) * PAPER.d_loss_scale
            out.stats[f"Loss/D/loss_{domain}"] = d_loss
            totals.append(d_loss)
            real_scores.append(real_logits.detach().mean(1))
            fake_scores.append(fake_logits.detach().mean(1))
        total = totals[0] + totals[1]
        out.terms.append(total.sum() / inputs.batch)
        out.real_logits = torch.cat(real_scores)
        out.stats.update({"Loss/D/loss": total, "Loss/scores/real": out.real_logits,
                          "Loss/scores/fake": torch.cat(fake_scores),
                          "Loss/signs/real": out.real_logits.sign()})
        return out

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict | None:
        """The two image pools (None without pools)."""
        if self.options.pool_size == 0:
            return None
        return {domain: pool.state_dict() for domain, pool in self.pools.items()}

    def load_state_dict(self, state: dict) -> None:
        for domain, pool in self.pools.items():
            pool.load_state_dict(state[domain])
