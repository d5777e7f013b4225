"""PNG plots for a run: training curves, confusion matrix, slice montage (like the paper's Fig. 2)."""

from __future__ import annotations

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
    history: Sequence[dict], path: str | os.PathLike, *, kept_epoch: int | None = None, monitor: str = "val_loss"
) -> Path:
    """Loss (train and validation), the monitored metric and the learning rate per epoch.

    A dashed line marks ``kept_epoch``, the epoch whose weights the run kept.
    """
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    shown = ("val_kappa", "val_mean_auc", "val_qwk", "val_mae")
    metric = monitor if monitor != "val_loss" else next((k for k in shown if k in history[0]), None)
    panels = 3 if metric and metric in history[0] else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.4))
    loss_ax, rate_ax = axes[0], axes[-1]
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    if "val_loss" in history[0]:
        loss_ax.plot(epochs, [row["val_loss"] for row in history], "o-", label="validation")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if panels == 3:
        axes[1].plot(epochs, [row[metric] for row in history], "o-", color="tab:green")
        axes[1].set(xlabel="epoch", ylabel=metric.removeprefix("val_"), title=metric.replace("_", " "))
        axes[1].axhline(0, color="grey", lw=0.5)
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
