"""Drop-in module layout of StyleGAN2-ADA's ``torch_utils.ops``.

Code written against that layout calls ops through their modules
(``bias_act.bias_act(...)``, ``upfirdn2d.setup_filter(...)``,
``conv2d_gradfix.no_weight_gradients()``). Swapping one import line keeps that code as is::

    # from torch_utils.ops import bias_act, upfirdn2d, conv2d_gradfix, conv2d_resample
    from gankern.compat import bias_act, upfirdn2d, conv2d_gradfix, conv2d_resample

The functions are gankern's own (same arguments, defaults and conventions), so every call
then runs on gankern's fastest available backend.
"""

from gankern.compat import bias_act, conv2d_gradfix, conv2d_resample, upfirdn2d

__all__ = ["bias_act", "conv2d_gradfix", "conv2d_resample", "upfirdn2d"]
