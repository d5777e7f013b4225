"""What the trainer reads off a dataset: labels, class names, and how its inputs were made.

Datasets are plain map-style ``torch`` datasets of ``(input, label)``; slicevid's own add
``classes``, ``labels`` and an ``input_spec()``, and a ``torch.utils.data.Subset`` of any of
them is looked through. These helpers are the one place that fallback logic lives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Subset


def unwrap(dataset: Dataset) -> Dataset:
    """The dataset under any ``Subset`` wrappers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Integer labels of a dataset (its ``labels`` attribute, or by reading every sample)."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(labels, dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def class_names_for(
    num_classes: int, dataset: Dataset | None = None, given: Sequence[str] | None = None, fallback: Sequence[str] = ()
) -> tuple[str, ...]:
    """Class names: ``given``, else the dataset's ``classes``, else ``fallback``, else ``"0"``, ``"1"``, ...

    A candidate counts only when it has exactly ``num_classes`` names.
    """
    for names in (given, getattr(unwrap(dataset), "classes", None) if dataset is not None else None, fallback):
        if names is not None and len(names) == num_classes:
            return tuple(str(n) for n in names)
    return tuple(str(i) for i in range(num_classes))


def input_spec(dataset: Dataset) -> dict[str, Any]:
    """``input_size``, ``input_range`` and (for CT) ``preprocessing`` of a dataset's inputs, when known.

    slicevid's datasets describe themselves (``input_spec()``); for others, the first sample's
    shape gives the input size.
    """
    base = unwrap(dataset)
    describe = getattr(base, "input_spec", None)
    if callable(describe):
        return describe()
    if len(dataset) == 0:
        return {}
    sample = dataset[0][0]
    return {"input_size": tuple(int(s) for s in sample.shape[-3:])} if getattr(sample, "ndim", 0) == 4 else {}
