"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"),
trained as StyleGAN2-ADA trains it.

* Generator, main: non-saturating logistic loss ``softplus(-D(G(z)))``, with style mixing.
* Generator, regularization: path length penalty ``pl_weight * (|J^T y| - a)^2``, lazy.
* Discriminator, main: logistic loss ``softplus(D(G(z))) + softplus(-D(x))``.
* Discriminator, regularization: R1, ``gamma / 2 * |grad_x D(x)|^2`` on reals, lazy.

The networks are :mod:`gankern.models.stylegan2`'s, with the named configurations of
:mod:`gankern.models.stylegan2_configs` (``--cfg``) and their recommended hyperparameters.

The path length running mean is the one thing with state. To make N processes (or N
accumulation rounds) compute exactly what one process computes over the whole batch, every
slice of a step's batch uses the mean as it was at the start of the step (moved towards its
own slice mean by ``decay``, like StyleGAN2 does for its batch), and the trainer moves the
stored mean once per step, towards the mean over the whole batch (:meth:`after_step`).
With one process and no accumulation this is StyleGAN2's rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from gankern.models.stylegan2_configs import (
    CONFIGS,
    DiscriminatorConfig,
    GeneratorConfig,
    StyleGAN2Config,
    TrainingHyperparams,
    get_config,
)
from gankern.train.adversarial import NOISE_TO_IMAGE_KNOBS, NoiseToImageFamily
from gankern.train.families._style import StyleBased
from gankern.train.family import (
    DataInfo,
    Hyperparameters,
    NetworkConfig,
    Phase,
    PhaseInputs,
    option,
)
from gankern.train.penalties import PathLengthPenalty
from gankern.train.precision import resolve_precision
from gankern.train.settings import BUILTIN_DIGITS

# Fields of the network configs that the data decide (checked, not overridden, by --init).
_DATA_FIELDS = ("img_resolution", "img_channels", "c_dim")


@dataclasses.dataclass
class StyleGAN2Options:
    """StyleGAN2's own options (``gankern train --help`` lists them)."""

    freezed: int = option(0, "freeze the first N layers of D (Freeze-D, as StyleGAN2-ADA's "
                             "--freezed; for fine-tuning with --init)")


def half_dtype_for(precision: str) -> str:
    """The ``half_dtype`` of the networks' half-precision blocks for a precision option."""
    return "bfloat16" if precision == "bf16" else "float16"


def _apply_overrides(config, overrides: Mapping, what: str):
    names = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"extra[{what!r}] has unknown fields {unknown}; known: {sorted(names)}")
    return dataclasses.replace(config, **overrides)


def stylegan2_config(cfg: str, resolution: int, img_channels: int, c_dim: int,
                     world_size: int, precision: str, extra: Mapping) -> StyleGAN2Config:
    """The StyleGAN2 configuration of a run.

    Precision: ``fp32`` runs every block in float32 without clamping (as StyleGAN2-ADA's
    ``--fp32``); ``fp16`` keeps the configuration's half-precision blocks (float16, which
    only runs on GPUs: on a CPU those blocks stay float32); ``bf16`` runs the same blocks in
    bfloat16 (also on CPUs). ``extra`` may hold ``{"G": {...}, "D": {...}}`` field
    overrides of the generator and discriminator configurations.
    """
    config = get_config(cfg, resolution=resolution, img_channels=img_channels, c_dim=c_dim,
                        gpus=world_size)
    extra = dict(extra)
    unknown = sorted(set(extra) - {"G", "D"})
    if unknown:
        raise ValueError(f"extra may only hold 'G' and 'D' overrides, got {unknown}")
    G = _apply_overrides(config.G, extra.get("G", {}), "G")
    D = _apply_overrides(config.D, extra.get("D", {}), "D")
    if precision == "fp32":
        G = dataclasses.replace(G, num_fp16_res=0, conv_clamp=None)
        D = dataclasses.replace(D, num_fp16_res=0, conv_clamp=None)
    return config.replace(G=G, D=D)


def resolve_config(opts, resolution: int, img_channels: int, c_dim: int, world_size: int,
                   device: torch.device) -> StyleGAN2Config:
    """The StyleGAN2 configuration a run with ``opts`` would train (``--cfg`` or its default,
    the precision and ``opts.extra`` applied), for the given data and device."""
    cfg = opts.cfg if opts.cfg is not None else StyleGAN2Family.default_config_name(opts.data)
    return stylegan2_config(cfg, resolution, img_channels, c_dim, world_size,
                            resolve_precision(opts.precision, device), opts.extra)


def config_metadata(config: StyleGAN2Config, precision: str) -> dict:
    """What a checkpoint records about StyleGAN2 networks (JSON-able)."""
    return NetworkConfig(config.name, {"G": config.G, "D": config.D},
                         recommended_hyperparameters(config.train)).metadata(precision,
                                                                             "stylegan2")


def recommended_hyperparameters(hp: TrainingHyperparams) -> Hyperparameters:
    """StyleGAN2-ADA's training hyperparameters of a configuration, for the trainer."""
    return Hyperparameters(
        batch=hp.batch, batch_gpu=hp.batch_gpu, glr=hp.lrate, dlr=hp.lrate,
        total_kimg=hp.total_kimg, optimizer="adam", betas=tuple(hp.betas), eps=hp.eps,
        loss="nonsaturating", d_reg="r1", gamma=hp.gamma, r1_interval=hp.r1_interval,
        ema_kimg=hp.ema_kimg, ema_rampup=hp.ema_rampup, pl_weight=hp.pl_weight,
        pl_interval=hp.pl_interval, pl_batch_shrink=hp.pl_batch_shrink, pl_decay=hp.pl_decay,
        style_mixing=hp.style_mixing_prob,
    )  # fmt: skip


class StyleGAN2Family(StyleBased, NoiseToImageFamily):
    """StyleGAN2's recipe on the one trainer (see the module docstring)."""

    name = "stylegan2"
    title = "StyleGAN2 (Karras et al. 2020), trained as StyleGAN2-ADA"
    knobs = NOISE_TO_IMAGE_KNOBS + (
        "pl_weight", "pl_interval", "pl_batch_shrink", "pl_decay", "style_mixing")
    phase_order = "GD"
    standard_configs = {64: "auto", 256: "auto", 1024: "stylegan2"}
    precision_mode = "blocks"
    options_type = StyleGAN2Options
    # Large batches: the shared-weight formulation is much cheaper than grouped convs.
    sampling_kwargs = {"noise_mode": "const", "fused_modconv": False}
    metric_kwargs = {"fused_modconv": False}

    # --- configurations ------------------------------------------------------------------

    @classmethod
    def config_names(cls) -> tuple[str, ...]:
        return tuple(CONFIGS)

    @classmethod
    def default_config_name(cls, data: str) -> str:
        return "digits" if data == BUILTIN_DIGITS else "auto"

    def network_config(self, cfg: str, data: DataInfo, world_size: int, precision: str,
                       extra: Mapping) -> NetworkConfig:
        if self.options is not None and self.options.freezed:
            extra = dict(extra)
            extra["D"] = {**extra.get("D", {}), "freeze_layers": self.options.freezed}
        config = stylegan2_config(cfg, data.resolution, data.channels, data.c_dim, world_size,
                                  precision, extra)
        return NetworkConfig(name=config.name, configs={"G": config.G, "D": config.D},
                             recommended=recommended_hyperparameters(config.train),
                             description=config.description)

    @classmethod
    def init_weights(cls, path: str, data: DataInfo):
        """StyleGAN2 networks of a StyleGAN2-ADA / StyleGAN3 (stylegan2) ``.pkl``, a
        rosinality ``.pt`` or a gankern checkpoint (``.safetensors`` or run directory), read
        without running code from the file, checked against the data."""
        from gankern.models.stylegan2_shapes import discriminator_config_of, generator_config_of
        from gankern.train.init_weights import InitWeights

        networks = load_published_networks(path)
        extra = {}
        for key, config_of in (("G", generator_config_of), ("D", discriminator_config_of)):
            net = networks.get(key, networks.get(f"{key}_ema"))
            if net is None:
                continue
            config = config_of(net)
            _check_fits(path, key, config, data)
            extra[key] = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                          if f.name not in _DATA_FIELDS + ("freeze_layers",)}
        if "G" not in extra:
            raise ValueError(f"--init {path} holds no generator (networks: {sorted(networks)})")
        return InitWeights(path=str(path), networks=networks, extra=extra)

    @classmethod
    def config_from_metadata(cls, key: str, values: Mapping):
        return (DiscriminatorConfig if key.startswith("D") else GeneratorConfig)(**values)

    @classmethod
    def build_network(cls, key: str, config, precision: str, impl: str):
        """One network from its config, with the half-precision blocks in the precision's
        dtype (bfloat16 for bf16, else float16)."""
        return config.build(impl=impl).set_half_dtype(half_dtype_for(precision))

    # --- the objective -------------------------------------------------------------------

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        self.path_length = PathLengthPenalty(decay=settings.pl_decay, weight=settings.pl_weight)
        self.path_length.to(next(networks["G"].parameters()).device)

    def has_generator_regularizer(self) -> bool:
        return self.settings.pl_weight > 0

    def generator_path_length(self, z, c) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Weighted path length penalty per sample, the path lengths, and statistics."""
        img, ws = self.run_G(z, c)
        lengths = self.path_length.path_lengths(img, ws)
        start = self.path_length.pl_mean.to(lengths.device)
        mean = start.lerp(lengths.mean(), self.path_length.decay)
        penalty = (lengths - mean).square() * self.path_length.weight
        return penalty, lengths.detach(), {"Loss/pl_penalty": penalty}

    def generator_reg(self, inputs: PhaseInputs, phase: Phase, out) -> None:
        s = self.settings
        pl_per_slice = max(s.batch_gpu // s.pl_batch_shrink, 1)
        penalty, lengths, stats = self.generator_path_length(inputs.z[:pl_per_slice],
                                                              inputs.c[:pl_per_slice])
        out.terms.append(penalty.sum() * (phase.reg_gain / (pl_per_slice * inputs.num_slices)))
        out.extras["pl_lengths"] = lengths.sum()
        out.stats.update(stats)

    def after_step(self, phase: Phase, extras) -> None:
        super().after_step(phase, extras)
        if phase.trains_generator and phase.reg:
            s = self.settings
            pl_per_slice = max(s.batch_gpu // s.pl_batch_shrink, 1)
            self.update_pl_mean(extras["pl_lengths"] / (pl_per_slice * s.num_slices))

    @torch.no_grad()
    def update_pl_mean(self, batch_mean_length: torch.Tensor) -> None:
        """Move the path length running mean towards the whole batch's mean length."""
        pl = self.path_length
        pl.pl_mean.copy_(pl.pl_mean.lerp(batch_mean_length.to(pl.pl_mean), pl.decay))

    # --- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The path length running mean, for checkpoints."""
        return self.path_length.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.path_length.load_state_dict(state)


def load_published_networks(path) -> dict:
    """``{"G": ..., "D": ..., "G_ema": ...}`` (those present) from a StyleGAN2 weights file:
    an official ``.pkl``, a rosinality ``.pt``/``.pth``, or a gankern checkpoint."""
    import os

    from gankern.models import load_rosinality_checkpoint, load_stylegan2_pkl

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--init: no such weights file: {path}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".pkl":
        return load_stylegan2_pkl(path, impl="ref")
    if suffix in (".pt", ".pth"):
        return load_rosinality_checkpoint(path, impl="ref")
    if suffix == ".safetensors" or os.path.isdir(path):
        from gankern.train.checkpoint import load_checkpoint, resolve_resume_path
        from gankern.train.networks import checkpoint_model, load_network

        tensors, meta = load_checkpoint(resolve_resume_path(path))
        if checkpoint_model(meta) != StyleGAN2Family.name:
            raise ValueError(f"--init {path} is a {checkpoint_model(meta)} checkpoint, not "
                             "stylegan2")
        return {which: load_network(meta, tensors, which, impl="ref")
                for which in ("G", "D", "G_ema") if which in meta.get("states", {})}
    raise ValueError(f"--init must be a StyleGAN2-ADA/StyleGAN3 .pkl, a rosinality .pt or a "
                     f"gankern .safetensors checkpoint, got {path!r}")


def _check_fits(path, key: str, config, data: DataInfo) -> None:
    """A ValueError when the published network ``key`` cannot train on ``data``."""
    res, ch = config.img_resolution, config.img_channels
    if res != data.resolution:
        raise ValueError(
            f"--init {path} holds a {res}x{res} model, but the training data {data.name} are "
            f"{data.resolution}x{data.resolution}: make a {res}x{res} dataset (gankern dataset "
            f"--resolution {res}x{res}) or start from weights trained at {data.resolution}")
    if ch != data.channels:
        kinds = {1: "grayscale", 3: "RGB"}
        raise ValueError(
            f"--init {path} holds a model of {kinds.get(ch, ch)} images ({ch} channels), but "
            f"{data.name} has {data.channels}: convert the data with gankern dataset "
            f"--channels {ch}")
    if config.c_dim != data.c_dim:
        raise ValueError(
            f"--init {path}: its {key} has {config.c_dim} label dimensions (c_dim), the run "
            f"{data.c_dim} ({'--cond on labeled data' if data.c_dim else 'no --cond'}); "
            "train with as many labels as the published model, or without labels if it has "
            "none")
