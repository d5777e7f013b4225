"""CT-report phantoms: several findings per scan, which lung they are in, a severity level, and slice labels.

The ImageCLEF tuberculosis task also ran a CT-report task (several binary findings per scan,
scored by mean and minimum AUC) and a severity task. These phantoms exercise the same kinds of
target, on the same procedural lesions as `write_tb_phantoms()`:

* **findings**: one to three of the five lesion patterns at once (a 0/1 column per pattern);
* **laterality**: whether the right and the left lung hold a lesion (``RightLung``, ``LeftLung``,
  radiologically: the patient's right lung at the image's left);
* **type**: the dominant pattern (the one changing the most voxels), as ``TypeOfTB`` 1..5;
* **severity**: ``low``, ``medium`` or ``high`` lesion burden (the share of the volume the
  lesions change, cut at 0.35% and 0.75%: about a third of the phantoms each);
* **slice targets**: ``slices.csv`` lists the slices each scan's lesions touch, and a sibling
  folder ``<root>-masks/`` holds each scan's lesion mask (NIfTI, the scan's geometry; outside the
  scan folder, so the masks are never taken for scans).

A share of the finding cells (``missing``) is left empty, as real reports leave findings
unrecorded: training must mask them, not read them as absent. These are **synthetic stand-ins,
not medical data**.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..._io import atomic_write, atomic_write_text
from ...errors import ConfigError
from ..imageclef import TB_CLASSES, TB_FILE_COLUMN, TB_LABEL_COLUMN
from .phantoms import LUNG_SIDES, _Grid, make_findings_phantom

SEVERITY_LEVELS = ("low", "medium", "high")
SEVERITY_CUTS = (0.0035, 0.0075)
"""Lesion burden (share of the volume) at which severity becomes medium, then high."""
LATERALITY = ("RightLung", "LeftLung")


def mask_folder(root: str | os.PathLike) -> Path:
    """Where `write_report_phantoms()` writes the masks of the scans in ``root``."""
    root = Path(root)
    return root.with_name(f"{root.name}-masks")


def write_report_phantoms(
    root: str | os.PathLike,
    count: int = 60,
    shape: tuple[int, int, int] = (32, 64, 64),
    seed: int | list[int] = 0,
    *,
    missing: float = 0.05,
    prefix: str = "TRN",
) -> Path:
    """Write CT-report phantoms (NIfTI, HU), their lesion masks, ``labels.csv`` and ``slices.csv``.

    Args:
        root: output folder of the scans and the two CSV files (the masks go beside it, in ``<root>-masks``).
        count: number of phantoms.
        shape: ``(depth, height, width)`` of each.
        seed: seed of everything random; ``[seed, 1]`` gives an independent second set (a test set).
        missing: share of finding cells left empty.
        prefix: file-name prefix (``"TST"`` for a test set).

    Returns:
        The path of ``labels.csv``: ``FileName``, ``TypeOfTB``, one 0/1 column per pattern, ``RightLung``,
        ``LeftLung`` and ``Severity``.
    """
    import nibabel as nib

    if count < 1 or not 0 <= missing < 1 or min(shape) < 2:
        raise ConfigError(
            "count, shape, missing", f"must be >= 1, >= 2 each and in [0, 1); got {count}, {shape}, {missing}"
        )
    root = Path(root)
    masks = mask_folder(root)
    rng = np.random.default_rng(seed)
    spacing = _Grid(tuple(shape)).spacing
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    findings_header = [name.replace("-", "") for name in TB_CLASSES]
    rows = [",".join([TB_FILE_COLUMN, TB_LABEL_COLUMN, *findings_header, *LATERALITY, "Severity"])]
    slice_rows = ["FileName,slices"]
    for index in range(1, count + 1):
        patterns = rng.choice(len(TB_CLASSES), size=int(rng.integers(1, 4)), replace=False)
        sides = rng.integers(0, 2, size=len(patterns))
        volume, lesion_map = make_findings_phantom(
            list(zip(patterns.tolist(), sides.tolist(), strict=True)), shape, rng
        )
        lesion = lesion_map > 0
        name = f"{prefix}_{index:04d}.nii.gz"
        for folder, array in ((root, np.round(volume).astype(np.int16)), (masks, lesion_map)):
            image = nib.Nifti1Image(array.transpose(2, 1, 0), affine)
            image.header.set_xyzt_units("mm")
            atomic_write(folder / name, lambda tmp, img=image: nib.save(img, str(tmp)))
        present = [int(k in patterns) for k in range(len(TB_CLASSES))]
        cells = ["" if rng.random() < missing else str(v) for v in present]
        lungs = [str(int(side in sides)) for side in range(len(LUNG_SIDES))]
        severity = SEVERITY_LEVELS[int(np.searchsorted(SEVERITY_CUTS, lesion.mean()))]
        dominant = int(np.bincount(lesion_map.ravel(), minlength=len(TB_CLASSES) + 1)[1:].argmax()) + 1
        rows.append(",".join([name, str(dominant), *cells, *lungs, severity]))
        touched = np.flatnonzero(lesion.any(axis=(1, 2)))
        slice_rows.append(f"{name},{';'.join(map(str, touched))}")
    atomic_write_text(root / "slices.csv", "\n".join(slice_rows) + "\n")
    atomic_write_text(root / "labels.csv", "\n".join(rows) + "\n")
    return root / "labels.csv"
