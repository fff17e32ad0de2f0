"""Metrics computed at snapshots (``--metrics``), through :func:`gankern.metrics.compute_metrics`.

Names, as StyleGAN2-ADA's ``--metrics`` but for gankern's extractors:

* ``fid_digits``, ``kid_digits``, ``pr_digits``: the built-in digits classifier's features
  (no download; labelled ``_digits`` everywhere, never plain FID), 2,000 generated images
  against the whole dataset;
* ``fid50k``, ``kid50k``, ``is50k``, ``pr50k3``: the standard Inception (VGG16 for P/R)
  metrics with 50,000 generated images; they need the weights files (see docs/metrics.md).

Metrics run on process 0 only; the generated images use the metric's own seed, so
computing them does not change the training trajectory.
"""

from __future__ import annotations

from collections import OrderedDict

from gankern.train.distributed import DistributedContext

# name -> (compute_metrics metric, extractor, generated images)
SNAPSHOT_METRICS = {
    "fid_digits": ("fid", "digits", 2000),
    "kid_digits": ("kid", "digits", 2000),
    "pr_digits": ("pr", "digits", 2000),
    "fid50k": ("fid", "inception", 50_000),
    "kid50k": ("kid", "inception", 50_000),
    "is50k": ("is", "inception", 50_000),
    "pr50k3": ("pr", "inception", 50_000),
}


def check_metric_names(names) -> list[str]:
    """Validate ``--metrics`` names (a clear error before training starts)."""
    out = []
    for name in names:
        if name not in SNAPSHOT_METRICS:
            raise ValueError(f"metrics must be among {', '.join(SNAPSHOT_METRICS)}, got {name!r}")
        if name not in out:
            out.append(name)
    return out


def prepare_snapshot_metrics(names) -> None:
    """Load (or build) every feature extractor the metrics need, before training starts.

    A missing weights file is then an error at once (with the message saying where to put
    it), not at the first snapshot. The digits extractor is trained here if not cached.
    """
    from gankern.metrics import get_extractor

    extractors = []
    for name in check_metric_names(names):
        metric, extractor, _ = SNAPSHOT_METRICS[name]
        extractors.append(extractor)
        if metric == "pr" and extractor == "inception":
            extractors.append("vgg16")  # the standard precision/recall features
    for extractor in dict.fromkeys(extractors):
        get_extractor(extractor, device="cpu")


def compute_snapshot_metrics(G_ema, dataset, names, opts, ctx: DistributedContext,
                             generator_kwargs: dict | None = None) -> dict:
    """``{label: value}`` of the metrics ``names`` for ``G_ema`` against the training data.

    Labels are those of :func:`gankern.metrics.compute_metrics` (``fid_digits``, ``fid``,
    ``kid_std`` ...); ``generator_kwargs`` are passed to ``G_ema`` (the model family's
    ``metric_kwargs``). Returns {} on processes other than 0.
    """
    if not ctx.is_main:
        return {}
    from gankern.metrics import compute_metrics

    groups: OrderedDict[tuple[str, int], list[str]] = OrderedDict()
    for name in check_metric_names(names):
        metric, extractor, num_fake = SNAPSHOT_METRICS[name]
        groups.setdefault((extractor, num_fake), []).append(metric)
    results = {}
    for (extractor, num_fake), metrics in groups.items():
        # KID subsets draw real images without repetition: x-flipped copies don't count.
        kid_subset = min(1000, num_fake, dataset.num_images)
        values = compute_metrics(
            metrics, real=opts.data, fake=G_ema, num_fake=num_fake, extractor=extractor,
            device=ctx.device, seed=opts.seed, kid_subset_size=kid_subset,
            allow_tf32=opts.tf32, generator_kwargs=dict(generator_kwargs or {}),
        )  # fmt: skip
        results.update({k: float(v) for k, v in values.items()})
    return results
