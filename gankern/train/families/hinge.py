"""The hinge loss (Lim & Ye 2017, "Geometric GAN"; the loss of SNGAN and BigGAN) on DCGAN's
networks with a spectrally normalized discriminator (SN-DCGAN, Miyato et al. 2018).

D minimizes ``relu(1 - D(x)) + relu(1 + D(G(z)))`` and G ``-D(G(z))``; Adam 2e-4,
betas (0.5, 0.999), one D step per G step (Miyato et al. 2018, Table 1, setting C).
"""

from __future__ import annotations

from gankern.train.families.dcgan import DCGANFamily, dcgan_table
from gankern.train.family import Hyperparameters

_PUBLISHED = Hyperparameters(batch=64, glr=2e-4, dlr=2e-4, total_kimg=5000, optimizer="adam",
                             betas=(0.5, 0.999), loss="hinge")
_DIGITS = Hyperparameters(batch=64, glr=2e-4, dlr=2e-4, total_kimg=60, optimizer="adam",
                          betas=(0.5, 0.999), loss="hinge")


class HingeGANFamily(DCGANFamily):
    """Hinge loss, spectrally normalized DCGAN discriminator."""

    name = "hinge"
    title = "Hinge loss (Lim & Ye 2017) on a spectrally normalized DCGAN"
    configs = dcgan_table({"dcgan64": _PUBLISHED, "dcgan32": _PUBLISHED, "digits": _DIGITS},
                          d_spectral_norm=True)
