"""Weight regularizers computed from a module's parameters: :func:`ortho_penalty`."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from gankern.ops._checks import check_number


def _excluded_ids(exclude) -> set[int]:
    ids: set[int] = set()
    for item in exclude:
        if isinstance(item, nn.Module):
            ids.update(id(p) for p in item.parameters())
        elif isinstance(item, torch.Tensor):
            ids.add(id(item))
        else:
            raise TypeError(f"exclude must hold modules or parameters, got {type(item).__name__}")
    return ids


def ortho_penalty(
    module: nn.Module,
    beta: float = 1e-4,
    exclude: Iterable[nn.Module | torch.Tensor] = (),
) -> torch.Tensor:
    """BigGAN's orthogonal regularization: ``beta * sum_W ||W W^T * (1 - I)||_F^2``.

    Brock et al. 2019, eq. (3): every weight ``W`` of two or more dimensions, seen as a matrix
    ``[W.shape[0], -1]`` (one row per output unit), is pushed towards rows that are mutually
    orthogonal, without constraining their norms (the diagonal of ``W W^T`` is masked out).

    Args:
        module: the network (BigGAN applies it to G only).
        beta: the weight (the paper's 1e-4).
        exclude: modules or parameters left out. BigGAN leaves out the generator's shared
            class embedding (``exclude=[G.shared]``); parameters of fewer than two dimensions
            (biases, gains, ``gamma``) are always left out.

    Returns:
        A differentiable scalar tensor (0 when no weight qualifies).

    Spectrally normalized weights enter with their stored (unnormalized) value, the
    ``parametrizations.weight.original`` parameter, as BigGAN-PyTorch regularizes
    ``module.weight`` before its spectral normalization. Note that BigGAN-PyTorch's
    ``utils.ortho(model, strength)`` adds ``strength * 2 (W W^T * (1 - I)) W`` to the
    gradient, which is the gradient of ``ortho_penalty`` with ``beta = strength / 2``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    beta = check_number("beta", beta, min_value=0.0)
    skip = _excluded_ids(exclude)
    total = None
    for param in module.parameters():
        if param.ndim < 2 or id(param) in skip:
            continue
        w = param.reshape(param.shape[0], -1)
        gram = w @ w.t()
        off_diagonal = gram - torch.diag_embed(torch.diagonal(gram))
        term = off_diagonal.square().sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros([])
    return beta * total
