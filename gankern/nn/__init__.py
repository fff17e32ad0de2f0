"""Layers (``nn.Module``) built only from :mod:`gankern.ops`.

Each layer passes its ``impl`` to the ops it calls; :func:`set_impl` switches a whole model.
"""

from gankern.nn.adain import AdaIN, adaptive_instance_norm
from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.equalized import Conv2dLayer, FullyConnectedLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import MappingNetwork, normalize_2nd_moment
from gankern.nn.minibatch_std import MinibatchStdLayer
from gankern.nn.noise import NoiseInput
from gankern.nn.pixel_norm import PixelNorm
from gankern.nn.progressive import box_downsample, fade_in, nearest_upsample
from gankern.nn.resample import Blur, Downsample, Upsample
from gankern.nn.synthesis import SynthesisLayer, ToRGBLayer

__all__ = [
    "AdaIN",
    "Blur",
    "Conv2dLayer",
    "Downsample",
    "FullyConnectedLayer",
    "FusedBiasAct",
    "MappingNetwork",
    "MinibatchStdLayer",
    "NoiseInput",
    "PixelNorm",
    "SynthesisLayer",
    "ToRGBLayer",
    "Upsample",
    "adaptive_instance_norm",
    "box_downsample",
    "fade_in",
    "nearest_upsample",
    "normalize_2nd_moment",
    "set_impl",
]
