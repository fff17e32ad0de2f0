"""``torch_utils.ops.conv2d_gradfix`` layout: ``conv2d``, ``conv_transpose2d`` and
``no_weight_gradients()``, working on current PyTorch versions (where the original's
custom-op path is disabled and the context has no effect)."""

from gankern.ops.conv2d import conv2d, conv_transpose2d, no_weight_gradients

# The original module has an ``enabled`` switch for its custom implementation; gankern's
# implementation is always on, and the flag is kept so that code setting it still runs.
enabled = True

__all__ = ["conv2d", "conv_transpose2d", "enabled", "no_weight_gradients"]
