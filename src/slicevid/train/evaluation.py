"""Evaluation: predictions over a dataset (sharded and gathered under torchrun) and their metrics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from ..metrics import ClassificationReport, classification_report
from ..model import SliceSequenceClassifier
from .distributed import DistributedContext, gather_tensors, resolve_device, setup_distributed


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


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Integer labels of a dataset (its ``labels`` attribute, or by reading every sample)."""
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[np.asarray(dataset.indices)]
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(labels, dtype=np.int64)
    return np.asarray([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def autocast_dtype_for(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


@torch.no_grad()
def predict_logits(module: nn.Module, dataset: Dataset, *, batch_size: int, device: torch.device,
             autocast_dtype: torch.dtype | None, context: DistributedContext, num_workers: int = 0,
             progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    from tqdm.auto import tqdm

    indexed = _Indexed(dataset)
    sampler = DistributedSampler(indexed, context.world_size, context.rank, shuffle=False) if context.enabled else None
    loader = DataLoader(indexed, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    module.eval()
    logits, labels, indices = [], [], []
    for volumes, targets, index in tqdm(loader, desc="evaluate", unit="batch", leave=False,
                                        disable=not (progress and context.is_main)):
        with autocast(device, autocast_dtype):
            logits.append(module(volumes.to(device)).float().cpu())
        labels.append(torch.as_tensor(targets))
        indices.append(index)
    logits, labels, indices = gather_tensors(context, torch.cat(logits), torch.cat(labels), torch.cat(indices))
    order = np.unique(indices.numpy(), return_index=True)[1]  # first copy of each index, in index order
    return logits[order], labels[order]


def make_evaluation(logits: torch.Tensor, labels: torch.Tensor, class_names) -> Evaluation:
    loss = float(nn.functional.cross_entropy(logits, labels)) if (labels >= 0).all() else math.nan
    report = classification_report(labels.numpy(), logits.argmax(1).numpy(), class_names, num_classes=logits.shape[1])
    return Evaluation(loss, report, logits.softmax(dim=1), labels)


def evaluate(
    model: SliceSequenceClassifier,
    data: Dataset,
    *,
    batch_size: int = 2,
    device: str = "auto",
    amp: str = "auto",
    class_names=None,
    num_workers: int = 0,
    progress: bool = True,
) -> Evaluation:
    """Run ``model`` over ``data`` (in eval mode) and report loss, kappa, accuracy and F1."""
    target = resolve_device(device)
    context = setup_distributed(target)
    model.to(target)
    logits, labels = predict_logits(model, data, batch_size=batch_size, device=target, num_workers=num_workers,
                              autocast_dtype=autocast_dtype_for(amp, target), context=context, progress=progress)
    return make_evaluation(logits, labels, class_names_for(model, data, class_names))


def class_names_for(model: SliceSequenceClassifier, data: Dataset, given) -> tuple[str, ...]:
    names = given or getattr(data, "classes", None) or ()
    if len(names) != model.num_classes:
        names = [str(i) for i in range(model.num_classes)]
    return tuple(names)
