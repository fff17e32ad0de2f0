"""One training run's networks, optimizers and counters, and one training step.

:func:`build_training_run` sets a run up from the options and the data's description (the
model family, its configuration and settings, the networks, EMA copies, augmentation,
optimizers and phases); :meth:`TrainingRun.step` runs one step on a batch of real data:
the phases due at this step, the EMA update, ADA's bookkeeping. The training loop
(:mod:`gankern.train.loop`) adds data loading, ticks, logs and snapshots around it; the
training-throughput benchmark times the same step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from gankern.train.distributed import DistributedContext
from gankern.train.ema import copy_buffers, ema_beta, update_ema
from gankern.train.families import get_family
from gankern.train.family import DataInfo, GANFamily, NetworkConfig, Phase
from gankern.train.options import TrainingOptions, augmentation_mode
from gankern.train.phases import make_phases, run_phase
from gankern.train.precision import LossScaler, autocast_dtype, resolve_precision
from gankern.train.rng import make_generator, seed_global_rngs
from gankern.train.settings import RunSettings, check_knobs, resolve_settings
from gankern.train.training_log import TickStats

# Tags of the random streams derived from the seed (see gankern.train.rng).
INIT_STREAM = 4
LATENT_STREAM = 2


class NonFiniteTrainingError(RuntimeError):
    """Too many consecutive steps had non-finite losses or gradients; the run stopped."""


def build_augmentation(opts: TrainingOptions, device: torch.device,
                       default: str | None = None):
    """``(augment_fn, augment_pipe, ada_controller)`` for ``opts.aug`` (None where unused);
    ``default`` is the model family's mode when ``opts.aug`` is None (see
    :func:`gankern.train.options.augmentation_mode`)."""
    mode = augmentation_mode(opts, default)
    if mode == "noaug":
        return None, None, None
    try:
        from gankern.train import augment
    except ImportError as exc:
        raise ValueError(
            f"aug={mode!r} needs gankern.train.augment, which is not available ({exc}); "
            "use aug='noaug'"
        ) from exc
    if mode == "diffaugment":
        policy = opts.diffaugment
        return (lambda x: augment.diff_augment(x, policy)), None, None
    pipe = augment.AugmentPipe(opts.augpipe, impl=opts.impl).to(device)
    ada = augment.AdaController(
        pipe, target=opts.ada_target, interval=opts.ada_interval, kimg=opts.ada_kimg
    )
    return pipe, pipe, ada


def phase_inputs(seed: int, step: int, phase_index: int, batch: int, z_dim: int,
                 labels: np.ndarray | None, c_dim: int, device: torch.device):
    """Latents and labels of one phase's global batch (the same for any process count)."""
    g = make_generator(seed, LATENT_STREAM, step, phase_index)
    z = torch.randn([batch, z_dim], generator=g)
    if c_dim > 0:
        idx = torch.randint(len(labels), [batch], generator=g).numpy()
        c = torch.from_numpy(labels[idx])
    else:
        c = torch.zeros([batch, 0])
    return z.to(device), c.to(device)


@dataclass
class TrainingRun:
    """Everything a run trains and counts (see the module docstring)."""

    opts: TrainingOptions
    settings: RunSettings
    precision: str  # fp32, fp16 or bf16 (resolved)
    device: torch.device
    ctx: DistributedContext
    family: GANFamily
    config: NetworkConfig
    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    phases: list[Phase]
    augment_pipe: nn.Module | None
    ada: object | None  # gankern.train.augment.AdaController when aug="ada"
    labels: np.ndarray | None  # the dataset's labels (generated batches draw from them)
    scaler: LossScaler | None
    stats: TickStats
    counters: dict = field(default_factory=lambda: {
        "nimg": 0, "step": 0, "tick": 0, "tick_start_nimg": 0, "elapsed_sec": 0.0,
        "skipped_total": 0})  # fmt: skip
    skipped_phases: int = 0  # phases skipped for a non-finite loss or gradient
    phase_counts: dict[str, int] = field(default_factory=dict)

    # --- what the loop, snapshots and benchmarks look at --------------------------------

    @property
    def G(self) -> nn.Module:
        return self.networks["G"]

    @property
    def D(self) -> nn.Module:
        return self.networks["D"]

    @property
    def G_ema(self) -> nn.Module:
        """The network to sample from: the EMA of the sampler if there is one, else itself."""
        sampler = self.family.sampler
        return self.networks.get(f"{sampler}_ema", self.networks[sampler])

    @property
    def nimg(self) -> int:
        return self.counters["nimg"]

    @property
    def step_index(self) -> int:
        return self.counters["step"]

    @property
    def batch(self) -> int:
        return self.settings.batch

    @property
    def regularization_cycle(self) -> int:
        """Steps after which the phase pattern repeats (16 for lazy R1 16, path length 4)."""
        return math.lcm(*(phase.interval for phase in self.phases))

    def components(self) -> dict:
        """Name -> object with ``state_dict()``: what a checkpoint holds (None: absent)."""
        out: dict = dict(self.networks)
        out.update(self.optimizers)
        out[self.family.state_name] = self.family if self.family.state_dict() is not None \
            else None
        out["augment_pipe"] = self.augment_pipe
        out["ada"] = self.ada
        if self.scaler is not None:
            out["loss_scaler"] = self.scaler
        return out

    def ema_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """``(ema, source)`` for each network with a moving average."""
        return [(self.networks[f"{name}_ema"], self.networks[name])
                for name in self.family.ema_sources if f"{name}_ema" in self.networks]

    # --- the step ------------------------------------------------------------------------

    def prepare_real(self, batch) -> list[tuple[torch.Tensor, ...]]:
        """A loader batch (tuple of tensors) on the device, uint8 images as floats in
        [-1, 1], cut into one tuple per accumulation round."""
        tensors = []
        for t in batch:
            t = t.to(self.device, non_blocking=True)
            if t.dtype == torch.uint8:
                t = t.to(torch.float32) / 127.5 - 1
                if self.opts.channels_last and t.ndim == 4:
                    t = t.contiguous(memory_format=torch.channels_last)
            tensors.append(t)
        rounds = self.settings.rounds
        return [tuple(t[r::rounds] for t in tensors) for r in range(rounds)]

    def step(self, real: list[tuple[torch.Tensor, ...]],
             on_skip: Callable[[Phase], None] | None = None) -> None:
        """One training step on this process's real data (:meth:`prepare_real`'s output).

        ``on_skip(phase)`` is called for every phase skipped for a non-finite loss or
        gradient; :class:`NonFiniteTrainingError` is raised (by ``on_skip``, or here) when
        a phase reaches ``max_nonfinite_steps`` consecutive skips.
        """
        s, c = self.settings, self.counters
        family = self.family
        family.on_step(c["nimg"])
        guarded = [m for name, m in self.networks.items() if not name.endswith("_ema")]
        amp = autocast_dtype(self.precision, family.precision_mode)
        for phase_index, phase in enumerate(self.phases):
            if not phase.due(c["step"]):
                continue
            gen_z, gen_c = phase_inputs(self.opts.seed, c["step"], phase_index, s.batch,
                                        family.z_dim, self.labels, family.c_dim, self.device)
            result = run_phase(
                phase, phase_index, step=c["step"], seed=self.opts.seed, family=family,
                settings=s, ctx=self.ctx, real=real, gen_z=gen_z, gen_c=gen_c,
                guarded=guarded, nimg=c["nimg"], scaler=self.scaler, autocast_dtype=amp,
            )  # fmt: skip
            self.phase_counts[phase.name] = self.phase_counts.get(phase.name, 0) + 1
            if result.finite:
                for name, values in result.stats:
                    self.stats.add(name, values)
                if self.ada is not None and result.real_logits is not None:
                    self.ada.accumulate(result.real_logits)
                continue
            self.skipped_phases += 1
            c["skipped_total"] += 1
            if on_skip is not None:
                on_skip(phase)
            if phase.consecutive_skips >= self.opts.max_nonfinite_steps:
                raise NonFiniteTrainingError(
                    f"{phase.consecutive_skips} consecutive {phase.name} steps had non-finite "
                    "losses or gradients")

        # The moving averages, then ADA's probability.
        beta = ema_beta(s.batch, c["nimg"], s.ema_kimg, s.ema_rampup)
        if c["nimg"] < s.ema_start_kimg * 1000:
            beta = 0.0  # BigGAN: the average starts as a copy of G
        for ema, source in self.ema_pairs():
            update_ema(ema, source, beta)
        c["nimg"] += s.batch
        c["step"] += 1
        if self.ada is not None and c["step"] % self.opts.ada_interval == 0:
            self.ada.update(s.batch * self.opts.ada_interval)

    def sync_buffers(self) -> None:
        """Average the trained networks' buffers over processes (running statistics drift
        apart, each process updating them from its own slices) and copy them into the
        moving averages (once per tick)."""
        for name, module in self.networks.items():
            if not name.endswith("_ema"):
                self.ctx.average_buffers_(module)
        for ema, source in self.ema_pairs():
            copy_buffers(ema, source)


def resolve_run_config(opts: TrainingOptions, data: DataInfo, family: GANFamily,
                       world_size: int, device: torch.device
                       ) -> tuple[str, NetworkConfig, RunSettings]:
    """``(precision, network configuration, settings)`` of a run, every option checked
    against the model and the data (nothing is built).

    Args:
        opts: the options (checked by the caller).
        data: what the training data are.
        family: the model family made from ``opts``.
        world_size: the number of processes.
        device: the device of the run.
    """
    if family.data_kind != data.kind:
        raise ValueError(f"model {opts.model!r} trains on {family.data_kind} data, but "
                         f"{data.name} holds {data.kind} data")
    check_knobs(opts, family.knobs, opts.model)
    precision = resolve_precision(opts.precision, device)
    cfg = opts.cfg if opts.cfg is not None else family.default_config_name(opts.data)
    if cfg not in family.config_names():
        raise ValueError(f"config name must be one of {sorted(family.config_names())} for "
                         f"model {opts.model!r}, got {cfg!r}")
    config = family.network_config(cfg, data, world_size, precision, opts.extra)
    settings = resolve_settings(opts, config.recommended, world_size, precision)
    return precision, config, settings


def build_training_run(
    opts: TrainingOptions,
    data: DataInfo,
    ctx: DistributedContext,
    labels: np.ndarray | None = None,
    setup_hook: Callable | None = None,
    family: GANFamily | None = None,
) -> TrainingRun:
    """Networks, objective, optimizers and phases for ``opts`` on ``data``.

    Args:
        opts: the options (checked by the caller).
        data: what the training data are (:func:`gankern.train.data.describe_data`).
        ctx: this process's place in a process group.
        labels: the dataset's labels ``[N, c_dim]`` (conditional models draw the labels of
            generated batches from them).
        setup_hook: called as ``setup_hook(G, D)`` once the networks exist.
        family: the model family made from ``opts`` (default: made here).
    """
    device = ctx.device
    family = family if family is not None else get_family(opts.model)(opts)
    precision, config, settings = resolve_run_config(opts, data, family, ctx.world_size, device)

    seed_global_rngs(opts.seed, INIT_STREAM)  # initialization: the same on every process
    memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format
    networks = {
        name: net.to(device=device, memory_format=memory_format).train()
        for name, net in family.build_networks(config, precision, opts.impl).items()
    }
    if setup_hook is not None:
        setup_hook(networks.get("G"), networks.get("D"))
    if settings.ema_kimg > 0:
        for name in family.ema_sources:
            networks[f"{name}_ema"] = copy.deepcopy(networks[name]).eval().requires_grad_(False)
    for name, net in networks.items():
        if not name.endswith("_ema"):
            net.requires_grad_(False)

    augment_fn, augment_pipe, ada = build_augmentation(opts, device, family.default_aug)
    family.setup(networks, settings, augment=augment_fn, channels_last=opts.channels_last)
    optimizers, phases = make_phases(networks, settings, family)
    family.optimizers = optimizers
    scaler = None
    if autocast_dtype(precision, family.precision_mode) == torch.float16:
        scaler = LossScaler().to(device)
    return TrainingRun(
        opts=opts, settings=settings, precision=precision, device=device, ctx=ctx,
        family=family, config=config, networks=networks, optimizers=optimizers, phases=phases,
        augment_pipe=augment_pipe, ada=ada, labels=labels, scaler=scaler,
        stats=TickStats(device),
    )  # fmt: skip
