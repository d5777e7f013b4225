"""Prediction on new scans: what ``slicevid predict`` runs.

A checkpoint written by slicevid 0.2 knows its class names and the preprocessing its model
was trained with, so prediction needs nothing else: scans are preprocessed exactly as in
training. Explicit settings that contradict the checkpoint are an error, not a silent
mismatch; checkpoints of slicevid 0.1 (no preprocessing saved) use the settings given.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ._io import atomic_write_text
from ._registry import check_choice
from .data import CTPreprocessing, CTVolumeDataset
from .data.batching import pad_collate
from .data.ct import is_dicom_file, is_nifti
from .data.imageclef import list_scans
from .devices import resolve_device
from .errors import ConfigError, DataError, OutputError
from .model import SliceSequenceClassifier

SUBMISSION_IDS = ("stem", "filename")


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one scan."""

    file_id: str
    file_name: str
    label: int
    probabilities: tuple[float, ...]
    class_names: tuple[str, ...]
    importance: tuple[float, ...] | None = None

    @property
    def class_name(self) -> str:
        return self.class_names[self.label]


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Scans named by ``inputs``: NIfTI files, DICOM series folders, multi-frame DICOM files, or
    folders holding several scans."""
    scans: list[Path] = []
    for item in map(Path, inputs):
        if not item.exists():
            raise DataError(f"{item}: file not found")
        if item.is_dir():
            # NIfTI files or sub-folders inside: a folder of scans; only plain files: one DICOM series
            scans += list_scans(item) or [item]
        elif is_nifti(item) or is_dicom_file(item):
            scans.append(item)
        else:
            raise DataError(f"{item}: expected a .nii/.nii.gz file, a DICOM file or a DICOM series folder")
    if not scans:
        raise DataError(f"No scans found in {', '.join(map(str, inputs))}")
    return scans


def resolve_preprocessing(
    model: SliceSequenceClassifier,
    depth: int | None = None,
    size: int | None = None,
    rotate90: bool | None = None,
    nan_policy: str | None = None,
) -> CTPreprocessing:
    """The preprocessing the model was trained with, with ``nan_policy`` applied.

    ``depth``, ``size`` and ``rotate90`` are checks: given values must match the checkpoint.
    For a checkpoint without saved preprocessing they set it (paper defaults otherwise).

    Raises:
        ValueError: a given value contradicts the checkpoint (the message says what the model expects).
    """
    saved = model.config.preprocessing
    if saved is None:
        warnings.warn(
            "The checkpoint does not record its preprocessing (written by slicevid 0.1): using "
            "--depth/--size/--rotate90 or the paper's 70 x 224 x 224; make sure they match training",
            stacklevel=2,
        )
        default = CTPreprocessing()
        saved = CTPreprocessing(
            size=(depth or default.size[0], size or default.size[1], size or default.size[2]), rotate90=bool(rotate90)
        )
    expected = {
        "--depth": (depth, saved.size[0]),
        "--size": (size, saved.size[1]),
        "--rotate90": (rotate90 or None, saved.rotate90 or None),
    }
    conflicts = [
        f"{flag} {given} (the model expects {wanted})"
        for flag, (given, wanted) in expected.items()
        if given is not None and given != wanted
    ]
    if conflicts:
        raise ConfigError(
            ", ".join(conflicts),
            f"contradict the checkpoint: it was trained on {saved.size} inputs "
            f"(depth, height, width){', rotate90' if saved.rotate90 else ''}; drop these flags",
        )
    return replace(saved, nan_policy=nan_policy) if nan_policy else saved


@torch.no_grad()
def predict_scans(
    checkpoint: str | os.PathLike | SliceSequenceClassifier,
    inputs: Sequence[str | os.PathLike],
    *,
    preprocessing: CTPreprocessing | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    nan_policy: str | None = None,
    explain_dir: str | os.PathLike | None = None,
) -> list[Prediction]:
    """Classify every scan in ``inputs`` with a saved model (or a model instance).

    Args:
        checkpoint: a folder written by ``save_pretrained`` (``run/best``) or a model.
        inputs: NIfTI files, DICOM series folders, or folders of scans.
        preprocessing: how to preprocess; by default the model's own (it must match it).
        cache_dir: cache preprocessed volumes here.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        nan_policy: ``"replace"`` predicts scans holding NaN (with a warning each) instead of failing.
        explain_dir: also compute each scan's slice importance (``Prediction.importance``) and
            write ``<file id>.png`` here: the slice montage beside the importance curve.
    """
    from .plots import plot_slice_importance

    model = (
        checkpoint
        if isinstance(checkpoint, SliceSequenceClassifier)
        else SliceSequenceClassifier.from_pretrained(checkpoint)
    )
    target = resolve_device(device)
    model.to(target).eval()
    if preprocessing is None:
        preprocessing = resolve_preprocessing(model, nan_policy=nan_policy)
    elif model.config.preprocessing is not None and preprocessing.size != model.config.preprocessing.size:
        raise ConfigError(
            "preprocessing.size", f"{preprocessing.size} does not match the model's {model.config.preprocessing.size}"
        )
    dataset = CTVolumeDataset(expand_inputs(inputs), preprocessing=preprocessing, cache_dir=cache_dir)
    predictions = []
    loader = DataLoader(dataset, batch_size=1, collate_fn=pad_collate)
    for (volumes, _, lengths), source in zip(loader, dataset.sources, strict=True):
        volumes = volumes.to(target)
        probabilities = model.predict_proba(volumes, lengths)[0].cpu()
        prediction = Prediction(
            dataset.file_ids[len(predictions)],
            source.name,
            int(probabilities.argmax()),
            tuple(float(v) for v in probabilities),
            model.config.class_names,
        )
        if explain_dir is not None:
            importance = model.explain(volumes, lengths)[0].cpu()
            prediction = replace(prediction, importance=tuple(importance.tolist()))
            plot_slice_importance(
                volumes[0, 0].float().cpu().numpy(),
                importance.numpy(),
                Path(explain_dir) / f"{prediction.file_id}.png",
                title=f"{prediction.file_id}: {prediction.class_name} ({max(prediction.probabilities):.0%})",
            )
        predictions.append(prediction)
    return predictions


def write_submission(predictions: Sequence[Prediction], path: str | os.PathLike, ids: str = "stem") -> Path:
    """Write the challenge's submission CSV: one ``<id>,<label 1..K>`` line per scan, no header.

    Args:
        ids: ``"stem"`` (``TST_0001``) or ``"filename"`` (``TST_0001.nii.gz``, as the authors' lines).
    """
    ids = check_choice("ids", ids, SUBMISSION_IDS)
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"--csv {path} is a folder; expected a file name for the submission")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        (p.file_id if ids == "stem" else p.file_name, p.label + 1) for p in predictions
    )
    atomic_write_text(path, buffer.getvalue())
    return path
