"""A continuous score per scan: mean absolute error, root mean squared error, Spearman's rank correlation."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

from .base import Report


@dataclass(frozen=True)
class RegressionReport(Report):
    """Metrics of predicted scores.

    Attributes:
        name: what the score is.
        mae: mean absolute error.
        rmse: root mean squared error.
        spearman: Spearman's rank correlation (``None`` when either side is constant).
        count: scans with a known target.
    """

    name: str
    mae: float
    rmse: float
    spearman: float | None
    count: int

    HIGHER_IS_BETTER: ClassVar[dict[str, bool]] = {"mae": False, "rmse": False, "spearman": True}

    @property
    def num_samples(self) -> int:
        return self.count

    def metrics(self) -> dict[str, float]:
        return {"mae": self.mae, "rmse": self.rmse, "spearman": np.nan if self.spearman is None else self.spearman}

    def to_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self, name: str = "model") -> str:
        rho = "n/a" if self.spearman is None else f"{self.spearman:.2f}"
        row = f"| {name} | {self.mae:.3g} | {self.rmse:.3g} | {rho} |"
        return f"| method | MAE | RMSE | Spearman |\n|---|---|---|---|\n{row}"


def regression_report(targets: np.ndarray, predicted: np.ndarray, name: str = "score") -> RegressionReport:
    """MAE, RMSE and Spearman's rho; NaN targets (missing) are left out."""
    from scipy.stats import spearmanr

    targets, predicted = np.asarray(targets, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    known = ~np.isnan(targets)
    targets, predicted = targets[known], predicted[known]
    errors = predicted - targets
    constant = len(targets) < 2 or np.ptp(targets) == 0 or np.ptp(predicted) == 0
    return RegressionReport(
        name=name,
        mae=float(np.abs(errors).mean()) if len(errors) else 0.0,
        rmse=float(np.sqrt((errors**2).mean())) if len(errors) else 0.0,
        spearman=None if constant else float(spearmanr(targets, predicted).statistic),
        count=len(targets),
    )
