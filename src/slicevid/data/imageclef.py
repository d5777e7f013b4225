"""The ImageCLEF 2021 tuberculosis-type (TBT) task: a folder of NIfTI scans plus a label CSV.

The challenge CSV has one row per scan: a file name (``FileName``) and the TB type as
1..5 (``TypeOfTB``), mapped here to classes 0..4 in :data:`TB_CLASSES` order. The paper
split the 916 labelled scans 80/20, stratified, with ``random_state=0`` (732 / 184); the
same call on the same CSV order gives the same split here.

The data needs registration with ImageCLEF (imageclef.org, 2021 tuberculosis task); it
cannot be downloaded by slicevid.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .ct import is_nifti
from .volumes import CTVolumeDataset

TB_CLASSES = ("Infiltrative", "Focal", "Tuberculoma", "Miliary", "Fibro-cavernous")
SPLITS = ("train", "val", "all", "test")


def read_label_csv(
    csv_path: str | os.PathLike, file_column: str = "FileName", label_column: str = "TypeOfTB"
) -> list[tuple[str, int]]:
    """Rows ``(file name, class index 0..4)`` from a challenge-style label CSV.

    Raises:
        DataError: the CSV is missing, lacks a column, or holds a label outside 1..5.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: label CSV not found")
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in (file_column, label_column) if c not in columns]
        if missing:
            raise DataError(
                f"{csv_path}: missing column(s) {missing}; found {columns}. "
                "Pass file_column= / label_column= to match your CSV."
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            value = row[label_column]
            if value not in {str(i) for i in range(1, len(TB_CLASSES) + 1)}:
                raise DataError(
                    f"{csv_path}, line {line}: unknown label {value!r} for {row[file_column]!r}; "
                    f"expected 1..{len(TB_CLASSES)} ({', '.join(TB_CLASSES)})"
                )
            rows.append((row[file_column], int(value) - 1))
    return rows


def resolve_scan(root: Path, name: str) -> Path | None:
    """The file or DICOM folder for ``name`` under ``root`` (extension optional)."""
    for candidate in (root / name, root / f"{name}.nii.gz", root / f"{name}.nii"):
        if candidate.exists():
            return candidate
    return None


def list_scans(root: str | os.PathLike) -> list[Path]:
    """NIfTI files and sub-folders (DICOM series) directly under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: scan folder not found")
    return sorted(p for p in root.iterdir() if is_nifti(p) or (p.is_dir() and not p.name.startswith(".")))


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/validation split (scikit-learn's ``train_test_split``)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    try:
        train, val = train_test_split(indices, test_size=val_fraction, stratify=labels, random_state=seed)
    except ValueError as err:
        raise DataError(
            f"Cannot split {len(labels)} scans (class counts {np.bincount(labels).tolist()}) into stratified "
            f"train/validation parts with val_fraction={val_fraction}: {err}. Use more scans or a larger fraction."
        ) from err
    return np.asarray(train), np.asarray(val)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """``n_samples / (n_classes * count)`` per class, as scikit-learn's ``"balanced"``.

    On the paper's training counts (335, 180, 81, 80, 56) this gives
    (0.437, 0.813, 1.807, 1.830, 2.614).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    if (counts == 0).any():
        empty = [int(i) for i in np.flatnonzero(counts == 0)]
        raise ValueError(f"Cannot balance class weights: classes {empty} have no training samples")
    return torch.tensor(counts.sum() / (num_classes * counts), dtype=torch.float32)


class ImageCLEFTBT(CTVolumeDataset):
    """ImageCLEF 2021 TBT scans as ``(volume (1, D, H, W), label)`` pairs.

    Args:
        root: folder holding the ``.nii.gz`` scans (or DICOM series folders).
        labels_csv: the challenge label CSV; ``None`` with ``split="test"`` lists every scan
            in ``root`` unlabeled (label -1), for prediction.
        split: ``"train"`` / ``"val"`` (stratified split), ``"all"`` or ``"test"``.
        val_fraction: validation share of the stratified split (0.2 in the paper).
        seed: ``random_state`` of the split (0 in the paper).
        file_column: CSV column with the scan file name (extension optional).
        label_column: CSV column with the TB type 1..5.
        on_error: ``"raise"`` or ``"skip"`` rows whose scan is missing (and, with a cache,
            scans that fail to load); skipped rows are listed in ``skipped``.
        **kwargs: :class:`CTVolumeDataset` options (``preprocessing``, ``cache_dir``,
            ``transform``, ``workers`` ...).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        labels_csv: str | os.PathLike | None = None,
        split: str = "train",
        *,
        val_fraction: float = 0.2,
        seed: int = 0,
        file_column: str = "FileName",
        label_column: str = "TypeOfTB",
        on_error: str = "raise",
        **kwargs: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        root = Path(root)
        self.split = split
        if labels_csv is None:
            if split != "test":
                raise ValueError(f"split={split!r} needs labels_csv; only split='test' runs unlabeled")
            super().__init__(list_scans(root), None, on_error=on_error, **kwargs)
            self.classes = TB_CLASSES
            return
        sources, labels, skipped = [], [], []
        for name, label in read_label_csv(labels_csv, file_column, label_column):
            path = resolve_scan(root, name)
            if path is None:
                reason = f"{root / name}: scan listed in {Path(labels_csv).name} not found"
                if on_error == "raise":
                    raise DataError(reason)
                skipped.append((str(root / name), reason))
                continue
            sources.append(path)
            labels.append(label)
        labels_arr = np.asarray(labels, dtype=np.int64)
        if split in ("train", "val"):
            train, val = stratified_split(labels_arr, val_fraction, seed)
            keep = train if split == "train" else val
            sources, labels_arr = [sources[i] for i in keep], labels_arr[keep]
        super().__init__(sources, labels_arr, on_error=on_error, **kwargs)
        self.classes = TB_CLASSES
        if skipped:
            self._drop_reported(skipped)

    def _drop_reported(self, skipped: list[tuple[str, str]]) -> None:
        self.skipped = skipped + self.skipped
        warnings.warn(f"Skipped {len(skipped)} row(s): " + "; ".join(r for _, r in skipped[:5]), stacklevel=3)

    def class_counts(self) -> np.ndarray:
        """Scans per class in this split."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(TB_CLASSES))

    def class_weights(self) -> torch.Tensor:
        """Balanced class weights over this split (use on the training split: "CW")."""
        return balanced_class_weights(self.labels, len(TB_CLASSES))
