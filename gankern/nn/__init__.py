"""Layers (``nn.Module``) built only from :mod:`gankern.ops`.

Each layer passes its ``impl`` to the ops it calls; :func:`set_impl` switches a whole model.
"""

from gankern.nn.adain import AdaIN, adaptive_instance_norm
from gankern.nn.attention import SelfAttention
from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.bias_act_layers import Activation, Conv2dAct, ConvTranspose2dAct, LinearAct
from gankern.nn.bicubic import BicubicDownsample, bicubic_filter, keys_cubic
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
from gankern.nn.noise import NoiseInput
from gankern.nn.pixel_norm import PixelNorm
from gankern.nn.progressive import box_downsample, fade_in, nearest_upsample
from gankern.nn.regularization import ortho_penalty
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
    "AdaIN",
    "BicubicDownsample",
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
    "NoiseInput",
    "PixelNorm",
    "ProjectionHead",
    "SelfAttention",
    "SynthesisLayer",
    "ToRGBLayer",
    "Upsample",
    "adaptive_instance_norm",
    "apply_spectral_norm",
    "bicubic_filter",
    "box_downsample",
    "check_labels",
    "class_embedding",
    "concat_label_maps",
    "concat_labels",
    "fade_in",
    "has_spectral_norm",
    "keys_cubic",
    "label_maps",
    "nearest_upsample",
    "normalize_2nd_moment",
    "ortho_penalty",
    "set_impl",
    "spectral_norm",
]
