"""``compute_metrics``: one call from images (or a generator) to labelled metric values."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import torch
from torch import nn

from gankern.metrics._validate import check_positive_int
from gankern.metrics.extractor import FeatureExtractor, metric_label
from gankern.metrics.extractors import get_extractor
from gankern.metrics.features import extract_features
from gankern.metrics.frechet import FID_EPS, frechet_distance
from gankern.metrics.images import open_image_source
from gankern.metrics.inception_score import IS_SPLITS, inception_score
from gankern.metrics.kid import KID_NUM_SUBSETS, KID_SUBSET_SIZE, kernel_inception_distance
from gankern.metrics.precision_recall import PR_NEIGHBORHOOD, precision_recall

METRICS = ("fid", "kid", "is", "pr", "ppl")
DEFAULT_NUM_GENERATED = 50_000  # the standard "50k" of fid50k, kid50k, is50k, pr50k3


class MetricResults(dict):
    """Metric label -> value (floats), plus ``info``: how they were computed."""

    def __init__(self, values: dict, info: dict):
        super().__init__(values)
        self.info = info


def parse_metrics(metrics) -> list[str]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> ``["fid", "kid"]`` (validated, deduplicated)."""
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(" ", "").split(",") if m]
    if not isinstance(metrics, Sequence) or not metrics:
        raise ValueError(f"metrics must name at least one of {METRICS}, got {metrics!r}")
    out = []
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"metrics must be among {METRICS}, got {m!r}")
        if m not in out:
            out.append(m)
    return out


def _image_count(name: str, requested: int | None, source) -> int:
    available = source.num_available
    if requested is None:
        return available if available is not None else DEFAULT_NUM_GENERATED
    if available is not None and requested > available:
        raise ValueError(f"{name}={requested} but the images hold only {available}")
    return requested


def _default_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def compute_metrics(
    metrics: str | Sequence[str] = ("fid",),
    *,
    real=None,
    fake=None,
    num_real: int | None = None,
    num_fake: int | None = None,
    extractor: str | FeatureExtractor = "inception",
    weights: str | os.PathLike | None = None,
    pr_extractor: str | FeatureExtractor | None = None,
    pr_weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    fid_method: str = "sqrtm",
    kid_subsets: int = KID_NUM_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    is_splits: int = IS_SPLITS,
    pr_k: int = PR_NEIGHBORHOOD,
    ppl_options: dict | None = None,
    generator_kwargs: dict | None = None,
    cache: bool = True,
    allow_tf32: bool = False,
    progress: bool = False,
) -> MetricResults:
    """Compute quality metrics of generated images against real ones.

    Args:
        metrics: any of ``"fid"``, ``"kid"``, ``"is"``, ``"pr"`` (precision and recall),
            ``"ppl"`` (perceptual path length, needs a generator module), as a list or a
            comma-separated string.
        real: the real images: a dataset folder or .zip, ``"builtin:digits"``, or a uint8
            array ``[N, C, H, W]`` (needed by fid, kid, pr).
        fake: the generated images: a folder or .zip, a uint8 array, a generator module
            (StyleGAN2-ADA interface: ``z_dim``, ``c_dim``, ``G(z, c)``; see
            :mod:`gankern.metrics.images`) or a sampler callable ``f(batch) -> images``.
        num_real: real images to use (None: all; fewer: a random subset drawn with ``seed``,
            the same subset for a folder, a zip or an array holding the same images).
        num_fake: generated images (None: all of a folder/array, 50,000 from a generator;
            fewer than a folder/array holds: a random subset, as for ``num_real``).
        extractor: ``"inception"`` (standard FID/KID/IS; needs the weights file),
            ``"digits"`` (the built-in digits classifier; labels get ``_digits``), or a
            :class:`FeatureExtractor`.
        weights: path of ``extractor``'s weights (default: its environment variable or
            the cache, see :mod:`gankern.metrics.inception`).
        pr_extractor: extractor of precision/recall (default: ``"vgg16"``, the standard,
            when ``extractor`` is ``"inception"``, else ``extractor``).
        pr_weights: path of ``pr_extractor``'s weights.
        device: where networks run (default: CUDA when available).
        batch_size: images per batch (default: 256 on CUDA, 32 on the CPU).
        seed: subset selection, latent sampling and KID subsets.
        fid_method: ``"sqrtm"`` (standard) or ``"eigh"`` (see :func:`frechet_distance`).
        kid_subsets, kid_subset_size: KID's subsets (standard: 100 of 1000 images).
        is_splits: Inception Score splits (standard: 10).
        pr_k: neighbourhood size of precision/recall (standard: 3).
        ppl_options: keyword arguments of :func:`perceptual_path_length` (num_samples,
            epsilon, space, sampling, distance, ...).
        generator_kwargs: extra keyword arguments of the generator's forward (for
            example ``{"truncation_psi": 1.0, "noise_mode": "const"}``).
        cache: use the statistics cache for datasets.
        allow_tf32: allow TF32 on CUDA (faster; features differ in the 4th digit).
        progress: progress bars on stderr.

    Returns:
        A dict (:class:`MetricResults`) from labels to floats, for example
        ``{"fid": 3.1}``, ``{"kid": ..., "kid_std": ...}``, ``{"is": ..., "is_std": ...}``,
        ``{"precision": ..., "recall": ...}``, ``{"ppl": ...}``; with a non-standard
        extractor every label gets its name (``"fid_digits"``, ``"precision_digits"``). Its
        ``info`` attribute records image counts, extractor identities and timings.

    Example (in a training loop, on the built-in digits)::

        results = compute_metrics("fid,kid", real="builtin:digits", fake=G_ema,
                                  num_fake=2000, extractor="digits", kid_subset_size=500)
        results["fid_digits"]
    """
    start = time.perf_counter()
    wanted = parse_metrics(metrics)
    device = _default_device(device)
    if batch_size is None:
        batch_size = 256 if device.type == "cuda" else 32
    batch_size = check_positive_int("batch_size", batch_size)
    if num_real is not None:
        num_real = check_positive_int("num_real", num_real)
    if num_fake is not None:
        num_fake = check_positive_int("num_fake", num_fake)
    if fake is None:
        raise ValueError("fake must be given (generated images, a folder or a generator)")
    needs_real = [m for m in wanted if m in ("fid", "kid", "pr")]
    if needs_real and real is None:
        raise ValueError(f"real must be given for {', '.join(needs_real)}")
    if "ppl" in wanted and not isinstance(fake, nn.Module):
        raise ValueError("ppl needs fake to be a generator module (it walks its latent space)")

    values: dict[str, float] = {}
    info: dict = {"metrics": wanted, "device": str(device), "batch_size": batch_size}
    if any(m != "ppl" for m in wanted):
        main_ex = get_extractor(extractor, weights=weights, device=device)
        info["extractor"] = main_ex.identity
        pr_ex = None
        if "pr" in wanted:
            if pr_extractor is None:
                pr_extractor = "vgg16" if extractor == "inception" else main_ex
            pr_ex = get_extractor(pr_extractor, weights=pr_weights, device=device)
            info["pr_extractor"] = pr_ex.identity
        sources = {"fake": open_image_source(fake, name="fake", num=num_fake, seed=seed,
                                             generator_kwargs=generator_kwargs)}
        nums = {"fake": _image_count("num_fake", num_fake, sources["fake"])}
        if needs_real:
            sources["real"] = open_image_source(real, name="real", num=num_real, seed=seed)
            nums["real"] = _image_count("num_real", num_real, sources["real"])
        for side, src in sources.items():
            info[side], info[f"num_{side}"] = src.description, nums[side]

        # What each (images, extractor) pair must provide; each pair is extracted once.
        needs: dict[tuple[str, FeatureExtractor], dict[str, bool]] = {}

        def need(side, ex, features=False, probs=False):
            entry = needs.setdefault((side, ex), {"keep_features": False, "keep_probs": False})
            entry["keep_features"] |= features
            entry["keep_probs"] |= probs

        for m in wanted:
            if m in ("fid", "kid"):
                need("real", main_ex, features=m == "kid")
                need("fake", main_ex, features=m == "kid")
            elif m == "is":
                need("fake", main_ex, probs=True)
            elif m == "pr":
                need("real", pr_ex, features=True)
                need("fake", pr_ex, features=True)
        feats = {}
        for (side, ex), keep in needs.items():
            feats[side, ex] = extract_features(
                sources[side], ex, num=nums[side], batch_size=batch_size, cache=cache,
                allow_tf32=allow_tf32, progress=progress, label=f"{side} images ({ex.name})",
                **keep)
            if side == "real":
                info[f"real_stats_cached_{ex.name}"] = feats[side, ex].cached

        if "fid" in wanted:
            r, f = feats["real", main_ex].stats, feats["fake", main_ex].stats
            values[metric_label("fid", main_ex.name)] = frechet_distance(
                r.mean, r.cov, f.mean, f.cov, eps=FID_EPS, method=fid_method)
        if "kid" in wanted:
            label = metric_label("kid", main_ex.name)
            values[label], values[f"{label}_std"] = kernel_inception_distance(
                feats["real", main_ex].stats.features, feats["fake", main_ex].stats.features,
                num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed, device=device)
        if "is" in wanted:
            label = metric_label("is", main_ex.name)
            values[label], values[f"{label}_std"] = inception_score(
                feats["fake", main_ex].probs, splits=is_splits)
        if "pr" in wanted:
            precision, recall = precision_recall(
                feats["real", pr_ex].stats.features, feats["fake", pr_ex].stats.features,
                k=pr_k, device=device,
                # float32 distances on GPUs (fast); float64 elsewhere (exact ties).
                dtype=torch.float32 if device.type == "cuda" else torch.float64)
            values[metric_label("precision", pr_ex.name)] = precision
            values[metric_label("recall", pr_ex.name)] = recall
    if "ppl" in wanted:
        from gankern.metrics.ppl import perceptual_path_length

        options = dict(ppl_options or {})
        if "distance" not in options:  # LPIPS (standard), or the digits network's distance
            if isinstance(extractor, str):
                options["distance"] = "digits" if extractor == "digits" else "lpips"
            else:
                options["distance"] = extractor if extractor.name == "digits" else "lpips"
        options.setdefault("seed", seed)
        options.setdefault("batch_size", min(batch_size, 64))
        label, value = perceptual_path_length(fake, device=device, **options)
        values[label] = value
        info["ppl"] = {k: v for k, v in options.items() if isinstance(v, (int, float, str))}
    info["seconds"] = round(time.perf_counter() - start, 3)
    return MetricResults(values, info)
