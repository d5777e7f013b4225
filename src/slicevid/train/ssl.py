"""Self-supervised pretraining on unlabeled scans: the slices' order, and two views of one scan.

A slice sequence has a direction and a smoothness, as a video has the arrow of time, and both
can be learned without labels. Two objectives train the same encoder and aggregator that
fine-tuning uses, so the weights carry over as video pretraining's do (and the two chain:
video, then scans):

* ``"order"``: every scan three times, its slices in order, reversed and shuffled; the model
  learns to tell which (a 3-way head, ``slice_order``). Telling shuffled from ordered needs
  features that change smoothly along the scan; telling reversed needs its direction.
* ``"contrastive"``: InfoNCE between two augmented views of each scan (torchio's
  study-consistent affine, flip, gamma and noise, drawn independently per view), through a
  small projection head: each view must pick its twin among the batch's other scans. It is
  trained as a classification whose right answer is always the last column (the twin), so the
  one training engine runs it, and its accuracy is the share of views that found their twin
  (ties count as misses: a collapsed model scores 0, not 1).

Both run through [`fit()`][slicevid.train.fit] (checkpoints, resume, curves, epoch selection on a
validation split of the scans) and write a ``save_pretrained`` model in ``best/`` that
``finetune --pretrained`` loads. Scans of mixed depth are batched by depth and padded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from .._registry import check_choice
from ..augment import StudyAugmentation
from ..data import CTPreprocessing, CTVolumeDataset, find_scans
from ..data.splits import VAL_FRACTION, holdout_split
from ..errors import ConfigError, DataError
from ..model import SliceSequenceClassifier
from ..tasks import Multiclass
from .config import TrainConfig
from .engine import fit
from .state import FitResult

SSL_OBJECTIVES = ("order", "contrastive")
ORDER_CLASSES = ("in order", "reversed", "shuffled")


class UnlabeledScans(Dataset):
    """Scans without labels -> ``(volume (1, D, H, W), target)``, one constant target, with their depths.

    Args:
        volumes: the scans (a `CTVolumeDataset`, or any dataset with ``depths()`` and ``input_spec()``;
            its own targets are ignored).
        indices: which of them.
        target: the one target every sample gets.
    """

    def __init__(self, volumes: Dataset, indices: Sequence[int], target: int = 0) -> None:
        self.volumes, self.indices, self.target = volumes, list(indices), target

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.volumes[self.indices[index]][0], self.target

    def depths(self) -> list[int]:
        every = self.volumes.depths()
        return [every[i] for i in self.indices]

    def input_spec(self) -> dict[str, Any]:
        return self.volumes.input_spec()


class SliceOrderViews(Dataset):
    """Each scan three times, its slices in order, reversed and shuffled: ``(volume, 0 | 1 | 2)``.

    The shuffled order of each scan is drawn once from ``seed`` (never the identity), so every
    epoch sees the same problem in a new batch order.
    """

    classes = ORDER_CLASSES

    def __init__(self, scans: UnlabeledScans, seed: int = 0) -> None:
        self.scans, self.seed = scans, seed

    def __len__(self) -> int:
        return 3 * len(self.scans)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        volume, _ = self.scans[index // 3]
        kind = index % 3
        if kind == 1:
            volume = volume.flip(1)
        elif kind == 2:
            volume = volume[:, _derangement(volume.shape[1], np.random.default_rng([self.seed, index]))]
        return volume, kind

    def depths(self) -> list[int]:
        return [depth for depth in self.scans.depths() for _ in range(3)]

    def input_spec(self) -> dict[str, Any]:
        return self.scans.input_spec()


def _derangement(depth: int, rng: np.random.Generator) -> Tensor:
    """A random order of ``depth`` slices other than the identity."""
    while True:
        order = rng.permutation(depth)
        if depth < 2 or (order != np.arange(depth)).any():
            return torch.as_tensor(order)


class ContrastivePretraining(nn.Module):
    """A slicevid model trained by InfoNCE between two augmented views of each scan.

    ``forward`` returns, per scan, the similarities of its first view to every other scan's
    second view, then (in the last of ``width`` columns) to its own twin; columns a smaller
    batch leaves empty hold -1e4. The target is always ``width - 1``.
    Views are drawn from torch's global generator while training (``fit`` seeds it every
    epoch) and from a fixed seed in evaluation, so validation losses are comparable.

    Args:
        model: the slicevid model whose encoder and aggregator learn.
        width: columns of the output (the training batch size).
        temperature: the softmax temperature of the similarities.
        projection: width of the projection head (discarded after pretraining).
    """

    def __init__(self, model: SliceSequenceClassifier, width: int, temperature: float = 0.1, projection: int = 128):
        super().__init__()
        self.pretrained_model = model
        features = model.aggregator.out_features
        self.projection = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Linear(features, projection))
        self.width, self.temperature = width, temperature
        self.augmentation = StudyAugmentation()

    def views(self, volumes: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        if self.training:
            return self.augmentation(volumes, lengths=lengths), self.augmentation(volumes, lengths=lengths)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return self.augmentation(volumes, lengths=lengths), self.augmentation(volumes, lengths=lengths)

    def forward(self, volumes: Tensor, lengths: Tensor | None = None) -> Tensor:
        first, second = self.views(volumes, lengths)
        both = torch.cat([first, second])
        embedded = self.pretrained_model.forward_embedding(both, None if lengths is None else lengths.repeat(2))
        anchors, twins = nn.functional.normalize(self.projection(embedded), dim=-1).chunk(2)
        similarity = anchors @ twins.T / self.temperature  # (B, B), twins on the diagonal
        batch = len(similarity)
        if batch > self.width:
            raise ConfigError("batch_size", f"{batch} scans in a batch, more than the {self.width} columns built for")
        steps = torch.arange(batch, device=volumes.device)
        rolled = similarity.gather(1, (steps[:, None] + steps + 1) % batch)  # row i: the others, then its twin
        others, twin = rolled[:, :-1], rolled[:, -1:]
        return torch.cat([nn.functional.pad(others, (0, self.width - batch), value=-1e4), twin], dim=1)


def pretrain_ssl(
    model: SliceSequenceClassifier,
    scans: str | os.PathLike | Sequence[str | os.PathLike] | tuple[Dataset, Dataset],
    objective: str = "order",
    config: TrainConfig | None = None,
    *,
    preprocessing: CTPreprocessing | None = None,
    val_fraction: float = VAL_FRACTION,
    cache_dir: str | os.PathLike | None = None,
    temperature: float = 0.1,
    record: Mapping[str, Any] | None = None,
) -> FitResult:
    """Self-supervised pretraining of ``model`` on unlabeled scans (see the module docs).

    Args:
        model: a slicevid model, built for fine-tuning or already video-pretrained.
        scans: a folder of scans (searched at any depth), a list of scan files and folders, or two
            datasets of model inputs whose labels are ignored (training, validation: a MedMNIST
            set's official ``train`` and ``val`` splits).
        objective: ``"order"`` or ``"contrastive"``.
        config: training settings (``out_dir`` receives the run, ``best/`` the model).
        preprocessing: how scans become inputs (default: the model's recorded preprocessing,
            else the paper's); datasets are taken as they are.
        val_fraction: share of the scans held out to choose the epoch (scan files only).
        cache_dir: keep preprocessed scans here.
        temperature: the contrastive objective's softmax temperature.
        record: what to save as the run's ``config.yaml`` (see [`fit()`][slicevid.train.fit]).

    Returns:
        The fit result; ``model`` holds the kept weights. With ``"order"`` its head is the
        3-way order head; with ``"contrastive"`` its head is as given (fine-tuning replaces both).

    Raises:
        ConfigError: an unknown objective, or a model that is not slicevid's.
        DataError: no scans, or too few to hold out a validation share.
    """
    objective = check_choice("objective", objective, SSL_OBJECTIVES)
    if not isinstance(model, SliceSequenceClassifier):
        raise ConfigError("model", f"self-supervised pretraining needs a slicevid model, got {type(model).__name__}")
    config = config or TrainConfig()
    if isinstance(scans, tuple) and len(scans) == 2 and all(isinstance(d, Dataset) for d in scans):
        train, val = (UnlabeledScans(data, range(len(data))) for data in scans)
    else:
        preprocessing = preprocessing or model.config.preprocessing or CTPreprocessing()
        train, val = _unlabeled_splits(scans, preprocessing, val_fraction, config.seed, cache_dir)
    model.config = model.config.replace(**train.input_spec())
    if objective == "order":
        model.reset_head(tasks={"slice_order": Multiclass(ORDER_CLASSES)})
        views = SliceOrderViews(train, config.seed), SliceOrderViews(val, config.seed + 1)
        return fit(model, *views, config, record=record)
    if config.batch_size < 2 or len(train) < 2:
        raise ConfigError(
            "batch_size",
            f"must be at least 2 for contrastive pretraining, with at least 2 training scans (each view picks its "
            f"twin among the batch's other scans); got batches of {config.batch_size} from {len(train)} scans",
        )
    network = ContrastivePretraining(model, width=config.batch_size, temperature=temperature)
    names = [*(f"other scan {i}" for i in range(1, config.batch_size)), "twin"]
    train.target = val.target = config.batch_size - 1
    config = replace(config, drop_last=config.drop_last or len(train) % config.batch_size == 1)
    return fit(network, train, val, config, class_names=names, record=record)


def _unlabeled_splits(scans, preprocessing: CTPreprocessing, val_fraction: float, seed: int, cache_dir):
    sources = []
    for item in map(Path, [scans] if isinstance(scans, (str, os.PathLike)) else scans):
        sources += find_scans(item) if item.is_dir() else [item]
    if len(sources) < 2:
        raise DataError(f"{scans}: {len(sources)} scan(s) found; self-supervised pretraining needs several")
    volumes = CTVolumeDataset(sources, preprocessing=preprocessing, cache_dir=cache_dir)
    train_ids, val_ids = holdout_split(len(sources), val_fraction, seed)
    return UnlabeledScans(volumes, train_ids), UnlabeledScans(volumes, val_ids)
