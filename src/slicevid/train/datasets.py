"""What the trainer reads off a dataset: targets, class names, and how its inputs were made.

Datasets are plain map-style ``torch`` datasets of ``(input, target)``: the target is a class
index for a one-head classifier, or a dict from task name to value (and ``"slices"``) for
anything else. slicevid's own datasets add ``classes``, ``labels`` or ``targets`` (every
sample's targets at once), ``input_spec()`` and ``data_spec()``; a ``torch.utils.data.Subset``
of any of them is looked through. These helpers are the one place that fallback logic lives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..errors import DataError


def unwrap(dataset: Dataset) -> Dataset:
    """The dataset under any ``Subset`` wrappers."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    return dataset


def _subset_indices(dataset: Dataset) -> np.ndarray | None:
    """Indices into the innermost dataset, when ``dataset`` is a (nested) ``Subset``."""
    indices = None
    while isinstance(dataset, Subset):
        inner = np.asarray(dataset.indices)
        indices = inner if indices is None else inner[indices]
        dataset = dataset.dataset
    return indices


def dataset_targets(dataset: Dataset, task_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Every sample's target per task (``targets``/``labels`` attributes, or by reading every sample)."""
    base, indices = unwrap(dataset), _subset_indices(dataset)
    stored = getattr(base, "targets", None)
    if isinstance(stored, Mapping):
        values = {name: np.asarray(stored[name]) for name in task_names if name in stored}
    elif getattr(base, "labels", None) is not None and len(task_names) == 1:
        values = {task_names[0]: np.asarray(base.labels)}
    else:
        return _read_targets(dataset, task_names)
    if set(values) != set(task_names):
        raise DataError(f"the data's targets {sorted(values)} do not match the model's tasks {sorted(task_names)}")
    return {name: array if indices is None else array[indices] for name, array in values.items()}


def _read_targets(dataset: Dataset, task_names: Sequence[str]) -> dict[str, np.ndarray]:
    rows = [dataset[i][1] for i in range(len(dataset))]
    if rows and isinstance(rows[0], Mapping):
        return {name: np.stack([np.asarray(row[name]) for row in rows]) for name in task_names}
    return {task_names[0]: np.asarray([np.asarray(row) for row in rows])}


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


def first_input(dataset: Dataset) -> torch.Tensor:
    """The first sample's input."""
    if len(dataset) == 0:
        raise DataError("Cannot train on an empty dataset (no samples in the training split)")
    return torch.as_tensor(dataset[0][0])


def input_spec(dataset: Dataset) -> dict[str, Any]:
    """``input_size``, ``input_range`` and (for CT) ``preprocessing`` of a dataset's inputs, when known.

    slicevid's datasets describe themselves (``input_spec()``); for others, the first sample's
    shape gives the input size.
    """
    describe = getattr(unwrap(dataset), "input_spec", None)
    if callable(describe):
        return describe()
    if len(dataset) == 0:
        return {}
    sample = dataset[0][0]
    return {"input_size": tuple(int(s) for s in sample.shape[-3:])} if getattr(sample, "ndim", 0) == 4 else {}


def data_spec(train: Dataset, val: Dataset | None):
    """The `TrainingData` of a training and a validation set."""
    from ..data.provenance import TrainingData

    describe = getattr(unwrap(train), "data_spec", None)
    spec = describe() if callable(describe) and not isinstance(train, Subset) else TrainingData()
    val_ids = getattr(unwrap(val), "file_ids", None) if val is not None and not isinstance(val, Subset) else None
    return replace(spec, train_count=len(train), val_ids=tuple(val_ids or ()))
