"""Progressive growing on the one trainer (ProGAN, StyleGAN v1), as the official TF code
trains it (tkarras/progressive_growing_of_gans and NVlabs/stylegan ``training_loop``).

Before every step (:meth:`ProgressiveGrowing.on_step`) the growth level and fade-in alpha
come from the published schedule of images per phase
(:class:`gankern.models.progressive_schedule.ProgressiveSchedule`) as a pure function of the
images seen, so a run resumed in the middle of a fade-in continues it exactly. At the same
time:

* the learning rates follow the schedule's per-resolution table, as a factor on the run's
  ``glr`` / ``dlr`` (the schedule's base rates are the defaults);
* with ``reset_optimizer`` (the official ``reset_opt_for_new_lod``) the Adam moments of G and
  D are cleared whenever a fade-in starts or ends (the official test: the floor or the ceil
  of the level of detail changed since the previous step).

Images live at the full resolution, as in the official code: G's image at the level is
nearest-upsampled to the full size, real images are averaged down to the level (and faded
like the fakes, :func:`gankern.models.progan.progressive_reals`) and upsampled back, and D
averages its input down to the level. The down- and upsampling cancel, but the penalties'
gradients are taken with respect to full-resolution images: ``|grad|`` with respect to an
image upsampled by ``f`` is ``f`` times smaller, which is the scale the official R1 and
WGAN-GP weights were tuned for. (Augmentation, when enabled, also sees full-size images.)

Not reproduced: the official minibatch size per resolution (the trainer keeps one batch for
a run: the configurations take the schedule's minibatch at the final resolution; a smaller
batch at the low resolutions only costs time), and its re-reading of the schedule every 4
minibatches (here every step).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from gankern.models.progan import progressive_reals
from gankern.models.progressive_schedule import (
    ProgressivePhase,
    ProgressiveSchedule,
    get_schedule,
)
from gankern.nn.progressive import box_downsample, nearest_upsample
from gankern.train.adversarial import NOISE_TO_IMAGE_KNOBS
from gankern.train.family import DataInfo, Hyperparameters, option

# A constant learning rate: the schedule's per-resolution rates take its place.
PROGRESSIVE_KNOBS = tuple(k for k in NOISE_TO_IMAGE_KNOBS
                          if k not in ("lr_schedule", "lr_decay_start"))


def schedule_option(names):
    """The ``schedule`` field of a progressive family's options (``auto``: the
    configuration's schedule)."""
    return option("auto", "schedule of images per resolution and fade-in (minibatch and "
                  "learning rate per resolution); auto: the configuration's",
                  ("auto", *names))


def scale_option():
    return option(1.0, "times the schedule's images per phase and the run's length (e.g. "
                  "0.1 for a short run)")


def reset_option():
    return option(True, "clear G's and D's Adam moments when a fade-in starts and when it "
                  "ends (the official reset_opt_for_new_lod)")


def resolved_schedule(name: str, scale: float, resolution: int,
                      progressive: bool = True) -> ProgressiveSchedule:
    """The named schedule scaled by ``scale``; a fixed-resolution run (``progressive``
    False) starts at ``resolution`` and keeps its learning rates."""
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"schedule_scale must be a number > 0, got {scale!r}")
    schedule = get_schedule(name, scale)
    if not progressive:
        schedule = dataclasses.replace(schedule, initial_resolution=resolution)
    return schedule


def grown_nimg(schedule: ProgressiveSchedule, resolution: int) -> int:
    """Images after which ``resolution`` is fully faded in (at the latest)."""
    levels = max(int(math.log2(resolution / schedule.initial_resolution)), 0)
    phase_kimg = schedule.training_kimg + schedule.transition_kimg
    return int(math.ceil(levels * phase_kimg * 1000))


def final_phase(schedule: ProgressiveSchedule, resolution: int) -> ProgressivePhase:
    """The schedule's phase once ``resolution`` is fully faded in."""
    return schedule.phase(grown_nimg(schedule, resolution), resolution)


def schedule_hyperparameters(schedule: ProgressiveSchedule, resolution: int,
                             **values) -> Hyperparameters:
    """Recommended hyperparameters from a schedule: its minibatch at the final resolution
    (``batch_gpu``: per GPU of the schedule), its base learning rates and total length;
    ``values`` give the rest."""
    final = final_phase(schedule, resolution)
    return Hyperparameters(
        batch=final.minibatch, batch_gpu=max(final.minibatch // schedule.num_gpus, 1),
        glr=schedule.g_lrate_base, dlr=schedule.d_lrate_base,
        total_kimg=schedule.total_kimg, **values,
    )  # fmt: skip


def new_level_of_detail(before: ProgressivePhase, now: ProgressivePhase) -> bool:
    """The official reset test: the floor or the ceil of the level of detail changed."""
    return (math.floor(before.lod) != math.floor(now.lod)
            or math.ceil(before.lod) != math.ceil(now.lod))


class ProgressiveGrowing:
    """Mixin of a :class:`gankern.train.adversarial.NoiseToImageFamily` whose G and D grow
    (see the module docstring; put it first in the bases). G and D take ``level`` and
    ``alpha`` keywords and have ``img_resolution``.

    Subclasses set :attr:`trainings`; their options have ``schedule``, ``schedule_scale``,
    ``reset_optimizer`` and optionally ``progressive``.
    """

    knobs = PROGRESSIVE_KNOBS
    # configuration name -> the models' training settings (``.schedule``: "auto"'s schedule)
    trainings: ClassVar[Mapping[str, Any]] = {}

    # --- the schedule --------------------------------------------------------------------

    @classmethod
    def growth_schedule(cls, options, cfg: str, resolution: int) -> ProgressiveSchedule:
        """The schedule of a run with the family ``options`` and configuration ``cfg`` on
        images of ``resolution``."""
        name = options.schedule
        if name == "auto":
            name = cls.trainings[cfg].schedule
        return resolved_schedule(name, options.schedule_scale, resolution,
                                 progressive=getattr(options, "progressive", True))

    def network_config(self, cfg: str, data: DataInfo, world_size: int, precision: str,
                       extra):
        self.schedule = self.growth_schedule(self.options, cfg, data.resolution)
        return super().network_config(cfg, data, world_size, precision, extra)

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        self.resolution = networks["G"].img_resolution
        self.growth = self.growth_at(0)

    def benchmark_nimg(self) -> int:
        return grown_nimg(self.schedule, self.resolution)

    def growth_at(self, nimg: int) -> ProgressivePhase:
        """Level, fade-in and learning rates after ``nimg`` real images."""
        return self.schedule.phase(nimg, self.resolution)

    def on_step(self, nimg: int) -> None:
        """Set the level and fade-in, the learning rates, and (when a fade-in starts or
        ends) clear the optimizers' moments: all as functions of ``nimg``."""
        self.growth = self.growth_at(nimg)
        ratio = {"G": self.growth.g_lrate / self.schedule.g_lrate_base,
                 "D": self.growth.d_lrate / self.schedule.d_lrate_base}
        for name, opt in self.optimizers.items():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])  # kept in checkpoints
                group["lr"] = group["initial_lr"] * ratio[name[:1]]
        batch = self.settings.batch
        if (self.options.reset_optimizer and nimg >= batch
                and new_level_of_detail(self.growth_at(nimg - batch), self.growth)):
            for opt in self.optimizers.values():
                opt.state.clear()

    def growth_kwargs(self) -> dict:
        """G's and D's ``level`` and ``alpha`` now."""
        return {"level": self.growth.level, "alpha": self.growth.alpha}

    # --- images at the full resolution ---------------------------------------------------

    @property
    def upscale(self) -> int:
        """Full resolution / the level's resolution."""
        return self.resolution // self.growth.resolution

    def to_full_resolution(self, img: torch.Tensor) -> torch.Tensor:
        return nearest_upsample(img, self.upscale, impl=self.opts.impl)

    def generate_at_level(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """G's training images at the level's resolution."""
        return self.networks["G"](z, c, **self.growth_kwargs())

    def generate(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.to_full_resolution(self.generate_at_level(z, c))

    def run_discriminator(self, img: torch.Tensor, c: torch.Tensor):
        low = box_downsample(img, self.upscale, impl=self.opts.impl)
        return self.networks["D"](low, c, **self.growth_kwargs())

    def compute(self, phase, inputs):
        if not phase.trains_generator:
            real, labels = inputs.real
            g = self.growth
            real = self.to_full_resolution(
                progressive_reals(real, g.level, g.alpha, impl=self.opts.impl))
            inputs = dataclasses.replace(inputs, real=(real, labels))
        out = super().compute(phase, inputs)
        out.stats["Progress/lod"] = torch.full([1], self.growth.lod, device=inputs.z.device)
        return out

    # --- sampling ------------------------------------------------------------------------

    def grid_kwargs(self) -> dict:
        return {**super().grid_kwargs(), **self.growth_kwargs()}

    def snapshot_metric_kwargs(self) -> dict:
        return {**super().snapshot_metric_kwargs(), **self.growth_kwargs()}

    @classmethod
    def checkpoint_growth(cls, G) -> tuple[int | None, float]:
        """``(level, alpha)`` of the last step a loaded generator trained (what its
        snapshot grid shows), from its checkpoint metadata (``G.checkpoint_metadata``,
        see :func:`gankern.train.networks.load_network`); the full resolution without."""
        meta = getattr(G, "checkpoint_metadata", None)
        if not meta or "counters" not in meta:
            return None, 1.0
        options = meta.get("options") or {}
        family_options = cls.make_options(options.get("model_options") or {})
        cfg = (meta.get("networks") or {}).get("cfg")
        schedule = cls.growth_schedule(family_options, cfg, G.img_resolution)
        batch = int((meta.get("settings") or {}).get("batch", 0))
        nimg = max(int(meta["counters"]["nimg"]) - batch, 0)
        phase = schedule.phase(nimg, G.img_resolution)
        return phase.level, phase.alpha

    @classmethod
    def sample(cls, G, z, c, **kwargs):
        """Images of a trained generator at the level and fade-in its checkpoint trained
        last (the full resolution once grown), nearest-upsampled to the full resolution."""
        level, alpha = cls.checkpoint_growth(G)
        img = super().sample(functools.partial(G, level=level, alpha=alpha), z, c, **kwargs)
        return nearest_upsample(img, G.img_resolution // img.shape[-1])
