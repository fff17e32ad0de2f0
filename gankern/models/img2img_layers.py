"""Building blocks shared by the image-to-image models (Pix2Pix, CycleGAN, SRGAN).

* :func:`make_norm`: the normalization layers of the official pix2pix/CycleGAN code
  (``"batch"``: ``BatchNorm2d`` with affine parameters and running statistics;
  ``"instance"``: ``InstanceNorm2d`` without either; ``"none"``).
* :func:`init_normal_`: their weight initialization, N(0, 0.02) for convolution and linear
  weights, N(1, 0.02) for batch-norm scales, zero biases.
* Config validation helpers that raise ``TypeError``/``ValueError`` naming the config class
  and field (over the classic models' checks in :mod:`gankern.models._netutils`).

Where a layer's bias is directly followed by its activation, the models use
:class:`gankern.nn.Conv2dAct`, :class:`~gankern.nn.ConvTranspose2dAct` and
:class:`~gankern.nn.LinearAct` (bias and activation in one fused ``bias_act``, gain 1).
"""

from __future__ import annotations

import torch
from torch import nn

from gankern.models._netutils import check_float_field, check_int_field
from gankern.nn._validate import check_choice

NORMS = ("batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalization layer ``kind`` over ``channels`` feature maps.

    Args:
        kind: ``"batch"`` (``BatchNorm2d``, affine, running statistics in buffers),
            ``"instance"`` (``InstanceNorm2d`` without affine parameters or running
            statistics, as the official CycleGAN/pix2pix code) or ``"none"`` (identity).
        channels: number of feature maps.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def conv_bias_with_norm(norm: str) -> bool:
    """Whether a convolution followed by the normalization ``norm`` has its own bias.

    The official code gives those convolutions a bias exactly when the norm is instance
    normalization (batch norm has its own shift); gankern also gives them one without
    normalization (``"none"``), where the official code leaves them without any shift.
    """
    return norm != "batch"


@torch.no_grad()
def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialize as the official pix2pix/CycleGAN code (``init_type="normal"``).

    Weights of every convolution, transposed convolution and linear layer (their fused
    ``*Act`` variants included) are drawn from N(0, ``std``), their biases set to zero;
    batch-norm scales are drawn from N(1, ``std``) and their shifts set to zero. Other
    parameters (PReLU slopes) keep their constructor values. Draws from torch's global RNG.
    Returns ``module``.
    """
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            sub.weight.normal_(0.0, std)
            if sub.bias is not None:
                sub.bias.zero_()
        elif isinstance(sub, nn.BatchNorm2d):
            sub.weight.normal_(1.0, std)
            sub.bias.zero_()
    return module


# --- config validation ----------------------------------------------------------------------


def _field(config, name: str) -> str:
    return f"{type(config).__name__}.{name}"


def check_config_int(config, name: str, min_value: int) -> None:
    """Field ``name`` of ``config`` must be an int >= min_value (TypeError/ValueError)."""
    check_int_field(_field(config, name), getattr(config, name), min_value)


def check_config_choice(config, name: str, choices) -> None:
    """Field ``name`` of ``config`` must be one of ``choices``."""
    check_choice(_field(config, name), getattr(config, name), choices)


def check_config_number(config, name: str, low: float, high: float) -> None:
    """Field ``name`` of ``config`` must be a real number in ``[low, high]``."""
    check_float_field(_field(config, name), getattr(config, name), low, high)


def check_resolution_multiple(resolution, step: int) -> int:
    """``resolution`` as an int that is a positive multiple of ``step`` (fully convolutional
    networks whose levels halve the image need such sizes)."""
    resolution = check_int_field("resolution", resolution, 1)
    if resolution % step:
        raise ValueError(f"resolution must be a multiple of {step} for this configuration, "
                         f"got {resolution}")
    return resolution


def named_config(table: dict, name, resolution, *args):
    """Look ``name`` up in ``table`` (name -> (native resolution, factory)) and call
    ``factory(resolution or the native one, *args)``; ValueError naming the known names."""
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"name must be one of {sorted(table)}, got {name!r}")
    native, factory = table[name]
    return factory(native if resolution is None else resolution, *args)
