"""Training: the StyleGAN2 training loop, its losses and regularizers, EMA, checkpoints,
distributed helpers and augmentation.

The loop itself is :func:`gankern.train.loop.training_loop`, configured by
:class:`gankern.train.options.TrainingOptions`; ``gankern train`` is its command line.
"""
