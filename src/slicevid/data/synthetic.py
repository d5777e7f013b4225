"""Embedded synthetic data: CT-like phantoms and action videos, written to real files.

These are **synthetic stand-ins, not medical data**. They exist so the demo, the tests,
the docs and CI exercise the real loaders (NIfTI in Hounsfield units, encoded video in
the UCF50 layout) on any machine, offline, in minutes. Both writers are deterministic
from their seed.

Phantoms have a body, two lungs and airways, plus one of five procedural lesion
patterns, loosely after the five TB types:

====================  ==============================================================
class                 lesion pattern
====================  ==============================================================
Infiltrative          patchy consolidation (thresholded smooth noise)
Focal                 a few nodules clustered in a short column along the body axis
Tuberculoma           one round mass
Miliary               many small nodules scattered through both lungs
Fibro-cavernous       a cavity: air inside a thick wall
====================  ==============================================================

Focal and Tuberculoma differ only *across* slices: any one slice through either shows a
round blob of similar size at a similar place, but the Focal column alternates blobs and
gaps along depth while the mass is one continuous sphere. An order-blind per-slice model
struggles with that pair; a sequence model need not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._io import atomic_write, atomic_write_text
from .imageclef import TB_CLASSES
from .video import UCF50_PAPER_CLASSES

AIR_HU, LUNG_HU, TISSUE_HU = -1000.0, -850.0, 40.0
LESION_HU = 300.0  # dense (calcified-like) lesions stand out from soft tissue after the HU window
FOV_MM, BODY_LENGTH_MM = 340.0, 300.0


class _Grid:
    """Voxel-centre coordinates in millimetres, centred on the volume."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        depth, height, width = shape
        self.spacing = (BODY_LENGTH_MM / depth, FOV_MM / height, FOV_MM / width)
        self.axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, self.spacing, strict=True)]
        self.shape = shape

    def ellipsoid(self, center: Sequence[float], radii: Sequence[float]) -> tuple[tuple[slice, ...], np.ndarray]:
        """Bounding-box slices and the boolean mask of an ellipsoid inside them."""
        box, parts = [], []
        for axis, c, r, s in zip(self.axes, center, radii, self.spacing, strict=True):
            lo = int(np.searchsorted(axis, c - r - s))
            hi = int(np.searchsorted(axis, c + r + s))
            box.append(slice(lo, max(lo, hi)))
            parts.append(((axis[lo:hi] - c) / r) ** 2)
        d2 = parts[0][:, None, None] + parts[1][None, :, None] + parts[2][None, None, :]
        return tuple(box), d2 <= 1.0


def _paint(volume: np.ndarray, grid: _Grid, center, radii, value: float, where: np.ndarray | None = None) -> None:
    box, mask = grid.ellipsoid(center, radii)
    if where is not None:
        mask &= where[box]
    volume[box][mask] = value


def _segment_mask(grid: _Grid, start, end, radius: float) -> np.ndarray:
    z, y, x = np.meshgrid(*grid.axes, indexing="ij")
    p, a, b = np.stack([z, y, x], -1), np.asarray(start, float), np.asarray(end, float)
    t = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * (b - a)), axis=-1) <= radius


def _lung_point(rng: np.random.Generator, lungs: list[tuple[np.ndarray, np.ndarray]], spread: float = 0.55):
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
    top = -BODY_LENGTH_MM / 2
    carina = np.array([-40.0, -20.0, 0.0])
    airways = _segment_mask(grid, (top, -20, 0), carina, 9.0)
    for side in (-1, 1):
        airways |= _segment_mask(grid, carina, (10.0, -5.0, side * 55.0), 5.5)
    volume[airways] = AIR_HU
    before = volume.copy()
    _paint_lesions(volume, grid, label, lungs, lung_mask, rng)
    lesion = volume != before
    volume += rng.normal(0.0, rng.uniform(15, 40), size=shape).astype(np.float32)
    return (volume, lesion) if return_lesion else volume


def _paint_lesions(volume, grid, label, lungs, lung_mask, rng) -> None:
    if label == 0:  # patchy consolidation
        from scipy.ndimage import gaussian_filter

        center, radius = _lung_point(rng, lungs, 0.4), rng.uniform(50, 70)
        field = gaussian_filter(rng.normal(size=volume.shape), sigma=2.0)
        box, region = grid.ellipsoid(center, (radius, radius, radius))
        patch = region & (field[box] > np.quantile(field, 0.5)) & lung_mask[box]
        volume[box][patch] = LESION_HU - rng.uniform(0, 60)
    elif label == 1:  # a short column of nodules along depth, gaps between them
        center, radius = _lung_point(rng, lungs, 0.3), rng.uniform(14, 20)
        count, step = rng.integers(3, 5), radius * rng.uniform(2.6, 3.0)
        for k in range(count):
            offset = (k - (count - 1) / 2) * step
            _paint(volume, grid, center + np.array([offset, 0.0, 0.0]), (radius,) * 3, LESION_HU, lung_mask)
    elif label == 2:  # one round mass
        radius = rng.uniform(18, 30)
        _paint(volume, grid, _lung_point(rng, lungs, 0.3), (radius,) * 3, LESION_HU, lung_mask)
    elif label == 3:  # many small nodules
        for _ in range(rng.integers(35, 60)):
            radius = rng.uniform(5.5, 7.5)
            _paint(volume, grid, _lung_point(rng, lungs, 0.85), (radius,) * 3, LESION_HU, lung_mask)
    elif label == 4:  # thick-walled cavity
        center, outer = _lung_point(rng, lungs, 0.3), rng.uniform(24, 32)
        _paint(volume, grid, center, (outer,) * 3, LESION_HU, lung_mask)
        inner = outer - rng.uniform(8, 11)
        _paint(volume, grid, center, (inner,) * 3, AIR_HU, lung_mask)
    else:
        raise ValueError(f"label must be 0..4, got {label}")


def write_tb_phantoms(
    root: str | os.PathLike,
    n_per_class: int = 8,
    shape: tuple[int, int, int] = (48, 96, 96),
    seed: int = 0,
) -> Path:
    """Write ``5 * n_per_class`` phantom scans as int16 NIfTI (HU, mm spacing) plus ``labels.csv``.

    Files are named ``TRN_0001.nii.gz`` ...; the CSV has the challenge's columns
    (``FileName``, ``TypeOfTB`` = 1..5) in shuffled class order.

    Returns:
        The path of the label CSV.
    """
    import nibabel as nib

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(TB_CLASSES)), n_per_class))
    spacing = _Grid(shape).spacing
    affine = np.diag([spacing[2], spacing[1], spacing[0], 1.0])
    rows = []
    for index, label in enumerate(labels, start=1):
        volume = make_phantom(int(label), shape, rng)
        image = nib.Nifti1Image(np.round(volume).astype(np.int16).transpose(2, 1, 0), affine)
        image.header.set_xyzt_units("mm")
        name = f"TRN_{index:04d}.nii.gz"
        atomic_write(root / name, lambda tmp, img=image: nib.save(img, str(tmp)))
        rows.append((name, int(label) + 1))
    csv_path = root / "labels.csv"
    lines = ["FileName,TypeOfTB", *(f"{n},{lab}" for n, lab in rows)]
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
    return csv_path


# ----------------------------------------------------------------------------- videos
def _frame(kind: int, t: float, size: int, phase: float, colors, rng_noise: np.ndarray) -> np.ndarray:
    """One RGB frame of motion pattern ``kind`` at time ``t`` in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    background, foreground = colors
    frame = np.empty((size, size, 3), np.float32)
    frame[:] = background
    angle = 2 * np.pi * (t + phase)
    centers = {
        0: [(-0.8 + 1.6 * t, 0.0)],  # left to right
        1: [(0.0, -0.8 + 1.6 * t)],  # top to bottom
        2: [(0.55 * np.cos(angle), 0.55 * np.sin(angle))],  # orbit
        3: [(0.0, 0.7 - 1.4 * abs(np.sin(angle)))],  # bounce
        5: [(-0.7 + 1.4 * t, -0.7 + 1.4 * t)],  # diagonal
        6: [(0.7 * np.sin(2 * angle), 0.0)],  # fast side-to-side
        8: [(-0.1 - 0.6 * t, 0.0), (0.1 + 0.6 * t, 0.0)],  # two apart
        9: [(-0.8 + 1.6 * t, 0.5 * np.sign(np.sin(3 * angle)))],  # zig-zag
    }
    if kind in centers:
        for cx, cy in centers[kind]:
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < 0.2**2] = foreground
    elif kind == 4:  # pulsing disc
        radius = 0.15 + 0.35 * (0.5 + 0.5 * np.sin(angle))
        frame[xx**2 + yy**2 < radius**2] = foreground
    elif kind == 7:  # rotating bar
        along = xx * np.cos(angle) + yy * np.sin(angle)
        across = -xx * np.sin(angle) + yy * np.cos(angle)
        frame[(np.abs(along) < 0.75) & (np.abs(across) < 0.1)] = foreground
    return np.clip(frame + rng_noise, 0, 255).astype(np.uint8)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 25) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames as an MPEG-4 AVI with PyAV (atomically)."""
    import av

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="avi") as container:
            stream = container.add_stream("mpeg4", rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = 4_000_000
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())

    atomic_write(path, encode)


def write_action_videos(
    root: str | os.PathLike,
    classes: Sequence[str] = UCF50_PAPER_CLASSES,
    n_per_class: int = 4,
    frames: int = 40,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write encoded action clips in the UCF50 layout: ``root/<Class>/v_<Class>_gNN_cNN.avi``.

    Each class (up to 10) gets its own motion of a shape: sliding, falling, orbiting,
    bouncing, pulsing, a diagonal, shaking, a rotating bar, two shapes parting, a zig-zag.
    Groups (``gNN``) share a background colour, as UCF groups share a scene.
    """
    if len(classes) > 10:
        raise ValueError(f"write_action_videos has 10 motion patterns, got {len(classes)} classes")
    if size % 2:
        raise ValueError(f"size must be even for MPEG-4, got {size}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind, name in enumerate(classes):
        for clip in range(n_per_class):
            group = clip // 2 + 1
            background = np.random.default_rng([seed, group]).uniform(30, 110, size=3)
            colors = (background, rng.uniform(150, 255, size=3))
            phase, speed = rng.uniform(0, 1), rng.uniform(0.8, 1.2)
            noise = rng.normal(0, 6, size=(size, size, 3))
            images = np.stack([_frame(kind, (i / frames) * speed, size, phase, colors, noise) for i in range(frames)])
            write_video(root / name / f"v_{name}_g{group:02d}_c{clip % 2 + 1:02d}.avi", images)
    return root
