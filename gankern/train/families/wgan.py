"""WGAN (Arjovsky et al. 2017): a Wasserstein critic with weight clipping, on DCGAN's
networks (the paper keeps batch norm in the critic).

The critic minimizes ``D(G(z)) - D(x)``, G minimizes ``-D(G(z))``; after every critic
step its parameters are clamped to [-0.01, 0.01]; 5 critic steps per G step; RMSprop 5e-5.
(The official code's 100 critic steps for the first 25 G steps are not reproduced.)

The ``digits`` configuration raises both learning rates to 2e-4: with the paper's 5e-5 the
default 60 kimg CPU run learned almost nothing (fid_digits 3349 at 32 px; 2e-4 gave 416
and 419 with seeds 0 and 1, 1e-4 gave 1023; measured December 2026 on the CPU).
"""

from __future__ import annotations

from gankern.models.dcgan import DCGAN_HYPERPARAMS
from gankern.train.families.dcgan import DCGANFamily, dcgan_table, paper_and_digits


class WGANFamily(DCGANFamily):
    """WGAN with weight clipping."""

    name = "wgan"
    title = "WGAN (Arjovsky et al. 2017): Wasserstein critic, weight clipping, RMSprop"
    configs = dcgan_table(paper_and_digits(DCGAN_HYPERPARAMS["wgan"], 5000, total_kimg=60,
                                           glr=2e-4, dlr=2e-4))
