"""Turning nested state dicts into (tensors, JSON) and back, exactly.

Module, optimizer, augmentation and penalty states are nested dicts/lists of tensors,
numbers, strings and None. :func:`encode_state` moves every tensor into a flat
``{name: tensor}`` dict (names are the path in the structure) and returns a JSON-able
skeleton that remembers everything else, including what JSON alone would lose: integer
dict keys (optimizer states are keyed by parameter index), tuples, and non-finite floats.
:func:`decode_state` rebuilds the original structure. Both are pure data transforms, so a
checkpoint never needs pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

_SCALARS = (bool, int, str, type(None))


def encode_state(obj, prefix: str, tensors: dict[str, torch.Tensor]):
    """Encode ``obj``; its tensors are added to ``tensors`` under names starting with ``prefix``."""
    if isinstance(obj, torch.Tensor):
        if prefix in tensors:
            raise ValueError(f"duplicate tensor name {prefix!r} in checkpoint state")
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"state keys must be str or int, got {key!r} under {prefix!r}")
            items.append([key, encode_state(value, f"{prefix}/{key}", tensors)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        kind = "__tuple__" if isinstance(obj, tuple) else "__list__"
        return {kind: [encode_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, _SCALARS):
        return obj
    raise TypeError(
        f"cannot store a {type(obj).__name__} under {prefix!r} in a checkpoint "
        "(expected tensors, dicts, lists, tuples, numbers, strings or None)"
    )


def decode_state(skeleton, tensors: Mapping[str, torch.Tensor]):
    """Inverse of :func:`encode_state`."""
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            name = skeleton["__tensor__"]
            if name not in tensors:
                raise KeyError(f"checkpoint is missing tensor {name!r}")
            return tensors[name]
        if "__dict__" in skeleton:
            return {key: decode_state(value, tensors) for key, value in skeleton["__dict__"]}
        if "__list__" in skeleton:
            return [decode_state(v, tensors) for v in skeleton["__list__"]]
        if "__tuple__" in skeleton:
            return tuple(decode_state(v, tensors) for v in skeleton["__tuple__"])
        if "__float__" in skeleton:
            return float(skeleton["__float__"])
        raise ValueError(f"unrecognized checkpoint state entry: {sorted(skeleton)}")
    if isinstance(skeleton, list):
        raise ValueError("unrecognized checkpoint state entry: a bare list")
    return skeleton
