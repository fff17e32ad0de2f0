"""The interface between the one trainer and a model family.

The training loop (:mod:`gankern.train.loop`) is written once and names no architecture.
A *model family* (one class per file in :mod:`gankern.train.families`, its networks in
:mod:`gankern.models`) tells it what differs, in the spirit of Lightning's split of "what a
step computes" from "how it is run":

* **networks**: :meth:`GANFamily.network_config` picks a named configuration for the data
  (network configs plus the paper's recommended :class:`Hyperparameters`), and
  :meth:`GANFamily.build_networks` builds them (``{"G": ..., "D": ...}``, or more);
* **phases**: a step runs the phases of :func:`gankern.train.phases.make_phases`, which
  the family shapes through its hyperparameters (D steps per G step, lazy or per-step
  regularizers, optimizers, learning rates and schedules) and :attr:`GANFamily.players`
  (which networks each optimizer trains); :meth:`GANFamily.compute` returns the loss terms
  of one phase on one slice of the batch, :meth:`GANFamily.after_step` runs after each
  optimizer step (weight clipping, running means);
* **state**: :meth:`GANFamily.state_dict` / :meth:`GANFamily.load_state_dict` hold what the
  objective keeps between steps (StyleGAN2's path-length mean, CycleGAN's image pools),
  saved in every checkpoint under :attr:`GANFamily.state_name`;
* **sampling**: :meth:`GANFamily.sample_grid` draws the snapshot grid,
  :attr:`GANFamily.sampling_kwargs` are passed to the generator for grids and metrics.

Everything else (data, slicing for accumulation and processes, seeding, gradient
reduction, non-finite skipping, mixed precision, EMA, augmentation, checkpoints, logs,
metrics) is the trainer's, the same for every family.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from gankern.nn.modes import eval_mode
from gankern.train.visuals import class_sorted_latents, generate, grid_shape

DATA_KINDS = ("images", "paired", "unpaired")


def option(default, help: str, choices: tuple | None = None):
    """A field of a family's options dataclass: its default (the paper's value), the help
    text ``gankern train --model NAME --help`` shows, and its allowed values."""
    return field(default=default, metadata={"help": help, "choices": choices})


def check_option_choices(options) -> None:
    """Raise a ``ValueError`` for an options-dataclass field outside its ``choices``."""
    for f in dataclasses.fields(options):
        choices = f.metadata.get("choices")
        value = getattr(options, f.name)
        if choices and value not in choices:
            raise ValueError(f"{f.name} must be one of {', '.join(map(str, choices))}, "
                             f"got {value!r}")


@dataclass(frozen=True)
class DataInfo:
    """What the trainer tells a family about its training data.

    ``kind`` is ``"images"`` (images with optional labels), ``"paired"`` (aligned A/B
    images) or ``"unpaired"`` (two domains); ``channels`` is that of the (A) images and
    ``channels_b`` that of the B images of paired and unpaired data.
    """

    name: str
    kind: str
    resolution: int
    channels: int
    c_dim: int = 0
    num_images: int = 0
    channels_b: int | None = None


@dataclass(frozen=True)
class Hyperparameters:
    """A configuration's recommended training hyperparameters (the paper's, where there is
    one). Every field is the default of the :class:`~gankern.train.options.TrainingOptions`
    field of the same name; see there for its meaning."""

    batch: int
    glr: float
    dlr: float
    total_kimg: float
    batch_gpu: int | None = None  # images per pass the batch was tuned for (None: batch)
    optimizer: str = "adam"
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = 1e-8
    loss: str = "nonsaturating"
    d_reg: str = "none"
    gamma: float = 0.0
    r1_interval: int = 0
    n_critic: int = 1
    clip: float | None = None
    lr_schedule: str = "constant"
    lr_decay_start: float = 0.0
    ema_kimg: float = 0.0
    ema_rampup: float | None = None
    ema_start_kimg: float = 0.0
    pl_weight: float = 0.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.0


@dataclass(frozen=True)
class NetworkConfig:
    """A named configuration: the networks' configs and the recommended hyperparameters.

    ``configs`` maps network names (``"G"``, ``"D"``, ...) to config dataclasses with a
    ``build(impl=...)`` method and JSON-able fields; checkpoints store them (with the name)
    so that the same networks can be rebuilt from the file alone.
    """

    name: str
    configs: Mapping[str, Any]
    recommended: Hyperparameters
    description: str = ""

    def metadata(self, precision: str, model: str) -> dict:
        """What a checkpoint records about its networks (JSON-able)."""
        out: dict[str, Any] = {"model": model, "cfg": self.name}
        for key, cfg in self.configs.items():
            out[key] = dataclasses.asdict(cfg)
        out["precision"] = precision
        return out


@dataclass
class Phase:
    """One phase of a step: which player it trains, how often, and which terms it computes.

    ``player`` names an optimizer (``"G"`` -> ``G_opt``); the phase runs when
    ``step % interval == offset``. ``main`` and ``reg`` say whether it computes the main
    loss, the (lazy) regularizer, or both; ``reg_gain`` multiplies the regularizer (its lazy
    interval, or 1). ``base_lr`` is the learning rate before the schedule.
    """

    name: str
    player: str
    opt: torch.optim.Optimizer
    interval: int
    main: bool
    reg: bool
    reg_gain: float
    offset: int = 0
    base_lr: float = 0.0
    consecutive_skips: int = 0

    @property
    def trains_generator(self) -> bool:
        return self.player.startswith("G")

    def due(self, step: int) -> bool:
        return step % self.interval == self.offset


@dataclass
class PhaseInputs:
    """One slice of a phase's batch, as :meth:`GANFamily.compute` receives it.

    ``real`` holds this slice's real data, each a tensor with the slice's images in its
    first dimension: ``(images, labels)`` for image data (images float in [-1, 1], labels
    one-hot float ``[n, c_dim]``), ``(A, B)`` for paired and unpaired data. ``z`` and ``c``
    are the slice's latents and labels for generated images. ``batch`` is the size of the
    *global* batch and ``num_slices`` its number of slices: a per-sample term is normalized
    as ``term.sum() / batch``, a per-step term as ``term / num_slices``.
    """

    real: tuple[torch.Tensor, ...]
    z: torch.Tensor
    c: torch.Tensor
    batch: int
    num_slices: int
    step: int


@dataclass
class PhaseOutput:
    """What one slice of a phase computed.

    ``terms`` are scalar tensors, already normalized (the trainer differentiates their sum);
    ``stats`` are logged (per-sample values, averaged over the tick); ``real_logits`` are
    D's outputs on real images, for ADA; ``extras`` are scalars summed over slices and
    processes and handed to :meth:`GANFamily.after_step`.
    """

    terms: list[torch.Tensor] = field(default_factory=list)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    real_logits: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class GANFamily:
    """Base class of the model families (see the module docstring).

    Subclasses set the class attributes and implement the methods that raise
    ``NotImplementedError``. An instance belongs to one run: it is made from the run's
    options (:meth:`__init__`), then :meth:`setup` gives it the built networks.

    Class attributes:
        name: the ``--model`` name.
        title: one line for ``--help`` and the README (``"DCGAN (Radford et al. 2016)"``).
        data_kind: the data it trains on (``images``, ``paired``, ``unpaired``).
        default_data: the built-in dataset it trains on when ``--data`` is not given.
        labels: whether it trains on the dataset's labels: ``"optional"`` (with ``--cond``),
            ``"always"`` (a conditional model) or ``"never"``.
        options_type: dataclass of the family's own options (``--model NAME --help`` lists
            them; defaults are the paper's), or None.
        knobs: the :class:`TrainingOptions` hyperparameter fields it uses (listed by
            ``--help``, validated: setting one it ignores is an error).
        players: optimizer name -> the networks it trains.
        ema_sources: networks that get an exponential moving average (``G`` -> ``G_ema``)
            when ``ema_kimg > 0``.
        sampler: the network drawn from for grids, ``generate`` and metrics.
        state_name: checkpoint component name of :meth:`state_dict`.
        precision_mode: ``"autocast"`` (bf16/fp16 autocast around the phases) or
            ``"blocks"`` (the networks hold their own half-precision blocks, as StyleGAN2).
        default_aug: the augmentation mode when ``--aug`` is not given (None: the trainer's
            default, ``noaug`` on built-in data and ``ada`` elsewhere; the image-to-image
            papers train without augmentation: ``"noaug"``).
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    data_kind: ClassVar[str] = "images"
    default_data: ClassVar[str] = "builtin:digits"
    labels: ClassVar[str] = "optional"  # "optional" (--cond), "always" or "never"
    # resolution -> name of the published configuration there (the training benchmark's
    # defaults): what "its standard resolution" means for this model.
    standard_configs: ClassVar[Mapping[int, str]] = {}
    options_type: ClassVar[type | None] = None
    knobs: ClassVar[tuple[str, ...]] = ()
    players: ClassVar[Mapping[str, tuple[str, ...]]] = {"G": ("G",), "D": ("D",)}
    ema_sources: ClassVar[tuple[str, ...]] = ("G",)
    sampler: ClassVar[str] = "G"
    state_name: ClassVar[str] = "loss"
    precision_mode: ClassVar[str] = "autocast"
    phase_order: ClassVar[str] = "DG"  # "GD": G phases first (StyleGAN2), "DG": D first
    default_aug: ClassVar[str | None] = None

    def __init__(self, opts, options=None):
        self.opts = opts
        self.options = options if options is not None else self.make_options(
            getattr(opts, "model_options", {}) or {})
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}  # set by the trainer
        self.settings = None
        self.augment = None

    # --- options and configurations ------------------------------------------------------

    @classmethod
    def make_options(cls, values: Mapping[str, Any]):
        """The family's options from a dict (unknown names are an error)."""
        if cls.options_type is None:
            if values:
                raise ValueError(f"model {cls.name!r} has no options of its own, got "
                                 f"{sorted(values)}")
            return None
        names = {f.name for f in dataclasses.fields(cls.options_type)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown options {unknown} for model {cls.name!r}; its options "
                             f"are {sorted(names)}")
        options = cls.options_type(**values)
        check_option_choices(options)
        return options

    def data_options(self) -> dict:
        """Keyword arguments of the dataset opener beyond the common ones (an
        image-to-image model's translation direction)."""
        return {}

    @classmethod
    def help_data(cls) -> DataInfo:
        """The data ``gankern train --help`` shows defaults for: the family's built-in data."""
        return DataInfo(name=cls.default_data, kind=cls.data_kind, resolution=32, channels=1,
                        channels_b=None if cls.data_kind == "images" else 1)

    @classmethod
    def config_names(cls) -> tuple[str, ...]:
        """The named configurations of ``--cfg``."""
        raise NotImplementedError

    @classmethod
    def default_config_name(cls, data: str) -> str:
        """``--cfg``'s default for a dataset (``data`` is ``--data``'s value)."""
        raise NotImplementedError

    def network_config(self, cfg: str, data: DataInfo, world_size: int, precision: str,
                       extra: Mapping[str, Mapping]) -> NetworkConfig:
        """The named configuration ``cfg`` for ``data``, with ``extra`` field overrides of
        the network configs (``{"G": {...}, "D": {...}}``) and the precision applied."""
        raise NotImplementedError

    @classmethod
    def config_from_metadata(cls, key: str, values: Mapping[str, Any]):
        """Rebuild the config of network ``key`` from a checkpoint's metadata."""
        raise NotImplementedError

    def notes(self) -> list[str]:
        """Lines the trainer prints at the start of a run, after :meth:`setup` (a choice made
        for the run that the options do not show, such as SRGAN's content-loss fallback)."""
        return []

    @classmethod
    def init_weights(cls, path: str, data: DataInfo):
        """Published weights to start a new run from (``--init``): a
        :class:`gankern.train.init_weights.InitWeights` with the loaded networks and the
        configuration overrides that rebuild their architecture. A ``ValueError`` when the
        file cannot be read or does not fit ``data`` (resolution, channels, labels)."""
        raise ValueError(f"--init: model {cls.name!r} cannot start from published weights "
                         "(fine-tuning from a file is implemented for stylegan2)")

    # --- networks ------------------------------------------------------------------------

    @classmethod
    def build_network(cls, key: str, config, precision: str, impl: str) -> nn.Module:
        """Network ``key`` from its config (also what checkpoint loaders call)."""
        return config.build(impl=impl)

    def build_networks(self, config: NetworkConfig, precision: str, impl: str) -> dict:
        """Freshly initialized networks (on the CPU, in training mode; the caller seeds the
        global RNG first and moves them to the device)."""
        return {key: self.build_network(key, cfg, precision, impl)
                for key, cfg in config.configs.items()}

    def setup(self, networks: Mapping[str, nn.Module], settings, augment=None,
              channels_last: bool = False) -> None:
        """Receive the run's networks (on their device), resolved settings and the
        augmentation applied to every image D sees (or None)."""
        self.networks = dict(networks)
        self.settings = settings
        self.augment = augment
        self.channels_last = channels_last

    @property
    def z_dim(self) -> int:
        """Latent size of generated batches (0: the family draws no latents)."""
        return int(getattr(self.networks.get(self.sampler), "z_dim", 0))

    @property
    def c_dim(self) -> int:
        return int(getattr(self.networks.get(self.sampler), "c_dim", 0))

    # --- the step ------------------------------------------------------------------------

    def on_step(self, nimg: int) -> None:
        """Called before every step (and once at the start or resume of a run) with the
        number of real images seen so far. A progressive model sets its level and fade-in
        here: as a pure function of ``nimg``, so that a resumed run continues exactly."""

    def benchmark_nimg(self) -> int:
        """The images seen from which the training-throughput benchmark steps a run (after
        :meth:`setup`): 0, or for a progressive model the end of its growth, so that the
        benchmark measures the networks at their full resolution."""
        return 0

    def has_generator_regularizer(self) -> bool:
        """Whether G has a (lazy) regularization phase (StyleGAN2's path length)."""
        return False

    def has_discriminator_regularizer(self) -> bool:
        """Whether D has a (lazy) regularization phase (R1, R2, gradient penalty)."""
        return False

    def compute(self, phase: Phase, inputs: PhaseInputs) -> PhaseOutput:
        """The normalized loss terms of ``phase`` on one slice (see :class:`PhaseInputs`)."""
        raise NotImplementedError

    def after_step(self, phase: Phase, extras: Mapping[str, torch.Tensor]) -> None:
        """Called after ``phase``'s optimizer step (not after a skipped one) with the
        ``extras`` summed over the whole batch."""

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict | None:
        """The objective's own state for checkpoints (None: it has none)."""
        return None

    def load_state_dict(self, state: dict) -> None:
        raise ValueError(f"model {self.name!r} keeps no objective state")

    # --- sampling ------------------------------------------------------------------------

    sampling_kwargs: ClassVar[Mapping[str, Any]] = {}  # G's keyword arguments for grids
    metric_kwargs: ClassVar[Mapping[str, Any]] = {}  # ... and for metrics

    def grid_kwargs(self) -> dict:
        """G's keyword arguments for the snapshot grid at this point of training (a
        progressive model adds its current level and fade-in)."""
        return dict(self.sampling_kwargs)

    def snapshot_metric_kwargs(self) -> dict:
        """G's keyword arguments for the snapshot metrics at this point of training."""
        return dict(self.metric_kwargs)

    def prepare_sampler(self, G: nn.Module) -> None:
        """Called on the network drawn from before grids, metrics and checkpoints (BigGAN
        re-estimates its batch-norm statistics here)."""

    style_based: ClassVar[bool] = False  # G.mapping / G.synthesis (mixing, w-space walks)

    @classmethod
    def sample(cls, G: nn.Module, z: torch.Tensor, c: torch.Tensor, *,
               truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
               noise_mode: str = "const") -> torch.Tensor:
        """Images of a trained generator (``gankern generate``): ``G(z, c)``, with the
        truncation trick and noise mode where the model has them (an error otherwise)."""
        if truncation_psi != 1 or truncation_cutoff is not None:
            raise ValueError(f"model {cls.name!r} has no truncation trick (--trunc)")
        return G(z, c)

    def snapshot_grid(self, G: nn.Module, seed: int, dataset) -> tuple[torch.Tensor, int]:
        """``(images [N, C, H, W] in [-1, 1], columns)`` of the snapshot grid drawn from the
        sampling network ``G``: the same latents every snapshot (an image-to-image model
        shows the same inputs, translated, beside their targets)."""
        cols, rows = grid_shape(G.img_resolution)
        z, c = self.grid_inputs(cols, rows, seed)
        with eval_mode(G):  # G itself when the model keeps no moving average
            images = generate(G, z, c, **self.grid_kwargs())
        return images, cols

    def grid_inputs(self, cols: int, rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed latents and labels of the snapshot grid: one class per row (cycled) for a
        conditional generator, so the grid is sorted by class."""
        return class_sorted_latents(self.z_dim, self.c_dim, cols, rows, seed)

