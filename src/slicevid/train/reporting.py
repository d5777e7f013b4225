"""What a run folder shows a person: the per-epoch line, ``metrics.csv`` and the plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from .._io import atomic_write_text
from ..plots import plot_confusion_matrix, plot_slice_montage, plot_training_curves


def epoch_line(row: dict, epochs: int) -> str:
    """``epoch 3/12 | train_loss ... | val_loss ... | val_kappa ... | lr ... | 4.1s``."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if "val_loss" in row:
        parts += [f"val_loss {row['val_loss']:.4f}", f"val_kappa {row['val_kappa']:.3f}"]
    return " | ".join([*parts, f"lr {row['lr']:.2g}", f"{row['seconds']:.1f}s"])


def write_history_csv(path: Path, history: list[dict]) -> None:
    """The history rows as CSV (columns in order of first appearance)."""
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(path, buffer.getvalue())


def write_run_plots(out_dir: Path, history: list[dict], evaluation, sample: tuple, class_names) -> None:
    """``curves.png``, ``report.json`` and ``confusion.png`` (with an evaluation), ``montage.png``.

    The montage shows the slices of ``sample``, the first training sample (like the paper's
    Figure 2), when it is a one-channel volume.
    """
    if history:
        plot_training_curves(history, out_dir / "curves.png")
    if evaluation is not None:
        evaluation.report.save_json(out_dir / "report.json")
        plot_confusion_matrix(evaluation.report, out_dir / "confusion.png")
    volume, label = sample
    if isinstance(volume, torch.Tensor) and volume.ndim == 4 and volume.shape[0] == 1:
        name = class_names[int(label)] if 0 <= int(label) < len(class_names) else str(label)
        plot_slice_montage(volume[0].float().numpy(), out_dir / "montage.png", title=f"first training sample ({name})")
