"""What a run folder shows a person: the per-epoch line, ``metrics.csv``, the plots and the report."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_text
from ..plots import (
    plot_confusion_matrix,
    plot_reliability_diagram,
    plot_roc_curves,
    plot_slice_montage,
    plot_training_curves,
)
from ..tasks import Multiclass, Task
from .callbacks import Callback


def metric_key(metric: str, task_name: str, tasks: Mapping[str, Task]) -> str:
    """A validation metric's key in a history row: ``val_<metric>``, or ``val_<task>_<metric>`` with several heads."""
    return f"val_{metric}" if len(tasks) == 1 else f"val_{task_name}_{metric}"


def monitored_metrics(tasks: Mapping[str, Task]) -> dict[str, bool]:
    """Every value ``monitor`` may name for these heads, and whether a larger value is better."""
    values = {"val_loss": False}
    for name, task in tasks.items():
        values.update({metric_key(m, name, tasks): up for m, up in task.metric_directions().items()})
    return values


def headline_keys(tasks: Mapping[str, Task]) -> list[str]:
    """The history keys of each head's headline metrics (what the epoch line and ``curves.png`` show)."""
    return [metric_key(metric, name, tasks) for name, task in tasks.items() for metric in task.headline]


def epoch_line(row: dict, epochs: int, tasks: Mapping[str, Task]) -> str:
    """``epoch 3/12 | train_loss ... | val_loss ... | val_kappa ... | val_auc ... | lr ... | 4.1s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts.append(f"val_loss {row['val_loss']:.4f}")
        shown = [key for key in headline_keys(tasks) if key in row and math.isfinite(row[key])]
        parts += [f"{key} {row[key]:.3f}" for key in shown]
    return " | ".join([*parts, f"lr {row['lr']:.2g}", f"{row['seconds']:.1f}s"])


def write_history_csv(path: Path, history: list[dict]) -> None:
    """The history rows as CSV (columns in order of first appearance)."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


class RunReport(Callback):
    """The run folder's pictures and report, written when the run ends.

    ``curves.png`` (losses, each head's headline metrics, the learning rate); for the kept
    weights on the validation split ``report.json`` and, per multi-class head, ``confusion.png``,
    ``roc.png`` and ``reliability.png`` (suffixed ``-<task>`` with several heads); and
    ``montage.png``, the slices of the first training sample (like the paper's Figure 2).

    Args:
        train_data: the training data (its first sample is the montage's).
    """

    def __init__(self, train_data) -> None:
        self.train_data = train_data

    def on_run_end(self, trainer, evaluation) -> None:
        out, state, tasks = trainer.out_dir, trainer.state, trainer.tasks
        if state.history:
            metrics = [key for key in headline_keys(tasks) if key in state.history[0]]
            plot_training_curves(
                state.history,
                out / "curves.png",
                kept_epoch=state.best_epoch,
                monitor=trainer.config.monitor,
                metrics=metrics,
            )
        if evaluation is not None and evaluation.report is not None:
            evaluation.report.save_json(
                out / "report.json", split="validation", epoch=state.best_epoch, samples=evaluation.report.num_samples
            )
            write_classifier_plots(evaluation, out, f"validation split, epoch {state.best_epoch}")
        volume = self.train_data[0][0]
        if isinstance(volume, torch.Tensor) and volume.ndim == 4 and volume.shape[0] == 1:
            plot_slice_montage(volume[0].float().numpy(), out / "montage.png", title="first training sample")


def write_classifier_plots(evaluation, folder: Path, what: str) -> list[Path]:
    """Per head of ``evaluation``: its confusion matrix (classes and levels) and, for a multi-class head,
    its ROC curves and reliability diagram; ``what`` says which scans, for the titles."""
    written = []
    several = len(evaluation.tasks) > 1
    for name, task in evaluation.tasks.items():
        report = evaluation.report.reports.get(name) if several else evaluation.report
        suffix = f"-{name}" if several else ""
        confusion = getattr(report, "confusion", None)
        if confusion is not None:
            headline = ", ".join(f"{k} {v:.2f}" for k, v in list(report.metrics().items())[:2])
            title = f"{what}: {headline}"
            written.append(plot_confusion_matrix(confusion, task.names, folder / f"confusion{suffix}.png", title))
        if isinstance(task, Multiclass) and report is not None:
            targets, probabilities = evaluation.targets_of(name), evaluation.probabilities_of(name)
            known = targets >= 0
            targets, probabilities = targets[known], probabilities[known].astype(np.float64)
            written += [
                plot_roc_curves(targets, probabilities, task.names, folder / f"roc{suffix}.png", title=what),
                plot_reliability_diagram(targets, probabilities, folder / f"reliability{suffix}.png", title=what),
            ]
    return written
