"""Loading CT volumes (NIfTI files or DICOM series folders) and windowing Hounsfield units.

Orientation rule: ``load_ct`` returns ``(D, H, W)`` with the axial slices on ``D`` (the
file's last array axis for NIfTI), rows ``H`` along the file's second axis and columns
``W`` along its first, i.e. ``array.transpose(2, 1, 0)`` of what nibabel reads. No
reorientation to a standard anatomical frame is done.

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

from ..errors import DataError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DEFAULT_HU_WINDOW = (-1000.0, 400.0)


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def load_ct(path: str | os.PathLike, *, rotate90: bool = False) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a CT scan in Hounsfield units.

    Args:
        path: a ``.nii`` / ``.nii.gz`` file or a folder holding one DICOM series.
        rotate90: rotate every axial slice as the ViPTT-Net reference did (see module docs).

    Returns:
        ``(volume, spacing)``: float32 ``(D, H, W)`` in HU, and voxel spacing ``(d, h, w)`` in mm.

    Raises:
        DataError: the path is missing, unreadable, not 3D, or holds NaN/inf voxels.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        array, affine = _read_with_monai(path, reader="PydicomReader")
    elif is_nifti(path):
        array, affine = _read_with_monai(path, reader="NibabelReader")
    else:
        raise DataError(f"{path}: expected a .nii/.nii.gz file or a DICOM series folder")
    array = np.squeeze(array)
    if array.ndim != 3 or min(array.shape) < 2:
        raise DataError(f"{path}: expected a 3D volume, got an array of shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise DataError(f"{path}: volume holds {bad} NaN or infinite voxels")
    # File axes (x, y, z) -> (D=z, H, W); voxel sizes are the affine's column norms.
    xyz_spacing = np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))
    # np.rot90 of an (x, y) slice is (y, x) flipped vertically: rows still run along y.
    volume = np.rot90(array, k=1, axes=(0, 1)).transpose(2, 0, 1) if rotate90 else array.transpose(2, 1, 0)
    spacing = (xyz_spacing[2], xyz_spacing[1], xyz_spacing[0])
    return np.ascontiguousarray(volume, dtype=np.float32), tuple(float(s) for s in spacing)


def _read_with_monai(path: Path, reader: str) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():  # MONAI announces optional GPU decoders it cannot find
        warnings.simplefilter("ignore")
        logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
        from monai.transforms import LoadImage

        loader = LoadImage(reader=reader, image_only=False, dtype=np.float32)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*nvImageCodec.*")
            image, meta = loader(str(path))
    except Exception as err:  # MONAI wraps nibabel/pydicom/zlib errors several layers deep
        cause = err.__cause__ or err
        raise DataError(f"{path}: could not read the scan ({type(cause).__name__}: {cause})") from err
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    affine = meta.get("original_affine", meta.get("affine"))
    affine = np.eye(4) if affine is None else np.asarray(affine)
    return array, affine


def hu_window(volume: ArrayT, lo: float = DEFAULT_HU_WINDOW[0], hi: float = DEFAULT_HU_WINDOW[1]) -> ArrayT:
    """Clip Hounsfield units to ``[lo, hi]`` and scale linearly to [0, 1] (float32).

    The default window ``[-1000, 400]`` is the paper's: air to dense soft tissue.
    """
    if not hi > lo:
        raise ValueError(f"hu_window needs hi > lo, got lo={lo}, hi={hi}")
    if isinstance(volume, torch.Tensor):
        return ((volume.float().clamp(lo, hi) - lo) / (hi - lo)).float()
    return ((np.clip(np.asarray(volume, dtype=np.float32), lo, hi) - lo) / (hi - lo)).astype(np.float32)
