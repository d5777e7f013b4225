"""The paper's two stages: pretrain on video with the encoder frozen, then fine-tune on CT.

* ``pretrain``: VGG-16 (the encoder) is frozen, the adapter, LSTM and head train on action
  clips (10 classes for the paper's UCF50 subset). With ``config.feature_cache`` the adapter
  is frozen too and slice features are computed once (see `slicevid.train.features`).
* ``finetune``: start from a pretrained model (or from scratch: the paper's "No PT"),
  replace the output layer with new heads for the scans' task, unfreeze every layer, train.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import DataError
from ..model import SliceSequenceClassifier
from ..tasks import TARGET, Multiclass, SliceSupervision, Task
from .callbacks import Callback
from .config import TrainConfig
from .datasets import class_names_for, dataset_targets, unwrap
from .engine import fit
from .state import FitResult


def pretrain(
    model: SliceSequenceClassifier,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    freeze_encoder: bool = True,
    class_names: Sequence[str] | None = None,
    record: Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Video pretraining: freeze the encoder (and the adapter when caching features), train the rest.

    Args:
        model: the model to pretrain (its head has one output per clip class).
        train_data: labelled clips ``(clip (1, T, H, W), class)``.
        val_data: validation clips.
        config: training settings.
        freeze_encoder: the paper's frozen ImageNet encoder; ``False`` trains it too, for
            encoders without pretrained weights (the feature cache then cannot be used).
        class_names: names of the clip classes (default: the data's ``classes``).
        record: what to save as the run's ``config.yaml`` (see [`fit()`][slicevid.train.fit]).
        callbacks: more callbacks for the loop (see [`fit()`][slicevid.train.fit]).

    Returns:
        The fit result; ``model`` holds the kept weights.

    Raises:
        DataError: fewer than two clip classes (nothing to learn).
    """
    config = config or TrainConfig()
    classes = getattr(unwrap(train_data), "classes", None)
    if classes is not None and len(classes) < 2:
        raise DataError(f"pretraining needs at least two classes of clips, got {list(classes)}")
    if freeze_encoder:
        model.freeze_encoder(include_adapter=config.feature_cache)
    else:
        model.unfreeze_encoder()
    return fit(model, train_data, val_data, config, class_names=class_names, record=record, callbacks=callbacks)


def finetune(
    model: SliceSequenceClassifier | str | os.PathLike,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    task: Task | None = None,
    tasks: Mapping[str, Task] | None = None,
    slice_supervision: SliceSupervision | None = None,
    freeze_encoder: bool = False,
    record: Mapping[str, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[SliceSequenceClassifier, FitResult]:
    """Fine-tune every layer for the scans' task, replacing the heads when they differ.

    Args:
        model: a model, or a folder written by ``save_pretrained`` (e.g. a pretraining run's ``best/``).
        train_data: labelled scans.
        val_data: validation scans (they choose the kept epoch).
        config: training settings.
        num_classes: classes of a one-head classifier (default: the data's class count).
        class_names: their names (default: the data's ``classes``).
        task: one head of another kind (``Multilabel``, ``Ordinal``, ``Regression``).
        tasks: several heads by name.
        slice_supervision: a per-slice head to train from the data's slice targets (kept from
            ``model`` when not given).
        freeze_encoder: keep the encoder frozen (the authors' "No PT" froze ImageNet VGG-16);
            by default every layer trains, as the paper's fine-tuning.
        record: what to save as the run's ``config.yaml`` (see [`fit()`][slicevid.train.fit]).
        callbacks: more callbacks for the loop (see [`fit()`][slicevid.train.fit]).

    Returns:
        The fine-tuned model (with its kept weights) and the fit result.
    """
    config = config or TrainConfig()
    if not isinstance(model, SliceSequenceClassifier):
        model = SliceSequenceClassifier.from_pretrained(model)
    wanted = _wanted_tasks(train_data, num_classes, class_names, task, tasks)
    new_slices = slice_supervision is not None and slice_supervision != model.config.slice_supervision
    if _shape(wanted) != _shape(model.config.tasks) or new_slices:
        torch.manual_seed(config.seed)  # the new heads' initialisation follows the seed too
        model.reset_head(tasks=wanted, slice_supervision=slice_supervision)
    elif wanted != dict(model.config.tasks):
        model.config = model.config.with_tasks(wanted)
    model.unfreeze_encoder()
    if freeze_encoder:
        model.freeze_encoder()
    return model, fit(model, train_data, val_data, config, class_names=class_names, record=record, callbacks=callbacks)


def _wanted_tasks(data: Dataset, num_classes, class_names, task, tasks) -> dict[str, Task]:
    """The heads fine-tuning trains: given ones, else one classifier over the data's classes."""
    if tasks is not None:
        return dict(tasks)
    if task is not None:
        return {TARGET: task}
    count = num_classes or len(class_names or getattr(unwrap(data), "classes", None) or ())
    if not count:
        labels = dataset_targets(data, [TARGET])[TARGET]
        count = int(labels.max()) + 1 if len(labels) else 0
    if count < 2:
        raise DataError(f"fine-tuning needs at least two classes, the data give {count}")
    return {TARGET: Multiclass(class_names_for(count, data, class_names))}


def _shape(tasks: Mapping[str, Task]) -> dict[str, tuple[str, int]]:
    """What decides the heads' weights: names, kinds and output counts."""
    return {name: (task.kind, task.outputs) for name, task in tasks.items()}
