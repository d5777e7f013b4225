"""Several trained models as one: a cross-validation run's fold models, their probabilities averaged.

``slicevid cv`` leaves one model per fold (``fold-<k>/best``). `FoldEnsemble` loads them all and
predicts with their mean: each fold's own temperature turns its logits into probabilities, the
probabilities are averaged, and the ensemble's decision thresholds are the mean of the folds'
(each chosen on its own validation scans). It returns logits whose activation gives the
averaged probabilities, so everything that predicts with one model predicts with the ensemble.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from torch import Tensor, nn

from .errors import CheckpointError
from .model import SliceSequenceClassifier
from .model_config import ModelConfig, Provenance
from .outputs import Outputs
from .tasks import Multiclass, Multilabel, Task

FOLD_PATTERN = "fold-*"
"""The fold folders of a cross-validation run (``fold-0``, ``fold-1`` ...)."""


def is_cv_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the folder of a cross-validation run (fold folders with a ``best/`` model)."""
    path = Path(path)
    return path.is_dir() and any((fold / "best").is_dir() for fold in path.glob(FOLD_PATTERN))


def average_tasks(fold_tasks: Sequence[dict[str, Task]]) -> dict[str, Task]:
    """The ensemble's tasks: the folds' names, the mean of their thresholds, no temperature (applied per fold).

    Raises:
        CheckpointError: folds whose tasks differ (other heads, classes or labels).
    """
    first = fold_tasks[0]
    described = [{name: (task.kind, task.names) for name, task in tasks.items()} for tasks in fold_tasks]
    if any(d != described[0] for d in described[1:]):
        raise CheckpointError(f"the fold models predict different things: {described}")
    averaged = {}
    for name, task in first.items():
        if isinstance(task, Multiclass):
            cuts = [tasks[name].threshold for tasks in fold_tasks]
            threshold = None if any(c is None for c in cuts) else float(np.mean(cuts))
            task = replace(task, threshold=threshold, temperature=None)
        elif isinstance(task, Multilabel):
            rows = [tasks[name].decision_thresholds for tasks in fold_tasks]
            task = task.with_thresholds(np.mean(rows, axis=0).tolist())
        averaged[name] = task
    return averaged


class FoldEnsemble(nn.Module):
    """The mean prediction of several models of one task set (a cross-validation run's folds).

    Args:
        models: the fold models (slicevid models).

    Attributes:
        config: the first fold's description, with the averaged tasks and no training data.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if not models:
            raise CheckpointError("an ensemble needs at least one model")
        self.models = nn.ModuleList(models)
        configs: list[ModelConfig] = [model.config for model in models]
        self.fold_tasks = [dict(config.tasks) for config in configs]
        self.config = configs[0].replace(
            heads=replace(configs[0].heads, tasks=average_tasks(self.fold_tasks)), provenance=Provenance()
        )

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, **load: object) -> FoldEnsemble:
        """The fold models of a cross-validation run's folder (``fold-<k>/best``), in fold order.

        Args:
            folder: the ``slicevid cv --out`` folder.
            **load: `SliceSequenceClassifier.from_pretrained` keywords (``execution=``).

        Raises:
            CheckpointError: no fold model in the folder.
        """
        folds = sorted(Path(folder).glob(FOLD_PATTERN), key=lambda p: int(p.name.rsplit("-", 1)[-1]))
        best = [fold / "best" for fold in folds if (fold / "best").is_dir()]
        if not best:
            raise CheckpointError(f"{folder}: no fold-<k>/best model; expected the folder of a slicevid cv run")
        return cls([SliceSequenceClassifier.from_pretrained(path, **load) for path in best])

    def forward_outputs(self, volumes: Tensor, lengths: Tensor | None = None) -> Outputs:
        """Each task's logits of the averaged probabilities."""
        totals: dict[str, Tensor] = {}
        for model, tasks in zip(self.models, self.fold_tasks, strict=True):
            logits = model.forward_outputs(volumes, lengths).tasks
            for name, task in tasks.items():
                totals[name] = totals.get(name, 0) + task.activate(logits[name])
        return Outputs(
            {name: task.inverse_activate(totals[name] / len(self.models)) for name, task in self.config.tasks.items()}
        )

    def forward(self, volumes: Tensor, lengths: Tensor | None = None) -> Outputs:
        return self.forward_outputs(volumes, lengths)
