"""Names of the adversarial losses and discriminator regularizers (no torch import, so the
command line can list them without loading torch)."""

# See gankern.train.losses for their definitions.
ADVERSARIAL_LOSSES = ("minimax", "nonsaturating", "wasserstein", "lsgan", "hinge")
# none, R1 on reals, R2 on generated images, WGAN-GP on interpolates (gankern.train.penalties).
D_REGULARIZERS = ("none", "r1", "r2", "gp")
