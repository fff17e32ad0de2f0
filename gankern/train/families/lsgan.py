"""LSGAN (Mao et al. 2017): least-squares losses on DCGAN's networks.

D minimizes ``((D(x) - 1)^2 + D(G(z))^2) / 2`` and G ``(D(G(z)) - 1)^2 / 2`` (the 0-1
coding a = 0, b = c = 1), with DCGAN's Adam settings.

The ``digits`` configuration trains with batches of 32: at 64 the default 60 kimg CPU run at
32 px collapsed with two seeds of three (fid_digits 2917, 709, 3405 for seeds 0, 1, 2); at
32 it reached 365, 366 and 303 (measured December 2026 on the CPU).
"""

from __future__ import annotations

from gankern.models.dcgan import DCGAN_HYPERPARAMS
from gankern.train.families.dcgan import DCGANFamily, dcgan_table, paper_and_digits


class LSGANFamily(DCGANFamily):
    """Least squares GAN."""

    name = "lsgan"
    title = "LSGAN (Mao et al. 2017): least-squares loss on DCGAN"
    configs = dcgan_table(paper_and_digits(DCGAN_HYPERPARAMS["lsgan"], 5000, batch=32,
                                           total_kimg=60))
