"""The ImageCLEF 2021 tuberculosis-type (TBT) task: a folder of NIfTI scans plus a label CSV.

The challenge CSV has one row per scan: a file name (``FileName``) and the TB type as
1..5 (``TypeOfTB``), mapped here to classes 0..4 in :data:`TB_CLASSES` order. The paper
split 916 labelled scans 80/20, stratified, with ``random_state=0`` (732 / 184). The CSV
lists 917: the authors' data held one scan fewer, and which one is not recorded. Pass
``exclude=`` to leave scans out before the split, which is made over the remaining rows in
CSV order (see the reproduction docs for how to find the scan).

The data needs registration with ImageCLEF (imageclef.org, 2021 tuberculosis task); it
cannot be downloaded by slicevid.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._registry import check_choice
from ..errors import ConfigError, DataError, warn_skipped
from ..metrics import balanced_class_weights
from .cache import check_cache_dir
from .ct import is_nifti
from .splits import holdout_split
from .volumes import CTVolumeDataset, scan_id

TB_CLASSES = ("Infiltrative", "Focal", "Tuberculoma", "Miliary", "Fibro-cavernous")
SPLITS = ("train", "val", "all", "test")


def read_label_csv(
    csv_path: str | os.PathLike, file_column: str = "FileName", label_column: str = "TypeOfTB"
) -> list[tuple[str, int]]:
    """Rows ``(file name, class index 0..4)`` from a challenge-style label CSV, in file order.

    A scan listed twice with the same label is kept once (with a warning); ``TRN_0001`` and
    ``TRN_0001.nii.gz`` name the same scan.

    Raises:
        DataError: the CSV is missing, not UTF-8, lacks a column, lists no scan, holds a label
            outside 1..5, or gives one scan two labels (both lines are named).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        kind = "a folder" if csv_path.is_dir() else "not found"
        raise DataError(f"{csv_path}: label CSV {kind}; expected a CSV file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            lines = list(reader)
    except UnicodeDecodeError as err:
        raise DataError(f"{csv_path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from err
    except csv.Error as err:
        raise DataError(f"{csv_path}: not a readable CSV ({err})") from err
    missing = [c for c in (file_column, label_column) if c not in columns]
    if missing:
        raise DataError(
            f"{csv_path}: missing column(s) {missing}; found {columns}. "
            "Pass file_column= / label_column= to match your CSV."
        )
    if not lines:
        raise DataError(f"{csv_path}: lists no scans (only a header)")
    rows: dict[str, tuple[str, int, int]] = {}  # scan id -> (name, label, line)
    merged = []
    for line, raw in enumerate(lines, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        name, value = row[file_column], row[label_column]
        if value not in {str(i) for i in range(1, len(TB_CLASSES) + 1)}:
            raise DataError(
                f"{csv_path}, line {line}: unknown label {value!r} for {name!r}; "
                f"expected 1..{len(TB_CLASSES)} ({', '.join(TB_CLASSES)})"
            )
        label, key = int(value) - 1, scan_id(name)
        if key in rows:
            _, first_label, first_line = rows[key]
            if first_label != label:
                raise DataError(
                    f"{csv_path}: {key} has label {first_label + 1} on line {first_line} and {label + 1} on line {line}"
                )
            merged.append(f"{name} (line {line} repeats line {first_line})")
            continue
        rows[key] = (name, label, line)
    if merged:
        warnings.warn(f"{csv_path}: merged {len(merged)} duplicate row(s): {'; '.join(merged[:5])}", stacklevel=2)
    return [(name, label) for name, label, _ in rows.values()]


def read_exclusions(exclude: Iterable[str] | str | os.PathLike | None) -> set[str]:
    """Scan ids to leave out: given directly, or one per line in a text file (``#`` starts a comment)."""
    if exclude is None:
        return set()
    if isinstance(exclude, (str, os.PathLike)):
        path = Path(exclude)
        if not path.is_file():
            raise DataError(f"{path}: exclusion list not found; expected a text file with one scan name per line")
        exclude = [line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return {scan_id(name) for name in exclude if name}


def resolve_scan(root: Path, name: str) -> Path | None:
    """The file or DICOM folder for ``name`` under ``root`` (extension optional).

    Raises:
        DataError: ``name`` points outside ``root`` (an absolute path, or ``..``).
    """
    base = root.resolve()
    for candidate in (root / name, root / f"{name}.nii.gz", root / f"{name}.nii"):
        if not candidate.resolve().is_relative_to(base):
            raise DataError(f"{name!r} points outside the scan folder {root}; file names must be inside it")
        if candidate.exists():
            return candidate
    return None


def list_scans(root: str | os.PathLike) -> list[Path]:
    """NIfTI files and sub-folders (DICOM series) directly under ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: scan folder not found")
    return sorted(p for p in root.iterdir() if is_nifti(p) or (p.is_dir() and not p.name.startswith(".")))


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
        exclude: scans to leave out before splitting: names, or a text file of names.
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
        exclude: Iterable[str] | str | os.PathLike | None = None,
        on_error: str = "raise",
        **kwargs: Any,
    ) -> None:
        self.split = check_choice("split", split, SPLITS)
        check_cache_dir(kwargs.get("cache_dir"))
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: scan folder not found")
        if labels_csv is None:
            if split != "test":
                raise ConfigError(f"split={split!r}", "needs labels_csv; only split='test' runs unlabeled")
            super().__init__(list_scans(root), None, on_error=on_error, classes=TB_CLASSES, **kwargs)
            return
        excluded = read_exclusions(exclude)
        listed = read_label_csv(labels_csv, file_column, label_column)
        rows = [(name, label) for name, label in listed if scan_id(name) not in excluded]
        unused = excluded - {scan_id(name) for name, _ in listed}
        if unused:
            warnings.warn(f"excluded scan(s) {sorted(unused)} are not in {labels_csv}", stacklevel=2)
        sources, labels, skipped = [], [], []
        for name, label in rows:
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
            train, val = holdout_split(len(labels_arr), val_fraction, seed, stratify=labels_arr)
            keep = train if split == "train" else val
            sources, labels_arr = [sources[i] for i in keep], labels_arr[keep]
        super().__init__(sources, labels_arr, on_error=on_error, classes=TB_CLASSES, **kwargs)
        if skipped:
            self.skipped = skipped + self.skipped
            warn_skipped("row(s)", [r for _, r in skipped])

    def class_counts(self) -> np.ndarray:
        """Scans per class in this split."""
        return np.bincount(self.labels[self.labels >= 0], minlength=len(TB_CLASSES))

    def class_weights(self) -> torch.Tensor:
        """Balanced class weights over this split (use on the training split: "CW")."""
        return balanced_class_weights(self.labels, len(TB_CLASSES))
