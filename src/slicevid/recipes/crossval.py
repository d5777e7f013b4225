"""K-fold cross-validation: one fine-tuning per fold, the held-out folds predicted, metrics over folds.

Each fold trains on the other folds less a validation share (which chooses its epoch, its
threshold and its temperature), so nothing about a fold's model is chosen on the fold that
scores it. The held-out fold's predictions are out-of-fold (OOF) predictions: together they
predict every scan once, by a model that never saw it.

``cross_validate(..., out_dir)`` writes::

    out/fold-<k>/          the fold's run folder (best/, config.yaml, report.json ...), and
    out/fold-<k>/test-report.json   its held-out fold's report
    out/oof.csv            every scan's fold, truth and out-of-fold prediction
    out/cv-report.json     each metric's mean and sd over the folds, and each fold's values

A rerun of the same command skips the folds that finished and resumes one that was killed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from .._io import atomic_write_text
from ..errors import ConfigError
from ..model import SliceSequenceClassifier
from ..tasks import SliceSupervision, Task
from ..train import TrainConfig, evaluate
from ..train.checkpoint import LAST_CHECKPOINT
from ..train.evaluation import Evaluation
from .stage import ModelStart, run_finetuning

FoldData = Callable[[int], tuple[Dataset, Dataset, Dataset]]
"""A fold's ``(train, validation, held_out)`` data, given its index."""


@dataclass
class CrossValidation:
    """What a cross-validation measured.

    Attributes:
        folds: per fold, its held-out fold's metrics (each fold decides with its own thresholds).
        metrics: each metric's ``{"mean", "sd", "folds"}`` over the folds (sd with ``ddof=1``).
        oof_csv: the out-of-fold predictions file.
        report_json: the report file.
    """

    folds: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    oof_csv: Path | None = None
    report_json: Path | None = None

    def summary(self) -> str:
        """A Markdown table of each metric's mean ± sd over the folds, and its value on each fold."""
        count = len(self.folds)
        lines = [f"| metric | mean ± sd over {count} folds | {' | '.join(f'fold {k}' for k in range(count))} |"]
        lines.append("|---|---|" + "---|" * count)
        for name, values in self.metrics.items():
            cells = " | ".join("n/a" if v is None else f"{v:.3f}" for v in values["folds"])
            lines.append(f"| {name} | {values['mean']:.3f} ± {values['sd']:.3f} | {cells} |")
        return "\n".join(lines)


def cross_validate(
    start: ModelStart,
    fold_data: FoldData,
    folds: int,
    config: TrainConfig,
    *,
    tasks_for: Callable[[Dataset], Mapping[str, Task]],
    slice_supervision: SliceSupervision | None = None,
    freeze_encoder: bool = False,
    record: Mapping[str, Any] | None = None,
) -> CrossValidation:
    """Fine-tune one model per fold from ``start`` and score each on its held-out fold.

    Args:
        start: how every fold's model starts (the same start, seeded the same, for each fold).
        fold_data: a fold's ``(train, validation, held_out)`` data (e.g. ``LabelledScans(...,
            folds=K, fold=k)`` for each split, or `MedMNIST3D.fold_parts`).
        folds: how many folds.
        config: the training settings; ``config.out_dir`` is the cross-validation's folder.
        tasks_for: the tasks to train for a fold's training data (its class names).
        slice_supervision: a per-slice head, if the data has slice targets.
        freeze_encoder: keep the encoder frozen.
        record: what each fold's ``config.yaml`` records (the command line's options).

    Returns:
        The `CrossValidation`; its files are in ``config.out_dir``.

    Raises:
        ConfigError: no ``out_dir``, or fewer than 2 folds.
    """
    if not config.out_dir:
        raise ConfigError("out_dir", "is needed: cross-validation writes a run folder per fold")
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError("folds", f"must be an integer >= 2, got {folds!r}")
    out = Path(config.out_dir)
    result = CrossValidation()
    rows: list[list[str]] = []
    header: list[str] = []
    for fold in range(folds):
        train, val, held_out = fold_data(fold)
        folder = out / f"fold-{fold}"
        model = _fold_model(start, train, val, config, folder, tasks_for, slice_supervision, freeze_encoder, record)
        evaluation = evaluate(model, held_out, batch_size=config.batch_size, device=config.device, progress=False)
        evaluation.report.save_json(folder / "test-report.json", split="held-out fold", fold=fold)
        result.folds.append(evaluation.report.metrics())
        header, fold_rows = _oof_rows(evaluation, getattr(held_out, "file_ids", None), fold)
        rows += fold_rows
    result.metrics = _over_folds(result.folds)
    result.oof_csv, result.report_json = out / "oof.csv", out / "cv-report.json"
    _write_csv(result.oof_csv, header, rows)
    report = {"folds": folds, "metrics": result.metrics}
    atomic_write_text(result.report_json, json.dumps(report, indent=2) + "\n")
    return result


def _fold_model(start, train, val, config, folder: Path, tasks_for, slice_supervision, freeze_encoder, record):
    """The fold's kept model: trained now, resumed where a killed run left a checkpoint, or read when done."""
    if (folder / "test-report.json").is_file() and (folder / "best").is_dir():
        return SliceSequenceClassifier.from_pretrained(folder / "best", execution=start.execution)
    settings = replace(config, out_dir=str(folder), resume=(folder / LAST_CHECKPOINT).is_file(), overwrite=False)
    model, _ = run_finetuning(
        start,
        train,
        val,
        settings,
        tasks=tasks_for(train),
        slice_supervision=slice_supervision,
        freeze_encoder=freeze_encoder,
        record=record,
    )
    return model


def _oof_rows(evaluation: Evaluation, ids, fold: int) -> tuple[list[str], list[list[str]]]:
    """The held-out fold's rows of ``oof.csv``: id, fold, then per task its truth and its result columns."""
    tasks = evaluation.tasks
    prefix = (lambda name: "") if len(tasks) == 1 else (lambda name: f"{name}.")
    header = ["file_id", "fold"]
    for name, task in tasks.items():
        header += [f"{prefix(name)}true", *(prefix(name) + column for column in task.result_columns())]
    count = len(evaluation.targets_of(next(iter(tasks))))
    ids = list(ids) if ids is not None else [str(i) for i in range(count)]
    rows = []
    for index in range(count):
        row = [ids[index], str(fold)]
        for name, task in tasks.items():
            probabilities = evaluation.probabilities_of(name)[index]
            truth = evaluation.targets_of(name)[index]
            row += [_truth_cell(task, truth), *task.result_cells(probabilities, task.decision(probabilities))]
        rows.append(row)
    return header, rows


def _truth_cell(task: Task, truth: np.ndarray) -> str:
    """A target as the CSV writes it (`Task.target_cell`), or empty where it is missing."""
    return "" if bool(np.all(task.missing(np.asarray(truth)[None]))) else task.target_cell(truth)


def _over_folds(fold_metrics: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each metric's mean, sample sd and per-fold values (undefined values left out of the mean and sd)."""
    names = list(dict.fromkeys(name for metrics in fold_metrics for name in metrics))
    summary = {}
    for name in names:
        values = [metrics.get(name, math.nan) for metrics in fold_metrics]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        summary[name] = {
            "mean": float(np.mean(finite)) if finite else math.nan,
            "sd": float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan,
            "folds": [None if v is None or not math.isfinite(v) else float(v) for v in values],
        }
    return summary


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())
