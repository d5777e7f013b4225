"""What every report of slicevid has: a flat dict of metrics, a JSON form and a Markdown table.

A report describes one set of predictions for one target (a task): single-label classes,
several binary labels, ordered levels or a score. `MultiTaskReport` gathers one per task
of a model with several heads. Training selects its kept epoch by a name from `Report.metrics()`
(``"val_kappa"``, ``"val_mean_auc"`` ...), and ``report.json`` is `Report.save_json()`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import ClassVar

from .._io import atomic_write_text

REPORT_KINDS: dict[str, type] = {}
"""Report classes by name, to rebuild a report from its JSON (`report_from_dict()`)."""


class Report:
    """Base of the report types; subclasses are frozen dataclasses.

    Each declares, in ``HIGHER_IS_BETTER``, every metric `metrics()` may return and whether a
    larger value is better, as torchmetrics' ``higher_is_better`` does: training reads it to
    check ``monitor`` before the first epoch and to know which way the kept epoch improves.
    """

    HIGHER_IS_BETTER: ClassVar[dict[str, bool]] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        REPORT_KINDS[cls.__name__] = cls

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

    def as_json(self) -> dict:
        """`to_dict()` tagged with the report's kind (what `report_from_dict()` reads back)."""
        return {"kind": type(self).__name__, **self.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> Report:
        """Rebuild a report from `to_dict()` output (lists become tuples)."""
        names = cls.__dataclass_fields__
        return cls(**{k: _tuples(v) for k, v in values.items() if k in names})

    def save_json(self, path: str | os.PathLike, **context: object) -> None:
        """Write `to_dict()` (plus ``context``: the split, the epoch ...) as JSON, atomically."""
        atomic_write_text(path, json.dumps({**context, **self.to_dict()}, indent=2) + "\n")

    def __str__(self) -> str:
        return self.to_markdown()


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def report_from_dict(values: dict) -> Report:
    """A report from `Report.as_json()` output (untagged: a classification report, as older files hold)."""
    values = dict(values)
    return REPORT_KINDS[values.pop("kind", "ClassificationReport")].from_dict(values)


def metrics_table(reports: dict[str, Report]) -> str:
    """A Markdown table of each report's headline metrics, one row per name."""
    columns = list(dict.fromkeys(key for report in reports.values() for key in report.metrics()))
    lines = ["| method | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, report in reports.items():
        values = report.metrics()
        lines.append(f"| {name} | " + " | ".join(cell(values.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` (``"val_loss"``, ``"val_findings_mae"`` ...) is better.

    The direction is the one the report kinds declare for the metric the name ends with (a loss
    is minimised); a name no report declares is taken as larger-is-better.
    """
    declared = {"loss": False}
    for kind in REPORT_KINDS.values():
        declared.update(kind.HIGHER_IS_BETTER)
    endings = sorted((name for name in declared if metric == name or metric.endswith("_" + name)), key=len)
    return bool(endings) and not declared[endings[-1]]


def cell(value: float | None) -> str:
    """A table cell: two decimals, or "n/a" for an undefined metric."""
    return "n/a" if value is None or value != value else f"{value:.2f}"


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
        return {"reports": {task: report.as_json() for task, report in self.reports.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> MultiTaskReport:
        return cls({task: report_from_dict(report) for task, report in values["reports"].items()})

    def to_markdown(self, name: str = "model") -> str:
        return "\n\n".join(f"**{task}**\n\n{report.to_markdown(name)}" for task, report in self.reports.items())
