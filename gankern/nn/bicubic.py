"""Bicubic downsampling as a FIR filter: :func:`keys_cubic`, :func:`bicubic_filter` and
:class:`BicubicDownsample` (on :func:`gankern.ops.downsample2d`).

Super-resolution papers make their low-resolution inputs with a "bicubic kernel" (Ledig et
al. 2017: MATLAB's ``imresize``; Pillow's ``BICUBIC`` resize is the same filter). When
shrinking by an integer factor ``f``, both evaluate Keys' cubic convolution kernel
(``a = -0.5``) stretched by ``f``, so that it also low-passes the image: an output pixel is
the weighted mean of the input pixels within ``2 f`` pixels of its centre, with weights
``keys_cubic(d / f)`` for a pixel at distance ``d``. That is a fixed separable FIR filter
followed by keeping every ``f``-th pixel, which is what ``upfirdn2d`` computes.

At the image border, Pillow drops the weights that fall outside the image and renormalizes
the rest; :class:`BicubicDownsample` does the same by dividing by the filtered image of
ones. The result equals ``PIL.Image.resize(..., BICUBIC)`` of a float (mode ``"F"``)
image to float32 rounding (measured: at most 5e-5 on a 0..255 scale, factors 2, 3 and 4),
and that of a uint8 (mode ``"L"``) image within one level after rounding (Pillow rounds to
8 bits between its horizontal and vertical passes; about 10-15% of the pixels of a random
image differ by one).
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.ops import downsample2d, setup_filter
from gankern.ops._backend import check_impl
from gankern.ops._checks import check_int, check_number, check_tensor


def keys_cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel (Keys 1981) at the points ``x``.

    ``W(x) = (a+2)|x|^3 - (a+3)|x|^2 + 1`` for ``|x| <= 1``, ``a|x|^3 - 5a|x|^2 + 8a|x| - 4a``
    for ``1 < |x| < 2``, 0 beyond. ``a = -0.5`` is the bicubic kernel of MATLAB and Pillow
    (OpenCV uses -0.75).
    """
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def bicubic_filter(factor: int, a: float = -0.5) -> torch.Tensor:
    """The 1-D FIR taps (float32, summing to 1) of bicubic downsampling by ``factor``.

    Tap ``k`` of ``L`` sits at distance ``d_k = k - (L - 1) / 2`` input pixels from the
    output pixel's centre and weighs ``keys_cubic(d_k / factor, a)``; ``L = 4 * factor`` for
    an even factor (the centre falls between two input pixels), ``4 * factor - 1`` for an
    odd one (it falls on a pixel; the two outermost taps would weigh 0). With
    :func:`gankern.ops.downsample2d`'s padding the taps line up with the centres of the
    ``factor`` x ``factor`` input blocks, as in Pillow and MATLAB.

    Args:
        factor: integer downsampling factor (>= 1; 1 gives the identity ``[0, 1, 0]``).
        a: the kernel's free parameter (default -0.5).
    """
    factor = check_int("factor", factor, min_value=1)
    a = check_number("a", a)
    length = 4 * factor if factor % 2 == 0 else 4 * factor - 1
    offsets = torch.arange(length, dtype=torch.float64) - (length - 1) / 2
    taps = keys_cubic(offsets / factor, a)
    return (taps / taps.sum()).to(torch.float32)


class BicubicDownsample(nn.Module):
    """Shrink images by an integer ``factor`` with the bicubic filter (see module doc).

    Args:
        factor: downsampling factor (4 for SRGAN's 4x super-resolution).
        a: Keys' kernel parameter (default -0.5, as MATLAB and Pillow).
        impl: backend of :func:`gankern.ops.downsample2d` (``"auto"``, ``"cuda"``,
            ``"triton"``, ``"ref"``).

    ``[N, C, H, W] -> [N, C, H / factor, W / factor]``; H and W must be multiples of
    ``factor``. Works on any floating dtype and range (it is linear, with unit DC gain).
    """

    filter: torch.Tensor

    def __init__(self, factor: int = 4, a: float = -0.5, impl: str = "auto"):
        super().__init__()
        self.factor = check_int("factor", factor, min_value=1)
        self.a = check_number("a", a)
        self.impl = check_impl(impl)
        taps = setup_filter(bicubic_filter(self.factor, self.a), separable=True)
        self.register_buffer("filter", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4)
        if x.shape[2] % self.factor or x.shape[3] % self.factor:
            raise ValueError(f"x must have a height and width that are multiples of factor = "
                             f"{self.factor}, got shape {tuple(x.shape)}")
        taps = self.filter if self.filter.dtype == x.dtype else self.filter.float()
        y = downsample2d(x, taps, down=self.factor, impl=self.impl)
        # The filter's weight that lands inside the image, per output pixel: divide by it so
        # that the border pixels are weighted means of the pixels that exist (as Pillow).
        ones = torch.ones((1, 1, *x.shape[2:]), dtype=x.dtype, device=x.device)
        inside = downsample2d(ones, taps, down=self.factor, impl=self.impl)
        return y / inside

    def extra_repr(self) -> str:
        return (f"factor={self.factor}, a={self.a:g}, taps={self.filter.shape[0]}, "
                f"impl={self.impl!r}")
