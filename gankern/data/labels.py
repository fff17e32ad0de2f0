"""Labels from ``dataset.json``, in the layout StyleGAN2-ADA's dataset tool writes.

The file holds ``{"labels": [["relative/name.png", label], ...]}`` (or ``"labels": null``
for an unlabeled dataset). A label is either a class index (a non-negative int, turned into
a one-hot vector of length ``max + 1``) or a list of numbers used as they are.
"""

from __future__ import annotations

import numbers

import numpy as np

from gankern.data.image_files import LABELS_FILE, ImageSource


def read_label_map(source: ImageSource) -> dict | None:
    """The labels of ``source``'s ``dataset.json`` as {name: label}, or None if it has none.

    Raises ValueError (naming the file) when the layout is wrong.
    """
    data = source.read_labels_json()
    if data is None:
        return None
    where = source.describe(LABELS_FILE)
    if "labels" not in data:
        raise ValueError(f'{where} must have a "labels" entry, got keys {sorted(data)}')
    entries = data["labels"]
    if entries is None:
        return None
    if isinstance(entries, dict):
        entries = list(entries.items())
    if not isinstance(entries, list):
        raise ValueError(f'{where}: "labels" must be a list of [name, label] pairs, '
                         f"got {type(entries).__name__}")
    label_map = {}
    for entry in entries:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(f'{where}: each "labels" entry must be [name, label], got {entry!r}')
        label_map[entry[0].replace("\\", "/")] = entry[1]
    return label_map


def _is_class_index(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(x, numbers.Real) and not isinstance(x, bool) for x in value)


def labels_to_array(label_map: dict, names: list[str], where: str) -> np.ndarray:
    """The labels of ``names`` in order: int64 [N] class indices or float32 [N, K] vectors.

    ``where`` names the labels file in messages. Every name needs a label, and all labels
    must be of one kind (all class indices, or all vectors of one length).
    """
    values = []
    for name in names:
        if name not in label_map:
            raise ValueError(f"{where} has no label for image {name!r}")
        values.append(label_map[name])
    for name, value in zip(names, values, strict=True):
        if not (_is_class_index(value) or _is_number_list(value)):
            raise ValueError(f"{where}: a label must be a class index (int >= 0) or a list of "
                             f"numbers, got {value!r} for {name!r}")
    if all(_is_class_index(v) for v in values):
        array = np.asarray(values, dtype=np.int64)
        if array.size and array.min() < 0:
            bad = names[int(np.argmin(array))]
            raise ValueError(f"{where}: class labels must be >= 0, got {array.min()} for {bad!r}")
        return array
    lengths = set()
    for name, value in zip(names, values, strict=True):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(x, numbers.Real) and not isinstance(x, bool) for x in value
        )
        if not ok:
            raise ValueError(
                f"{where}: labels must all be class indices (int >= 0) or all lists of "
                f"numbers, got {value!r} for {name!r}"
            )
        lengths.add(len(value))
    if len(lengths) != 1:
        raise ValueError(f"{where}: label vectors must all have the same length, "
                         f"got lengths {sorted(lengths)}")
    return np.asarray(values, dtype=np.float32).reshape(len(names), lengths.pop())


def one_hot(class_indices: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 [N, num_classes] with a 1 at each class index."""
    out = np.zeros((len(class_indices), num_classes), dtype=np.float32)
    out[np.arange(len(class_indices)), class_indices] = 1.0
    return out
