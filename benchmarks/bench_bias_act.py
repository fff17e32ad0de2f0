"""bias_act: StyleGAN2's bias + leaky ReLU (gain sqrt(2)) on large activation tensors.

Bytes model (the least traffic any implementation needs; ``n`` elements of ``s`` bytes,
``c`` channels):

* forward: read x, write y: ``(2n + c) s``;
* backward: read dy and x (or y), write dx, write db: ``(3n + 2c) s``;
* double backward (lrelu, whose second derivative is zero): read v and x (or y), write
  ddy: ``3n s`` (other activations also read dy and write the x gradient: ``5n s``).

Target (issue 2, on one H100, tensors of 64 MiB and more, every dtype): forward and
backward at 85% of the copy bandwidth or more, and at least as fast as torch.compile(ref).
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
from gankern.ops import bias_act
from gankern.ops.bias_act import ACTIVATIONS

LARGE = 64 * 2**20  # the "tensors of 64 MB and more"
PIECEWISE_LINEAR = {"linear", "relu", "lrelu"}


def variants(quick: bool) -> list[Variant]:
    """StyleGAN2 activation shapes (64 MiB to 512 MiB in float32); tiny ones for --quick."""
    if quick:
        return [Variant("lrelu", (2, 8, 6, 5), {"act": "lrelu"})]
    shapes = [(32, 512, 32, 32), (32, 512, 64, 64), (32, 256, 128, 128)]
    return [Variant("lrelu", shape, {"act": "lrelu"}) for shape in shapes]


def make_inputs(config: Config, device: torch.device) -> list:
    x = torch.randn(config.shape, device=device, dtype=config.dtype)
    x = to_layout(x, config.layout).requires_grad_()
    b = torch.randn(config.shape[1], device=device, dtype=config.dtype).requires_grad_()
    return [x, b]


def _provider(impl: str):
    def build(config: Config):
        act = config.params["act"]

        def run(x, b):
            return bias_act(x, b, act=act, impl=impl)

        return run

    return build


def bytes_moved(config: Config, mode: str) -> int:
    n = math.prod(config.shape)
    c = config.shape[1]
    size = torch.empty((), dtype=config.dtype).element_size()
    if config.params["act"] not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {config.params['act']!r}")
    if mode == "forward":
        return (2 * n + c) * size
    if mode == "backward":
        return (3 * n + 2 * c) * size
    passes = 3 if config.params["act"] in PIECEWISE_LINEAR else 5
    return passes * n * size


def _large(config: Config, mode: str) -> bool:
    return mode in ("forward", "backward") and tensor_bytes(config.shape, config.dtype) >= LARGE


CASE = register(
    BenchCase(
        op="bias_act",
        description="bias + lrelu (StyleGAN2) on [N, C, H, W] activations",
        variants=variants,
        make_inputs=make_inputs,
        providers=backend_and_ref_providers(_provider),
        bytes_moved=bytes_moved,
        targets=[
            Target(
                "bias_act forward/backward, tensors >= 64 MiB: >= 85% of the copy bandwidth "
                "and >= torch.compile(ref) (issue 2)",
                applies=_large,
                min_pct_copy_bw=85.0,
                min_speedup_vs_compile=1.0,
            )
        ],
    )
)
