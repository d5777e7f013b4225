"""Prediction on new scans: what ``slicevid predict`` runs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .data import TB_CLASSES, CTPreprocessing, CTVolumeDataset
from .data.ct import is_nifti
from .data.imageclef import list_scans
from .errors import DataError
from .model import SliceSequenceClassifier
from .train.distributed import resolve_device


@dataclass(frozen=True)
class Prediction:
    file_id: str
    label: int
    probabilities: tuple[float, ...]
    class_names: tuple[str, ...]

    @property
    def class_name(self) -> str:
        return self.class_names[self.label]


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Scans named by ``inputs``: NIfTI files, DICOM series folders, or folders holding several scans."""
    scans: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise DataError(f"{item}: file not found")
        if item.is_dir():
            # NIfTI files or sub-folders inside: a folder of scans; only plain files: one DICOM series
            scans += list_scans(item) or [item]
        elif is_nifti(item):
            scans.append(item)
        else:
            raise DataError(f"{item}: expected a .nii/.nii.gz file or a DICOM series folder")
    if not scans:
        raise DataError(f"No scans found in {', '.join(map(str, inputs))}")
    return scans


@torch.no_grad()
def predict_scans(
    checkpoint: str | os.PathLike | SliceSequenceClassifier,
    inputs: Sequence[str | os.PathLike],
    *,
    preprocessing: CTPreprocessing | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    class_names: Sequence[str] | None = None,
) -> list[Prediction]:
    """Classify every scan in ``inputs`` with a saved model (or a model instance)."""
    model = checkpoint if isinstance(checkpoint, SliceSequenceClassifier) else \
        SliceSequenceClassifier.from_pretrained(checkpoint)
    target = resolve_device(device)
    model.to(target).eval()
    names = tuple(class_names or (TB_CLASSES if model.num_classes == len(TB_CLASSES) else
                                  [str(i) for i in range(model.num_classes)]))
    dataset = CTVolumeDataset(expand_inputs(inputs), preprocessing=preprocessing, cache_dir=cache_dir)
    probabilities = torch.cat([model.predict_proba(volumes.to(target)).cpu()
                               for volumes, _ in DataLoader(dataset, batch_size=1)])
    return [Prediction(file_id, int(p.argmax()), tuple(float(v) for v in p), names)
            for file_id, p in zip(dataset.file_ids, probabilities, strict=True)]
