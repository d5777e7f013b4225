"""MedMNIST 3D: six small real-data benchmarks, read from the ``.npz`` files the ``medmnist`` package keeps.

MedMNIST v2 (Yang et al., Scientific Data 2023, CC BY 4.0) ships each 3D set as one ``.npz``
file with its official split: ``train_images`` ``(N, D, H, W)`` uint8 and ``train_labels``
``(N, 1)``, the same for ``val_`` and ``test_``, at 28 voxels a side (``<flag>.npz``) or 64
(``<flag>_64.npz``). The ``medmnist`` package downloads them into ``~/.medmnist``;
`MedMNIST3D` reads them from there (or from any path) without that package.

==================  =======  =========================================================
flag                classes  what
==================  =======  =========================================================
organmnist3d        11       abdominal organs in CT
nodulemnist3d       2        lung nodules in CT: benign or malignant
adrenalmnist3d      2        adrenal-gland shapes from abdominal CT: normal or mass
fracturemnist3d     3        rib fractures in CT: buckle, non-displaced, displaced
vesselmnist3d       2        brain vessel segments from MRA: vessel or aneurysm
synapsemnist3d      2        synapses in electron microscopy: inhibitory or excitatory
==================  =======  =========================================================

The class names are the ``medmnist`` package's. Volumes are scaled from 0-255 to [0, 1];
the first array axis of each volume is its depth (the slices the model reads in order).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .provenance import TrainingData
from .splits import SplitSettings, split_parts

MEDMNIST_3D: dict[str, tuple[str, ...]] = {
    "organmnist3d": (
        "liver",
        "kidney-right",
        "kidney-left",
        "femur-right",
        "femur-left",
        "bladder",
        "heart",
        "lung-right",
        "lung-left",
        "spleen",
        "pancreas",
    ),
    "nodulemnist3d": ("benign", "malignant"),
    "adrenalmnist3d": ("normal", "hyperplasia"),
    "fracturemnist3d": ("buckle rib fracture", "nondisplaced rib fracture", "displaced rib fracture"),
    "vesselmnist3d": ("vessel", "aneurysm"),
    "synapsemnist3d": ("inhibitory synapse", "excitatory synapse"),
}
"""The six MedMNIST 3D sets and their class names, in label order (the ``medmnist`` package's ``INFO``)."""
MEDMNIST_SPLITS = ("train", "val", "test")
MEDMNIST_ROOT = Path("~/.medmnist")
"""Where the ``medmnist`` package keeps its files, and where `MedMNIST3D` looks for a flag."""


def resolve_medmnist(source: str | os.PathLike, root: str | os.PathLike | None = None) -> tuple[Path, str | None]:
    """The ``.npz`` file ``source`` names and its set's flag (``None`` for a file of another name).

    Args:
        source: a flag (``"adrenalmnist3d"``, ``"adrenalmnist3d_64"``), looked up as ``<root>/<flag>.npz``,
            or a path to an ``.npz`` file.
        root: where flags are looked up (default ``~/.medmnist``, the ``medmnist`` package's).

    Raises:
        DataError: the file is missing (the message says where to put it), or a flag names a 2D set.
    """
    text = str(source)
    if text.lower().endswith(".npz") or os.sep in text or "/" in text:
        path = Path(text).expanduser()
        flag = _flag(path.stem)
        if not path.is_file():
            raise DataError(f"{path}: MedMNIST file not found; expected an .npz of the medmnist package")
        return path, flag
    base = _flag(text.lower())
    if base is None:
        raise DataError(
            f"{source!r} is not a MedMNIST 3D flag; one of {', '.join(MEDMNIST_3D)} "
            "(add _64 for the 64-voxel files), or a path to an .npz file"
        )
    folder = Path(root if root is not None else MEDMNIST_ROOT).expanduser()
    path = folder / f"{text.lower()}.npz"
    if not path.is_file():
        raise DataError(f"{path}: not found. Put {path.name} in {folder} (or pass its path): {_download_hint(text)}")
    return path, base


def _download_hint(flag: str) -> str:
    """How to get a flag's file: the ``medmnist`` package's downloader, or the Zenodo record."""
    base, size = _flag(flag), 64 if flag.lower().endswith("_64") else 28
    python_class = base.removesuffix("mnist3d").capitalize() + "MNIST3D"
    return (
        f"pip install medmnist; python -c \"import medmnist; medmnist.{python_class}(split='test', size={size}, "
        'download=True)" writes it there, or download it from https://zenodo.org/records/10519652'
    )


def _flag(name: str) -> str | None:
    """The 3D set a file name or flag belongs to (``adrenalmnist3d_64`` -> ``adrenalmnist3d``), if any."""
    stem = name.lower()
    for size in ("_28", "_64"):
        stem = stem.removesuffix(size)
    return stem if stem in MEDMNIST_3D else None


def read_medmnist_split(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 volumes ``(N, D, H, W)`` and class indices ``(N,)`` of one split of a MedMNIST ``.npz``.

    Raises:
        DataError: an unreadable file, a missing array, a 2D set, or labels that are not one class per volume.
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            keys = set(arrays.files)
            wanted = (f"{split}_images", f"{split}_labels")
            if not set(wanted) <= keys:
                raise DataError(f"{path}: no {' / '.join(wanted)} arrays (found {sorted(keys)}); not a MedMNIST file?")
            images, labels = arrays[wanted[0]], arrays[wanted[1]]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: not a readable .npz file ({type(err).__name__}: {err})") from err
    if images.ndim != 4 or images.dtype != np.uint8:
        raise DataError(
            f"{path}: {split}_images is {images.dtype} {images.shape}; a MedMNIST 3D set holds uint8 (N, D, H, W) "
            "volumes (2D sets are not volumes)"
        )
    if labels.ndim == 2 and labels.shape[1] != 1:
        raise DataError(f"{path}: {split}_labels {labels.shape} holds several labels per volume; expected one class")
    labels = labels.reshape(-1).astype(np.int64)
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} {split} volumes but {len(labels)} labels")
    return images, labels


class MedMNIST3D(Dataset):
    """One split of a MedMNIST 3D set: ``(volume (1, D, H, W) float32 in [0, 1], class index)`` samples.

    Args:
        source: a flag (``"adrenalmnist3d"``, ``"adrenalmnist3d_64"``, any of `MEDMNIST_3D`) looked
            up in ``root``, or a path to an ``.npz`` in the ``medmnist`` package's format.
        split: ``"train"``, ``"val"`` or ``"test"`` (the official split), or several to pool them
            (``("train", "val")``: what cross-validation folds).
        root: where flags are looked up (default ``~/.medmnist``).

    Attributes:
        class_names: the classes, in label order (``classes`` too, as slicevid's datasets name them).
        labels: every sample's class index.
        path: the ``.npz`` file.

    Raises:
        DataError: a missing file (the message says where to put it and how to get it), an
            unreadable or foreign one, or a label outside the set's classes.
    """

    def __init__(
        self, source: str | os.PathLike, split: str | Sequence[str] = "train", root: str | os.PathLike | None = None
    ) -> None:
        self.path, self.flag = resolve_medmnist(source, root)
        splits = (split,) if isinstance(split, str) else tuple(split)
        unknown = sorted(set(splits) - set(MEDMNIST_SPLITS))
        if not splits or unknown:
            raise DataError(f"split must be train, val or test (or several of them), got {split!r}")
        self.split = "+".join(splits)
        parts = [read_medmnist_split(self.path, name) for name in splits]
        self.images = np.concatenate([images for images, _ in parts])
        self.labels = np.concatenate([labels for _, labels in parts])
        self._ids = [
            f"{name}/{i:04d}" for name, (images, _) in zip(splits, parts, strict=True) for i in range(len(images))
        ]
        self.spec = TrainingData(kind="medmnist", root=os.path.abspath(self.path), split_by="official")
        count = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.classes = MEDMNIST_3D[self.flag] if self.flag else tuple(str(i) for i in range(max(count, 2)))
        if len(self.labels) and (self.labels.min() < 0 or count > len(self.classes)):
            raise DataError(
                f"{self.path}: labels {sorted(set(self.labels.tolist()))} outside {len(self.classes)} classes"
            )

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.classes

    @property
    def file_ids(self) -> list[str]:
        """Each volume's id: its official split and index (``"test/0007"``)."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        volume = torch.from_numpy(self.images[index]).float().div_(255.0)
        return volume[None], int(self.labels[index])

    def select(self, indices: Sequence[int], **spec: Any) -> MedMNIST3D:
        """The samples at ``indices`` (a cross-validation fold's part), as a dataset of the same kind.

        Args:
            indices: which samples, in the order to keep.
            **spec: `TrainingData` fields that describe how they were chosen (``folds``, ``fold``, ``seed`` ...).
        """
        indices = np.asarray(indices, dtype=np.int64)
        subset = object.__new__(MedMNIST3D)
        subset.__dict__.update(self.__dict__)
        subset.images, subset.labels = self.images[indices], self.labels[indices]
        subset._ids = [self._ids[i] for i in indices]
        subset.spec = replace(self.spec, **spec)
        return subset

    def fold_parts(self, settings: SplitSettings, seed: int) -> dict[str, MedMNIST3D]:
        """This (pooled) set cut as ``settings`` ask: ``{"train", "val", "test"}`` datasets of one fold.

        Cross-validation pools the official training and validation volumes
        (``MedMNIST3D(flag, ("train", "val"))``) and cuts them into stratified folds; the held-out
        fold is ``"test"``, and the rest is split into training and validation by ``val_fraction``.
        """
        parts = split_parts(len(self), settings, seed, stratify=self.labels)
        spec = {
            "split_by": "folds" if settings.folds else "stratified",
            "folds": settings.folds,
            "fold": settings.fold,
            "seed": seed,
            "val_fraction": settings.val_fraction,
        }
        return {part: self.select(indices, **spec) for part, indices in parts.items()}

    def class_counts(self) -> np.ndarray:
        """Volumes per class."""
        return np.bincount(self.labels, minlength=len(self.classes))

    def depths(self) -> list[int]:
        """Every volume's depth (one for the whole file)."""
        return [self.images.shape[1]] * len(self)

    def input_spec(self) -> dict[str, Any]:
        """The input size and range a model trained on this set records."""
        return {"input_size": tuple(int(s) for s in self.images.shape[1:]), "input_range": (0.0, 1.0)}

    def data_spec(self) -> TrainingData:
        """Where the samples come from: the file, and the official split or the folds (what ``evaluate`` rebuilds)."""
        return self.spec
