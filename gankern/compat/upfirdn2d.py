"""``torch_utils.ops.upfirdn2d`` layout: ``upfirdn2d``, ``setup_filter`` and the helpers."""

from gankern.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["downsample2d", "filter2d", "setup_filter", "upfirdn2d", "upsample2d"]
