"""Loading CT volumes (NIfTI files, DICOM series folders, multi-frame DICOM) and windowing HU.

Orientation rule: ``load_ct`` returns ``(D, H, W)`` with the axial slices on ``D`` (the
file's last array axis for NIfTI), rows ``H`` along the file's second axis and columns
``W`` along its first, i.e. ``array.transpose(2, 1, 0)`` of what nibabel reads. No
reorientation to a standard anatomical frame is done. A multi-frame (enhanced) DICOM file
has its frames on ``D``, spaced as its frame geometry says.

The ViPTT-Net reference instead took each raw ``(x, y)`` slice and rotated it by 90
degrees (``scipy.ndimage.rotate(slice, 90, reshape=False)``); ``rotate90=True`` reproduces
that exactly for square slices (the challenge's are 512 x 512).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from ..errors import ConfigError, DataError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")
DEFAULT_HU_WINDOW = (-1000.0, 400.0)
NAN_POLICIES = ("raise", "replace")


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def is_dicom_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(DICOM_SUFFIXES)


def load_ct(
    path: str | os.PathLike,
    *,
    rotate90: bool = False,
    nan_policy: str = "raise",
    nan_value: float = DEFAULT_HU_WINDOW[0],
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a CT scan in Hounsfield units.

    Args:
        path: a ``.nii`` / ``.nii.gz`` file, a folder holding one DICOM series, or one
            multi-frame DICOM file (or a folder holding only that file).
        rotate90: rotate every axial slice as the ViPTT-Net reference did (see module docs).
        nan_policy: ``"raise"`` a :class:`DataError` on NaN or infinite voxels, or ``"replace"``
            them by ``nan_value`` with a warning that names the file and the count.
        nan_value: the replacement value, in HU (air by default).

    Returns:
        ``(volume, spacing)``: float32 ``(D, H, W)`` in HU, and voxel spacing ``(d, h, w)`` in mm.

    Raises:
        DataError: the path is missing or unreadable, the image is not one 3D volume, its
            geometry cannot be trusted, or it holds NaN/inf voxels under ``nan_policy="raise"``.
    """
    if nan_policy not in NAN_POLICIES:
        raise ConfigError("nan_policy", f"must be one of {NAN_POLICIES}, got {nan_policy!r}")
    path = check_scan_path(path)
    multiframe = _multiframe_file(path)
    if multiframe is not None:
        volume, spacing = _read_multiframe(multiframe)
    elif path.is_dir():
        volume, spacing = _file_axes_to_dhw(path, *_read_with_monai(path, reader="PydicomReader"))
    elif is_nifti(path):
        volume, spacing = _file_axes_to_dhw(path, *_read_with_monai(path, reader="NibabelReader"))
    elif is_dicom_file(path):
        raise DataError(f"{path}: a single-frame DICOM file is one slice; pass the folder holding the whole series")
    else:
        raise DataError(f"{path}: expected a .nii/.nii.gz file, a DICOM series folder or a multi-frame DICOM file")
    if min(volume.shape) < 2:
        raise DataError(f"{path}: expected a 3D volume, got an array of shape {volume.shape}")
    volume = _check_finite(path, volume, nan_policy, nan_value)
    if rotate90:  # np.rot90 of an (x, y) slice is (y, x) flipped vertically: rows still run along y.
        volume = np.rot90(volume.transpose(2, 1, 0), k=1, axes=(0, 1)).transpose(2, 0, 1)
    return np.ascontiguousarray(volume, dtype=np.float32), spacing


def check_scan_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is a regular file or a folder; else a one-line ``DataError``.

    Anything else (a FIFO or device that would block a read, a broken link, a loop of links)
    is refused before it is opened.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: a broken symbolic link (or a loop of links)")
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not (path.is_file() or path.is_dir()):
        raise DataError(f"{path}: not a regular file or folder (a pipe or a device?); expected a scan")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    return path


def scan_depth_and_spacing(path: str | os.PathLike) -> tuple[int, tuple[float, float, float]]:
    """A scan's slice count and spacing ``(d, h, w)`` in mm, from its header when the format allows."""
    path = check_scan_path(path)
    if is_nifti(path):
        import nibabel as nib

        try:
            header = nib.load(str(path)).header
        except Exception as err:  # nibabel raises many types for broken files
            raise DataError(f"{path}: could not read the NIfTI header ({type(err).__name__}: {err})") from err
        shape, zooms = header.get_data_shape(), header.get_zooms()
        if len(shape) < 3:
            raise DataError(f"{path}: expected a 3D volume, got an image of shape {shape}")
        return int(shape[2]), (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    volume, spacing = load_ct(path)
    return volume.shape[0], spacing


def _check_finite(path: Path, volume: np.ndarray, nan_policy: str, nan_value: float) -> np.ndarray:
    finite = np.isfinite(volume)
    if finite.all():
        return volume
    bad = int(volume.size - finite.sum())
    if nan_policy == "raise":
        raise DataError(
            f"{path}: volume holds {bad} NaN or infinite voxels "
            "(nan_policy='replace' sets them to the window's lower bound)"
        )
    warnings.warn(f"{path}: replaced {bad} NaN or infinite voxels by {nan_value:g} HU", stacklevel=3)
    return np.where(finite, volume, np.float32(nan_value))


def _file_axes_to_dhw(path: Path, array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, tuple[float, ...]]:
    """File axes ``(x, y, z[, channel])`` -> ``(D=z, H=y, W=x)`` and the spacing from the affine."""
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]  # a singleton channel (or time) axis
    if array.ndim != 3:
        extra = f" with {array.shape[3]} values along its 4th axis (time or channels)" if array.ndim == 4 else ""
        raise DataError(f"{path}: expected one 3D volume, got an image of shape {array.shape}{extra}")
    xyz_spacing = np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))
    return array.transpose(2, 1, 0), (float(xyz_spacing[2]), float(xyz_spacing[1]), float(xyz_spacing[0]))


def _read_with_monai(path: Path, reader: str) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # MONAI announces optional GPU decoders it cannot find
        warnings.simplefilter("ignore")
        logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
        from monai.transforms import LoadImage

        loader = LoadImage(reader=reader, image_only=False, dtype=np.float32)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image, meta = loader(str(path))
    except Exception as err:  # MONAI wraps nibabel/pydicom/zlib errors several layers deep
        cause = err.__cause__ or err
        raise DataError(f"{path}: could not read the scan ({type(cause).__name__}: {cause})") from err
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    affine = meta.get("original_affine", meta.get("affine"))
    affine = np.eye(4) if affine is None else np.asarray(affine)
    return array, affine


def _multiframe_file(path: Path) -> Path | None:
    """The multi-frame DICOM file ``path`` is (or a folder's only file), else ``None``."""
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        candidate = files[0] if files else None
    else:
        candidate = path if is_dicom_file(path) else None
    if candidate is None:
        return None
    header = _dicom_header(candidate)
    if header is None or int(header.get("NumberOfFrames", 1) or 1) <= 1:
        return None
    if path.is_dir() and len(files) > 1:
        raise DataError(
            f"{path}: holds {len(files)} files, and {candidate.name} is a multi-frame DICOM of "
            f"{header.NumberOfFrames} frames; expected one series of single-frame files or one "
            "multi-frame file"
        )
    return candidate


def _dicom_header(path: Path):
    import pydicom

    try:
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception:  # not DICOM at all: the series reader reports it with context
        return None


def _read_multiframe(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Frames as depth, rescaled to HU, with the frame spacing from the file's frame geometry."""
    import pydicom

    try:
        dataset = pydicom.dcmread(str(path))
        frames = np.asarray(dataset.pixel_array, dtype=np.float32)
    except Exception as err:
        raise DataError(f"{path}: could not read the multi-frame DICOM ({type(err).__name__}: {err})") from err
    if frames.ndim != 3:
        raise DataError(f"{path}: expected grayscale frames (frames, rows, columns), got shape {frames.shape}")
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    rows, columns = _pixel_spacing(path, dataset)
    depth = _frame_spacing(path, dataset, frames.shape[0])
    return frames * slope + intercept, (depth, rows, columns)


def _shared_group(dataset, sequence: str):
    shared = dataset.get("SharedFunctionalGroupsSequence")
    if shared and sequence in shared[0]:
        return shared[0][sequence][0]
    return None


def _pixel_spacing(path: Path, dataset) -> tuple[float, float]:
    spacing = dataset.get("PixelSpacing")
    measures = _shared_group(dataset, "PixelMeasuresSequence")
    if spacing is None and measures is not None:
        spacing = measures.get("PixelSpacing")
    if spacing is None or len(spacing) != 2:
        raise DataError(f"{path}: multi-frame DICOM without PixelSpacing; its geometry cannot be trusted")
    return float(spacing[0]), float(spacing[1])


def _frame_spacing(path: Path, dataset, count: int) -> float:
    """Distance between frames (mm): from frame offsets or per-frame positions, which must be uniform."""
    positions = None
    if dataset.get("GridFrameOffsetVector") is not None:
        positions = np.asarray(dataset.GridFrameOffsetVector, dtype=np.float64)[:, None]
    elif dataset.get("PerFrameFunctionalGroupsSequence") is not None:
        try:
            positions = np.asarray(
                [
                    frame.PlanePositionSequence[0].ImagePositionPatient
                    for frame in dataset.PerFrameFunctionalGroupsSequence
                ],
                dtype=np.float64,
            )
        except (AttributeError, IndexError, KeyError):
            positions = None
    if positions is not None and len(positions) == count and count > 1:
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        if steps.min() <= 0 or np.ptp(steps) > 0.01 * steps.mean():
            raise DataError(
                f"{path}: frames are not evenly spaced (steps from {steps.min():g} to {steps.max():g} mm); "
                "resample the series before loading it"
            )
        return float(steps.mean())
    measures = _shared_group(dataset, "PixelMeasuresSequence")
    for source in (dataset, measures):
        value = source.get("SpacingBetweenSlices") if source is not None else None
        if value:
            return float(value)
    raise DataError(
        f"{path}: multi-frame DICOM of {count} frames without frame positions or slice spacing; "
        "its geometry cannot be trusted"
    )


def hu_window(volume: ArrayT, lo: float = DEFAULT_HU_WINDOW[0], hi: float = DEFAULT_HU_WINDOW[1]) -> ArrayT:
    """Clip Hounsfield units to ``[lo, hi]`` and scale linearly to [0, 1] (float32).

    The default window ``[-1000, 400]`` is the paper's: air to dense soft tissue.
    """
    if not hi > lo:
        raise ConfigError("window", f"must be (lo, hi) with hi > lo, got lo={lo}, hi={hi}")
    if isinstance(volume, torch.Tensor):
        return ((volume.float().clamp(lo, hi) - lo) / (hi - lo)).float()
    return ((np.clip(np.asarray(volume, dtype=np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)
