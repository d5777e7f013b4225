"""The numbers a clinical paper reports beside kappa and accuracy: AUC, the four rates, balanced accuracy,
Brier score, calibration error, and the choice of a decision threshold.

A binary classifier's positive class is its second class (index 1: "mass", "malignant"); its
rates are read at the decision threshold on that class's probability. A multi-class
classifier's are macro averages over the classes, each taken one-vs-rest, and its AUC is
scikit-learn's macro one-vs-rest AUC. Counts come from the confusion matrix; AUC and the
threshold choice from scikit-learn's ROC curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._registry import check_choice
from ..errors import ConfigError

CALIBRATION_BINS = 10
"""Equal-width confidence bins of the expected calibration error."""
THRESHOLD_RULES = ("youden", "sensitivity", "argmax")
"""How a binary classifier's decision threshold is chosen on validation predictions."""


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ``numerator / denominator``, NaN where the denominator is 0 (the rate is undefined)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def rates(confusion: Sequence[Sequence[int]]) -> dict[str, float]:
    """Sensitivity, specificity, PPV, NPV and balanced accuracy from a confusion matrix (rows = truth).

    Two classes: the rates of the positive class (index 1). More: the mean over classes, each one-vs-rest.
    A rate whose denominator is empty (no positive scan, no positive decision) is NaN.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    total = matrix.sum()
    tp = np.diag(matrix)
    fn, fp = matrix.sum(axis=1) - tp, matrix.sum(axis=0) - tp
    tn = total - tp - fn - fp
    per_class = {
        "sensitivity": _ratio(tp, tp + fn),
        "specificity": _ratio(tn, tn + fp),
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
    }
    if len(matrix) == 2:
        values = {name: float(rate[1]) for name, rate in per_class.items()}
    else:
        values = {
            name: float(np.nanmean(rate)) if np.isfinite(rate).any() else np.nan for name, rate in per_class.items()
        }
    recall = per_class["sensitivity"]
    values["balanced_accuracy"] = float(np.nanmean(recall)) if np.isfinite(recall).any() else np.nan
    return values


def auc(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC: of the positive class for two classes, macro one-vs-rest for more; NaN when a class is absent."""
    from sklearn.metrics import roc_auc_score

    targets, probabilities = np.asarray(targets), np.asarray(probabilities, dtype=np.float64)
    classes = probabilities.shape[1]
    if len(np.unique(targets)) < classes:
        return np.nan  # undefined: some class has no scan to rank
    if classes == 2:
        return float(roc_auc_score(targets, probabilities[:, 1]))
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    return float(roc_auc_score(targets, normalised, multi_class="ovr", average="macro", labels=np.arange(classes)))


def brier(targets: np.ndarray, probabilities: np.ndarray) -> float:
    """Brier score: ``mean((p_positive - y)^2)`` for two classes, ``mean(sum_k (p_k - [y = k])^2)`` for more."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    onehot = np.eye(probabilities.shape[1])[np.asarray(targets)]
    if probabilities.shape[1] == 2:
        return float(np.mean((probabilities[:, 1] - onehot[:, 1]) ** 2))
    return float(np.mean(((probabilities - onehot) ** 2).sum(axis=1)))


def expected_calibration_error(targets: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    """Top-label ECE: over equal-width bins of the top probability, the scan-weighted gap between
    the mean top probability and the accuracy of the top class (Guo et al., 2017)."""
    confidence, accuracy, counts = reliability_curve(targets, probabilities, bins)
    return float(np.sum(counts / counts.sum() * np.abs(confidence - accuracy)))


def reliability_curve(
    targets: np.ndarray, probabilities: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin of the top probability: its mean confidence, its accuracy and its scan count."""
    confidence, correct = _top_label(targets, probabilities)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    kept = [b for b in range(bins) if (which == b).any()]
    return (
        np.array([confidence[which == b].mean() for b in kept]),
        np.array([correct[which == b].mean() for b in kept]),
        np.array([(which == b).sum() for b in kept]),
    )


def _top_label(targets: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities.max(axis=1), (probabilities.argmax(axis=1) == np.asarray(targets)).astype(np.float64)


def choose_threshold(
    targets: np.ndarray, positive: np.ndarray, rule: str = "youden", target_sensitivity: float = 0.9
) -> float | None:
    """A decision threshold on the positive class's probability, chosen on (validation) predictions.

    Args:
        targets: 0/1 truth.
        positive: the positive class's probability.
        rule: ``"youden"`` (the cut that maximises sensitivity + specificity - 1), ``"sensitivity"``
            (the highest cut that reaches ``target_sensitivity``) or ``"argmax"`` (no threshold:
            the larger probability decides, i.e. 0.5).
        target_sensitivity: the sensitivity the ``"sensitivity"`` rule must reach, in (0, 1].

    Returns:
        The threshold (decide positive when ``probability >= threshold``), or ``None`` for
        ``"argmax"`` and when the targets hold one class only.
    """
    from sklearn.metrics import roc_curve

    rule = check_choice("threshold", rule, THRESHOLD_RULES)
    if not 0 < target_sensitivity <= 1:
        raise ConfigError("target_sensitivity", f"must lie in (0, 1], got {target_sensitivity}")
    targets = np.asarray(targets)
    if rule == "argmax" or len(np.unique(targets)) < 2:
        return None
    fpr, tpr, cuts = roc_curve(targets, np.asarray(positive, dtype=np.float64))
    finite = np.isfinite(cuts)  # the first cut is +inf: nothing positive
    fpr, tpr, cuts = fpr[finite], tpr[finite], cuts[finite]
    if rule == "youden":
        return float(np.clip(cuts[int(np.argmax(tpr - fpr))], 0.0, 1.0))
    reached = np.flatnonzero(tpr >= target_sensitivity)
    return float(np.clip(cuts[reached[0]], 0.0, 1.0))


def roc_points(targets: np.ndarray, probabilities: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray, float]]:
    """``(class index, false-positive rates, true-positive rates, AUC)`` per ROC curve: the positive class's
    for two classes, one per class (one-vs-rest) for more; classes absent from the targets are left out."""
    from sklearn.metrics import roc_auc_score, roc_curve

    targets, probabilities = np.asarray(targets), np.asarray(probabilities, dtype=np.float64)
    classes = [1] if probabilities.shape[1] == 2 else range(probabilities.shape[1])
    curves = []
    for k in classes:
        truth = (targets == k).astype(int)
        if 0 < truth.sum() < len(truth):
            fpr, tpr, _ = roc_curve(truth, probabilities[:, k])
            curves.append((k, fpr, tpr, float(roc_auc_score(truth, probabilities[:, k]))))
    return curves
