"""Ordered levels (severity low < medium < high): quadratic-weighted kappa, accuracy, mean absolute error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from .base import Report


@dataclass(frozen=True)
class OrdinalReport(Report):
    """Metrics of predicted levels.

    Attributes:
        levels: level names, lowest first.
        qwk: Cohen's kappa with quadratic weights (disagreeing by two levels costs four times one).
        accuracy: fraction of exact levels.
        mae: mean absolute error in levels.
        confusion: rows = true level, columns = predicted level.
    """

    levels: tuple[str, ...]
    qwk: float
    accuracy: float
    mae: float
    confusion: tuple[tuple[int, ...], ...]

    HIGHER_IS_BETTER: ClassVar[dict[str, bool]] = {"qwk": True, "accuracy": True, "mae": False}

    @property
    def num_samples(self) -> int:
        return int(sum(map(sum, self.confusion)))

    def metrics(self) -> dict[str, float]:
        return {"qwk": self.qwk, "accuracy": self.accuracy, "mae": self.mae}

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self, name: str = "model") -> str:
        return (
            "| method | QWK | accuracy | MAE (levels) |\n|---|---|---|---|\n"
            f"| {name} | {self.qwk:.2f} | {self.accuracy:.2f} | {self.mae:.2f} |"
        )


def ordinal_report(targets: np.ndarray, predicted: np.ndarray, levels: Sequence[str]) -> OrdinalReport:
    """Quadratic-weighted kappa, accuracy and MAE of level indices; targets of -1 (missing) are left out."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    targets, predicted = np.asarray(targets, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    known = targets >= 0
    targets, predicted = targets[known], predicted[known]
    indices = np.arange(len(levels))
    single = len(np.union1d(targets, predicted)) <= 1
    qwk = 0.0 if single else float(cohen_kappa_score(targets, predicted, labels=indices, weights="quadratic"))
    return OrdinalReport(
        levels=tuple(levels),
        qwk=qwk,
        accuracy=float((targets == predicted).mean()) if len(targets) else 0.0,
        mae=float(np.abs(targets - predicted).mean()) if len(targets) else 0.0,
        confusion=tuple(tuple(int(v) for v in row) for row in confusion_matrix(targets, predicted, labels=indices)),
    )
