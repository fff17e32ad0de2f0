"""LSGAN (Mao et al. 2017): least-squares losses on DCGAN's networks.

D minimizes ``((D(x) - 1)^2 + D(G(z))^2) / 2`` and G ``(D(G(z)) - 1)^2 / 2`` (the 0-1
coding a = 0, b = c = 1), with DCGAN's Adam settings.
"""

from __future__ import annotations

from gankern.models.dcgan import DCGAN_HYPERPARAMS
from gankern.train.families.dcgan import DCGANFamily, dcgan_table, paper_and_digits


class LSGANFamily(DCGANFamily):
    """Least squares GAN."""

    name = "lsgan"
    title = "LSGAN (Mao et al. 2017): least-squares loss on DCGAN"
    configs = dcgan_table(paper_and_digits(DCGAN_HYPERPARAMS["lsgan"], 5000, total_kimg=60))
