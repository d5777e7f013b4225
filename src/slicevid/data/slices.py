"""Slice targets: which slices of a scan show what, from a table of slice indices or from lesion masks.

Per-slice supervision needs a target for every slice of the *model's input*, while labels are
written for the scan's own slices. Both sources are turned into a profile over the scan's
slices, then resampled exactly as the volume is (`CTPreprocessing.resample_profile()`):

* **slice indices** (a CSV column such as ``3;4;5`` or ``3-5``, 0-based, in the scan's own
  order) give hard 0/1 labels; resampling makes the slices at a lesion's edges fractional;
* **lesion masks** (a NIfTI volume per scan, in the scan's geometry) give soft labels: each
  slice's lesion area divided by the largest, i.e. how visible the lesion is on that slice
  (the "slice visibility" soft labels of the RSNA winners); resampling keeps them soft.

A scan without a target in the source gets NaN targets: its slices are left out of the slice
loss, never treated as lesion-free.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .labels import FILE_COLUMN, read_csv_rows, scan_id

_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
MAX_SLICES = 10_000
"""More slices than any scan has: a range beyond it is a typo, refused before it is expanded."""


@dataclass(frozen=True)
class SliceTargets:
    """Where a dataset's per-slice targets come from (give exactly one source).

    Attributes:
        indices: scan id -> 0-based indices of its labelled slices (see `read_slice_indices()`).
        masks: a folder of mask volumes named like the scans (``masks/TRN_0001.nii.gz``).
        label: the name of what the slices are labelled with.
    """

    indices: Mapping[str, Sequence[int]] | None = None
    masks: Path | None = None
    label: str = "lesion"

    def __post_init__(self) -> None:
        if (self.indices is None) == (self.masks is None):
            raise DataError("slice targets need exactly one source: slice indices or a folder of masks")
        if self.masks is not None:
            object.__setattr__(self, "masks", Path(self.masks))
            if not self.masks.is_dir():
                raise DataError(f"{self.masks}: mask folder not found")

    def key(self, scan: str) -> dict:
        """What the profile of ``scan`` depends on (for the cache)."""
        if self.indices is not None:
            return {"indices": sorted(int(i) for i in self.indices.get(scan, ()))} if scan in self.indices else {}
        mask = self.mask_path(scan)
        return {"mask": str(mask), "mtime": mask.stat().st_mtime_ns} if mask is not None else {}

    def mask_path(self, scan: str) -> Path | None:
        for suffix in (".nii.gz", ".nii"):
            candidate = self.masks / f"{scan}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def profile(self, scan: str, depth: int) -> np.ndarray | None:
        """A value per slice of the scan ``(depth,)`` in [0, 1], or ``None`` when the source has none for it."""
        if self.indices is not None:
            if scan not in self.indices:
                return None
            indices = np.asarray(list(self.indices[scan]), dtype=np.int64)
            if len(indices) and (indices.min() < 0 or indices.max() >= depth):
                outside = indices[(indices < 0) | (indices >= depth)]
                raise DataError(
                    f"slice indices of {scan} reach {outside.min()}..{outside.max()}, "
                    f"outside its {depth} slices (0..{depth - 1})"
                )
            profile = np.zeros(depth, dtype=np.float32)
            profile[indices] = 1.0
            return profile
        mask = self.mask_path(scan)
        if mask is None:
            return None
        return mask_profile(mask, depth)


def mask_profile(path: Path, depth: int) -> np.ndarray:
    """Each slice's lesion area divided by the largest (0 everywhere for an empty mask)."""
    import nibabel as nib

    try:
        array = np.asarray(nib.load(str(path)).dataobj)
    except Exception as err:  # nibabel raises many types for broken files
        raise DataError(f"{path}: could not read the mask ({type(err).__name__}: {err})") from err
    if array.ndim != 3 or array.shape[2] != depth:
        raise DataError(f"{path}: mask of shape {array.shape} does not match its scan's {depth} slices")
    area = (array != 0).sum(axis=(0, 1)).astype(np.float32)  # file axes (x, y, z): z is the slice
    return area / area.max() if area.max() > 0 else area


def read_slice_indices(csv_path: str | os.PathLike, file_column: str = FILE_COLUMN, column: str = "slices") -> dict:
    """Scan id -> slice indices, from a CSV column of ``3;4;5``, ``3-5`` or ``3-5;9`` (empty: no slice).

    Args:
        csv_path: the CSV file.
        file_column: its column of scan names.
        column: its column of slice lists.

    Raises:
        DataError: a missing column, a cell that is not a list of indices, a range that runs
            backwards or past any scan's depth, or a scan listed twice with other slices (lines named).
    """
    csv_path = Path(csv_path)
    columns, rows = read_csv_rows(csv_path)
    missing = [c for c in (file_column, column) if c not in columns]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {missing}; found {columns}")
    table: dict[str, list[int]] = {}
    lines: dict[str, int] = {}
    for line, row in rows:
        indices = _indices(row[column], f"{csv_path}, line {line}")
        key = scan_id(row[file_column])
        if key in table and sorted(table[key]) != sorted(indices):
            raise DataError(
                f"{csv_path}: {key} is listed on line {lines[key]} and again, with other slices, on line {line}"
            )
        table[key], lines[key] = indices, line
    return table


def _indices(cell: str, where: str) -> list[int]:
    """The indices of one cell: ``3;4;5``, ``3-5``, ``3-5;9``."""
    indices: list[int] = []
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        match = _RANGE.match(part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise DataError(f"{where}: slice range {part!r} runs backwards; write it as {last}-{first}")
            if last >= MAX_SLICES:
                raise DataError(
                    f"{where}: slice range {part!r} reaches past {MAX_SLICES} slices, more than any scan has"
                )
            indices += range(first, last + 1)
        elif part.isdigit():
            indices.append(int(part))
        else:
            raise DataError(f"{where}: slices {cell!r}; expected indices like 3;4;5 or 3-5")
    return indices
