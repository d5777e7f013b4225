"""Holding data out: the one place train / validation / test parts are made.

* `holdout_split()`: scikit-learn's ``train_test_split``, stratified by label when asked
  (the paper's CT split: 80/20, stratified, ``random_state=0``); grouped so that related
  samples (one patient's scans, the clips of one UCF group) never sit on both sides; or both
  (``StratifiedGroupKFold``'s first fold held out).
* `kfold_split()`: K folds, stratified and grouped as asked.
* `assigned_split()`: the parts a labels-CSV column names (``train``, ``val``, ``test``).
* `split_parts()`: which of these a `SplitSettings` asks for, as ``{"train", "val", "test"}`` indices.
* `keras_validation_split()`: the last fraction of an ordered set, as Keras's
  ``fit(validation_split=...)`` takes it (the authors' UCF50 validation part).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError

VAL_FRACTION = 0.2
"""The validation share of a drawn split: the paper's stratified 80/20."""
PARTS = ("train", "val", "test")
PART_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
"""Values a split column may hold (any case), and the part each names."""


@dataclass(frozen=True)
class SplitSettings:
    """How labelled scans are split into training, validation and (held-out) test parts.

    Attributes:
        val_fraction: validation share of a drawn split (the paper's stratified 80/20).
        split_column: labels-CSV column naming each scan's part (train, val or test) instead of a draw.
        group_column: labels-CSV column of group ids (a patient): one group's scans never sit in two parts.
        folds: k-fold cross-validation: the number of folds (not set: one split). Each fold holds one
            part out as the test part; the rest is split into training and validation by val_fraction.
        fold: which fold is held out (0 .. folds - 1).
    """

    val_fraction: float = VAL_FRACTION
    split_column: str | None = None
    group_column: str | None = None
    folds: int | None = None
    fold: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.val_fraction, bool) or not 0 < self.val_fraction < 1:
            raise ConfigError("val_fraction", f"must lie in (0, 1), got {self.val_fraction}")
        if self.folds is not None:
            if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
                raise ConfigError("folds", f"must be an integer >= 2, got {self.folds!r}")
            if not 0 <= self.fold < self.folds:
                raise ConfigError("fold", f"must lie in 0..{self.folds - 1}, got {self.fold}")
            if self.split_column is not None:
                raise ConfigError("folds", "and split_column exclude each other: the folds make the parts")


def holdout_split(
    count: int,
    fraction: float,
    seed: int,
    *,
    stratify: Sequence[int] | None = None,
    groups: Sequence[object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` of ``count`` samples, ``fraction`` held out, in scikit-learn's order.

    Raises:
        DataError: the split is impossible (too few samples for a stratified split, say).
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, train_test_split

    if not 0 < fraction < 1:
        raise ConfigError("val_fraction", f"must lie in (0, 1), got {fraction}")
    indices = np.arange(count)
    try:
        if groups is not None and stratify is not None:
            folds = max(2, round(1 / fraction))
            splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
            kept, held_out = next(splitter.split(indices, stratify, groups=_codes(groups)))
            return np.asarray(kept), np.asarray(held_out)
        if groups is not None:
            return next(GroupShuffleSplit(1, test_size=fraction, random_state=seed).split(indices, groups=groups))
        kept, held_out = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as err:
        raise DataError(
            f"Cannot split {count} samples{_counts(stratify)} holding out {fraction}: {str(err).rstrip('.')}. "
            "Use more samples or another fraction."
        ) from err
    return np.asarray(kept), np.asarray(held_out)


def kfold_split(
    count: int,
    folds: int,
    fold: int,
    seed: int,
    *,
    stratify: Sequence[int] | None = None,
    groups: Sequence[object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(rest, held_out)`` of fold ``fold`` of ``folds``, stratified and grouped as asked, shuffled by seed.

    Raises:
        DataError: fewer samples (or groups, or scans of a class) than folds.
    """
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    indices = np.arange(count)
    if groups is not None and stratify is not None:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    elif groups is not None:
        splitter = GroupKFold(folds, shuffle=True, random_state=seed)
    elif stratify is not None:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed)
    try:
        splits = list(splitter.split(indices, stratify, groups=None if groups is None else _codes(groups)))
    except ValueError as err:
        raise DataError(f"Cannot make {folds} folds of {count} samples{_counts(stratify)}: {err}") from err
    rest, held_out = splits[fold]
    return np.asarray(rest), np.asarray(held_out)


def assigned_split(values: Sequence[str], column: str, lines: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """The rows each part of a split column names: ``{"train": ..., "val": ..., "test": ...}``.

    Raises:
        DataError: a value that names no part (its line is given), or no training row.
    """
    parts: dict[str, list[int]] = {part: [] for part in PARTS}
    for row, value in enumerate(values):
        part = PART_NAMES.get(value.strip().lower())
        if part is None:
            where = f"line {lines[row]}" if lines is not None else f"row {row + 1}"
            raise DataError(f"{column!r} is {value!r} on {where}; expected train, val or test")
        parts[part].append(row)
    if not parts["train"]:
        raise DataError(f"split column {column!r} names no training row (values train, val, test)")
    return {part: np.asarray(rows, dtype=np.int64) for part, rows in parts.items()}


def split_parts(
    count: int,
    settings: SplitSettings,
    seed: int,
    *,
    stratify: Sequence[int] | None = None,
    groups: Sequence[object] | None = None,
    assigned: Sequence[str] | None = None,
    lines: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """The indices of the training, validation and test parts that ``settings`` ask for.

    A split column (``assigned``: each row's value) decides outright. Otherwise, with folds,
    fold ``settings.fold`` is the test part and the rest is split into training and validation
    by ``val_fraction`` (so the epoch is never chosen on the held-out fold); without folds the
    test part is empty. Indices are in ascending order within each part, except the drawn
    training and validation parts of a plain split, which keep scikit-learn's order.
    """
    if assigned is not None:
        return assigned_split(assigned, settings.split_column or "split", lines)
    indices = np.arange(count)
    test = np.zeros(0, dtype=np.int64)
    if settings.folds is not None:
        indices, test = kfold_split(count, settings.folds, settings.fold, seed, stratify=stratify, groups=groups)
        stratify = None if stratify is None else np.asarray(stratify)[indices]
        groups = None if groups is None else np.asarray(groups, dtype=object)[indices]
    train, val = holdout_split(len(indices), settings.val_fraction, seed, stratify=stratify, groups=groups)
    return {"train": indices[train], "val": indices[val], "test": np.sort(test)}


def keras_validation_split(indices: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: Keras's ``validation_split`` keeps the *last* ``fraction`` for validation."""
    split_at = int(len(indices) * (1.0 - fraction))
    return indices[:split_at], indices[split_at:]


def _codes(groups: Sequence[object]) -> np.ndarray:
    """Group ids as integers (scikit-learn's group splitters take any hashable, but arrays of mixed types not)."""
    return np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)[1]


def _counts(stratify: Sequence[int] | None) -> str:
    if stratify is None:
        return ""
    values = np.asarray(stratify)
    return f" (class counts {np.bincount(values[values >= 0]).tolist()})"
