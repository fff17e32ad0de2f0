"""Running an extractor over an image source: streamed statistics, cached for datasets.

Statistics of datasets (and of in-memory arrays up to 256 MiB) are saved in
``<cache>/metrics/stats/`` under a key made of the images' identity (the dataset's path,
each file's name, size and modification time, or a zip's size and modification time, or
an array's content hash; plus the subset size and seed) and the extractor's identity
(architecture and weights hash). Generated images are never cached.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

import numpy as np
import torch

from gankern.metrics.cache import atomic_write, metrics_cache_dir, stable_hash
from gankern.metrics.extractor import FeatureExtractor
from gankern.metrics.images import ImageSourceBase
from gankern.metrics.statistics import FeatureStats

_CACHE_VERSION = 1


@dataclass
class ExtractedFeatures:
    """What an extractor gave for a set of images."""

    stats: FeatureStats  # mean/covariance (and the vectors when kept)
    probs: np.ndarray | None  # class probabilities [num, classes] when kept
    num: int
    cached: bool  # True when read from the cache


@contextlib.contextmanager
def full_fp32_precision(allow_tf32: bool):
    """Disable (unless ``allow_tf32``) TF32 in CUDA convolutions and matmuls, then restore.

    cuDNN convolutions default to TF32 on Ampere and later GPUs, which changes Inception
    features in the fourth significant digit; full float32 keeps them equal to the
    standard tools' up to rounding.
    """
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = allow_tf32
    torch.backends.cudnn.allow_tf32 = allow_tf32
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _cache_path(source: ImageSourceBase, extractor: FeatureExtractor, num: int):
    if extractor.identity.endswith("-random"):
        return None  # untrained networks are for tests; never cache them
    ident = source.identity()
    if ident is None:
        return None
    key = stable_hash({"v": _CACHE_VERSION, "images": ident, "extractor": extractor.identity,
                       "num": num})
    return metrics_cache_dir() / "stats" / f"{extractor.name}-{key}.npz"


def _load_cached(path, keep_features: bool, keep_probs: bool) -> ExtractedFeatures | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
    except (OSError, ValueError):
        return None  # unreadable: recompute and overwrite
    if (keep_features and "features" not in state) or (keep_probs and "probs" not in state):
        return None
    probs = state.pop("probs", None)
    stats = FeatureStats.from_state(state)
    return ExtractedFeatures(stats=stats, probs=probs, num=stats.num, cached=True)


def _save_cached(path, result: ExtractedFeatures) -> None:
    arrays = result.stats.state()
    if result.probs is not None:
        arrays["probs"] = result.probs

    def write(tmp):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with open(tmp, "wb") as f:
            f.write(buffer.getvalue())

    atomic_write(path, write)


def extract_features(
    source: ImageSourceBase,
    extractor: FeatureExtractor,
    *,
    num: int,
    batch_size: int,
    keep_features: bool = False,
    keep_probs: bool = False,
    cache: bool = True,
    allow_tf32: bool = False,
    progress: bool = False,
    label: str = "",
) -> ExtractedFeatures:
    """Statistics of ``extractor``'s features over the first ``num`` images of ``source``.

    Args:
        keep_features: also keep every feature vector (KID, precision/recall).
        keep_probs: also keep the class probabilities (Inception Score).
        cache: read and write the statistics cache (datasets and arrays only).
        allow_tf32: let CUDA use TF32 (faster, slightly different features).
        progress: show a progress bar on stderr.
        label: what the progress bar calls these images.
    """
    if keep_probs and not extractor.num_classes:
        raise ValueError(f"the {extractor.name} extractor gives no class probabilities")
    path = _cache_path(source, extractor, num) if cache else None
    cached = _load_cached(path, keep_features, keep_probs)
    if cached is not None:
        return cached
    from tqdm.auto import tqdm

    stats = FeatureStats(keep_features=keep_features)
    probs: list[torch.Tensor] = []
    bar = tqdm(total=num, desc=label or extractor.name, unit="img", disable=not progress,
               file=sys.stderr, leave=False)
    with torch.inference_mode(), full_fp32_precision(allow_tf32), bar:
        for images in source.batches(num, batch_size, extractor.device):
            out = extractor(images)
            stats.update(out["features"])
            if keep_probs:
                probs.append(out["probs"].float().cpu())
            bar.update(images.shape[0])
    if stats.num != num:
        raise ValueError(f"{label or 'the source'} gave {stats.num} images, expected {num}")
    result = ExtractedFeatures(
        stats=stats, probs=torch.cat(probs).numpy() if keep_probs else None, num=num,
        cached=False,
    )
    if path is not None:
        _save_cached(path, result)
    return result
