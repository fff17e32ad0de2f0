"""Training: the StyleGAN2 training loop, its losses and regularizers, EMA, checkpoints,
distributed helpers and augmentation.

The loop itself is :func:`gankern.train.loop.training_loop`, configured by
:class:`gankern.train.options.TrainingOptions`; ``gankern train`` is its command line.
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
