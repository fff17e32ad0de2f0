"""FIR resampling layers: :class:`Upsample`, :class:`Downsample` and :class:`Blur`.

They are thin modules over :func:`gankern.ops.upsample2d`, :func:`gankern.ops.downsample2d`
and :func:`gankern.ops.upfirdn2d`, the way StyleGAN2 code bases use them. The filter is made
by :func:`gankern.ops.setup_filter` (normalized to unit DC gain; filters shorter than 8 taps
become their 2-D outer product) and held as a non-persistent buffer: it follows the module
across devices but stays out of the ``state_dict``, since it is fixed by the constructor.
Every layer has an ``impl`` attribute (see :func:`gankern.nn.set_impl`).
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.ops import downsample2d, setup_filter, upfirdn2d, upsample2d
from gankern.ops._backend import check_impl
from gankern.ops._checks import check_int, check_number
from gankern.ops.upfirdn2d import _parse_padding, _parse_scaling


def _make_filter(taps, gain: float = 1) -> torch.Tensor:
    if isinstance(taps, str):
        raise TypeError(f"filter must be a sequence of numbers or a tensor, got {taps!r}")
    try:
        return setup_filter(taps, gain=gain)
    except (TypeError, RuntimeError) as exc:  # torch.as_tensor rejecting what it was given
        raise TypeError(
            f"filter must be a sequence of numbers or a tensor, got {taps!r}"
        ) from exc


class _Resample(nn.Module):
    filter: torch.Tensor

    def __init__(self, taps, padding, gain, flip_filter: bool, impl: str, filter_gain: float = 1):
        super().__init__()
        self.padding = _parse_padding(padding)
        self.gain = check_number("gain", gain)
        if not isinstance(flip_filter, bool):
            raise TypeError(f"flip_filter must be a bool, got {flip_filter!r}")
        self.flip_filter = flip_filter
        self.impl = check_impl(impl)
        self.register_buffer("filter", _make_filter(taps, filter_gain), persistent=False)

    def _taps(self, x: torch.Tensor) -> torch.Tensor:
        # The filter stays float32 when the module is cast to half (ops want float32 or x's
        # dtype); .to is a no-op in the usual case.
        return self.filter if self.filter.dtype == x.dtype else self.filter.to(torch.float32)


class Upsample(_Resample):
    """Upsample by ``factor`` with a FIR filter: zero insertion, then filtering.

    Args:
        factor: upsampling factor, an int or ``[x, y]`` (default 2).
        filter: FIR taps, e.g. ``[1, 3, 3, 1]`` (StyleGAN2's default), 1-D or 2-D.
        padding: extra padding ``int | [x, y] | [x0, x1, y0, y1]`` (negative crops) on top of
            the one that keeps the output exactly ``factor`` times larger (default 0).
        gain: signal gain (default 1; the layer compensates for the zero insertion itself).
        flip_filter: correlate instead of convolving (default False).
        impl: backend of the op (see :mod:`gankern.ops`).

    ``[N, C, H, W] -> [N, C, H * factor_y, W * factor_x]`` (for padding 0).
    """

    def __init__(self, factor=2, filter=(1, 3, 3, 1), padding=0, gain=1.0,
                 flip_filter=False, impl="auto"):
        super().__init__(filter, padding, gain, flip_filter, impl)
        self.factor = _parse_scaling("factor", factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(
            x, self._taps(x), up=list(self.factor), padding=list(self.padding),
            flip_filter=self.flip_filter, gain=self.gain, impl=self.impl,
        )

    def extra_repr(self) -> str:
        return (f"factor={self.factor}, filter={tuple(self.filter.shape)}, "
                f"padding={self.padding}, impl={self.impl!r}")


class Downsample(_Resample):
    """Filter with a FIR low-pass, then keep every ``factor``-th pixel.

    Args:
        factor: downsampling factor, an int or ``[x, y]`` (default 2).
        filter: FIR taps, e.g. ``[1, 3, 3, 1]`` (StyleGAN2's default), 1-D or 2-D.
        padding: extra padding on top of the one that makes the output exactly ``factor``
            times smaller for even sizes (default 0).
        gain: signal gain (default 1).
        flip_filter: correlate instead of convolving (default False).
        impl: backend of the op (see :mod:`gankern.ops`).

    ``[N, C, H, W] -> [N, C, H // factor_y, W // factor_x]`` (even sizes, padding 0).
    """

    def __init__(self, factor=2, filter=(1, 3, 3, 1), padding=0, gain=1.0,
                 flip_filter=False, impl="auto"):
        super().__init__(filter, padding, gain, flip_filter, impl)
        self.factor = _parse_scaling("factor", factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample2d(
            x, self._taps(x), down=list(self.factor), padding=list(self.padding),
            flip_filter=self.flip_filter, gain=self.gain, impl=self.impl,
        )

    def extra_repr(self) -> str:
        return (f"factor={self.factor}, filter={tuple(self.filter.shape)}, "
                f"padding={self.padding}, impl={self.impl!r}")


class Blur(_Resample):
    """FIR filtering with explicit padding, as StyleGAN2 ports use around (transposed) convs.

    Args:
        filter: FIR taps, e.g. ``[1, 3, 3, 1]``, 1-D or 2-D (normalized to unit DC gain).
        padding: ``int | [x, y] | [x0, x1, y0, y1]`` as in :func:`gankern.ops.upfirdn2d`.
            A rosinality-style ``pad=(p0, p1)`` (the same on both axes) is
            ``padding=[p0, p1, p0, p1]`` here.
        upsample_factor: when the blur follows a transposed convolution of stride
            ``upsample_factor``, the filter is scaled by ``upsample_factor ** 2`` to restore
            the signal magnitude lost to the zero insertion (default 1).
        impl: backend of the op (see :mod:`gankern.ops`).

    Output size: ``H + pady0 + pady1 - fh + 1`` by ``W + padx0 + padx1 - fw + 1``.
    """

    def __init__(self, filter, padding, upsample_factor=1, impl="auto"):
        upsample_factor = check_int("upsample_factor", upsample_factor, min_value=1)
        super().__init__(filter, padding, 1.0, False, impl, filter_gain=upsample_factor**2)
        self.upsample_factor = upsample_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self._taps(x), padding=list(self.padding), impl=self.impl)

    def extra_repr(self) -> str:
        return (f"filter={tuple(self.filter.shape)}, padding={self.padding}, "
                f"upsample_factor={self.upsample_factor}, impl={self.impl!r}")
