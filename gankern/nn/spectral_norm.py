"""Spectral normalization (Miyato et al. 2018) of layer weights: :func:`spectral_norm` and
:func:`apply_spectral_norm`.

Both wrap :func:`torch.nn.utils.parametrizations.spectral_norm`: the stored parameter becomes
``module.parametrizations.weight.original`` and ``module.weight`` is recomputed as
``W / sigma(W)`` on access, where ``sigma`` is the largest singular value of the weight seen
as a matrix ``[out, -1]`` (for a ``ConvTranspose`` the output channels are dim 1 of the
weight, and torch moves them first), estimated by power iteration. The singular-vector
estimates ``u`` and ``v`` are buffers, so they live in the ``state_dict``. Each forward pass
in training mode runs ``n_power_iterations`` further iterations, warm-started from the stored
vectors; in eval mode the stored vectors are used as they are.

Defaults are those of SNGAN and BigGAN: one power iteration per forward pass (Miyato et al.'s
``Ip=1`` in pfnet-research/sngan_projection, BigGAN-PyTorch's ``num_G_SV_itrs`` /
``num_D_SV_itrs`` = 1) and ``eps = 1e-12`` in the vector normalization (sngan_projection's
``_l2normalize`` and BigGAN-PyTorch's ``power_iteration`` default; BigGAN-PyTorch's training
script passes ``--SN_eps 1e-8``, give ``eps=1e-8`` to follow it).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrizations, parametrize

from gankern.ops._checks import check_int, check_number

# The layer types that carry a weight matrix to normalize (Miyato et al.: every layer of D).
SPECTRAL_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.Embedding,
)


def _check_sn_args(n_power_iterations, eps) -> tuple[int, float]:
    n_power_iterations = check_int("n_power_iterations", n_power_iterations, min_value=1)
    eps = check_number("eps", eps)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return n_power_iterations, eps


def has_spectral_norm(module: nn.Module, name: str = "weight") -> bool:
    """True when ``module.<name>`` is already spectrally normalized by a parametrization."""
    if not parametrize.is_parametrized(module, name):
        return False
    return any(type(p).__name__ == "_SpectralNorm" for p in module.parametrizations[name])


def spectral_norm(
    module: nn.Module,
    *,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    name: str = "weight",
) -> nn.Module:
    """Spectrally normalize ``module.<name>`` in place and return ``module``.

    Args:
        module: a layer with a weight parameter (``Conv*``, ``ConvTranspose*``, ``Linear``,
            ``Embedding``, or any module with a parameter called ``name`` of 2+ dimensions).
        n_power_iterations: power iterations per forward pass in training mode (default 1,
            as SNGAN and BigGAN).
        eps: added safety in the normalization of the singular-vector estimates (default
            1e-12, as SNGAN).
        name: the parameter to normalize (default ``"weight"``).

    Initialize the weight *before* calling this: torch runs 15 power iterations on the
    weight it finds at registration, and the stored parameter moves to
    ``module.parametrizations.<name>.original``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    n_power_iterations, eps = _check_sn_args(n_power_iterations, eps)
    if has_spectral_norm(module, name):
        raise ValueError(f"{type(module).__name__}.{name} is already spectrally normalized")
    param = getattr(module, name, None)
    if not isinstance(param, nn.Parameter) or param.ndim < 2:
        raise ValueError(
            f"module must have a parameter {name!r} with at least 2 dimensions, got "
            f"{type(module).__name__} with {name}="
            f"{None if param is None else tuple(param.shape)}"
        )
    parametrizations.spectral_norm(
        module, name=name, n_power_iterations=n_power_iterations, eps=eps
    )
    return module


def apply_spectral_norm(
    module: nn.Module,
    *,
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    types: tuple[type[nn.Module], ...] = SPECTRAL_NORM_TYPES,
) -> nn.Module:
    """Spectrally normalize the weight of every layer of ``types`` inside ``module``.

    Args:
        module: the network (itself included in the search).
        n_power_iterations: power iterations per forward pass (default 1).
        eps: see :func:`spectral_norm` (default 1e-12).
        types: the layer types to normalize (default :data:`SPECTRAL_NORM_TYPES`: every
            convolution, transposed convolution, ``Linear`` and ``Embedding``, as SNGAN's
            discriminator); subclasses count.

    Layers already normalized are left as they are, so applying twice changes nothing.
    Returns ``module``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(types, tuple) or not all(isinstance(t, type) for t in types):
        raise TypeError(f"types must be a tuple of classes, got {types!r}")
    n_power_iterations, eps = _check_sn_args(n_power_iterations, eps)
    for sub in list(module.modules()):
        if isinstance(sub, types) and not has_spectral_norm(sub):
            spectral_norm(sub, n_power_iterations=n_power_iterations, eps=eps)
    return module
