"""Single-label classification: the challenge's kappa and accuracy, per-class F1, and the clinical numbers.

All numbers come from scikit-learn (see `slicevid.metrics.clinical` for AUC, the rates at the
decision threshold, Brier score and calibration error); this module gathers them into one report
that prints as a table (the paper's Table 1 layout) and saves as JSON. It also holds the class
statistics both the data and the training side need (balanced class weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import torch

from ..errors import ConfigError, DataError
from .base import Report, cell
from .clinical import auc, brier, expected_calibration_error, rates


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """``n_samples / (n_classes * count)`` per class, as scikit-learn's ``"balanced"``.

    On the paper's training counts (335, 180, 81, 80, 56) this gives
    (0.437, 0.813, 1.807, 1.830, 2.614).

    Raises:
        ValueError: a class has no sample.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    if (counts == 0).any():
        empty = [int(i) for i in np.flatnonzero(counts == 0)]
        raise DataError(f"Cannot balance class weights: classes {empty} have no training samples")
    return torch.tensor(counts.sum() / (num_classes * counts), dtype=torch.float32)


@dataclass(frozen=True)
class ClassificationReport(Report):
    """Metrics of one set of predictions.

    Attributes:
        kappa: unweighted Cohen's kappa (the ImageCLEF TBT metric).
        accuracy: fraction of correct predictions.
        f1: per-class F1, in class order (0 for a class never predicted nor present).
        confusion: confusion matrix, rows = true class, columns = predicted class.
        support: number of true samples per class.
        class_names: names of the classes, in label order.
        sensitivity: true-positive rate at the decision (two classes: of the second class; more:
            the macro mean one-vs-rest); the rates are NaN where undefined.
        specificity: true-negative rate, likewise.
        ppv: positive predictive value (precision), likewise.
        npv: negative predictive value, likewise.
        balanced_accuracy: the mean recall over classes.
        auc: ROC AUC (two classes: of the second class's probability; more: macro one-vs-rest);
            ``None`` without probabilities, NaN when a class is absent.
        brier: Brier score of the probabilities (``None`` without them).
        ece: expected calibration error of the top probability, 10 bins (``None`` without them).
        threshold: the decision threshold on the second class's probability (two classes), if one
            was chosen; ``None``: the most probable class decides.
    """

    kappa: float
    accuracy: float
    f1: tuple[float, ...]
    confusion: tuple[tuple[int, ...], ...]
    support: tuple[int, ...]
    class_names: tuple[str, ...]
    sensitivity: float = np.nan
    specificity: float = np.nan
    ppv: float = np.nan
    npv: float = np.nan
    balanced_accuracy: float = np.nan
    auc: float | None = None
    brier: float | None = None
    ece: float | None = None
    threshold: float | None = None
    HIGHER_IS_BETTER: ClassVar[dict[str, bool]] = {
        "kappa": True,
        "accuracy": True,
        "macro_f1": True,
        "auc": True,
        "sensitivity": True,
        "specificity": True,
        "ppv": True,
        "npv": True,
        "balanced_accuracy": True,
        "brier": False,
        "ece": False,
    }

    @property
    def num_samples(self) -> int:
        return int(sum(self.support))

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1))

    def metrics(self) -> dict[str, float]:
        values = {
            "kappa": self.kappa,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "balanced_accuracy": self.balanced_accuracy,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "npv": self.npv,
        }
        scored = {"auc": self.auc, "brier": self.brier, "ece": self.ece}
        return {**values, **{k: v for k, v in scored.items() if v is not None}}

    def to_dict(self) -> dict:
        return {**asdict(self), "f1_by_class": dict(zip(self.class_names, self.f1, strict=True))}

    def to_markdown(self, name: str = "model") -> str:
        """The paper's layout (kappa, accuracy, F1 per class), then a row of the clinical numbers."""
        table = format_table({name: self}, self.class_names)
        clinical = {k: v for k, v in self.metrics().items() if k not in ("kappa", "accuracy", "macro_f1")}
        at = f" (threshold {self.threshold:.3f})" if self.threshold is not None else ""
        header = " | ".join(k.replace("_", " ") for k in clinical)
        row = " | ".join(cell(v) for v in clinical.values())
        return f"{table}\n\n| method | {header} |\n|{'---|' * (len(clinical) + 1)}\n| {name}{at} | {row} |"


def classification_report(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
    num_classes: int | None = None,
    *,
    probabilities: np.ndarray | None = None,
    threshold: float | None = None,
) -> ClassificationReport:
    """Kappa, accuracy, per-class F1, the rates at the decision, and (given probabilities) AUC and calibration.

    Args:
        y_true: true class indices.
        y_pred: predicted class indices.
        class_names: names in label order; defaults to ``"0"``, ``"1"``, ...
        num_classes: number of classes (defaults to ``len(class_names)`` or the largest label + 1).
        probabilities: ``(N, classes)`` predicted probabilities, for AUC, Brier score and ECE.
        threshold: the decision threshold ``y_pred`` was made with (recorded in the report).
    """
    from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ConfigError(
            "y_true and y_pred", f"must be equal-length 1D sequences, got {y_true.shape} and {y_pred.shape}"
        )
    if num_classes is None:
        num_classes = len(class_names) if class_names else int(max(y_true.max(), y_pred.max())) + 1
    names = tuple(class_names) if class_names else tuple(str(i) for i in range(num_classes))
    labels = np.arange(num_classes)
    # kappa is undefined (0/0) when both raters use one class only; report 0 agreement beyond chance.
    single = len(np.union1d(y_true, y_pred)) == 1
    kappa = 0.0 if single else float(cohen_kappa_score(y_true, y_pred, labels=labels))
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    scored = {}
    if probabilities is not None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.shape != (len(y_true), num_classes):
            raise ConfigError("probabilities", f"must be ({len(y_true)}, {num_classes}), got {probabilities.shape}")
        finite = bool(np.isfinite(probabilities).all())  # a diverged model's NaN: undefined, not an error here
        scored = {
            "auc": auc(y_true, probabilities) if finite else np.nan,
            "brier": brier(y_true, probabilities) if finite else np.nan,
            "ece": expected_calibration_error(y_true, probabilities) if finite else np.nan,
        }
    return ClassificationReport(
        kappa=kappa,
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1=tuple(float(f) for f in f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        support=tuple(int(v) for v in np.bincount(y_true, minlength=num_classes)[:num_classes]),
        class_names=names,
        threshold=threshold,
        **rates(confusion),
        **scored,
    )


def format_table(
    reports: Mapping[str, ClassificationReport | None],
    class_names: Sequence[str],
    reference: Mapping[str, Mapping[str, float | None]] | None = None,
) -> str:
    """A Markdown table with one row per method: kappa, accuracy and F1 per class.

    ``reports`` values may be ``None`` for methods not run (shown as "not run"). With
    ``reference`` (method -> {"kappa": ..., class name: F1}), the paper's value is shown
    beside each measured one as ``ours (paper)``.
    """
    header = ["method", "kappa", "accuracy", *[f"F1 {name}" for name in class_names]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, report in reports.items():
        paper = (reference or {}).get(method, {})
        if report is None:
            cells = ["not run"] * (len(header) - 1)
        else:
            values = {
                "kappa": report.kappa,
                "accuracy": report.accuracy,
                **dict(zip(class_names, report.f1, strict=True)),
            }
            cells = [_cell(values[key], paper.get(key), key in paper) for key in ["kappa", "accuracy", *class_names]]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines)


def _cell(ours: float, paper: float | None, has_reference: bool) -> str:
    if not has_reference:
        return f"{ours:.2f}"
    return f"{ours:.2f} ({'n/a' if paper is None else f'{paper:.2f}'})"
