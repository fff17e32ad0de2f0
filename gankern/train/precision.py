"""Mixed precision of the trainer: how each ``--precision`` runs for a model family.

Two ways, chosen by the family (:attr:`gankern.train.family.GANFamily.precision_mode`):

* ``"blocks"`` (StyleGAN2): the networks hold their own half-precision blocks
  (``num_fp16_res`` highest resolutions, with conv clamping); the trainer changes nothing.
* ``"autocast"`` (every other family): the phases run under :func:`torch.autocast` in
  bfloat16 (``bf16``) or float16 (``fp16``), parameters and optimizer states stay float32.
  float16 gradients get dynamic loss scaling (:class:`LossScaler`); a step whose scaled
  gradients overflow is skipped like any non-finite step, and the scale halves.

``fp32`` runs everything in float32. ``auto`` is fp16 on CUDA and fp32 on the CPU.
"""

from __future__ import annotations

import torch
from torch import nn

PRECISION_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> fp16 on CUDA, fp32 elsewhere; other values unchanged."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return precision


def autocast_dtype(precision: str, mode: str) -> torch.dtype | None:
    """The autocast dtype of a family with precision ``mode`` at ``precision`` (or None)."""
    if mode != "autocast":
        return None
    return PRECISION_DTYPES.get(precision)


class LossScaler(nn.Module):
    """Dynamic loss scaling for float16 gradients (as ``torch.amp.GradScaler`` does it).

    The objective is multiplied by :attr:`scale` before ``backward``; the trainer divides
    the gradients by it before checking them. After a step with non-finite gradients the
    scale halves; after ``growth_interval`` finite steps in a row it doubles. The scale and
    the count are buffers, so a checkpoint resumes them.

    Args:
        init_scale: the first scale (2 ** 16).
        growth_interval: finite steps before the scale doubles.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_interval: int = 2000):
        super().__init__()
        if not init_scale > 0:
            raise ValueError(f"init_scale must be > 0, got {init_scale}")
        if growth_interval < 1:
            raise ValueError(f"growth_interval must be >= 1, got {growth_interval}")
        self.growth_interval = int(growth_interval)
        self.register_buffer("_scale", torch.tensor(float(init_scale), dtype=torch.float64))
        self.register_buffer("_good_steps", torch.zeros([], dtype=torch.int64))

    @property
    def scale(self) -> float:
        return float(self._scale)

    def update(self, finite: bool) -> None:
        """Adjust the scale after a step (``finite``: its gradients were all finite)."""
        if not finite:
            self._scale.mul_(0.5)
            self._good_steps.zero_()
            return
        self._good_steps.add_(1)
        if int(self._good_steps) >= self.growth_interval:
            self._scale.mul_(2.0)
            self._good_steps.zero_()
