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
from typing import Literal, TypeVar, get_args

import numpy as np
import torch

from ..errors import ConfigError, DataError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
NIFTI_SUFFIXES = (".nii.gz", ".nii")
"""NIfTI file endings, longest first (a name loses the first one it ends with)."""
DICOM_SUFFIXES = (".dcm", ".dicom")
"""Names that mark DICOM files (others are recognised by their content)."""
DEFAULT_HU_WINDOW = (-1000.0, 400.0)
NanPolicy = Literal["raise", "replace"]
NAN_POLICIES: tuple[str, ...] = get_args(NanPolicy)


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
    series: str | int | None = None,
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a CT scan in Hounsfield units.

    Args:
        path: a ``.nii`` / ``.nii.gz`` file, a folder holding one DICOM series (or one
            multi-frame file), or one multi-frame DICOM file.
        rotate90: rotate every axial slice as the ViPTT-Net reference did (see module docs).
        nan_policy: ``"raise"`` a `DataError` on NaN or infinite voxels, or ``"replace"``
            them by ``nan_value`` with a warning that names the file and the count.
        nan_value: the replacement value, in HU (air by default).
        series: the series to read from a folder that holds several (its UID, or its number
            in the error message that lists them).

    Returns:
        ``(volume, spacing)``: float32 ``(D, H, W)`` in HU, and voxel spacing ``(d, h, w)`` in mm.

    Raises:
        DataError: the path is missing, not a regular file or folder, unreadable, not one 3D
            volume (a single slice, a colour image, a non-image DICOM object), holds several
            DICOM series, its geometry cannot be trusted, or it holds NaN/inf voxels under
            ``nan_policy="raise"``. See `slicevid.data.dicom` for every DICOM case.
    """
    from . import dicom

    if nan_policy not in NAN_POLICIES:
        raise ConfigError("nan_policy", f"must be one of {NAN_POLICIES}, got {nan_policy!r}")
    path = check_scan_path(path)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        single = files[0] if len(files) == 1 else None
        header = dicom.read_header(single) if single is not None else None
        if header is not None and dicom.frame_count(header, single) > 1:
            volume, spacing = dicom.read_multiframe(single, header)
        else:
            volume, spacing = dicom.read_series(path, series)
    elif is_nifti(path):
        check_nifti_file(path)
        volume, spacing = _file_axes_to_dhw(path, *_read_with_monai(path, reader="NibabelReader"))
    else:
        header = _dicom_or_refuse(path)
        if dicom.frame_count(header, path) < 2:
            dicom.check_image(header, path)
            raise DataError(f"{path}: a single-frame DICOM file is one slice; pass the folder holding the whole series")
        volume, spacing = dicom.read_multiframe(path, header)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise DataError(f"{path}: expected a 3D volume, got an array of shape {volume.shape} (one slice?)")
    volume = _check_finite(path, volume, nan_policy, nan_value)
    if rotate90:  # np.rot90 of an (x, y) slice is (y, x) flipped vertically: rows still run along y.
        volume = np.rot90(volume.transpose(2, 1, 0), k=1, axes=(0, 1)).transpose(2, 0, 1)
    return np.ascontiguousarray(volume, dtype=np.float32), spacing


def _dicom_or_refuse(path: Path):
    from .dicom import read_header

    try:
        return read_header(path)
    except DataError:
        raise DataError(
            f"{path}: expected a .nii/.nii.gz file, a DICOM series folder or a multi-frame DICOM file"
        ) from None


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


def check_nifti_file(path: Path) -> None:
    """Refuse what is not a NIfTI file before a reader tries: wrong compression for the name, no NIfTI header."""
    import gzip

    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    if path.name.lower().endswith(".gz") and not compressed:
        raise DataError(f"{path}: named .nii.gz but not gzip-compressed; a .nii file renamed?")
    if not path.name.lower().endswith(".gz") and compressed:
        raise DataError(f"{path}: gzip-compressed data named .nii; rename it .nii.gz")
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            size = handle.read(4)
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: damaged gzip data ({err})") from err
    if len(size) < 4 or (
        int.from_bytes(size, "little") not in (348, 540) and int.from_bytes(size, "big") not in (348, 540)
    ):
        raise DataError(f"{path}: not a NIfTI file (no NIfTI-1 or NIfTI-2 header)")


def scan_depth_and_spacing(path: str | os.PathLike) -> tuple[int, tuple[float, float, float]]:
    """A scan's slice count and spacing ``(d, h, w)`` in mm, from its header(s) alone where the format allows."""
    from .dicom import series_depth

    path = check_scan_path(path)
    if is_nifti(path):
        import nibabel as nib

        check_nifti_file(path)
        try:
            header = nib.load(str(path)).header
        except Exception as err:  # nibabel raises many types for broken files
            raise DataError(f"{path}: could not read the NIfTI header ({type(err).__name__}: {err})") from err
        shape, zooms = header.get_data_shape(), header.get_zooms()
        if len(shape) < 3:
            raise DataError(f"{path}: expected a 3D volume, got an image of shape {shape}")
        return int(shape[2]), (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")] if path.is_dir() else []
    if path.is_dir() and len(files) > 1:
        return series_depth(path)
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
    except Exception as err:  # MONAI wraps nibabel/zlib errors several layers deep
        cause = err.__cause__ or err
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        raise DataError(f"{path}: could not read the scan ({type(cause).__name__}: {first})") from err
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    affine = meta.get("original_affine", meta.get("affine"))
    affine = np.eye(4) if affine is None else np.asarray(affine)
    return array, affine


def hu_window(volume: ArrayT, lo: float = DEFAULT_HU_WINDOW[0], hi: float = DEFAULT_HU_WINDOW[1]) -> ArrayT:
    """Clip Hounsfield units to ``[lo, hi]`` and scale linearly to [0, 1] (float32).

    The default window ``[-1000, 400]`` is the paper's: air to dense soft tissue.

    Args:
        volume: Hounsfield units (NumPy array or tensor).
        lo: the window's lower bound (maps to 0).
        hi: the window's upper bound (maps to 1).
    """
    if not hi > lo:
        raise ConfigError("window", f"must be (lo, hi) with hi > lo, got lo={lo}, hi={hi}")
    if isinstance(volume, torch.Tensor):
        return ((volume.float().clamp(lo, hi) - lo) / (hi - lo)).float()
    return ((np.clip(np.asarray(volume, dtype=np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)
