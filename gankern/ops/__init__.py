"""Fused GAN ops. Each op is one function with an ``impl`` argument.

``impl="auto"`` (the default) picks the fastest backend that can run the inputs: the CUDA
C++ extension, then Triton, then the pure-PyTorch reference. ``impl="cuda" | "triton" |
"ref"`` forces one (an unavailable backend raises with the reason), and the environment
variable ``GANKERN_IMPL`` replaces ``"auto"`` by a fixed choice.
"""

from gankern.ops import bias_act as _bias_act_module
from gankern.ops import modulated_conv2d as _modulated_conv2d_module
from gankern.ops import upfirdn2d as _upfirdn2d_module
from gankern.ops._backend import BackendUnavailableError, backend_report, require_backend
from gankern.ops.bias_act import ACTIVATIONS, bias_act
from gankern.ops.conv2d import conv2d, conv_transpose2d, no_weight_gradients
from gankern.ops.conv2d_resample import conv2d_resample
from gankern.ops.modulated_conv2d import modulated_conv2d
from gankern.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

# op name -> its registry of fast backends, for `gankern info` and the benchmarks.
OP_BACKENDS = {
    "bias_act": _bias_act_module.FAST_BACKENDS,
    "upfirdn2d": _upfirdn2d_module.FAST_BACKENDS,
    "modulated_conv2d": _modulated_conv2d_module.FAST_BACKENDS,
}

__all__ = [
    "ACTIVATIONS",
    "BackendUnavailableError",
    "OP_BACKENDS",
    "backend_report",
    "bias_act",
    "conv2d",
    "conv2d_resample",
    "conv_transpose2d",
    "downsample2d",
    "filter2d",
    "modulated_conv2d",
    "no_weight_gradients",
    "require_backend",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
