"""Adversarial losses, written once and combined per model family.

Every function takes raw discriminator outputs (logits, no sigmoid) and returns one value
per sample (``[N]``): the trainer sums them over the global batch and divides by its size,
so any number of processes or accumulation rounds computes the same objective. The
discriminator's terms are ``real_term(real_logits) + fake_term(fake_logits)``.

=============== ============================== ======================== =====================
name            discriminator                  generator                paper
=============== ============================== ======================== =====================
minimax         -log s(r) - log(1 - s(f))      log(1 - s(f))            Goodfellow 2014 (eq. 1)
nonsaturating   -log s(r) - log(1 - s(f))      -log s(f)                Goodfellow 2014 (sec. 3)
wasserstein     f - r                          -f                       Arjovsky 2017
lsgan           ((r - 1)^2 + f^2) / 2          (f - 1)^2 / 2            Mao 2017 (a=0, b=c=1)
hinge           relu(1 - r) + relu(1 + f)      -f                       Lim & Ye 2017, Miyato 2018
=============== ============================== ======================== =====================

(``s`` is the logistic sigmoid, ``r`` and ``f`` the logits on real and generated images;
``-log s(x) = softplus(-x)`` and ``-log(1 - s(x)) = softplus(x)``, which is how they are
computed, without overflow.) The auxiliary classifier loss of ACGAN (Odena et al. 2017) is
the cross-entropy of the discriminator's class logits with the labels,
:func:`auxiliary_classifier_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gankern.train.objective_names import ADVERSARIAL_LOSSES


def check_loss_name(name) -> str:
    """``name`` if it is one of :data:`ADVERSARIAL_LOSSES`, else a ``ValueError``."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(f"loss must be one of {', '.join(ADVERSARIAL_LOSSES)}, got {name!r}")
    return name


def _per_sample(name: str, logits: torch.Tensor) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(logits).__name__}")
    if logits.ndim == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.ndim != 1:
        raise ValueError(f"{name} must have shape [N] or [N, 1], got {tuple(logits.shape)}")
    return logits


def discriminator_real_term(loss: str, real_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on real images, per sample."""
    r = _per_sample("real_logits", real_logits)
    if loss in ("minimax", "nonsaturating"):
        return F.softplus(-r)
    if loss == "wasserstein":
        return -r
    if loss == "lsgan":
        return (r - 1).square() * 0.5
    if loss == "hinge":
        return F.relu(1 - r)
    raise ValueError(check_loss_name(loss))


def discriminator_fake_term(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on generated images, per sample."""
    f = _per_sample("fake_logits", fake_logits)
    if loss in ("minimax", "nonsaturating"):
        return F.softplus(f)
    if loss == "wasserstein":
        return f
    if loss == "lsgan":
        return f.square() * 0.5
    if loss == "hinge":
        return F.relu(1 + f)
    raise ValueError(check_loss_name(loss))


def discriminator_loss(
    loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """``real_term + fake_term`` per sample (real and generated batches of equal size)."""
    fake = discriminator_fake_term(loss, fake_logits)
    real = discriminator_real_term(loss, real_logits)
    if fake.shape != real.shape:
        raise ValueError(
            f"real_logits and fake_logits must have the same number of samples, got "
            f"{real.shape[0]} and {fake.shape[0]}"
        )
    return fake + real


def generator_loss(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator's loss per sample (see the module's table)."""
    f = _per_sample("fake_logits", fake_logits)
    if loss == "minimax":
        return -F.softplus(f)  # log(1 - s(f)), minimized
    if loss == "nonsaturating":
        return F.softplus(-f)
    if loss in ("wasserstein", "hinge"):
        return -f
    if loss == "lsgan":
        return (f - 1).square() * 0.5
    raise ValueError(check_loss_name(loss))


def auxiliary_classifier_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ACGAN's auxiliary loss per sample: cross-entropy of ``class_logits`` ``[N, C]`` with
    one-hot ``labels`` ``[N, C]`` (``-log softmax(class_logits)[label]``)."""
    if class_logits.ndim != 2 or labels.shape != class_logits.shape:
        raise ValueError(
            f"class_logits and labels must both be [N, C], got {tuple(class_logits.shape)} "
            f"and {tuple(labels.shape)}"
        )
    return F.cross_entropy(class_logits.float(), labels.argmax(dim=1), reduction="none")


def drift_penalty(real_logits: torch.Tensor) -> torch.Tensor:
    """ProGAN's drift term per sample, ``real_logits ** 2`` (weighted by epsilon = 0.001):
    keeps a Wasserstein critic's outputs from drifting far from zero."""
    return _per_sample("real_logits", real_logits).square()
