"""Holding data out: the one place train/validation(/test) splits are made.

* `holdout_split()`: scikit-learn's ``train_test_split``, stratified by label when asked
  (the paper's CT split: 80/20, stratified, ``random_state=0``), or grouped so that related
  samples (clips of one UCF group) never sit on both sides.
* `keras_validation_split()`: the last fraction of an ordered set, as Keras's
  ``fit(validation_split=...)`` takes it (the authors' UCF50 validation part).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, DataError


def holdout_split(
    count: int,
    fraction: float,
    seed: int,
    *,
    stratify: Sequence[int] | None = None,
    groups: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(kept, held_out)`` of ``count`` samples, ``fraction`` held out, in scikit-learn's order.

    Raises:
        DataError: the split is impossible (too few samples for a stratified split, say).
    """
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if not 0 < fraction < 1:
        raise ConfigError("val_fraction", f"must lie in (0, 1), got {fraction}")
    indices = np.arange(count)
    try:
        if groups is not None:
            return next(GroupShuffleSplit(1, test_size=fraction, random_state=seed).split(indices, groups=groups))
        kept, held_out = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError as err:
        counts = f" (class counts {np.bincount(np.asarray(stratify)).tolist()})" if stratify is not None else ""
        raise DataError(
            f"Cannot split {count} samples{counts} holding out {fraction}: {err}. Use more samples or another fraction."
        ) from err
    return np.asarray(kept), np.asarray(held_out)


def keras_validation_split(indices: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: Keras's ``validation_split`` keeps the *last* ``fraction`` for validation."""
    split_at = int(len(indices) * (1.0 - fraction))
    return indices[:split_at], indices[split_at:]
