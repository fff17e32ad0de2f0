"""The training hyperparameters a paper recommends: :class:`GANHyperparams`.

Each classic model file (``gan``, ``dcgan``, ``sngan``) records next to its configurations
the settings the paper (or its official code) trained them with, with the source cited.
They describe the recipe; the trainer's model families turn them into their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSSES = ("minimax", "nonsaturating", "wasserstein", "least_squares", "hinge")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
LR_SCHEDULES = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class GANHyperparams:
    """One paper's recommended training settings.

    Attributes:
        source: where the numbers come from (paper section, official code file).
        loss: ``minimax`` (saturating BCE), ``nonsaturating`` (BCE with real labels for
            G), ``wasserstein``, ``least_squares`` or ``hinge``.
        optimizer: ``adam``, ``rmsprop`` or ``sgd`` (the same for G and D).
        lr_g, lr_d: learning rates of G and D.
        betas: Adam's (beta1, beta2); None for the other optimizers.
        momentum: SGD momentum (start value; see ``notes``); None otherwise.
        batch: real images per D step.
        g_batch: fakes per G step when it differs from ``batch`` (None: the same).
        n_critic: D (critic) steps per G step.
        weight_clip: clip every D parameter to ``[-c, c]`` after each D step (WGAN).
        gp_weight: weight of the WGAN-GP gradient penalty (0: none).
        aux_weight_d, aux_weight_g: weights of the auxiliary classifier loss (ACGAN) in
            the D and G objectives (0: none).
        lr_schedule: ``constant``, ``linear`` (decay to 0 at ``total_g_steps``, starting at
            ``lr_decay_start``) or ``exponential`` (see ``notes``).
        lr_decay_start: G step at which the linear decay starts.
        total_g_steps: length of training in G steps (None: not stated).
        latent: distribution of z, ``normal`` or ``uniform`` (its range in ``notes``).
        notes: what does not fit the fields.
    """

    source: str
    loss: str
    optimizer: str
    lr_g: float
    lr_d: float
    batch: int
    betas: tuple[float, float] | None = None
    momentum: float | None = None
    g_batch: int | None = None
    n_critic: int = 1
    weight_clip: float | None = None
    gp_weight: float = 0.0
    aux_weight_d: float = 0.0
    aux_weight_g: float = 0.0
    lr_schedule: str = "constant"
    lr_decay_start: int = 0
    total_g_steps: int | None = None
    latent: str = "normal"
    notes: str = ""

    def __post_init__(self):
        for name, value, choices in (
            ("loss", self.loss, LOSSES),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("lr_schedule", self.lr_schedule, LR_SCHEDULES),
            ("latent", self.latent, ("normal", "uniform")),
        ):
            if value not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        if (self.optimizer == "adam") != (self.betas is not None):
            raise ValueError(
                f"betas are for Adam only, got optimizer={self.optimizer!r} "
                f"with betas={self.betas!r}"
            )
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(self.betas))
        if self.n_critic < 1 or self.batch < 1:
            raise ValueError(f"n_critic and batch must be >= 1, got {self.n_critic}, {self.batch}")
