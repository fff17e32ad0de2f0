"""Trained image-to-image models from their checkpoints: translating images and drawing grids.

:func:`load_translator` rebuilds the generator of one translation direction of a pix2pix,
CycleGAN, SRGAN or SRResNet checkpoint (what ``gankern translate`` runs);
:func:`load_grid_networks` the networks of its grid and :func:`draw_data_grid` the grid
*input | output | target* of items of a dataset (what ``gankern generate`` writes for these
models). Every error is one ``ValueError`` (or ``FileNotFoundError``) that names the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gankern.train.checkpoint import _read_header, load_checkpoint, resolve_resume_path
from gankern.train.families import get_family
from gankern.train.families._img2img import ImageToImageFamily, uint8_to_float
from gankern.train.networks import checkpoint_model, load_network
from gankern.train.visuals import to_uint8

__all__ = ["Translator", "draw_data_grid", "is_translation_checkpoint", "load_grid_networks",
           "load_translator", "open_checkpoint", "open_model_data"]


def is_translation_checkpoint(path) -> bool:
    """Whether ``path`` (a checkpoint or a run directory) holds an image-to-image model,
    from its header alone (False for anything unreadable: loading it reports why)."""
    try:
        with open(resolve_resume_path(path), "rb") as f:
            head = f.read(8)
            header = _read_header(head + f.read(int.from_bytes(head, "little")))
        family = get_family(checkpoint_model(json.loads(header["json"])))
    except (OSError, ValueError, KeyError):
        return False
    return issubclass(family, ImageToImageFamily)


def open_checkpoint(path) -> tuple[type[ImageToImageFamily], dict, dict]:
    """``(family class, tensors, metadata)`` of an image-to-image checkpoint (a file or a run
    directory); a clear error for a missing file or a model that does not translate."""
    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint not found: {os.fspath(path)}")
    resolved = resolve_resume_path(path)
    tensors, meta = load_checkpoint(resolved)
    model = checkpoint_model(meta)
    family = get_family(model)
    if not issubclass(family, ImageToImageFamily):
        raise ValueError(f"{resolved} is a {model} checkpoint, a model that draws images from "
                         f"noise; translating needs a {', '.join(_translation_models())} "
                         "checkpoint")
    return family, tensors, meta


def _translation_models() -> list[str]:
    from gankern.train.families import family_names

    return [name for name in family_names()
            if issubclass(get_family(name), ImageToImageFamily)]


def _model_options(meta: dict) -> dict:
    return dict((meta.get("options") or {}).get("model_options") or {})


@dataclass
class Translator:
    """One translation direction of a trained model: ``translator(batch)``.

    Attributes:
        family: the model family (a :class:`ImageToImageFamily` subclass).
        G: the generator, in eval mode on its device.
        direction: ``"AtoB"`` or ``"BtoA"``.
        in_channels: channels of the images it translates.
        multiple: image sides must be multiples of this.
    """

    family: type[ImageToImageFamily]
    G: nn.Module
    direction: str
    in_channels: int
    multiple: int

    def check(self, image: np.ndarray, where: str) -> None:
        """A ValueError naming ``where`` unless the uint8 ``[C, H, W]`` image fits G."""
        channels, height, width = image.shape
        if channels != self.in_channels:
            raise ValueError(f"{where} has {channels} channel(s), but this {self.family.name} "
                             f"model translates {self.in_channels}-channel images")
        if height % self.multiple or width % self.multiple:
            raise ValueError(f"{where} is {width}x{height}, but this {self.family.name} "
                             f"model needs sides that are multiples of {self.multiple}")

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Translate uint8 images ``[N, C, H, W]`` (one size); returns uint8 ``[N, C', H',
        W']``."""
        device = next(self.G.parameters()).device
        x = uint8_to_float(images).to(device)
        return to_uint8(self.family.translate(self.G, x))


def load_translator(path, direction: str | None = None, device="cpu",
                    impl: str = "auto") -> Translator:
    """The generator of ``direction`` of a translation checkpoint (a file or a run directory).

    Args:
        path: the checkpoint.
        direction: ``"AtoB"`` or ``"BtoA"`` (None: the model's own; a pix2pix model
            translates the direction it was trained in, SRGAN low to high resolution, which
            is called ``AtoB``).
        device: where to run it.
        impl: backend of the fused ops.
    """
    family, tensors, meta = open_checkpoint(path)
    directions = family.directions(_model_options(meta))
    if direction is None:
        direction = next(iter(directions))
    if direction not in directions:
        raise ValueError(f"this {family.name} model translates {' and '.join(directions)} "
                         f"only, not {direction}")
    G = load_network(meta, tensors, directions[direction], impl=impl, device=device)
    return Translator(family=family, G=G, direction=direction, in_channels=G.in_channels,
                      multiple=family.input_multiple(G))


def load_grid_networks(path, device="cpu", impl: str = "auto"):
    """``(family class, {name: network}, metadata)``: the networks of a translation
    checkpoint's grids (pix2pix, SRGAN: G; CycleGAN: both generators)."""
    family, tensors, meta = open_checkpoint(path)
    nets = {name: load_network(meta, tensors, name, impl=impl, device=device)
            for name in family.grid_networks}
    return family, nets, meta


def open_model_data(family: type[ImageToImageFamily], meta: dict, data: str | None):
    """The dataset a checkpoint trained on (or ``data``, in the same layout), opened as
    its family opens training data."""
    from gankern.train.data import open_training_data
    from gankern.train.options import TrainingOptions

    opts = TrainingOptions.from_dict(meta["options"])
    if data is not None:
        opts = dataclasses.replace(opts, data=data, resolution=None)
    return open_training_data(opts, family(opts))


def draw_data_grid(family: type[ImageToImageFamily], nets: dict, dataset, indices,
                   per_row: int) -> tuple[torch.Tensor, int]:
    """``(cells, columns)`` of the grid *input | output | target* of ``dataset``'s items
    ``indices`` (taken modulo its length)."""
    items = [dataset[int(i) % len(dataset)] for i in indices]
    return family.draw_grid(nets, items, per_row)
