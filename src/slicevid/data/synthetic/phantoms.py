"""CT-like phantoms: a body, two lungs and airways in Hounsfield units, plus one lesion pattern.

Five procedural patterns stand in, loosely, for the five TB types. Sizes are in millimetres
and were chosen to stay visible at the demo's coarse resolution (about 7 mm per pixel and
15 to 19 mm between slices), so a small model can learn the task in CPU minutes:

====================  ==============================================================
class                 lesion pattern
====================  ==============================================================
Infiltrative          patchy consolidation (thresholded smooth noise in a region)
Focal                 three nodules in a column along the body axis, gaps between them
Tuberculoma           one round mass, as wide as one Focal nodule
Miliary               many small nodules scattered through both lungs
Fibro-cavernous       a cavity: air inside a thick wall
====================  ==============================================================

Focal and Tuberculoma differ mainly *across* slices: any one slice through either shows
one round blob of the same size distribution at a similar place, but the Focal column
alternates blobs and gaps along depth while the mass is one continuous sphere. That pair
is where reading the slices in order should pay.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..._io import atomic_write, atomic_write_text
from ...errors import ConfigError
from ..imageclef import TB_CLASSES, TB_FILE_COLUMN, TB_LABEL_COLUMN

AIR_HU, LUNG_HU, TISSUE_HU = -1000.0, -850.0, 40.0
LESION_HU = 300.0  # dense (calcified-like) lesions stand out from soft tissue after the HU window
FOV_MM, BODY_LENGTH_MM = 340.0, 300.0
NODULE_RADIUS_MM = (15.0, 20.0)  # one Focal nodule, or the Tuberculoma mass
CHALLENGE_PROPORTIONS = (419, 225, 102, 100, 70)
"""Scans per class among the 916 the paper split (Infiltrative ... Fibro-cavernous)."""


class _Grid:
    """Voxel-centre coordinates in millimetres, centred on the volume."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        depth, height, width = shape
        self.spacing = (BODY_LENGTH_MM / depth, FOV_MM / height, FOV_MM / width)
        self.axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, self.spacing, strict=True)]
        self.shape = shape

    def box(self, low: Sequence[float], high: Sequence[float]) -> tuple[slice, ...]:
        """Index slices of the voxels whose centres lie within ``[low, high]`` mm (one voxel of margin)."""
        return tuple(
            slice(int(np.searchsorted(axis, lo - s)), int(np.searchsorted(axis, hi + s)))
            for axis, lo, hi, s in zip(self.axes, low, high, self.spacing, strict=True)
        )

    def coordinates(self, box: tuple[slice, ...]) -> list[np.ndarray]:
        """Broadcastable z, y, x coordinates (mm) of the voxels in ``box``."""
        z, y, x = (axis[part] for axis, part in zip(self.axes, box, strict=True))
        return [z[:, None, None], y[None, :, None], x[None, None, :]]

    def ellipsoid(self, center: Sequence[float], radii: Sequence[float]) -> tuple[tuple[slice, ...], np.ndarray]:
        """Bounding-box slices and the boolean mask of an ellipsoid inside them."""
        center, radii = np.asarray(center, float), np.asarray(radii, float)
        box = self.box(center - radii, center + radii)
        z, y, x = self.coordinates(box)
        d2 = ((z - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2 + ((x - center[2]) / radii[2]) ** 2
        return box, d2 <= 1.0

    def segment(
        self, start: Sequence[float], end: Sequence[float], radius: float
    ) -> tuple[tuple[slice, ...], np.ndarray]:
        """Bounding-box slices and the mask of a cylinder of ``radius`` mm around a line segment."""
        a, b = np.asarray(start, float), np.asarray(end, float)
        box = self.box(np.minimum(a, b) - radius, np.maximum(a, b) + radius)
        z, y, x = self.coordinates(box)
        points = np.stack(np.broadcast_arrays(z, y, x), axis=-1)
        t = np.clip(((points - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
        return box, np.linalg.norm(points - (a + t[..., None] * (b - a)), axis=-1) <= radius


def _paint(volume: np.ndarray, grid: _Grid, center, radii, value: float, where: np.ndarray | None = None) -> None:
    box, mask = grid.ellipsoid(center, radii)
    if where is not None:
        mask &= where[box]
    volume[box][mask] = value


def _lung_point(rng: np.random.Generator, lungs: list[tuple[np.ndarray, np.ndarray]], spread: float) -> np.ndarray:
    """A random point inside a random lung, within ``spread`` of its radii from the lung's centre."""
    center, radii = lungs[rng.integers(len(lungs))]
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return center + direction * radii * spread * rng.uniform(0.0, 1.0) ** (1 / 3)


def make_phantom(
    label: int, shape: tuple[int, int, int], rng: np.random.Generator, *, return_lesion: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One phantom volume ``(D, H, W)`` in HU (float32) with lesion pattern ``label`` (0..4).

    With ``return_lesion`` also returns the boolean mask of voxels the lesion changed.
    """
    volume, lesions = make_findings_phantom([(label, None)], shape, rng)
    return (volume, lesions > 0) if return_lesion else volume


LUNG_SIDES = ("right", "left")
"""The lungs in array order (radiological convention: the patient's right lung at the image's left)."""


def make_findings_phantom(
    lesions: Sequence[tuple[int, int | None]], shape: tuple[int, int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A phantom ``(D, H, W)`` in HU with several lesions, and a map of which lesion changed each voxel.

    The map holds ``pattern + 1`` where a lesion changed a voxel (the later lesion where two
    overlap) and 0 elsewhere.

    Args:
        lesions: ``(pattern 0..4, lung)`` pairs, the lung an index into `LUNG_SIDES` or
            ``None`` for either (a pattern then picks its lung at random, as `make_phantom()`).
        shape: ``(depth, height, width)``.
        rng: the random generator.
    """
    for label, side in lesions:
        if label not in range(len(TB_CLASSES)) or side not in (None, 0, 1):
            raise ConfigError(
                "lesions", f"must be (pattern 0..{len(TB_CLASSES) - 1}, lung 0, 1 or None), got {lesions}"
            )
    grid = _Grid(shape)
    volume = np.full(shape, AIR_HU, dtype=np.float32)
    body_ry, body_rx = 110 * rng.uniform(0.92, 1.08), 150 * rng.uniform(0.92, 1.08)
    _paint(volume, grid, (0, 0, 0), (BODY_LENGTH_MM, body_ry, body_rx), TISSUE_HU)
    lungs = []
    for side in (-1, 1):
        center = np.array([rng.uniform(-10, 10), rng.uniform(-8, 8), side * rng.uniform(62, 72)])
        radii = np.array([135, 78, 52]) * rng.uniform(0.9, 1.1, size=3)
        _paint(volume, grid, center, radii, LUNG_HU)
        lungs.append((center, radii))
    lung_mask = volume == LUNG_HU
    carina = np.array([-40.0, -20.0, 0.0])
    for start, end, radius in [
        ((-BODY_LENGTH_MM / 2, -20, 0), carina, 9.0),
        (carina, (10.0, -5.0, -55.0), 5.5),
        (carina, (10.0, -5.0, 55.0), 5.5),
    ]:
        box, airway = grid.segment(start, end, radius)
        volume[box][airway] = AIR_HU
    lesion_map = np.zeros(shape, dtype=np.uint8)
    for label, side in lesions:
        before = volume.copy()
        _LESIONS[label](volume, grid, lungs if side is None else [lungs[side]], lung_mask, rng)
        lesion_map[volume != before] = label + 1
    volume += rng.normal(0.0, rng.uniform(15, 40), size=shape).astype(np.float32)
    return volume, lesion_map


def _consolidation(volume, grid, lungs, lung_mask, rng) -> None:
    """Infiltrative: thresholded smooth noise (features about 12 mm across) inside a 45-60 mm region."""
    from scipy.ndimage import gaussian_filter

    center, radius = _lung_point(rng, lungs, 0.4), rng.uniform(45, 60)
    box, region = grid.ellipsoid(center, (radius,) * 3)
    sigma = [12.0 / s for s in grid.spacing]
    field = gaussian_filter(rng.normal(size=region.shape), sigma=sigma, mode="reflect")
    patch = region & (field > np.median(field[region])) & lung_mask[box]
    volume[box][patch] = LESION_HU - rng.uniform(0, 60)


def _nodule_column(volume, grid, lungs, lung_mask, rng) -> None:
    """Focal: three nodules stacked along depth, 25-35 mm of lung between them."""
    radius = rng.uniform(*NODULE_RADIUS_MM)
    step = 2 * radius + rng.uniform(25, 35)
    center = _lung_point(rng, lungs, 0.25)
    center[0] = rng.uniform(-10.0, 10.0)  # near mid-lung, so the whole column stays inside the lung
    for k in (-1, 0, 1):
        _paint(volume, grid, center + np.array([k * step, 0.0, 0.0]), (radius,) * 3, LESION_HU, lung_mask)


def _mass(volume, grid, lungs, lung_mask, rng) -> None:
    """Tuberculoma: one round mass, the size of one Focal nodule."""
    radius = rng.uniform(*NODULE_RADIUS_MM)
    _paint(volume, grid, _lung_point(rng, lungs, 0.3), (radius,) * 3, LESION_HU, lung_mask)


def _miliary(volume, grid, lungs, lung_mask, rng) -> None:
    """Miliary: 25-40 small nodules (7-9 mm radius) through both lungs."""
    for _ in range(rng.integers(25, 41)):
        radius = rng.uniform(7.0, 9.0)
        _paint(volume, grid, _lung_point(rng, lungs, 0.8), (radius,) * 3, LESION_HU, lung_mask)


def _cavity(volume, grid, lungs, lung_mask, rng) -> None:
    """Fibro-cavernous: a 24-32 mm sphere with an air-filled core of half to 60% its radius."""
    center, outer = _lung_point(rng, lungs, 0.3), rng.uniform(24, 32)
    _paint(volume, grid, center, (outer,) * 3, LESION_HU, lung_mask)
    _paint(volume, grid, center, (outer * rng.uniform(0.5, 0.6),) * 3, AIR_HU, lung_mask)


_LESIONS = (_consolidation, _nodule_column, _mass, _miliary, _cavity)


def write_tb_phantoms(
    root: str | os.PathLike,
    n_per_class: int | Sequence[int] = 8,
    shape: tuple[int, int, int] = (48, 96, 96),
    seed: int | Sequence[int] = 0,
    *,
    depths: tuple[int, int] | None = None,
    prefix: str = "TRN",
) -> Path:
    """Write phantom scans as int16 NIfTI (HU, mm spacing) plus ``labels.csv``.

    Files are named ``TRN_0001.nii.gz`` ... (``prefix``); the CSV has the challenge's columns
    (``FileName``, ``TypeOfTB`` = 1..5) in shuffled class order.

    Args:
        root: output folder.
        n_per_class: scans per class: one number for all five, or one per class (e.g. the
            challenge's proportions, `CHALLENGE_PROPORTIONS`).
        shape: ``(depth, height, width)`` of each scan.
        seed: seed of everything random; a sequence such as ``[seed, 1]`` gives a second,
            independent set from the same seed (a test set beside a training set).
        depths: if given, each scan's depth is drawn from ``[low, high]`` (the body keeps its
            length, so the slice spacing varies, as between real scanners).
        prefix: file-name prefix, ``"TST"`` for a test set as in the challenge.

    Returns:
        The path of the label CSV.
    """
    import nibabel as nib

    root = Path(root)
    if len(shape) != 3 or min(shape) < 2:
        raise ConfigError("shape", f"must be three sizes of at least 2 (depth, height, width), got {tuple(shape)}")
    if depths is not None and not 2 <= depths[0] <= depths[1]:
        raise ConfigError("depths", f"must be (low, high) with 2 <= low <= high, got {depths}")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts = [n_per_class] * len(TB_CLASSES) if isinstance(n_per_class, int) else list(n_per_class)
    if len(counts) != len(TB_CLASSES) or min(counts) < 0:
        raise ConfigError("n_per_class", f"must be one count or {len(TB_CLASSES)} counts, got {n_per_class}")
    labels = rng.permutation(np.repeat(np.arange(len(TB_CLASSES)), counts))
    rows = []
    for index, label in enumerate(labels, start=1):
        scan_shape = (int(rng.integers(depths[0], depths[1] + 1)), *shape[1:]) if depths else tuple(shape)
        spacing = _Grid(scan_shape).spacing
        affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
        volume = make_phantom(int(label), scan_shape, rng)
        image = nib.Nifti1Image(np.round(volume).astype(np.int16).transpose(2, 1, 0), affine)
        image.header.set_xyzt_units("mm")
        name = f"{prefix}_{index:04d}.nii.gz"
        atomic_write(root / name, lambda tmp, img=image: nib.save(img, str(tmp)))
        rows.append((name, int(label) + 1))
    csv_path = root / "labels.csv"
    lines = [f"{TB_FILE_COLUMN},{TB_LABEL_COLUMN}", *(f"{n},{lab}" for n, lab in rows)]
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
    return csv_path
