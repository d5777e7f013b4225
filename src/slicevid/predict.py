"""Prediction on new scans: what ``slicevid predict`` runs.

A checkpoint written by slicevid knows its tasks, class names and the preprocessing its model
was trained with, so prediction needs nothing else: scans are preprocessed exactly as in
training. Explicit settings that contradict the checkpoint are an error, not a silent
mismatch; checkpoints of slicevid 0.1 (no preprocessing saved) use the settings given.

Scans are read in batches (``batch_size``; scans of different depths batched by similar
depth and padded), with DataLoader workers for reading and preprocessing. Test-time
augmentation (``tta``) averages each scan's probabilities over transformed copies:

* ``"flip"``: mirrored left-right. It assumes the labels do not depend on the side, or say
  which labels swap (``Multilabel(flip_pairs=...)``); a task that names a side without its pair
  is refused.
* ``"reverse"``: the slices in reverse order (head and feet swapped). It assumes the label does
  not depend on that direction, and helps only a model that does not (an order-blind
  aggregator, or one trained with both orders).

Every scan gets an id: its path relative to the folder it was found in (``P1/ct``), or its name
for a file given directly; two scans with one id are refused, never silently merged.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._io import atomic_write_text
from ._progress import progress_bar
from ._registry import check_choice
from .data import CTPreprocessing, CTVolumeDataset
from .data.batching import LengthBucketSampler, pad_collate
from .data.ct import check_scan_path, is_dicom_file, is_nifti
from .data.labelled import find_scans
from .data.labels import scan_id
from .deploy import OnnxModel
from .devices import resolve_device
from .ensemble import FoldEnsemble, is_cv_folder
from .errors import CheckpointError, ConfigError, DataError, OutputError
from .keys import TARGET
from .model import SliceSequenceClassifier
from .model_config import ModelConfig
from .plots import plot_slice_importance
from .tasks import Multiclass, Multilabel, Task
from .train.network import ModelOutputs

__all__ = [
    "Prediction",
    "Predictions",
    "check_tta",
    "expand_inputs",
    "load_predictor",
    "predict_batch",
    "predict_dataset",
    "predict_scans",
    "resolve_preprocessing",
    "result_table",
    "write_results",
    "write_submission",
]

SubmissionIds = Literal["stem", "filename"]
"""How a submission names a scan: its file name without extensions, or the whole file name."""
SUBMISSION_IDS: tuple[str, ...] = get_args(SubmissionIds)
TTA_CHOICES = ("flip", "reverse")
"""Test-time augmentations: a left-right flip, and the slices in reverse order."""


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one scan.

    Attributes:
        file_id: the scan's id (its path relative to the folder it was found in).
        file_name: the scan's file or folder name.
        probabilities: per task, what the task means (class or level probabilities, label
            probabilities, or the score).
        decisions: per task, the decision (a class or level index, 0/1 per label, the score).
        tasks: the model's tasks, by name.
        importance: per slice, how much it drove the first task's decision (with ``explain``).
    """

    file_id: str
    file_name: str
    probabilities: dict[str, tuple[float, ...]]
    decisions: dict[str, int | float | tuple[int, ...]]
    tasks: dict[str, Task]
    importance: tuple[float, ...] | None = None

    @property
    def label(self) -> int:
        """The predicted class index of a one-head classifier."""
        return int(next(iter(self.decisions.values())))

    @property
    def class_name(self) -> str:
        """The predicted class name of a one-head classifier (or level, for an ordinal head)."""
        task = next(iter(self.tasks.values()))
        return task.names[self.label]

    @property
    def class_names(self) -> tuple[str, ...]:
        return next(iter(self.tasks.values())).names


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """The scans ``inputs`` name, and their ids.

    A NIfTI or multi-frame DICOM file is one scan, with its name as id; a folder is searched for
    scans ([`find_scans()`][slicevid.data.find_scans]), each with its path relative to that folder as id;
    a folder of plain DICOM files is one series, named after the folder.

    Args:
        inputs: NIfTI or DICOM files, series folders, or folders of scans.

    Raises:
        DataError: a missing input, an unreadable kind of file, no scan at all, or two scans with one id.
    """
    scans, ids, seen = [], [], {}
    for item in map(Path, inputs):
        check_scan_path(item)
        if item.is_dir():
            found = find_scans(item)
            names = [scan_id(s, item) if s != item else item.resolve().name for s in found]
        elif is_nifti(item) or is_dicom_file(item):
            found, names = [item], [scan_id(item.name)]
        else:
            raise DataError(f"{item}: expected a .nii/.nii.gz file, a DICOM file or a folder of scans")
        for scan, name in zip(found, names, strict=True):
            if name in seen:
                raise DataError(
                    f"two scans have the id {name!r}: {seen[name]} and {scan}; give them distinct names "
                    "(or one folder, whose relative paths tell them apart)"
                )
            seen[name] = scan
            scans.append(scan)
            ids.append(name)
    if not scans:
        raise DataError(f"No scans found in {', '.join(map(str, inputs))}")
    return scans, ids


def resolve_preprocessing(
    model: nn.Module,
    depth: int | None = None,
    size: int | None = None,
    rotate90: bool | None = None,
    nan_policy: str | None = None,
) -> CTPreprocessing:
    """The preprocessing the model was trained with, with ``nan_policy`` applied.

    ``depth``, ``size`` and ``rotate90`` are checks: given values must match the checkpoint.
    For a checkpoint without saved preprocessing they set it (paper defaults otherwise).

    Args:
        model: a slicevid model, an ``OnnxModel`` or a plain module.
        depth: the depth the caller expects (a check).
        size: the height and width the caller expects (a check).
        rotate90: whether the caller expects rotated slices (a check).
        nan_policy: ``"raise"`` or ``"replace"`` NaN voxels (``None``: the model's).

    Raises:
        CheckpointError: the model was trained on video clips, not scans.
        ConfigError: a given value contradicts the checkpoint (the message says what the model expects).
    """
    config = model_description(model)
    check_trained_on_scans(config)
    saved = config.preprocessing if config is not None else None
    if saved is None:
        warnings.warn(
            "The model does not record a CT preprocessing (a plain module, one trained on MedMNIST arrays, or "
            "one written by slicevid 0.1): using --depth/--size/--rotate90, else its input size, else the "
            "paper's; make sure scans given to it look like its training inputs",
            stacklevel=2,
        )
        known = config.input_size if config is not None and config.input_size and config.input_size[0] else None
        default = CTPreprocessing(size=known) if known else CTPreprocessing()
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


def load_predictor(checkpoint: str | os.PathLike | nn.Module | OnnxModel) -> nn.Module | OnnxModel:
    """A model to predict with: a ``save_pretrained`` folder, a cross-validation folder (its folds
    averaged, `FoldEnsemble`), an exported ``.onnx`` file, or a model as given.

    Args:
        checkpoint: a folder from ``save_pretrained``, a ``slicevid cv`` folder, a ``.onnx`` file from
            ``slicevid export``, a model, or an ``OnnxModel``.

    Raises:
        CheckpointError: a missing path, or a file that is not an ``.onnx`` model.
        ConfigError: an ``.onnx`` file without ONNX Runtime installed (the extra to install is named).
    """
    if isinstance(checkpoint, (nn.Module, OnnxModel)):
        return checkpoint
    path = Path(checkpoint)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; expected a save_pretrained folder or an .onnx file")
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise CheckpointError(f"{path}: expected a save_pretrained folder, a cv folder or an .onnx file")
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("--checkpoint", f"{path} needs ONNX Runtime to run: pip install 'slicevid[deploy]'")
        return OnnxModel(path)
    if is_cv_folder(path):
        return FoldEnsemble.from_folder(path)
    return SliceSequenceClassifier.from_pretrained(path)


def model_description(model: nn.Module | OnnxModel) -> ModelConfig | None:
    """A model's [`ModelConfig`][slicevid.ModelConfig], if it carries one."""
    config = getattr(model, "config", None)
    return config if isinstance(config, ModelConfig) else None


def check_trained_on_scans(config: ModelConfig | None) -> None:
    """Refuse a model that was trained on video clips (its classes are actions, its inputs frames)."""
    data = config.training_data if config is not None else None
    if data is not None and data.kind == "video":
        raise CheckpointError(
            f"this model was trained on video clips ({', '.join(config.class_names[:4])} ...), not on scans; "
            "fine-tune it on scans first (slicevid finetune --pretrained ...)"
        )


SIDED_LABEL = re.compile(r"(^|[^a-z])(left|right)([^a-z]|$)", re.IGNORECASE)
"""A label that names a side ("left lung"), which a left-right flip would turn into another label."""


def check_tta(tta: Sequence[str], tasks: dict[str, Task]) -> tuple[str, ...]:
    """The test-time augmentations, checked against what each task allows.

    Args:
        tta: augmentation names (``"flip"``, ``"reverse"``).
        tasks: the model's tasks, by name.

    Raises:
        ConfigError: an unknown augmentation, or ``"flip"`` for a task whose labels name a side
            without declaring which labels swap.
    """
    tta = tuple(check_choice("tta", t, TTA_CHOICES) for t in tta)
    if "flip" in tta:
        for name, task in tasks.items():
            sided = [n for n in task.names if SIDED_LABEL.search(n)]
            paired = {n for pair in getattr(task, "flip_pairs", ()) for n in pair}
            if set(sided) - paired:
                raise ConfigError(
                    "tta",
                    f"'flip' would swap left and right, but task {name!r} has sided labels "
                    f"{sorted(set(sided) - paired)} without declared pairs (Multilabel(flip_pairs=[(left, right)]))",
                )
    return tta


def _flipped_back(task: Task, probabilities: torch.Tensor) -> torch.Tensor:
    """Probabilities of a flipped scan, in the unflipped scan's label order."""
    return probabilities[:, task.flip_permutation()] if isinstance(task, Multilabel) else probabilities


@torch.inference_mode()
def predict_batch(
    model: nn.Module,
    volumes: torch.Tensor,
    lengths: torch.Tensor | None,
    tasks: dict[str, Task],
    tta: Sequence[str] = (),
) -> dict[str, torch.Tensor]:
    """Per task, the probabilities of a batch, averaged over the test-time augmentations (and the original).

    ``model`` is a module, or anything called as ``model(volumes, lengths)`` that returns logits by
    task name (an `OnnxModel`, a model under autocast).

    Args:
        model: the model (see above).
        volumes: a batch ``(B, C, D, H, W)``.
        lengths: each volume's real depth in a padded batch (``None``: all full).
        tasks: the model's tasks, by name.
        tta: test-time augmentations (checked by `check_tta()`).
    """
    network = ModelOutputs(model) if isinstance(model, nn.Module) else model
    views = [("", volumes)]
    if "flip" in tta:
        views.append(("flip", volumes.flip(-1)))
    if "reverse" in tta:
        views.append(("reverse", _reverse_slices(volumes, lengths)))
    totals: dict[str, torch.Tensor] = {}
    for kind, view in views:
        logits = network(view, lengths).tasks
        for name, task in tasks.items():
            probabilities = task.activate(logits[name]).float()
            if kind == "flip":
                probabilities = _flipped_back(task, probabilities)
            totals[name] = totals.get(name, 0) + probabilities
    return {name: total / len(views) for name, total in totals.items()}


def _reverse_slices(volumes: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each volume's real slices in reverse order (padding stays at the end)."""
    if lengths is None:
        return volumes.flip(2)
    depth = volumes.shape[2]
    index = torch.arange(depth, device=volumes.device)[None, :]
    reversed_index = torch.where(index < lengths[:, None], lengths[:, None] - 1 - index, index)
    gather = reversed_index[:, None, :, None, None].expand(-1, volumes.shape[1], -1, *volumes.shape[3:])
    return volumes.gather(2, gather)


class Predictions(list):
    """The `Prediction` of each scan (a list), and the scans that could not be read (``skipped``)."""

    def __init__(self, predictions: Sequence[Prediction] = (), skipped: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(predictions)
        self.skipped = list(skipped)
        """``(file, reason)`` of each scan left out with ``on_error="skip"``."""


def predict_scans(
    checkpoint: str | os.PathLike | nn.Module | OnnxModel,
    inputs: Sequence[str | os.PathLike],
    *,
    preprocessing: CTPreprocessing | None = None,
    cache_dir: str | os.PathLike | None = None,
    device: str = "auto",
    nan_policy: str | None = None,
    explain_dir: str | os.PathLike | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    tta: Sequence[str] = (),
    class_names: Sequence[str] | None = None,
    series: str | int | None = None,
    on_error: str = "raise",
    progress: bool = False,
) -> Predictions:
    """Predict every scan in ``inputs`` with a saved model (or a model instance).

    Args:
        checkpoint: a folder written by ``save_pretrained`` (``run/best``), a ``slicevid cv``
            folder (its folds averaged), an exported ``.onnx`` file (run by ONNX Runtime), a
            slicevid model, or any ``nn.Module`` mapping ``(B, C, D, H, W)`` volumes to logits
            (one that ``fit`` trained knows its classes; otherwise give ``class_names``).
        inputs: NIfTI files, DICOM series folders, or folders of scans (searched at any depth).
        preprocessing: how to preprocess; by default the model's own (it must match it).
        cache_dir: cache preprocessed volumes here.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        nan_policy: ``"replace"`` predicts scans holding NaN (with a warning each) instead of failing.
        explain_dir: also compute each scan's slice importance (``Prediction.importance``) and
            write ``<file id>.png`` into this folder: the slices beside the importance curve.
        batch_size: scans per forward pass (scans of different depths are batched by depth, padded).
        num_workers: DataLoader worker processes that read and preprocess scans.
        tta: test-time augmentations to average over: ``"flip"``, ``"reverse"`` (see the module docs).
        class_names: names of a plain module's classes, when it does not carry them.
        series: in a DICOM folder that holds several series, the one to read (UID or number).
        on_error: ``"raise"`` at the first unreadable scan, or ``"skip"``: read every scan first,
            predict the readable ones and list the others in the result's ``skipped``.
        progress: show a progress bar.

    Returns:
        One `Prediction` per scan, in the order the scans were found (a `Predictions` list).

    Raises:
        DataError: an input is missing or unreadable (with ``on_error="raise"``), or two scans share an id.
        CheckpointError: the checkpoint is unreadable, or its model was trained on video clips.
        ConfigError: settings that contradict the model, or a test-time augmentation its tasks forbid.
        OutputError: ``explain_dir`` is an existing file.
    """
    model = load_predictor(checkpoint)
    config = model_description(model)
    tasks = dict(config.tasks) if config is not None else {TARGET: _plain_task(class_names)}
    tta = check_tta(tta, tasks)
    if explain_dir is not None and Path(explain_dir).exists() and not Path(explain_dir).is_dir():
        raise OutputError(f"--explain {explain_dir} is an existing file; expected a folder for the pictures")
    if explain_dir is not None and not isinstance(model, SliceSequenceClassifier):
        raise ConfigError(
            "explain_dir", f"needs a slicevid model; {type(model).__name__} cannot say which slices mattered"
        )
    if preprocessing is None:
        preprocessing = resolve_preprocessing(model, nan_policy=nan_policy)
    else:
        check_trained_on_scans(config)
        if config is not None and config.preprocessing is not None and preprocessing.size != config.preprocessing.size:
            raise ConfigError(
                "preprocessing.size", f"{preprocessing.size} does not match the model's {config.preprocessing.size}"
            )
    sources, ids = expand_inputs(inputs)
    dataset = CTVolumeDataset(
        sources, ids=ids, preprocessing=preprocessing, cache_dir=cache_dir, series=series, on_error=on_error
    )
    names = [source.name for source in dataset.sources]
    rows = _predict_all(
        model, dataset, dataset.file_ids, names, tasks, device, batch_size, num_workers, tta, explain_dir, progress
    )
    return Predictions(rows, dataset.skipped)


def predict_dataset(
    checkpoint: str | os.PathLike | nn.Module | OnnxModel,
    dataset: Dataset,
    *,
    device: str = "auto",
    batch_size: int = 1,
    tta: Sequence[str] = (),
    class_names: Sequence[str] | None = None,
    explain_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> Predictions:
    """Predict every sample of a dataset of model inputs (``MedMNIST3D``; any with ``file_ids``).

    Args:
        checkpoint: what `predict_scans` takes.
        dataset: ``(volume (C, D, H, W), target)`` samples, already as the model takes them; its
            ``file_ids`` name them (else their indices).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        batch_size: samples per forward pass.
        tta: test-time augmentations to average over.
        class_names: names of a plain module's classes, when it does not carry them.
        explain_dir: also compute each sample's slice importance and write its picture here (see `predict_scans`).
        progress: show a progress bar.
    """
    model = load_predictor(checkpoint)
    config = model_description(model)
    tasks = dict(config.tasks) if config is not None else {TARGET: _plain_task(class_names)}
    ids = list(getattr(dataset, "file_ids", None) or (str(i) for i in range(len(dataset))))
    tta = check_tta(tta, tasks)
    return Predictions(_predict_all(model, dataset, ids, ids, tasks, device, batch_size, 0, tta, explain_dir, progress))


def _predict_all(model, dataset, ids, names, tasks, device, batch_size, num_workers, tta, explain_dir, progress):
    """Every sample's `Prediction` (``ids`` and file ``names`` by index), in dataset order, read in batches."""
    target = resolve_device(device)
    if isinstance(model, nn.Module):
        model.to(target).eval()
    else:
        target = torch.device("cpu")  # ONNX Runtime takes host arrays
    order = _batches(dataset, batch_size)
    loader = DataLoader(dataset, batch_sampler=order, num_workers=num_workers, collate_fn=pad_collate)
    predictions: dict[int, Prediction] = {}
    batches = progress_bar(zip(order, loader, strict=True), enabled=progress, total=len(order), desc="predict")
    for indices, (volumes, _, lengths) in batches:
        volumes = volumes.to(target)
        lengths = lengths.to(target) if lengths is not None else None
        batch = predict_batch(model, volumes, lengths, tasks, tta)
        importance = model.explain(volumes, lengths).cpu() if explain_dir is not None else None
        for row, index in enumerate(indices):
            prediction = _prediction(ids[index], names[index], {n: p[row] for n, p in batch.items()}, tasks)
            if importance is not None:
                depth = int(lengths[row]) if lengths is not None else volumes.shape[2]
                prediction = replace(prediction, importance=tuple(importance[row, :depth].tolist()))
                _plot_importance(volumes[row, 0, :depth], prediction, Path(explain_dir))
            predictions[index] = prediction
    return [predictions[i] for i in range(len(dataset))]


def _plain_task(class_names: Sequence[str] | None) -> Task:
    if class_names is None:
        raise ConfigError(
            "class_names",
            "are needed to name the outputs of a plain module that fit did not train (it carries no config)",
        )
    return Multiclass(tuple(class_names))


def _batches(dataset: Dataset, batch_size: int) -> list[list[int]]:
    """Sample indices in batches: in order for one depth, grouped by depth when depths vary."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError("batch_size", f"must be a positive integer, got {batch_size!r}")
    preprocessing = getattr(dataset, "preprocessing", None)
    if preprocessing is not None and preprocessing.variable_depth:
        return list(LengthBucketSampler(dataset.depths(), batch_size, shuffle=False))
    return [list(range(i, min(i + batch_size, len(dataset)))) for i in range(0, len(dataset), batch_size)]


def _prediction(file_id: str, file_name: str, probabilities: dict[str, torch.Tensor], tasks: dict[str, Task]):
    return Prediction(
        file_id,
        file_name,
        {name: tuple(float(v) for v in values) for name, values in probabilities.items()},
        {name: task.decision(probabilities[name].numpy()) for name, task in tasks.items()},
        tasks,
    )


def _plot_importance(volume: torch.Tensor, prediction: Prediction, folder: Path) -> None:
    task = next(iter(prediction.tasks.values()))
    decided = prediction.decisions[next(iter(prediction.tasks))]
    what = task.names[decided] if isinstance(decided, int) else str(decided)
    plot_slice_importance(
        volume.float().cpu().numpy(),
        np.asarray(prediction.importance),
        folder / f"{prediction.file_id.replace('/', '__')}.png",
        title=f"{prediction.file_id}: {what}",
    )


def result_columns(tasks: dict[str, Task]) -> list[str]:
    """The columns of a results CSV after ``file_id`` and ``file``, per task (prefixed with several)."""
    prefix = (lambda name: "") if len(tasks) == 1 else (lambda name: f"{name}.")
    return [prefix(name) + column for name, task in tasks.items() for column in task.result_columns()]


def result_row(prediction: Prediction) -> list[str]:
    """One prediction as the cells of `result_columns()`."""
    cells = [prediction.file_id, prediction.file_name]
    for name, task in prediction.tasks.items():
        cells += task.result_cells(prediction.probabilities[name], prediction.decisions[name])
    return cells


def result_table(predictions: Sequence[Prediction]) -> str:
    """The results CSV's text: a header, then one row per scan (names holding commas or quotes quoted).

    Args:
        predictions: what `predict_scans()` returned.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file_id", "file", *result_columns(predictions[0].tasks)] if predictions else ["file_id"])
    writer.writerows(result_row(p) for p in predictions)
    return buffer.getvalue()


def write_results(predictions: Sequence[Prediction], path: str | os.PathLike) -> Path:
    """Write a results CSV: a header, then per scan its id, file name, decisions and probabilities.

    Columns: ``file_id``, ``file``, then per task: ``predicted`` and ``p_<class>`` (classes and
    levels), ``p_<label>`` and ``<label>`` (0/1 decisions of multi-label heads), or the score;
    with several tasks each column is prefixed ``<task>.``.

    Args:
        predictions: what `predict_scans()` returned.
        path: the CSV file to write (atomically).
    """
    path = Path(path)
    atomic_write_text(path, result_table(predictions))
    return path


def write_submission(predictions: Sequence[Prediction], path: str | os.PathLike, ids: str = "stem") -> Path:
    """Write the challenge's submission CSV: one ``<id>,<label 1..K>`` line per scan, no header.

    Args:
        predictions: a one-head classifier's predictions.
        path: the file to write.
        ids: ``"stem"`` (``TST_0001``) or ``"filename"`` (``TST_0001.nii.gz``, as the authors' lines).
    """
    ids = check_choice("ids", ids, SUBMISSION_IDS)
    tasks = predictions[0].tasks if predictions else {}
    if len(tasks) != 1 or not isinstance(next(iter(tasks.values())), Multiclass):
        kinds = ", ".join(f"{name} ({task.kind})" for name, task in tasks.items())
        raise ConfigError("--submission", f"lines name one class per scan; this model predicts {kinds}: use --out")
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(
        (p.file_id if ids == "stem" else p.file_name, p.label + 1) for p in predictions
    )
    atomic_write_text(path, buffer.getvalue())
    return Path(path)
