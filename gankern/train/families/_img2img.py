"""What the image-to-image families share: Pix2Pix, CycleGAN, SRGAN and SRResNet.

They train on paired data (pix2pix), two unpaired domains (CycleGAN) or plain images whose
low-resolution inputs are made on the fly (SRGAN), with the trainer's phases, checkpoints,
mixed precision and processes as every family. What they share here:

* named configurations (:class:`TranslationConfig`) whose networks and recommended
  hyperparameters depend on the data: the published configurations train for the paper's
  number of epochs over *your* data (:func:`epochs_kimg`);
* per-sample loss helpers: a PatchGAN's logits (one per patch) are averaged per image, as
  the official code's ``mean`` over the logit map is, so the trainer's ``sum / batch``
  normalization gives the same objective;
* the snapshot grid and ``gankern generate``'s grid: triplets *input | output | target*
  (CycleGAN: *input | translation | reconstruction*) drawn by :meth:`grid_columns`;
* what ``gankern translate`` asks a trained model (:meth:`directions`,
  :meth:`input_multiple`, :meth:`translate`).

Training differs from the noise-to-image families in three ways: no latents (the batch of
real data is the input), no snapshot metrics (FID of translations needs a reference the
data does not name), and no augmentation by default (``default_aug = "noaug"``: the papers
train without it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankern.nn.modes import eval_mode
from gankern.train.families._configured import apply_overrides
from gankern.train.family import DataInfo, GANFamily, Hyperparameters, NetworkConfig
from gankern.train.visuals import grid_shape

# The TrainingOptions hyperparameters the image-to-image families use.
IMAGE_TO_IMAGE_KNOBS = ("optimizer", "glr", "dlr", "betas", "n_critic", "lr_schedule",
                        "lr_decay_start", "loss")
TRIPLET = 3  # columns of one grid example: input, output, target


@dataclass(frozen=True)
class TranslationConfig:
    """One named configuration of an image-to-image family.

    Args:
        networks: ``networks(data, options) -> {"G": config, "D": config, ...}``.
        recommended: ``recommended(data, options) -> Hyperparameters`` (the length of a
            published configuration's run is a number of epochs of the data).
        description: one line for the docs.
    """

    networks: Callable[[DataInfo, Any], Mapping[str, Any]]
    recommended: Callable[[DataInfo, Any], Hyperparameters]
    description: str = ""


def epochs_kimg(epochs: int, data: DataInfo, fallback_kimg: float) -> float:
    """Thousands of images in ``epochs`` passes over ``data`` (``fallback_kimg``, the
    paper's own run, when the data's size is unknown, as in ``--help``)."""
    if data.num_images <= 0:
        return float(fallback_kimg)
    return epochs * data.num_images / 1000.0


def per_image_mean(values: torch.Tensor, n: int) -> torch.Tensor:
    """``values`` (anything with ``n * k`` elements, image-major) averaged per image: ``[n]``."""
    return values.float().reshape(n, -1).mean(1)


def l1_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image ``[N]`` (the official ``L1Loss``, per image)."""
    return per_image_mean((a.float() - b.float()).abs(), a.shape[0])


def mse_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference per image ``[N]``."""
    return per_image_mean((a.float() - b.float()).square(), a.shape[0])


def uint8_to_float(images) -> torch.Tensor:
    """uint8 images (NumPy or torch) as float32 in [-1, 1], as the trainer converts them."""
    t = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    return t.to(torch.float32) / 127.5 - 1


def with_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray images repeated to ``channels`` (a grid mixes 1- and 3-channel images)."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] != 1:
        raise ValueError(f"cannot show {images.shape[1]}-channel images beside "
                         f"{channels}-channel ones")
    return images.expand(-1, channels, -1, -1)


def triplet_grid(columns: Sequence[torch.Tensor], per_row: int) -> tuple[torch.Tensor, int]:
    """``(cells [N * 3, C, H, W], grid columns)``: example ``i``'s input, output and target
    side by side, ``per_row`` examples per row of the grid.

    Args:
        columns: three tensors ``[N, C_k, H_k, W_k]`` (the channel counts may differ: gray
            images are shown in color beside color ones; the sizes must agree).
        per_row: examples per grid row.
    """
    if len(columns) != TRIPLET:
        raise ValueError(f"columns must be (input, output, target), got {len(columns)}")
    channels = max(c.shape[1] for c in columns)
    cols = [with_channels(c.detach().float().cpu(), channels) for c in columns]
    cells = torch.stack(cols, dim=1).flatten(0, 1)  # example-major: in, out, target, in, ...
    return cells, TRIPLET * per_row


class ImageToImageFamily(GANFamily):
    """Base class of the image-to-image families (see the module docstring).

    Class attributes (besides :class:`GANFamily`'s): ``configs`` (name ->
    :class:`TranslationConfig`), ``digits_config`` (``--cfg``'s default on built-in data),
    ``default_config`` (elsewhere), ``config_classes`` (network name -> config dataclass,
    to rebuild networks from checkpoints), ``grid_networks`` (the networks a grid needs,
    the sampler first), ``supports_augment`` (whether D's inputs can be augmented).
    """

    knobs = IMAGE_TO_IMAGE_KNOBS
    labels = "never"
    default_aug = "noaug"
    ema_sources = ()
    configs: ClassVar[Mapping[str, TranslationConfig]] = {}
    digits_config: ClassVar[str] = "digits"
    default_config: ClassVar[str] = ""
    config_classes: ClassVar[Mapping[str, type]] = {}
    grid_networks: ClassVar[tuple[str, ...]] = ("G",)
    supports_augment: ClassVar[bool] = True

    # --- configurations ------------------------------------------------------------------

    @classmethod
    def config_names(cls) -> tuple[str, ...]:
        return tuple(cls.configs)

    @classmethod
    def default_config_name(cls, data: str) -> str:
        return cls.digits_config if str(data).startswith("builtin:") else cls.default_config

    def network_config(self, cfg: str, data: DataInfo, world_size: int, precision: str,
                       extra: Mapping) -> NetworkConfig:
        entry = self.configs[cfg]
        configs = apply_overrides(entry.networks(data, self.options), extra)
        return NetworkConfig(name=cfg, configs=configs,
                             recommended=entry.recommended(data, self.options),
                             description=entry.description)

    @classmethod
    def config_from_metadata(cls, key: str, values: Mapping):
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls.config_classes[key](**values)

    # --- the run -------------------------------------------------------------------------

    def setup(self, networks, settings, augment=None, channels_last=False) -> None:
        super().setup(networks, settings, augment, channels_last)
        if settings.metrics:
            raise ValueError(f"model {self.name!r} has no snapshot metrics (they score images "
                             f"drawn from noise), got {list(settings.metrics)}; use --metrics "
                             "none")
        if augment is not None and not self.supports_augment:
            raise ValueError(f"model {self.name!r} trains without augmentation: its "
                             "discriminator judges (input, output) pairs, which the "
                             "augmentation would transform apart; use --aug noaug")

    def run_D(self, name: str, *images: torch.Tensor) -> torch.Tensor:
        """Discriminator ``name``'s logits as float32 ``[N, P]`` (``P`` patches; 1 for a
        single-logit D), after the run's augmentation of the judged images, if any."""
        if self.augment is not None:
            images = tuple(self.augment(x) for x in images)
        if self.channels_last:
            images = tuple(x.contiguous(memory_format=torch.channels_last) for x in images)
        logits = self.networks[name](*images)
        return logits.float().reshape(images[0].shape[0], -1)

    # --- translating (gankern translate / generate) --------------------------------------

    @classmethod
    def directions(cls, model_options: Mapping) -> dict[str, str]:
        """Translation direction (``"AtoB"``, ``"BtoA"``) -> the network that translates so,
        for a model trained with ``model_options``; the first is the default."""
        return {"AtoB": "G"}

    @classmethod
    def input_multiple(cls, G: nn.Module) -> int:
        """Image sides the generator ``G`` accepts are multiples of this."""
        return 1

    @classmethod
    def translate(cls, G: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``G``'s translation of a batch ``x`` (float in [-1, 1] on G's device)."""
        return G(x)

    @classmethod
    def grid_columns(cls, nets: Mapping[str, nn.Module],
                     batch: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """The (input, output, target) columns of a grid for a batch of real data (the
        dataset's items as floats: ``(input, target)``, or ``(images,)`` for SRGAN)."""
        raise NotImplementedError

    @classmethod
    def draw_grid(cls, nets: Mapping[str, nn.Module], items: Sequence,
                  per_row: int) -> tuple[torch.Tensor, int]:
        """``(cells, columns)`` of a grid of dataset ``items`` (uint8 NumPy tuples), each
        network in eval mode (running statistics, no dropout) while it draws."""
        parts = 1 if cls.data_kind == "images" else 2
        device = next(next(iter(nets.values())).parameters()).device
        batch = tuple(uint8_to_float(np.stack([item[k] for item in items])).to(device)
                      for k in range(parts))
        with contextlib.ExitStack() as stack, torch.no_grad():
            for net in nets.values():
                stack.enter_context(eval_mode(net))
            columns = cls.grid_columns(nets, batch)
        return triplet_grid(columns, per_row)

    @staticmethod
    def grid_items(dataset, seed: int, count: int) -> list:
        """``count`` items of ``dataset`` chosen by ``seed`` (the same every snapshot)."""
        g = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(len(dataset), generator=g)[:count].tolist()
        return [dataset[i] for i in order]

    @staticmethod
    def grid_layout(resolution: int) -> tuple[int, int]:
        """``(examples per row, rows)`` of a grid of ``resolution``-pixel images."""
        cols, rows = grid_shape(resolution)
        return max(1, cols // TRIPLET), max(1, rows // 2)

    def snapshot_grid(self, G: nn.Module, seed: int, dataset) -> tuple[torch.Tensor, int]:
        per_row, rows = self.grid_layout(dataset.resolution)
        nets = {name: (G if name == self.sampler else self.networks[name])
                for name in self.grid_networks}
        return self.draw_grid(nets, self.grid_items(dataset, seed, per_row * rows), per_row)

    @classmethod
    def sample(cls, G, z, c, **kwargs):
        raise ValueError(f"model {cls.name!r} translates images instead of drawing them from "
                         "noise: `gankern generate` draws input | output | target grids of "
                         "its data, `gankern translate` translates a folder")


def checked_positive(name: str, value: float) -> float:
    """``value`` if finite and >= 0 (a loss weight), else a ValueError naming ``name``."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def replace_fields(config, **changes):
    """``config`` with the non-None ``changes`` applied (family options over a config)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **changes) if changes else config


def nearest_upsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` blown up to ``size`` pixels by pixel repetition (a grid shows inputs
    smaller than its outputs so)."""
    return F.interpolate(images, size=(size, size), mode="nearest")
