"""The training schedule of progressive growing (ProGAN, StyleGAN v1): :class:`ProgressiveSchedule`.

Training starts at ``initial_resolution`` and alternates two phases per resolution, counted
in thousands of real images shown (kimg): ``training_kimg`` at a fixed resolution, then
``transition_kimg`` fading in the next one (alpha going linearly from 0 to 1). The minibatch
size and the learning rates depend on the current resolution. This is the official
``TrainingSchedule`` of tkarras/progressive_growing_of_gans (``train.py``) and
NVlabs/stylegan (``training/training_loop.py``), with their level of detail
``lod`` (0 = full resolution) turned into gankern's growth *level* (0 = 4x4) and fade-in
*alpha* (1 = the newest block alone): ``level = log2(R) - 2 - floor(lod)``,
``alpha = 1 - (lod - floor(lod))``.

The published schedules are :data:`SCHEDULES`; :meth:`ProgressiveSchedule.scaled` shrinks
the phase lengths for small runs. :meth:`ProgressiveSchedule.phase` is a pure function of
the image count, so a run resumed mid-fade continues the fade exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from gankern.nn._validate import check_resolution
from gankern.ops._checks import check_int, check_number


def _check_positive(name: str, value) -> float:
    value = check_number(name, value, min_value=0.0)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _resolution_table(name: str, value, kind) -> tuple[tuple[int, float], ...]:
    """``{resolution: value}`` (a dict, or pairs as JSON gives them back) -> sorted pairs."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if not isinstance(item, (list, tuple)) or len(item) != 2:
                raise TypeError(f"{name} must hold (resolution, value) pairs, got {item!r}")
            items.append(tuple(item))
    else:
        raise TypeError(
            f"{name} must be a dict or a list of (resolution, value) pairs, got {value!r}"
        )
    table = {}
    for res, v in items:
        res = check_resolution(f"{name} resolution", int(res) if isinstance(res, str) else res)
        if kind is int:
            table[res] = check_int(f"{name}[{res}]", v, min_value=1)
        else:
            table[res] = _check_positive(f"{name}[{res}]", v)
    return tuple(sorted(table.items()))


@dataclass(frozen=True)
class ProgressivePhase:
    """Where a progressive run stands after ``kimg`` thousand images (see
    :meth:`ProgressiveSchedule.phase`).

    Attributes:
        kimg: thousands of real images shown so far.
        level: growth level of the networks (0 = 4x4): pass it as ``level=`` to G and D.
        alpha: fade-in weight of the newest level in [0, 1]: pass it as ``alpha=``.
        resolution: image resolution of the level, ``4 * 2 ** level``.
        lod: the official level of detail (0 = full resolution), ``log2(R) - 2 - level +
            (1 - alpha)``.
        minibatch: total minibatch size (over all GPUs) at this resolution.
        g_lrate, d_lrate: learning rates of G and D at this resolution.
    """

    kimg: float
    level: int
    alpha: float
    resolution: int
    lod: float
    minibatch: int
    g_lrate: float
    d_lrate: float


@dataclass(frozen=True)
class ProgressiveSchedule:
    """Phase lengths, minibatch sizes and learning rates of progressive growing.

    Attributes:
        initial_resolution: resolution at the start (ProGAN 4, StyleGAN 8).
        training_kimg: thousands of images shown at each resolution before the next one
            starts fading in (the official ``lod_training_kimg``).
        transition_kimg: thousands of images over which a new resolution fades in
            (``lod_transition_kimg``).
        minibatch_base: minibatch size where ``minibatch`` has no entry.
        minibatch: ``{resolution: minibatch}`` overrides (a dict, or (resolution, value)
            pairs; stored as sorted pairs so the config survives JSON).
        max_minibatch_per_gpu: ``{resolution: cap}`` on the minibatch per GPU.
        g_lrate_base, d_lrate_base: learning rates where the tables have no entry.
        g_lrate, d_lrate: ``{resolution: lrate}`` overrides.
        num_gpus: GPUs the minibatch sizes are meant for (the minibatch is rounded down to a
            multiple of it).
        total_kimg: length of the whole run in thousands of images.
    """

    initial_resolution: int = 4
    training_kimg: float = 600.0
    transition_kimg: float = 600.0
    minibatch_base: int = 16
    minibatch: tuple = ()
    max_minibatch_per_gpu: tuple = ()
    g_lrate_base: float = 0.001
    g_lrate: tuple = ()
    d_lrate_base: float = 0.001
    d_lrate: tuple = ()
    num_gpus: int = 1
    total_kimg: float = 12000.0

    def __post_init__(self):
        check_resolution("initial_resolution", self.initial_resolution)
        for name in ("training_kimg", "transition_kimg"):
            value = check_number(name, getattr(self, name), min_value=0.0)
            object.__setattr__(self, name, float(value))
        object.__setattr__(
            self, "total_kimg", float(_check_positive("total_kimg", self.total_kimg))
        )
        check_int("minibatch_base", self.minibatch_base, min_value=1)
        check_int("num_gpus", self.num_gpus, min_value=1)
        _check_positive("g_lrate_base", self.g_lrate_base)
        _check_positive("d_lrate_base", self.d_lrate_base)
        tables = (("minibatch", int), ("max_minibatch_per_gpu", int), ("g_lrate", float),
                  ("d_lrate", float))  # fmt: skip
        for name, kind in tables:
            object.__setattr__(self, name, _resolution_table(name, getattr(self, name), kind))

    def scaled(self, factor: float) -> ProgressiveSchedule:
        """A copy with ``training_kimg``, ``transition_kimg`` and ``total_kimg`` times
        ``factor`` (e.g. 0.01 for a quick run); sizes and rates are unchanged."""
        factor = _check_positive("factor", factor)
        return dataclasses.replace(
            self,
            training_kimg=self.training_kimg * factor,
            transition_kimg=self.transition_kimg * factor,
            total_kimg=self.total_kimg * factor,
        )

    def phase(self, cur_nimg: int, img_resolution: int) -> ProgressivePhase:
        """The level, fade-in alpha, minibatch and learning rates after ``cur_nimg`` images.

        Args:
            cur_nimg: real images shown so far (an int >= 0).
            img_resolution: the final (dataset) resolution, a power of two >= 4.
        """
        if isinstance(cur_nimg, bool) or not isinstance(cur_nimg, numbers.Integral):
            raise TypeError(f"cur_nimg must be an int, got {cur_nimg!r}")
        if cur_nimg < 0:
            raise ValueError(f"cur_nimg must be >= 0, got {cur_nimg}")
        res_log2 = int(math.log2(check_resolution("img_resolution", img_resolution)))
        kimg = cur_nimg / 1000.0
        phase_dur = self.training_kimg + self.transition_kimg
        phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
        phase_kimg = kimg - phase_idx * phase_dur
        lod = res_log2 - math.floor(math.log2(self.initial_resolution)) - phase_idx
        if self.transition_kimg > 0:
            lod -= max(phase_kimg - self.training_kimg, 0.0) / self.transition_kimg
        lod = max(lod, 0.0)
        level = res_log2 - 2 - int(math.floor(lod))
        alpha = 1.0 - (lod - math.floor(lod))
        resolution = 4 * 2**level

        minibatch = dict(self.minibatch).get(resolution, self.minibatch_base)
        minibatch -= minibatch % self.num_gpus
        cap = dict(self.max_minibatch_per_gpu).get(resolution)
        if cap is not None:
            minibatch = min(minibatch, cap * self.num_gpus)
        return ProgressivePhase(
            kimg=kimg,
            level=level,
            alpha=alpha,
            resolution=resolution,
            lod=float(lod),
            minibatch=max(minibatch, 1),
            g_lrate=dict(self.g_lrate).get(resolution, self.g_lrate_base),
            d_lrate=dict(self.d_lrate).get(resolution, self.d_lrate_base),
        )


# The official ProGAN and StyleGAN presets (single GPU unless named otherwise).
SCHEDULES: dict[str, ProgressiveSchedule] = {
    # progressive_growing_of_gans config.py as released: '-preset-v2-1gpu' with '-fp32'.
    "progan": ProgressiveSchedule(
        initial_resolution=4, training_kimg=600, transition_kimg=600, minibatch_base=4,
        minibatch={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4},
        max_minibatch_per_gpu={256: 16, 512: 8, 1024: 4},
        g_lrate={1024: 0.0015}, d_lrate={1024: 0.0015}, total_kimg=12000,
    ),
    # The paper's CelebA-HQ setting ('-preset-v1-1gpu', which also sets the discriminator's
    # minibatch-std group size to 16): 800k images per phase, minibatch 16 up to 128 px,
    # then 14, 6 and 3.
    "progan-paper": ProgressiveSchedule(
        initial_resolution=4, training_kimg=800, transition_kimg=800, minibatch_base=16,
        minibatch={256: 14, 512: 6, 1024: 3}, max_minibatch_per_gpu={256: 16, 512: 8, 1024: 4},
        total_kimg=19000,
    ),
    # NVlabs/stylegan train.py (FFHQ): '-8gpu', growth from 8x8, 25M images.
    "stylegan": ProgressiveSchedule(
        initial_resolution=8, training_kimg=600, transition_kimg=600, minibatch_base=32,
        minibatch={4: 512, 8: 256, 16: 128, 32: 64, 64: 32},
        g_lrate={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        d_lrate={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        num_gpus=8, total_kimg=25000,
    ),
    # NVlabs/stylegan train.py with '-1gpu'.
    "stylegan-1gpu": ProgressiveSchedule(
        initial_resolution=8, training_kimg=600, transition_kimg=600, minibatch_base=4,
        minibatch={4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4},
        g_lrate={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        d_lrate={128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003},
        num_gpus=1, total_kimg=25000,
    ),
    # gankern's CPU setting for the built-in digits (32x32): 4k images per phase, minibatch
    # 32, the official learning rate; 32x32 is fully faded in after 24k images.
    "digits": ProgressiveSchedule(
        initial_resolution=4, training_kimg=4, transition_kimg=4, minibatch_base=32,
        total_kimg=40,
    ),
}  # fmt: skip


def get_schedule(name: str, scale: float = 1.0) -> ProgressiveSchedule:
    """The published schedule ``name`` (one of :data:`SCHEDULES`), its phase lengths times
    ``scale`` (e.g. 0.01 for a small run)."""
    if not isinstance(name, str) or name not in SCHEDULES:
        raise ValueError(f"schedule name must be one of {sorted(SCHEDULES)}, got {name!r}")
    schedule = SCHEDULES[name]
    return schedule if scale == 1 else schedule.scaled(scale)
