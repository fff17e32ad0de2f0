"""VGG feature networks under torchvision's parameter names, with weights from local files.

* :func:`vgg_features`: the convolutional part (``features``) of a VGG from its layer list
  (:data:`VGG16_LAYERS`, :data:`VGG19_LAYERS`), named as torchvision names it
  (``features.0.weight``, ...), so torchvision's ImageNet state dicts load as they are.
* :class:`VGG19Features`: VGG19 up to one ReLU, the content-loss network of SRGAN (Ledig et
  al. 2017): ``phi_{5,4}`` is the output of the 4th convolution (after its ReLU) before the
  5th max-pooling, ``relu5_4``; ``phi_{2,2}`` is ``relu2_2``.
* :func:`load_vgg19_features`: that network with torchvision's ImageNet weights
  (``vgg19-dcbb9e9d.pth``, a plain state dict) read from a local file: the ``weights``
  argument, else ``$GANKERN_VGG19_WEIGHTS``, else ``<cache>/models/vgg19-dcbb9e9d.pth``
  (see :mod:`gankern.pretrained`). gankern never downloads it; without the file it raises
  :class:`~gankern.pretrained.WeightsNotFoundError`, and :func:`find_vgg19_weights` says
  beforehand whether it is there, so that a training recipe can fall back (see
  :mod:`gankern.models.srgan` for SRGAN's documented fallback).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from gankern.ops._checks import check_tensor
from gankern.pretrained import WeightsNotFoundError, load_state_dict_strict, resolve_weights_path

# Convolution widths of the VGG configurations D (VGG16) and E (VGG19) of Simonyan &
# Zisserman (2015); "M" is a 2x2 max pooling.
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                512, 512, 512, "M")
VGG19_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
VGG19_WEIGHTS_FILENAME = "vgg19-dcbb9e9d.pth"
VGG19_WEIGHTS_ENV = "GANKERN_VGG19_WEIGHTS"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG16_LAYERS",
    "VGG19Features",
    "VGG19_LAYERS",
    "find_vgg19_weights",
    "load_vgg19_features",
    "relu_index",
    "vgg_features",
]


def vgg_features(layers, upto: int | None = None) -> nn.Sequential:
    """A VGG's ``features``: 3x3 convolutions (padding 1) each followed by a ReLU, and 2x2
    max poolings, as torchvision builds them (so its parameter names match).

    Args:
        layers: the widths and ``"M"`` poolings, e.g. :data:`VGG19_LAYERS`.
        upto: keep the modules ``0..upto`` only (None: all).
    """
    modules: list[nn.Module] = []
    channels = 3
    for spec in layers:
        if spec == "M":
            modules.append(nn.MaxPool2d(2, 2))
        else:
            modules += [nn.Conv2d(channels, spec, 3, padding=1), nn.ReLU(inplace=True)]
            channels = spec
    return nn.Sequential(*(modules if upto is None else modules[: upto + 1]))


def relu_index(layers, name: str) -> int:
    """Index in ``features`` of the ReLU called ``relu<block>_<conv>`` (e.g. ``relu5_4``).

    Blocks are separated by the poolings and counted from 1, as are the convolutions
    within a block.
    """
    index, block, conv = 0, 1, 0
    for spec in layers:
        if spec == "M":
            index, block, conv = index + 1, block + 1, 0
            continue
        conv += 1
        if name == f"relu{block}_{conv}":
            return index + 1
        index += 2
    raise ValueError(f"layer must name a ReLU of this VGG such as 'relu5_4' or 'relu2_2', "
                     f"got {name!r}")


class VGG19Features(nn.Module):
    """VGG19 up to ``layer`` (after its ReLU): ``net(images)`` -> feature maps.

    Args:
        layer: the last ReLU kept, ``"relu5_4"`` (SRGAN's ``phi_{5,4}``, default; 512 maps
            at 1/16 of the image size) or e.g. ``"relu2_2"`` (``phi_{2,2}``, 128 maps at 1/2).

    Inputs are images in [-1, 1] (the generators' range), ``[N, 3 or 1, H, W]`` (a single
    channel is repeated); they are mapped to [0, 1] and normalized with ImageNet's mean and
    standard deviation, as torchvision's weights expect. Built with random weights; use
    :func:`load_vgg19_features` for the pretrained network (frozen, in eval mode).
    """

    def __init__(self, layer: str = "relu5_4"):
        super().__init__()
        self.layer = layer
        self.features = vgg_features(VGG19_LAYERS, upto=relu_index(VGG19_LAYERS, layer))
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    @property
    def out_channels(self) -> int:
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1].out_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor("images", images, ndim=4)
        if images.shape[1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(images.shape)}")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        x = ((images + 1) / 2 - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return self.features(x)


def find_vgg19_weights(weights: str | os.PathLike | None = None) -> Path | None:
    """The VGG19 weights file that :func:`load_vgg19_features` would read, or None if absent."""
    try:
        return _resolve(weights)
    except WeightsNotFoundError:
        return None


def _resolve(weights) -> Path:
    return resolve_weights_path(
        weights, env_var=VGG19_WEIGHTS_ENV, filename=VGG19_WEIGHTS_FILENAME,
        what="VGG19 weights (SRGAN's content loss)",
        source="torchvision's ImageNet VGG19 weights", subdir="models",
    )


def load_vgg19_features(weights: str | os.PathLike | None = None, layer: str = "relu5_4",
                        device=None) -> VGG19Features:
    """:class:`VGG19Features` with torchvision's ImageNet weights, frozen, in eval mode.

    Args:
        weights: path of ``vgg19-dcbb9e9d.pth`` (a state dict with torchvision's names); None
            looks in ``$GANKERN_VGG19_WEIGHTS``, then ``<cache>/models/``.
        layer: the last ReLU kept (see :class:`VGG19Features`).
        device: where to put the network (default: the CPU).

    Raises :class:`~gankern.pretrained.WeightsNotFoundError` (saying where to put the file)
    when there is none, ValueError when the file does not hold VGG19's parameters.
    """
    path = _resolve(weights)
    model = VGG19Features(layer)
    kept = len(model.features)
    unused = tuple(f"features.{i}." for i in range(kept, 2 * len(VGG19_LAYERS)))
    load_state_dict_strict(model, path, "VGG19 weights", ignore=(*unused, "classifier."))
    return model.requires_grad_(False).eval().to(device or "cpu")
