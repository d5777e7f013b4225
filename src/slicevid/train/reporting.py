"""What a run folder shows a person: the per-epoch line, ``metrics.csv``, TensorBoard, the plots and the report."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from .._io import atomic_write_text
from ..errors import ConfigError
from ..plots import plot_confusion_matrix, plot_slice_montage, plot_training_curves

EPOCH_LINE_METRICS = ("val_kappa", "val_mean_auc", "val_min_auc", "val_qwk", "val_mae")


def epoch_line(row: dict, epochs: int) -> str:
    """``epoch 3/12 | train_loss ... | val_loss ... | val_kappa ... | lr ... | 4.1s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts.append(f"val_loss {row['val_loss']:.4f}")
        parts += [f"{key} {row[key]:.3f}" for key in EPOCH_LINE_METRICS if key in row and math.isfinite(row[key])]
    return " | ".join([*parts, f"lr {row['lr']:.2g}", f"{row['seconds']:.1f}s"])


def write_history_csv(path: Path, history: list[dict]) -> None:
    """The history rows as CSV (columns in order of first appearance)."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


class TensorBoardLog:
    """Every epoch's numbers as TensorBoard scalars in ``out_dir/tensorboard`` (``tensorboard --logdir``)."""

    def __init__(self, out_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError("tensorboard", "needs the tensorboard package: pip install tensorboard") from err
        self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def log(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1) if key.startswith("val_") else key, value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def write_run_report(
    out_dir: Path, history: list[dict], evaluation, kept_epoch: int | None, monitor: str, sample: tuple
) -> None:
    """``curves.png``, ``report.json`` and ``confusion.png`` (with an evaluation), ``montage.png``.

    The report and the confusion matrix describe the kept epoch's weights on the validation
    split; the montage shows the slices of ``sample``, the first training sample (like the
    paper's Figure 2), when it is a one-channel volume.
    """
    if history:
        plot_training_curves(history, out_dir / "curves.png", kept_epoch=kept_epoch, monitor=monitor)
    if evaluation is not None and evaluation.report is not None:
        report = evaluation.report
        evaluation.report.save_json(
            out_dir / "report.json", split="validation", epoch=kept_epoch, samples=report.num_samples
        )
        confusion = getattr(report, "confusion", None)
        if confusion is not None:
            names = getattr(report, "class_names", None) or report.levels
            title = f"validation split, epoch {kept_epoch}: " + ", ".join(
                f"{k} {v:.2f}" for k, v in list(report.metrics().items())[:2]
            )
            plot_confusion_matrix(confusion, names, out_dir / "confusion.png", title=title)
    volume = sample[0]
    if isinstance(volume, torch.Tensor) and volume.ndim == 4 and volume.shape[0] == 1:
        plot_slice_montage(volume[0].float().numpy(), out_dir / "montage.png", title="first training sample")
