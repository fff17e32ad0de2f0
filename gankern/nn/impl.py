"""Switch the backend of every gankern layer in a model: :func:`set_impl`."""

from __future__ import annotations

from torch import nn

from gankern.ops._backend import IMPLS


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Set ``impl`` on ``module`` and each of its submodules that has an ``impl`` attribute.

    gankern layers pass their ``impl`` to the ops they call: ``"auto"`` (fastest available),
    ``"cuda"``, ``"triton"`` or ``"ref"``. Returns ``module``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    for sub in module.modules():
        if hasattr(sub, "impl") and isinstance(sub.impl, str):
            sub.impl = impl
    return module
