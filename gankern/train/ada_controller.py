"""Adaptive discriminator augmentation: the controller of the augmentation probability.

StyleGAN2-ADA's heuristic: overfitting shows as D becoming confident on the training images,
measured by ``r_t = E[sign(D(real))]``. Every few D steps, ``p`` moves up when ``r_t`` is
above the target (0.6) and down when below, by an amount that lets ``p`` go from 0 to 1 in
``kimg`` thousand images::

    adjust = sign(r_t - target) * images_since_last_update / (kimg * 1000)
    p = clamp(p + adjust, 0, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.distributed as dist

from gankern.ops._checks import check_int, check_number


class AdaController:
    """Adjusts ``pipe.p`` from the sign of the discriminator's outputs on real images.

    Args:
        pipe: the augmentation pipeline (anything with a scalar tensor buffer ``p``, e.g.
            :class:`gankern.train.augment.AugmentPipe`).
        target: the target of ``E[sign(D(real))]`` (default 0.6).
        interval: call :meth:`update` every this many D steps (default 4).
        kimg: ``p`` can go from 0 to 1 in this many thousand images (default 500).

    Use: :meth:`accumulate` the real logits of every D step, and every ``interval`` steps
    call :meth:`update` with the number of images (over all processes) seen since the last
    update, e.g. ``batch * interval``. With ``torch.distributed`` initialized, the sign
    statistics are summed over all processes, so every process computes the same ``p``.
    """

    def __init__(self, pipe, target: float = 0.6, interval: int = 4, kimg: float = 500.0):
        p = getattr(pipe, "p", None)
        if not isinstance(p, torch.Tensor) or p.numel() != 1 or not p.is_floating_point():
            raise TypeError(
                "pipe must have a scalar floating-point tensor p (an AugmentPipe), got "
                f"{type(pipe).__name__} with p={p!r}"
            )
        self.pipe = pipe
        self.target = check_number("target", target)
        if not -1 <= self.target <= 1:
            raise ValueError(f"target must be in [-1, 1] (a mean of signs), got {target}")
        self.interval = check_int("interval", interval, min_value=1)
        self.kimg = check_number("kimg", kimg)
        if self.kimg <= 0:
            raise ValueError(f"kimg must be > 0, got {kimg}")
        # [sum of signs, number of non-NaN logits] since the last update, kept on the
        # logits' device (no synchronization per step; NCCL reduces it there).
        self._stats = torch.zeros(2, dtype=torch.float64, device=p.device)
        self.rt: float | None = None
        """``E[sign(D(real))]`` of the last update (None before the first one)."""

    @property
    def p(self) -> float:
        """The current augmentation probability."""
        return float(self.pipe.p)

    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add the signs of D's outputs on real images (any shape; NaNs are ignored).
        Does not synchronize with the GPU."""
        if not isinstance(real_logits, torch.Tensor):
            raise TypeError(f"real_logits must be a torch.Tensor, got {type(real_logits).__name__}")
        if not (real_logits.is_floating_point()):
            raise TypeError(f"real_logits must be a floating point tensor, got {real_logits.dtype}")
        logits = real_logits.detach().to(torch.float64)
        if self._stats.device != logits.device:
            self._stats = self._stats.to(logits.device)
        valid = ~torch.isnan(logits)
        signs = torch.where(valid, torch.sign(logits), 0.0)
        self._stats += torch.stack([signs.sum(), valid.sum().to(torch.float64)])

    def update(self, num_images: int) -> float | None:
        """Adjust ``p`` from the statistics accumulated since the last update, then reset them.

        Args:
            num_images: images seen (over all processes) since the last update.

        Returns:
            ``r_t``, the mean sign of the accumulated real logits, or None when nothing was
            accumulated (``p`` is then left as it is).
        """
        num_images = check_int("num_images", num_images, min_value=0)
        stats = self._stats.clone()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats, op=dist.ReduceOp.SUM)
        self._stats.zero_()
        total, count = (float(v) for v in stats.cpu())
        if count == 0:
            return None
        self.rt = total / count
        diff = self.rt - self.target
        direction = (diff > 0) - (diff < 0)
        adjust = direction * num_images / (self.kimg * 1000)
        with torch.no_grad():
            self.pipe.p.copy_((self.pipe.p + adjust).clamp(0.0, 1.0))
        return self.rt

    def state_dict(self) -> dict:
        """Everything to resume exactly: ``p``, the pending statistics, the last ``r_t``."""
        return {
            "p": self.pipe.p.detach().cpu().clone(),
            "stats": self._stats.detach().cpu().clone(),
            "rt": self.rt,
        }

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict`'s output (sets ``pipe.p`` too)."""
        if not isinstance(state, Mapping) or set(state) != {"p", "stats", "rt"}:
            keys = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"state must have the keys ['p', 'rt', 'stats'], got {keys}")
        stats = torch.as_tensor(state["stats"], dtype=torch.float64)
        if stats.shape != (2,):
            raise ValueError(f"state['stats'] must have shape (2,), got {tuple(stats.shape)}")
        rt = state["rt"]
        if rt is not None and not (isinstance(rt, (int, float)) and math.isfinite(rt)):
            raise ValueError(f"state['rt'] must be a finite number or None, got {rt!r}")
        p = torch.as_tensor(state["p"])
        if p.numel() != 1:
            raise ValueError(f"state['p'] must be a scalar, got shape {tuple(p.shape)}")
        with torch.no_grad():
            self.pipe.p.copy_(p.reshape(self.pipe.p.shape))
        self._stats = stats.to(self.pipe.p.device).clone()
        self.rt = None if rt is None else float(rt)
