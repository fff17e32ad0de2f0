"""Read official StyleGAN2-ADA / StyleGAN3 network pickles without executing pickled code.

Those ``.pkl`` files hold the networks as "persistent" objects: each module is pickled as a
call ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta`` carries the
*source code* of the module that defined the class (``module_src``), the class name and the
module's state (its ``__dict__``: parameters, buffers, submodules, constructor arguments).
Unpickling them with :mod:`pickle` would execute that source code, and any pickle can call
any importable function. :func:`read_network_pickle` instead uses an unpickler whose
``find_class`` only resolves a fixed whitelist:

* tensor and storage rebuilding (``torch._utils._rebuild_tensor_v2``,
  ``_rebuild_parameter``; storages are read by ``torch.load(..., weights_only=True)``),
  ``torch.Size``, torch dtypes;
* ``collections.OrderedDict``, ``builtins`` set/frozenset/slice/complex;
* numpy scalar and array reconstruction (``numpy.dtype``, ``multiarray.scalar``,
  ``multiarray._reconstruct``, ``numpy.ndarray``);
* ``torch_utils.persistence._reconstruct_persistent_obj``, mapped to a function that only
  records the class name, source text (as an inert string, never executed) and state in a
  :class:`PickledModule`; ``dnnlib``'s ``EasyDict``, mapped to a plain dict.

Anything else (``os.system``, ``builtins.eval``, arbitrary classes) raises
:class:`UnsafePickleError` before it is resolved, so nothing outside the whitelist runs.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import torch


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle refers to a global outside the whitelist (it was not resolved or called)."""


class PickledEasyDict(dict):
    """Stand-in for ``dnnlib.EasyDict``: a dict that also allows attribute access."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


@dataclass
class PickledModule:
    """Inert record of one persistent network module of an official pickle.

    Attributes:
        class_name: the class name (``"Generator"``, ``"SynthesisLayer"``, ...).
        module_src: the pickled source text of the defining module (never executed; used
            only to recognize which code base wrote the pickle).
        init_args: positional constructor arguments.
        init_kwargs: keyword constructor arguments (nested dicts).
        parameters: the module's own parameters (name -> tensor; None entries dropped).
        buffers: the module's own buffers.
        children: the submodules (name -> PickledModule).
        attributes: the other plain attributes of the module (numbers, strings, ...).
    """

    class_name: str
    module_src: str
    init_args: tuple = ()
    init_kwargs: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    buffers: dict = field(default_factory=dict)
    children: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, PickledModule]]:
        """``(dotted path, module)`` for this module and all its descendants."""
        yield prefix, self
        for name, child in self.children.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All parameters and buffers under dotted names, like ``nn.Module.state_dict``."""
        out = {}
        for path, module in self.named_modules():
            for name, tensor in {**module.parameters, **module.buffers}.items():
                out[f"{path}.{name}" if path else name] = tensor.detach()
        return out


_MODULE_STATE_KEYS = {"_parameters", "_buffers", "_modules", "_init_args", "_init_kwargs"}


def _plain_tensor_dict(entries, what: str, class_name: str) -> dict[str, torch.Tensor]:
    out = {}
    for name, value in (entries or {}).items():
        if value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise pickle.UnpicklingError(
                f"{class_name}.{what}[{name!r}] is a {type(value).__name__}, expected a tensor"
            )
        out[name] = value
    return out


def _capture_persistent_obj(meta) -> PickledModule:
    """Replacement of ``_reconstruct_persistent_obj``: record the state, run nothing."""
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError(f"unsupported persistent object record: {type(meta).__name__}")
    class_name = str(meta.get("class_name"))
    state = meta.get("state") or {}
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"the state of {class_name} is not a dict")
    children = {}
    for name, child in (state.get("_modules") or {}).items():
        if child is None:
            continue
        if not isinstance(child, PickledModule):
            raise pickle.UnpicklingError(
                f"submodule {name!r} of {class_name} is a {type(child).__name__}, "
                "not a persistent network module"
            )
        children[name] = child
    return PickledModule(
        class_name=class_name,
        module_src=str(meta.get("module_src") or ""),
        init_args=tuple(state.get("_init_args") or ()),
        init_kwargs=dict(state.get("_init_kwargs") or {}),
        parameters=_plain_tensor_dict(state.get("_parameters"), "_parameters", class_name),
        buffers=_plain_tensor_dict(state.get("_buffers"), "_buffers", class_name),
        children=children,
        attributes={
            k: v for k, v in state.items() if k not in _MODULE_STATE_KEYS and not k.startswith("_")
        },
    )


def _load_storage_from_bytes(data: bytes):
    """Replacement of ``torch.storage._load_from_bytes``: a weights-only load on the CPU."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _whitelist() -> dict[tuple[str, str], Any]:
    multiarray = _numpy_multiarray()
    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _capture_persistent_obj,
        ("dnnlib.util", "EasyDict"): PickledEasyDict,
        ("dnnlib", "EasyDict"): PickledEasyDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch", "Size"): torch.Size,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "scalar")] = multiarray.scalar
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[("torch", name)] = getattr(torch, name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self._allowed = _whitelist()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name}: only the tensors and network state of "
                "StyleGAN2-ADA/StyleGAN3 pickles are read, no pickled code is run "
                "(see docs/pretrained.md)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"unexpected persistent id {pid!r} in a network pickle")


def read_network_pickle(file: str | os.PathLike | BinaryIO) -> dict:
    """Read an official network pickle (``network-snapshot-*.pkl``) into inert records.

    Args:
        file: a path or a binary file object.

    Returns:
        The pickled top-level dict: networks (``"G"``, ``"D"``, ``"G_ema"``,
        ``"augment_pipe"``) as :class:`PickledModule`, other entries as plain data.

    Raises:
        UnsafePickleError: the pickle refers to anything outside the whitelist (documented in
            the module docstring); nothing of it was executed.
        ValueError: the pickle's top level is not a dict.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return read_network_pickle(f)
    if not hasattr(file, "read"):
        raise TypeError(f"file must be a path or a binary file object, got {type(file).__name__}")
    data = _RestrictedUnpickler(file).load()
    if not isinstance(data, dict):
        raise ValueError(f"expected a network pickle holding a dict, got {type(data).__name__}")
    return data
