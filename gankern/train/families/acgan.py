"""ACGAN (Odena et al. 2017): a conditional DCGAN whose discriminator also classifies.

D returns ``(logits, class_logits)``; both players add the cross-entropy of the class
logits with the labels (real labels for reals, the requested labels for fakes) to their
adversarial loss (:class:`gankern.train.adversarial.NoiseToImageFamily`), weight 1 as in
the paper. Always conditional: the data must have labels.
"""

from __future__ import annotations

from gankern.models.dcgan import DCGAN_HYPERPARAMS
from gankern.train.families.dcgan import DCGANFamily, dcgan_table, paper_and_digits


class ACGANFamily(DCGANFamily):
    """ACGAN on DCGAN's networks."""

    name = "acgan"
    title = "ACGAN (Odena et al. 2017): conditional DCGAN with an auxiliary classifier"
    labels = "always"
    options_type = None
    configs = dcgan_table(paper_and_digits(DCGAN_HYPERPARAMS["acgan"], 5000, batch=64,
                                           total_kimg=60), cond="acgan")
