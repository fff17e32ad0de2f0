"""Layers (``nn.Module``) built only from :mod:`gankern.ops`.

Each layer passes its ``impl`` to the ops it calls; :func:`set_impl` switches a whole model.
"""

from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.bias_act_layers import Activation, Conv2dAct, ConvTranspose2dAct, LinearAct
from gankern.nn.conditioning import (
    ConditionalBatchNorm2d,
    LinearConditionalBatchNorm2d,
    ProjectionHead,
    check_labels,
    class_embedding,
    concat_label_maps,
    concat_labels,
    label_maps,
)
from gankern.nn.equalized import Conv2dLayer, FullyConnectedLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import MappingNetwork, normalize_2nd_moment
from gankern.nn.maxout import MaxoutLinear
from gankern.nn.minibatch_std import MinibatchStdLayer
from gankern.nn.resample import Blur, Downsample, Upsample
from gankern.nn.spectral_norm import (
    SPECTRAL_NORM_TYPES,
    apply_spectral_norm,
    has_spectral_norm,
    spectral_norm,
)
from gankern.nn.synthesis import SynthesisLayer, ToRGBLayer

__all__ = [
    "SPECTRAL_NORM_TYPES",
    "Activation",
    "Blur",
    "ConditionalBatchNorm2d",
    "Conv2dAct",
    "Conv2dLayer",
    "ConvTranspose2dAct",
    "Downsample",
    "FullyConnectedLayer",
    "FusedBiasAct",
    "LinearAct",
    "LinearConditionalBatchNorm2d",
    "MappingNetwork",
    "MaxoutLinear",
    "MinibatchStdLayer",
    "ProjectionHead",
    "SynthesisLayer",
    "ToRGBLayer",
    "Upsample",
    "apply_spectral_norm",
    "check_labels",
    "class_embedding",
    "concat_label_maps",
    "concat_labels",
    "has_spectral_norm",
    "label_maps",
    "normalize_2nd_moment",
    "set_impl",
    "spectral_norm",
]
