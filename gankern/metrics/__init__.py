"""Quality metrics of generated images: FID, KID, Inception Score, precision/recall, PPL.

The one-call entry point is :func:`compute_metrics`; the formulas are also available on
their own (:func:`frechet_distance`, :func:`kernel_inception_distance`,
:func:`inception_score`, :func:`precision_recall`, :func:`perceptual_path_length`), with the
extractors (:func:`load_inception`, :func:`load_digits_extractor`, :func:`load_vgg16`) and
the streamed statistics (:class:`FeatureStats`). Conventions: ``docs/metrics.md``.
"""

from gankern.metrics.compute import METRICS, MetricResults, compute_metrics, parse_metrics
from gankern.metrics.digits_extractor import (
    DigitsFeatureNet,
    DigitsRecipe,
    build_digits_extractor,
    load_digits_extractor,
)
from gankern.metrics.extractor import FeatureExtractor, metric_label
from gankern.metrics.extractors import EXTRACTOR_NAMES, get_extractor
from gankern.metrics.features import extract_features
from gankern.metrics.frechet import frechet_distance
from gankern.metrics.images import open_image_source, quantize_images
from gankern.metrics.inception import FIDInceptionV3, load_inception
from gankern.metrics.inception_score import inception_score
from gankern.metrics.kid import kernel_inception_distance
from gankern.metrics.ppl import perceptual_path_length
from gankern.metrics.precision_recall import precision_recall
from gankern.metrics.statistics import FeatureStats
from gankern.metrics.vgg16 import LPIPS, VGG16Features, load_lpips, load_vgg16
from gankern.metrics.weights import WeightsNotFoundError

__all__ = [
    "EXTRACTOR_NAMES",
    "LPIPS",
    "METRICS",
    "DigitsFeatureNet",
    "DigitsRecipe",
    "FIDInceptionV3",
    "FeatureExtractor",
    "FeatureStats",
    "MetricResults",
    "VGG16Features",
    "WeightsNotFoundError",
    "build_digits_extractor",
    "compute_metrics",
    "extract_features",
    "frechet_distance",
    "get_extractor",
    "inception_score",
    "kernel_inception_distance",
    "load_digits_extractor",
    "load_inception",
    "load_lpips",
    "load_vgg16",
    "metric_label",
    "open_image_source",
    "parse_metrics",
    "perceptual_path_length",
    "precision_recall",
    "quantize_images",
]
