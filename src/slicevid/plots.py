"""PNG plots for a run: training curves, confusion matrix, ROC curves, reliability diagram, slice montage."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._io import atomic_write
from .errors import ConfigError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)


def plot_training_curves(
    history: Sequence[dict],
    path: str | os.PathLike,
    *,
    kept_epoch: int | None = None,
    monitor: str = "val_loss",
    metrics: Sequence[str] = (),
) -> Path:
    """Loss (train and validation), one panel per validation metric, and the learning rate per epoch.

    The metrics shown are ``metrics`` (each head's headline metrics) and the monitored one; a
    dashed line marks ``kept_epoch``, the epoch whose weights the run kept.
    """
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    shown = [m for m in dict.fromkeys([*([monitor] if monitor != "val_loss" else []), *metrics]) if m in history[0]]
    panels = 2 + len(shown)
    columns, rows = min(panels, 4), math.ceil(panels / 4)
    fig, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for spare in grid.flat[panels:]:  # a last row that is not full
        spare.set_axis_off()
    axes = list(grid.flat[:panels])
    loss_ax, rate_ax = axes[0], axes[-1]
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    if "val_loss" in history[0]:
        loss_ax.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    for ax, metric in zip(axes[1:-1], shown, strict=True):
        ax.plot(epochs, [row[metric] for row in history], "o-", color="tab:green")
        ax.set(xlabel="epoch", ylabel=metric.removeprefix("val_"), title=metric.replace("_", " "))
        ax.axhline(0, color="grey", lw=0.5)
    rate_ax.plot(epochs, [row["lr"] for row in history], "o-", color="tab:purple")
    rate_ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate", yscale="log")
    for ax in axes:
        if kept_epoch is not None:
            ax.axvline(kept_epoch, color="black", ls="--", lw=1, label=f"kept (epoch {kept_epoch})")
        ax.xaxis.get_major_locator().set_params(integer=True)
    loss_ax.legend(fontsize=8)
    return _save(fig, path)


def plot_confusion_matrix(
    confusion: Sequence[Sequence[int]], names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """Confusion matrix with counts, rows = true class, and a colour bar of whole counts."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    matrix = np.asarray(confusion)
    size = 1.2 + 0.7 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.4, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0)
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=35, ha="right")
    ax.set_yticks(ticks, names)
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    bar = fig.colorbar(image, ax=ax, fraction=0.046)
    bar.locator = MaxNLocator(integer=True)
    bar.update_ticks()
    bar.set_label("scans")
    return _save(fig, path)


def plot_roc_curves(
    targets: np.ndarray, probabilities: np.ndarray, names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> Path:
    """ROC curves: the second class's for two classes, one per class (one-vs-rest) for more, with their AUCs."""
    from .metrics import roc_points

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for index, fpr, tpr, area in roc_points(targets, probabilities):
        ax.plot(fpr, tpr, lw=1.6, label=f"{names[index]} (AUC {area:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="chance")
    ax.set(xlabel="1 - specificity (false-positive rate)", ylabel="sensitivity", title=title or "ROC", aspect="equal")
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def plot_reliability_diagram(
    targets: np.ndarray, probabilities: np.ndarray, path: str | os.PathLike, title: str = ""
) -> Path:
    """Accuracy against confidence (the top probability) per confidence bin, bar widths the scans each
    holds, and the expected calibration error: a calibrated model's bars sit on the diagonal."""
    from .metrics import expected_calibration_error, reliability_curve

    plt = _pyplot()
    confidence, accuracy, counts = reliability_curve(targets, probabilities)
    ece = expected_calibration_error(targets, probabilities)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8, label="perfectly calibrated")
    ax.scatter(confidence, accuracy, s=20 + 200 * counts / max(counts.sum(), 1), color="tab:blue", zorder=3)
    ax.plot(confidence, accuracy, color="tab:blue", lw=1, label=f"model (ECE {ece:.3f})")
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02), aspect="equal")
    ax.set_title(title or "reliability")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def _slices(volume: np.ndarray, what: str) -> np.ndarray:
    """A ``(D, H, W)`` array from a ``(D, H, W)`` or ``(1, D, H, W)`` volume (one slice deep too)."""
    volume = np.asarray(volume)
    if volume.ndim == 4 and volume.shape[0] == 1:
        volume = volume[0]
    if volume.ndim != 3:
        raise ConfigError(f"{what} volume", f"must be (D, H, W) or (1, D, H, W), got shape {volume.shape}")
    return volume


def plot_slice_montage(
    volume: np.ndarray, path: str | os.PathLike, *, num_slices: int = 12, columns: int = 6, title: str = ""
) -> Path:
    """Evenly spaced slices of a ``(D, H, W)`` or ``(1, D, H, W)`` volume in [0, 1], in order."""
    plt = _pyplot()
    volume = _slices(volume, "plot_slice_montage")
    picks = np.linspace(0, volume.shape[0] - 1, min(num_slices, volume.shape[0])).round().astype(int)
    rows = int(np.ceil(len(picks) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, picks, strict=False):
        ax.imshow(volume[index], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"slice {index}", fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_slice_importance(
    volume: np.ndarray, importance: np.ndarray, path: str | os.PathLike, *, num_slices: int = 12, title: str = ""
) -> Path:
    """The slices of a ``(D, H, W)`` volume beside the importance of each slice for the prediction.

    The montage shows the ``num_slices`` most important slices in depth order, each titled
    with its index and share; the curve beside it shows the importance of every slice.
    """
    plt = _pyplot()
    volume = _slices(volume, "plot_slice_importance")
    importance = np.asarray(importance, dtype=np.float64)[: volume.shape[0]]
    picks = np.sort(np.argsort(-importance, kind="stable")[: min(num_slices, volume.shape[0])])
    columns = 4
    rows = int(np.ceil(len(picks) / columns))
    fig = plt.figure(figsize=(1.7 * columns + 3.6, 1.8 * max(rows, 2) + 0.5))
    grid = fig.add_gridspec(max(rows, 2), columns + 2)
    top = importance.max() if importance.size else 0.0
    for slot, index in enumerate(picks):
        ax = fig.add_subplot(grid[slot // columns, slot % columns])
        ax.imshow(volume[index], cmap="gray", vmin=0, vmax=1)
        ax.set_title(
            f"slice {index}: {importance[index]:.0%}",
            fontsize=7,
            color="tab:red" if importance[index] >= 0.5 * top else "black",
        )
        ax.axis("off")
    curve = fig.add_subplot(grid[:, columns:])
    curve.barh(np.arange(len(importance)), importance, color="tab:red")
    curve.invert_yaxis()
    curve.set(xlabel="importance", ylabel="slice", title="which slices drove it")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
