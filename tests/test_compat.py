"""The drop-in layout of StyleGAN2-ADA's torch_utils.ops calls gankern's ops."""

import math

import torch

from gankern.compat import bias_act, conv2d_gradfix, conv2d_resample, upfirdn2d


def test_module_layout_calls_work_like_the_original_layout():
    x = torch.randn(2, 3, 8, 8)
    b = torch.randn(3)
    y = bias_act.bias_act(x, b, act="lrelu")
    pre = x + b[:, None, None]
    expected = torch.where(pre >= 0, pre, 0.2 * pre)
    torch.testing.assert_close(y, expected * math.sqrt(2))
    assert set(bias_act.activation_funcs) >= {"linear", "relu", "lrelu", "tanh", "swish"}

    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert upfirdn2d.upsample2d(x, f).shape == (2, 3, 16, 16)
    assert upfirdn2d.downsample2d(x, f).shape == (2, 3, 4, 4)
    assert upfirdn2d.filter2d(x, f).shape == x.shape

    w = torch.randn(5, 3, 3, 3)
    torch.testing.assert_close(
        conv2d_gradfix.conv2d(x, w, padding=1), torch.nn.functional.conv2d(x, w, padding=1)
    )
    with conv2d_gradfix.no_weight_gradients():
        pass
    assert conv2d_gradfix.enabled is True
    y = conv2d_resample.conv2d_resample(x, w, f=f, up=2, padding=1)
    assert y.shape == (2, 5, 16, 16)
