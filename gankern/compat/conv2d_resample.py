"""``torch_utils.ops.conv2d_resample`` layout: ``conv2d_resample.conv2d_resample(...)``."""

from gankern.ops.conv2d_resample import conv2d_resample

__all__ = ["conv2d_resample"]
