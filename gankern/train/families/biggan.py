"""BigGAN (Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis"; the authors' PyTorch code ajbrock/BigGAN-PyTorch).

A class-conditional model (it trains on the dataset's labels; a dataset without labels is an
error): the networks are :mod:`gankern.models.biggan`'s (shared class embedding,
hierarchical latents, linear-conditioned batch norm, self-attention, orthogonal init, SAGAN's
projection discriminator), trained with

* the hinge loss, Adam with betas (0, 0.999) and eps 1e-6, G lr 1e-4 and D lr 4e-4, batch
  2048 as 8 accumulated passes of 256 (``launch_BigGAN_bs256x8.sh``; the trainer's
  ``batch_gpu`` accumulates, so ``--batch-gpu`` trades memory for passes at the same batch);
* orthogonal regularization of G, ``beta * sum_W |W W^T * (1 - I)|_F^2`` with beta 1e-4
  (the paper's section 3.1; :func:`gankern.nn.ortho_penalty`, the shared embedding left
  out), a per-step term of G's loss (``--ortho-weight``; the published scripts run
  ``--G_ortho 0``);
* a moving average of G with decay 0.9999 per iteration from iteration 20,000 on (before,
  a copy of G): ``ema_kimg`` / ``ema_start_kimg`` are those iterations in images;
* for sampling, *standing statistics* (:func:`gankern.models.biggan.standing_statistics`):
  before every grid, metric and checkpoint the averaged G's batch-norm statistics are
  re-estimated from ``--standing-stats-batches`` batches of ``batch_gpu`` generated images
  (that many extra G forward passes per snapshot; 0 keeps the running statistics). Only the
  batch-norm statistics change (spectral-norm vectors and the training are left as they
  were), so checkpoints and ``gankern generate`` use them;
* the truncation trick in :meth:`BigGANFamily.sample` (``gankern generate --trunc T``):
  latent values beyond ``+-T`` are redrawn until inside (the truncated normal); 1, the
  command's default, means no truncation.

Configurations: ``biggan128`` (the published ImageNet model, 70,433,988 / 87,982,370
parameters, 100 epochs of ImageNet), ``biggan64`` (the same recipe at 64 px), ``biggan32``
(``launch_cifar_ema.sh``: lr 2e-4, 4 D steps, batch 50, EMA from iteration 1,000, 500
epochs of CIFAR-10) and ``digits`` (ch 8 for the built-in digits on a CPU, with higher
learning rates: see ``DIGITS``). On data of another resolution the attention keeps its
relative place and z keeps its chunk size (one chunk per block plus one).
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch

from gankern.models.biggan import (
    BIGGAN32_TRAINING,
    BIGGAN_TRAINING,
    DIGITS_TRAINING,
    GeneratorConfig,
    biggan_config,
    standing_statistics,
    truncated_normal,
)
from gankern.models.sagan import G_WIDTHS, DiscriminatorConfig
from gankern.nn import ortho_penalty
from gankern.train.families._configured import (
    ConfigEntry,
    ConfiguredFamily,
    ema_kimg_from_decay,
    from_paper,
)
from gankern.train.families.sagan import at_resolution
from gankern.train.family import option


@dataclasses.dataclass(frozen=True)
class BigGANOptions:
    """BigGAN's own options."""

    ortho_weight: float = option(1e-4, "weight beta of the orthogonal regularization of G "
                                 "(the paper's 1e-4; 0 disables it)")
    standing_stats_batches: int = option(16, "batches of batch_gpu generated images that "
                                         "re-estimate the averaged G's batch-norm statistics "
                                         "before grids, metrics and checkpoints (0: none)")


def _hyperparameters(training, total_kimg: float, **changes):
    """A :class:`gankern.models.biggan.TrainingHyperparams` as the trainer's defaults: the
    batch of all accumulation passes, and the EMA's decay and start (counted in
    iterations, each showing D ``batch * n_critic`` real images) in images."""
    gan = training.gan
    batch = gan.batch * training.accumulations
    per_iteration = batch * gan.n_critic
    return from_paper(
        gan, total_kimg, batch=batch, batch_gpu=gan.batch, eps=training.adam_eps,
        ema_kimg=ema_kimg_from_decay(training.ema_decay, per_iteration),
        ema_start_kimg=training.ema_start * per_iteration / 1000, **changes,
    )  # fmt: skip


IMAGENET_KIMG = 1_281_167 * 100 / 1000  # launch_BigGAN_bs256x8.sh: 100 epochs of ImageNet
CIFAR_KIMG = 50_000 * 500 / 1000  # launch_cifar_ema.sh: 500 epochs of CIFAR-10
# The digits (measured: tests/test_train_learning.py): G lr 8e-4 and D lr 1.6e-3 (at the
# published 1e-4 / 4e-4 a CPU-sized run learns neither the images nor the classes), and a
# shorter EMA (0.99 per step) from 100 steps on.
DIGITS = _hyperparameters(
    dataclasses.replace(
        DIGITS_TRAINING, ema_decay=0.99, ema_start=100,
        gan=dataclasses.replace(DIGITS_TRAINING.gan, lr_g=8e-4, lr_d=1.6e-3)),
    total_kimg=20)  # fmt: skip


def biggan_networks(name: str):
    """``networks(data, options)`` of a configuration of :func:`biggan_config`, at the
    data's resolution (z keeps the configuration's chunk size)."""

    def make(data, options):
        G, D = biggan_config(name)
        changes = {}
        if G.hier and data.resolution in G_WIDTHS:  # (else the config names the error)
            # One chunk per block and one for the linear layer, of the configuration's size.
            changes["z_dim"] = G.z_dim // G.num_slots * len(G_WIDTHS[data.resolution])
        return {"G": at_resolution(G, data, **changes), "D": at_resolution(D, data)}

    return make


def _row_seed(row: torch.Tensor) -> int:
    """A seed made from a latent's values (the same latent, the same redraws)."""
    data = row.detach().to(device="cpu", dtype=torch.float64).numpy().tobytes()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") & (2**63 - 1)


def truncate_latents(z: torch.Tensor, threshold: float) -> torch.Tensor:
    """BigGAN's truncation trick on given latents ``[N, z_dim]``: every value beyond
    ``+-threshold`` is redrawn from the standard normal until it falls inside, which makes
    each latent a draw from the truncated normal. The redraws of a latent depend on its own
    values only (not on the rest of the batch), so a seed gives the same image alone or in
    a batch."""
    out = z.clone()
    for i in range(z.shape[0]):
        outside = out[i].abs() > threshold
        count = int(outside.sum())
        if count:
            g = torch.Generator().manual_seed(_row_seed(z[i]))
            out[i, outside] = truncated_normal([count], threshold, generator=g).to(out)
    return out


class BigGANFamily(ConfiguredFamily):
    """BigGAN (see the module docstring)."""

    name = "biggan"
    title = ("BigGAN (Brock et al. 2019): shared embedding, hierarchical z, orthogonal "
             "regularization, EMA, truncation")
    labels = "always"
    options_type = BigGANOptions
    configs = {
        "biggan128": ConfigEntry(biggan_networks("biggan128"),
                                 _hyperparameters(BIGGAN_TRAINING, IMAGENET_KIMG),
                                 "the published ImageNet 128 model (ch 96, z 120)"),
        "biggan64": ConfigEntry(biggan_networks("biggan64"),
                                _hyperparameters(BIGGAN_TRAINING, IMAGENET_KIMG),
                                "the same widths and recipe at 64 px"),
        "biggan32": ConfigEntry(biggan_networks("biggan32"),
                                _hyperparameters(BIGGAN32_TRAINING, CIFAR_KIMG),
                                "CIFAR-10 (launch_cifar_ema.sh)"),
        "digits": ConfigEntry(biggan_networks("digits"), DIGITS,
                              "ch 8, z 16 per block, for the built-in digits"),
    }  # fmt: skip
    default_config = "biggan128"
    standard_configs = {128: "biggan128"}
    config_classes = {"G": GeneratorConfig, "D": DiscriminatorConfig}

    def generator_step_terms(self) -> dict[str, torch.Tensor]:
        weight = self.options.ortho_weight
        if weight == 0:
            return {}
        G = self.networks["G"]
        exclude = [G.shared] if G.shared is not None else []
        return {"Loss/G/ortho": ortho_penalty(G, weight, exclude=exclude)}

    @torch.no_grad()
    def prepare_sampler(self, G) -> None:
        """Standing statistics: re-estimate G's batch-norm statistics (and nothing else)."""
        batches = self.options.standing_stats_batches
        if batches == 0:
            return
        norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        norm_buffers = {id(b) for m in norms for b in m.buffers()}
        kept = [(b, b.clone()) for b in G.buffers() if id(b) not in norm_buffers]
        training = G.training
        device = next(G.parameters()).device
        generator = torch.Generator(device=device).manual_seed(self.opts.seed)
        standing_statistics(G, batches, self.settings.batch_gpu, generator=generator)
        for buffer, value in kept:  # the spectral-norm vectors advanced in training mode
            buffer.copy_(value)
        G.train(training)

    @classmethod
    def sample(cls, G, z, c, *, truncation_psi=1.0, truncation_cutoff=None,
               noise_mode="const"):
        """``G(z, c)``, with latents truncated at ``truncation_psi`` (BigGAN's threshold;
        1 means none) by :func:`truncate_latents`."""
        if truncation_cutoff is not None:
            raise ValueError("model 'biggan' truncates every latent value; --trunc-cutoff "
                             "does not apply")
        if truncation_psi != 1:
            if not truncation_psi > 0:
                raise ValueError(f"the truncation threshold (--trunc) must be > 0, got "
                                 f"{truncation_psi}")
            z = truncate_latents(z, truncation_psi)
        return G(z, c)
