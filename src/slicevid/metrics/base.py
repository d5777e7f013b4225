"""What every report of slicevid has: a flat dict of metrics, a JSON form and a Markdown table.

A report describes one set of predictions for one target (a task): single-label classes,
several binary labels, ordered levels or a score. :class:`MultiTaskReport` gathers one per task
of a model with several heads. Training selects its kept epoch by a name from :meth:`Report.metrics`
(``"val_kappa"``, ``"val_mean_auc"`` ...), and ``report.json`` is :meth:`Report.save_json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .._io import atomic_write_text

LOWER_IS_BETTER = ("loss", "mae", "rmse")
"""Metric name endings for which smaller values are better (everything else: larger)."""


class Report:
    """Base of the report types; subclasses are frozen dataclasses."""

    @property
    def num_samples(self) -> int:
        raise NotImplementedError

    def metrics(self) -> dict[str, float]:
        """The headline numbers, by name (``{"kappa": 0.8, "accuracy": 0.9, ...}``)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        raise NotImplementedError

    def to_markdown(self, name: str = "model") -> str:
        raise NotImplementedError

    def save_json(self, path: str | os.PathLike, **context: object) -> None:
        """Write :meth:`to_dict` (plus ``context``: the split, the epoch ...) as JSON, atomically."""
        atomic_write_text(path, json.dumps({**context, **self.to_dict()}, indent=2) + "\n")

    def __str__(self) -> str:
        return self.to_markdown()


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` (``"val_loss"``, ``"val_findings_mae"`` ...) is better."""
    return metric.endswith(LOWER_IS_BETTER)


def cell(value: float | None) -> str:
    """A table cell: two decimals, or "n/a" for an undefined metric."""
    return "n/a" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class MultiTaskReport(Report):
    """One report per head of a model with several.

    Attributes:
        reports: task name -> that task's report.
    """

    reports: dict[str, Report]

    @property
    def num_samples(self) -> int:
        return max(report.num_samples for report in self.reports.values())

    def metrics(self) -> dict[str, float]:
        """Every task's metrics as ``"<task>_<metric>"``."""
        return {f"{task}_{k}": v for task, report in self.reports.items() for k, v in report.metrics().items()}

    def to_dict(self) -> dict:
        return {"tasks": {task: report.to_dict() for task, report in self.reports.items()}}

    def to_markdown(self, name: str = "model") -> str:
        return "\n\n".join(f"**{task}**\n\n{report.to_markdown(name)}" for task, report in self.reports.items())
