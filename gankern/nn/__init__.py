"""Layers (``nn.Module``) built only from :mod:`gankern.ops`.

Each layer passes its ``impl`` to the ops it calls; :func:`set_impl` switches a whole model.
"""

from gankern.nn.bias_act import FusedBiasAct
from gankern.nn.bicubic import BicubicDownsample, bicubic_filter, keys_cubic
from gankern.nn.equalized import Conv2dLayer, FullyConnectedLayer
from gankern.nn.impl import set_impl
from gankern.nn.mapping import MappingNetwork, normalize_2nd_moment
from gankern.nn.minibatch_std import MinibatchStdLayer
from gankern.nn.resample import Blur, Downsample, Upsample
from gankern.nn.synthesis import SynthesisLayer, ToRGBLayer

__all__ = [
    "BicubicDownsample",
    "Blur",
    "Conv2dLayer",
    "Downsample",
    "FullyConnectedLayer",
    "FusedBiasAct",
    "MappingNetwork",
    "MinibatchStdLayer",
    "SynthesisLayer",
    "ToRGBLayer",
    "Upsample",
    "bicubic_filter",
    "keys_cubic",
    "normalize_2nd_moment",
    "set_impl",
]
