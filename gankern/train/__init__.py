"""Training: one loop for every GAN family, the losses and regularizers they combine, EMA,
checkpoints, distributed helpers and augmentation.

The loop itself is :func:`gankern.train.loop.training_loop`, configured by
:class:`gankern.train.options.TrainingOptions` (``model`` picks the family, see
:mod:`gankern.train.families` and :mod:`gankern.train.family`); ``gankern train`` is its
command line. The adversarial losses are :mod:`gankern.train.losses`.
"""

from gankern.train.lazy_regularization import lazy_adam_hyperparameters, lazy_regularization
from gankern.train.penalties import (
    PathLengthPenalty,
    input_gradients,
    r1_penalty,
    r2_penalty,
    squared_norm_per_sample,
    wgan_gp_penalty,
)

__all__ = [
    "PathLengthPenalty",
    "input_gradients",
    "lazy_adam_hyperparameters",
    "lazy_regularization",
    "r1_penalty",
    "r2_penalty",
    "squared_norm_per_sample",
    "wgan_gp_penalty",
]
