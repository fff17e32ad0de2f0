"""The interface every feature extractor of gankern.metrics implements.

An extractor is an ``nn.Module`` that takes a batch of uint8 images ``[N, C, H, W]`` (C = 1
or 3, values 0..255, the way images are stored on disk; generated images are quantized to
uint8 first, see :func:`gankern.metrics.images.quantize_images`) and returns a dict:

* ``"features"``: float32 ``[N, feature_dim]``, for FID, KID and precision/recall;
* ``"probs"``: float32 ``[N, num_classes]`` class probabilities, for the Inception Score
  (only extractors that are classifiers).

``name`` says which metric labels the extractor produces (see :func:`metric_label`) and
``identity`` is unique for the network and its weights, to key cached statistics.
"""

from __future__ import annotations

import torch
from torch import nn

# The extractor each metric is standardly computed with; any other one gets its name
# appended to the metric's label ("fid_digits"), so the numbers are never confused.
STANDARD_EXTRACTOR = {
    "fid": "inception", "kid": "inception", "is": "inception",
    "pr": "vgg16", "precision": "vgg16", "recall": "vgg16",
}


def metric_label(metric: str, extractor_name: str) -> str:
    """The label of ``metric`` computed with the extractor named ``extractor_name``."""
    if STANDARD_EXTRACTOR.get(metric) == extractor_name:
        return metric
    return f"{metric}_{extractor_name}"


class FeatureExtractor(nn.Module):
    """Base class: subclasses set the attributes below and implement :meth:`extract`."""

    name: str = ""  # short name used in metric labels: "inception", "digits", "vgg16"
    feature_dim: int = 0
    num_classes: int = 0  # 0 when the extractor gives no class probabilities
    identity: str = ""  # unique per architecture + weights, for caching statistics

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        check_uint8_images("images", images)
        return self.extract(images)

    def extract(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def check_uint8_images(name: str, images) -> torch.Tensor:
    """Check a batch of images: uint8 tensor ``[N, C, H, W]`` with C = 1 or 3."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(
            f"{name} must be uint8 (0..255; quantize generated images with "
            f"gankern.metrics.quantize_images), got {images.dtype}"
        )
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"{name} must have shape [N, C, H, W] with C = 1 or 3, got {tuple(images.shape)}"
        )
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(images.shape)}")
    return images
