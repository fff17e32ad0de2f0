"""``torch_utils.ops.bias_act`` layout: ``bias_act.bias_act(x, b, dim, act, ...)``."""

from gankern.ops.bias_act import ACTIVATIONS as activation_funcs
from gankern.ops.bias_act import bias_act

__all__ = ["activation_funcs", "bias_act"]
