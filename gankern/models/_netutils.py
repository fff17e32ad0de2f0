"""Input and config checks shared by the classic GAN model files (gan, dcgan, sngan)."""

from __future__ import annotations

import numbers

import torch

from gankern.nn import check_labels
from gankern.ops._checks import check_tensor


def check_int_field(name: str, value, min_value: int) -> int:
    """A config field that must be an int >= ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return int(value)


def check_power_of_two(name: str, value, min_value: int) -> int:
    value = check_int_field(name, value, min_value)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {min_value}, got {value}")
    return value


def check_float_field(
    name: str, value, min_value: float | None = None, max_value: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if (min_value is not None and value < min_value) or (
        max_value is not None and value > max_value
    ):
        raise ValueError(f"{name} must be in [{min_value}, {max_value}], got {value}")
    return float(value)


def int_tuple_field(name: str, value, min_len: int = 1) -> tuple[int, ...]:
    """A list or tuple of positive ints (JSON turns tuples into lists: accept both)."""
    if not isinstance(value, (list, tuple)) or len(value) < min_len:
        raise TypeError(f"{name} must be a list of at least {min_len} ints, got {value!r}")
    return tuple(check_int_field(f"{name}[{i}]", v, 1) for i, v in enumerate(value))


def set_field(config, name: str, value) -> None:
    """Normalize a field of a frozen dataclass in ``__post_init__``."""
    object.__setattr__(config, name, value)


def check_generator_inputs(
    z: torch.Tensor, c: torch.Tensor | None, z_dim: int, c_dim: int
) -> torch.Tensor | None:
    """Check ``z`` ``[N, z_dim]`` and the labels; return ``c`` (None when unconditional)."""
    check_tensor("z", z, ndim=2)
    if z.shape[1] != z_dim:
        raise ValueError(f"z must have shape [N, {z_dim}], got {tuple(z.shape)}")
    return _check_c(c, c_dim, z.shape[0])


def check_discriminator_inputs(
    img: torch.Tensor,
    c: torch.Tensor | None,
    img_channels: int,
    img_resolution: int,
    c_dim: int,
) -> torch.Tensor | None:
    """Check ``img`` ``[N, C, R, R]`` and the labels; return ``c`` (None when unconditional)."""
    check_tensor("img", img, ndim=4)
    expected = (img_channels, img_resolution, img_resolution)
    if tuple(img.shape[1:]) != expected:
        raise ValueError(
            f"img must have shape [N, {img_channels}, {img_resolution}, {img_resolution}], "
            f"got {tuple(img.shape)}"
        )
    return _check_c(c, c_dim, img.shape[0])


def _check_c(c, c_dim: int, batch: int) -> torch.Tensor | None:
    if c_dim == 0:
        # Unconditional networks accept and ignore c (None or [N, 0]).
        return None
    if c is None:
        raise ValueError(f"c must be given: the network is conditional (c_dim = {c_dim})")
    return check_labels(c, c_dim, batch)


def one_hot_labels(c: torch.Tensor, c_dim: int, dtype: torch.dtype) -> torch.Tensor:
    """Float labels ``[N, c_dim]``: integer class indices become one-hot rows."""
    if c.is_floating_point():
        return c.to(dtype)
    return torch.nn.functional.one_hot(c.long(), c_dim).to(dtype)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of trainable parameter elements of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
