"""upfirdn2d: StyleGAN2's 2x upsampling and 2x downsampling with the 4-tap [1, 3, 3, 1] filter.

The filter is made as StyleGAN2 makes it (``setup_filter([1, 3, 3, 1])``: a normalized
4x4 outer product), and applied with ``upsample2d`` / ``downsample2d``, which add the
centring padding and the gain.

Bytes model (the roofline: read the input once, write the output once; the 16 filter taps
are negligible): ``(numel(in) + numel(out)) * itemsize`` in every mode, because the
backward of upfirdn2d is an upfirdn2d from the output's size to the input's, and the double
backward (with respect to ``dy``; the op is linear in x) is again one from the input's size
to the output's.

Target (issue 2, on one H100, tensors of 64 MiB and more, every dtype): at least 70% of the
bandwidth roofline (the copy bandwidth) and at least 3x faster than ref eager.
"""

from __future__ import annotations

import math

import torch

from benchmarks.harness import (
    BenchCase,
    Config,
    Target,
    Variant,
    backend_and_ref_providers,
    register,
    tensor_bytes,
    to_layout,
)
from gankern.ops import downsample2d, setup_filter, upsample2d

LARGE = 64 * 2**20  # the "tensors of 64 MB and more"
TAPS = [1, 3, 3, 1]


def variants(quick: bool) -> list[Variant]:
    """2x up from 32..128 px and 2x down from 64..256 px at StyleGAN2's channel counts."""
    if quick:
        return [
            Variant("up2", (2, 3, 8, 7), {"up": 2, "down": 1, "taps": TAPS}),
            Variant("down2", (2, 3, 8, 10), {"up": 1, "down": 2, "taps": TAPS}),
        ]
    up = [(32, 512, 32, 32), (32, 256, 64, 64), (32, 128, 128, 128)]
    down = [(32, 512, 64, 64), (32, 256, 128, 128), (32, 128, 256, 256)]
    return [Variant("up2", s, {"up": 2, "down": 1, "taps": TAPS}) for s in up] + [
        Variant("down2", s, {"up": 1, "down": 2, "taps": TAPS}) for s in down
    ]


def output_shape(config: Config) -> tuple[int, int, int, int]:
    """``upsample2d``/``downsample2d`` scale H and W exactly (the padding centres the filter)."""
    n, c, h, w = config.shape
    up, down = config.params["up"], config.params["down"]
    return n, c, h * up // down, w * up // down


def make_inputs(config: Config, device: torch.device) -> list:
    x = torch.randn(config.shape, device=device, dtype=config.dtype)
    x = to_layout(x, config.layout).requires_grad_()
    f = setup_filter(config.params["taps"], device=device)
    return [x, f]


def _provider(impl: str):
    def build(config: Config):
        up, down = config.params["up"], config.params["down"]
        if up > 1 and down == 1:
            return lambda x, f: upsample2d(x, f, up=up, impl=impl)
        if down > 1 and up == 1:
            return lambda x, f: downsample2d(x, f, down=down, impl=impl)
        raise ValueError(f"variant must upsample or downsample, got up={up}, down={down}")

    return build


def bytes_moved(config: Config, mode: str) -> int:
    size = torch.empty((), dtype=config.dtype).element_size()
    return (math.prod(config.shape) + math.prod(output_shape(config))) * size


def _large(config: Config, mode: str) -> bool:
    largest = max(math.prod(config.shape), math.prod(output_shape(config)))
    return tensor_bytes((largest,), config.dtype) >= LARGE


CASE = register(
    BenchCase(
        op="upfirdn2d",
        description="2x up / 2x down with the 4-tap [1, 3, 3, 1] filter (StyleGAN2)",
        variants=variants,
        make_inputs=make_inputs,
        providers=backend_and_ref_providers(_provider),
        bytes_moved=bytes_moved,
        targets=[
            Target(
                "upfirdn2d 2x up/down, tensors >= 64 MiB: >= 70% of the bandwidth roofline "
                "and >= 3x ref eager (issue 2)",
                applies=_large,
                min_pct_copy_bw=70.0,
                min_speedup_vs_ref=3.0,
            )
        ],
    )
)
