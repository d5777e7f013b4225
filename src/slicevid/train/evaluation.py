"""Evaluation: predictions over a dataset (sharded and gathered under torchrun) and their metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..data.batching import pad_collate
from ..devices import autocast, autocast_dtype_for, resolve_device
from ..errors import DataError
from ..metrics import ClassificationReport, classification_report
from ..model import SliceSequenceClassifier
from .datasets import class_names_for
from .distributed import DistributedContext, gather_tensors, setup_distributed


@dataclass
class Evaluation:
    """Predictions of a model on a dataset and their metrics."""

    loss: float
    report: ClassificationReport
    probabilities: torch.Tensor
    labels: torch.Tensor

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(dim=1)


class _Indexed(Dataset):
    """Adds each sample's index, so predictions gathered from ranks can be de-duplicated."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        volume, label = self.dataset[index]
        return volume, label, index


@torch.no_grad()
def predict_logits(
    network: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    context: DistributedContext,
    num_workers: int = 0,
    collate=pad_collate,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels of every sample, in dataset order (``network`` takes ``(inputs, lengths)``)."""
    from tqdm.auto import tqdm

    if len(dataset) == 0:
        raise DataError("Cannot evaluate on an empty dataset (no scans in this split)")
    indexed = _Indexed(dataset)
    sampler = DistributedSampler(indexed, context.world_size, context.rank, shuffle=False) if context.enabled else None
    loader = DataLoader(indexed, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate)
    network.eval()
    logits, labels, indices = [], [], []
    for inputs, targets, lengths, index in tqdm(
        loader, desc="evaluate", unit="batch", leave=False, disable=not (progress and context.is_main)
    ):
        with autocast(device, autocast_dtype):
            lengths = lengths.to(device) if lengths is not None else None
            logits.append(network(inputs.to(device), lengths).float().cpu())
        labels.append(torch.as_tensor(targets))
        indices.append(index)
    logits, labels, indices = gather_tensors(context, torch.cat(logits), torch.cat(labels), torch.cat(indices))
    order = np.unique(indices.numpy(), return_index=True)[1]  # first copy of each index, in index order
    return logits[order], labels[order]


def make_evaluation(logits: torch.Tensor, labels: torch.Tensor, class_names) -> Evaluation:
    """Loss (NaN for unlabelled data), metrics and probabilities from logits and labels."""
    num_classes = logits.shape[1]
    if (labels >= num_classes).any():
        bad = sorted(set(labels[labels >= num_classes].tolist()))
        raise DataError(
            f"labels {bad} are out of range for a {num_classes}-class model (expected 0..{num_classes - 1})"
        )
    loss = float(nn.functional.cross_entropy(logits, labels)) if (labels >= 0).all() else math.nan
    report = classification_report(labels.numpy(), logits.argmax(1).numpy(), class_names, num_classes=num_classes)
    return Evaluation(loss, report, logits.softmax(dim=1), labels)


def evaluate(
    model: SliceSequenceClassifier,
    data: Dataset,
    *,
    batch_size: int = 2,
    device: str = "auto",
    amp: str = "auto",
    class_names: Sequence[str] | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> Evaluation:
    """Run ``model`` over ``data`` (in eval mode) and report loss, kappa, accuracy and F1."""
    target = resolve_device(device)
    context = setup_distributed(target)
    model.to(target)
    logits, labels = predict_logits(
        model,
        data,
        batch_size=batch_size,
        device=target,
        num_workers=num_workers,
        autocast_dtype=autocast_dtype_for(amp, target),
        context=context,
        progress=progress,
    )
    names = class_names_for(model.num_classes, data, class_names, model.config.class_names)
    return make_evaluation(logits, labels, names)
