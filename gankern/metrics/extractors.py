"""Extractors by name: ``"inception"``, ``"digits"``, ``"vgg16"`` (or a module, as is)."""

from __future__ import annotations

import os

import torch

from gankern.metrics.extractor import FeatureExtractor

EXTRACTOR_NAMES = ("inception", "digits", "vgg16")


def get_extractor(
    extractor: str | FeatureExtractor,
    *,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> FeatureExtractor:
    """Load the extractor ``extractor`` (a name of ``EXTRACTOR_NAMES``) on ``device``.

    ``weights`` overrides where its weights come from (see each loader); a
    :class:`FeatureExtractor` instance is moved to ``device`` (if given) and returned.
    """
    if isinstance(extractor, FeatureExtractor):
        return extractor if device is None else extractor.to(device)
    if extractor == "inception":
        from gankern.metrics.inception import load_inception

        return load_inception(weights, device)
    if extractor == "digits":
        from gankern.metrics.digits_extractor import load_digits_extractor

        return load_digits_extractor(weights, device)
    if extractor == "vgg16":
        from gankern.metrics.vgg16 import load_vgg16

        return load_vgg16(weights, device)
    raise ValueError(
        f"extractor must be one of {EXTRACTOR_NAMES} or a FeatureExtractor, got {extractor!r}"
    )
