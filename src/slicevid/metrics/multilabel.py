"""Several binary labels per scan (findings): per-label AUC, mean and min AUC, F1 at chosen thresholds.

The ImageCLEF CT-report task scored exactly this: the mean and the minimum over the findings of
the area under the ROC curve. AUC is undefined for a label with only one class among the
targets; such a label is reported as ``None`` and left out of the mean and the minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError
from .base import Report, cell


@dataclass(frozen=True)
class MultilabelReport(Report):
    """Metrics of multi-label predictions.

    Attributes:
        labels: label names, in output order.
        auc: per-label ROC AUC (``None`` where the targets hold one class only).
        mean_auc: mean of the defined AUCs.
        min_auc: smallest defined AUC.
        f1: per-label F1 of the decisions at ``thresholds``.
        thresholds: per-label decision thresholds on the probability.
        support: positives per label among the samples that have that label.
        counted: samples with a known value, per label (missing labels are not counted).
    """

    labels: tuple[str, ...]
    auc: tuple[float | None, ...]
    mean_auc: float | None
    min_auc: float | None
    f1: tuple[float, ...]
    thresholds: tuple[float, ...]
    support: tuple[int, ...]
    counted: tuple[int, ...]

    HIGHER_IS_BETTER: ClassVar[dict[str, bool]] = {"mean_auc": True, "min_auc": True, "macro_f1": True}

    @property
    def num_samples(self) -> int:
        return max(self.counted, default=0)

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1))

    def metrics(self) -> dict[str, float]:
        return {
            "mean_auc": np.nan if self.mean_auc is None else self.mean_auc,
            "min_auc": np.nan if self.min_auc is None else self.min_auc,
            "macro_f1": self.macro_f1,
        }

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self, name: str = "model") -> str:
        header = ["method", "mean AUC", "min AUC", "macro F1", *[f"AUC {label}" for label in self.labels]]
        row = [name, cell(self.mean_auc), cell(self.min_auc), f"{self.macro_f1:.2f}", *map(cell, self.auc)]
        return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(row) + " |"])


def multilabel_report(
    targets: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: Sequence[float] | None = None,
) -> MultilabelReport:
    """Per-label AUC and F1 for ``(N, L)`` targets (0/1, NaN for missing) and probabilities.

    Args:
        targets: true values; NaN marks a missing label, which is left out of that label's metrics.
        probabilities: predicted probability of each label.
        labels: the label names.
        thresholds: decision threshold per label (0.5 each by default).
    """
    from sklearn.metrics import f1_score, roc_auc_score

    targets, probabilities = np.asarray(targets, dtype=np.float64), np.asarray(probabilities, dtype=np.float64)
    if targets.shape != probabilities.shape or targets.ndim != 2 or targets.shape[1] != len(labels):
        raise ConfigError("targets, probabilities", f"must both be (N, {len(labels)}), got {targets.shape}")
    thresholds = tuple(float(t) for t in (thresholds if thresholds is not None else [0.5] * len(labels)))
    aucs, f1s, support, counted = [], [], [], []
    for k in range(len(labels)):
        known = ~np.isnan(targets[:, k])
        truth, score = targets[known, k].astype(int), probabilities[known, k]
        aucs.append(float(roc_auc_score(truth, score)) if len(np.unique(truth)) == 2 else None)
        f1s.append(float(f1_score(truth, score >= thresholds[k], zero_division=0)) if known.any() else 0.0)
        support.append(int(truth.sum()))
        counted.append(int(known.sum()))
    defined = [a for a in aucs if a is not None]
    return MultilabelReport(
        labels=tuple(labels),
        auc=tuple(aucs),
        mean_auc=float(np.mean(defined)) if defined else None,
        min_auc=float(np.min(defined)) if defined else None,
        f1=tuple(f1s),
        thresholds=thresholds,
        support=tuple(support),
        counted=tuple(counted),
    )


def best_f1_thresholds(targets: np.ndarray, probabilities: np.ndarray) -> tuple[float, ...]:
    """Per label, the probability threshold that maximises F1 on these (validation) predictions.

    Candidates are the midpoints between consecutive distinct probabilities; a label without
    both classes among the known targets keeps 0.5.
    """
    from sklearn.metrics import precision_recall_curve

    chosen = []
    for k in range(targets.shape[1]):
        known = ~np.isnan(targets[:, k])
        truth, score = targets[known, k].astype(int), probabilities[known, k]
        if len(np.unique(truth)) < 2:
            chosen.append(0.5)
            continue
        precision, recall, cut = precision_recall_curve(truth, score)
        f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
        chosen.append(float(cut[int(np.argmax(f1))]))
    return tuple(chosen)
