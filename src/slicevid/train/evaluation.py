"""Evaluation: every head's predictions over a dataset (sharded and gathered under torchrun) and their metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .._progress import progress_bar
from ..data.batching import pad_collate
from ..devices import autocast, autocast_dtype_for, resolve_device
from ..errors import DataError
from ..keys import SLICES
from ..metrics import MultiTaskReport, Report, bootstrap_intervals
from ..tasks import Task
from .distributed import DistributedContext, gather_tensors, setup_distributed
from .network import ModelOutputs, describe_model, named_tasks
from .objective import Objective, batch_targets


@dataclass
class Evaluation:
    """Predictions of a model on a dataset and their metrics.

    Attributes:
        loss: the unweighted training objective on these samples (NaN when none has a target).
        report: the task's report (`ClassificationReport` for a classifier),
            or a `MultiTaskReport` with several heads.
        probabilities: what each task means (softmax rows, sigmoids, level probabilities, scores):
            a tensor for one task, a dict by task name for several.
        labels: the targets, in the same form.
        tasks: the model's tasks, by name.
    """

    loss: float
    report: Report
    probabilities: torch.Tensor | dict[str, torch.Tensor]
    labels: torch.Tensor | dict[str, torch.Tensor]
    tasks: dict[str, Task]

    @property
    def predictions(self) -> torch.Tensor | dict[str, torch.Tensor]:
        """Decisions: class or level indices, 0/1 labels, or scores (a dict with several tasks)."""
        if isinstance(self.probabilities, dict):
            return {n: torch.as_tensor(t.decide(self.probabilities[n].numpy())) for n, t in self.tasks.items()}
        (task,) = self.tasks.values()
        return torch.as_tensor(task.decide(self.probabilities.numpy()))

    def metrics(self) -> dict[str, float]:
        """``{"loss": ..., **report metrics}``: what a training history records per epoch."""
        return {"loss": self.loss, **self.report.metrics()}

    def probabilities_of(self, task: str) -> np.ndarray:
        """One task's probabilities (or scores) as an array."""
        values = self.probabilities[task] if isinstance(self.probabilities, dict) else self.probabilities
        return values.numpy()

    def targets_of(self, task: str) -> np.ndarray:
        """One task's targets as an array (missing ones marked as the task marks them)."""
        values = self.labels[task] if isinstance(self.labels, dict) else self.labels
        return values.numpy()

    def intervals(self, resamples: int, seed: int = 0) -> dict[str, dict[str, tuple[float, float]]]:
        """Per task, the 95% bootstrap interval of each of its metrics (`bootstrap_intervals`).

        Args:
            resamples: how many resamples of the scored scans (1,000 is usual).
            seed: seed of the resampling.
        """
        intervals = {}
        for name, task in self.tasks.items():
            probabilities, targets = self.probabilities_of(name), self.targets_of(name)

            def metrics(indices: np.ndarray, task=task, probabilities=probabilities, targets=targets):
                return task.report(probabilities[indices], targets[indices]).metrics()

            intervals[name] = bootstrap_intervals(metrics, len(targets), resamples, seed=seed)
        return intervals


class _Indexed(Dataset):
    """Adds each sample's index, so predictions gathered from ranks can be de-duplicated."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        volume, target = self.dataset[index]
        return volume, target, index


@torch.no_grad()
def predict_outputs(
    network: nn.Module,
    dataset: Dataset,
    objective: Objective,
    *,
    batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    context: DistributedContext,
    num_workers: int = 0,
    collate=pad_collate,
    progress: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], float | None]:
    """Every head's logits and targets over ``dataset``, in dataset order, and the mean slice loss.

    ``network`` takes ``(inputs, lengths)`` and returns `Outputs` (each task's logits, per-slice logits).
    """
    if len(dataset) == 0:
        raise DataError("Cannot evaluate on an empty dataset (no samples in this split)")
    indexed = _Indexed(dataset)
    sampler = DistributedSampler(indexed, context.world_size, context.rank, shuffle=False) if context.enabled else None
    loader = DataLoader(indexed, batch_size=batch_size, sampler=sampler, num_workers=num_workers, collate_fn=collate)
    network.eval()
    logits: dict[str, list] = {name: [] for name in objective.tasks}
    targets: dict[str, list] = {name: [] for name in objective.tasks}
    indices, slice_loss = [], torch.zeros(2, dtype=torch.float64)
    for inputs, batch, lengths, index in progress_bar(
        loader, enabled=progress and context.is_main, desc="evaluate", unit="batch", leave=False
    ):
        lengths = lengths.to(device) if lengths is not None else None
        with autocast(device, autocast_dtype):
            outputs = network(inputs.to(device), lengths)
        batch = batch_targets(batch, objective.tasks, device)
        for name in objective.tasks:
            logits[name].append(outputs.tasks[name].float().cpu())
            targets[name].append(batch[name].cpu())
        if objective.slices is not None and SLICES in batch:
            slice_loss += torch.tensor([float(objective.slice_loss(outputs, batch, lengths)) * len(index), len(index)])
        indices.append(index)
    names = list(objective.tasks)
    gathered = gather_tensors(
        context,
        torch.cat(indices),
        slice_loss,
        *[torch.cat(logits[n]) for n in names],
        *[torch.cat(targets[n]) for n in names],
    )
    order = np.unique(gathered[0].numpy(), return_index=True)[1]  # first copy of each index, in index order
    slice_sums = gathered[1].view(-1, 2).sum(0)
    mean_slice_loss = float(slice_sums[0] / slice_sums[1]) if objective.slices is not None and slice_sums[1] else None
    outputs_by_task = {n: gathered[2 + i][order] for i, n in enumerate(names)}
    targets_by_task = {n: gathered[2 + len(names) + i][order] for i, n in enumerate(names)}
    return outputs_by_task, targets_by_task, mean_slice_loss


def make_evaluation(
    outputs: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    tasks: Mapping[str, Task],
    slice_loss: float | None = None,
) -> Evaluation:
    """Loss (NaN for unlabelled data), metrics and probabilities from every head's logits and targets."""
    labelled = any(not bool(task.missing(targets[name]).all()) for name, task in tasks.items())
    loss = float(Objective(tasks).task_loss(outputs, targets)) if labelled else math.nan
    if slice_loss is not None:
        loss += slice_loss
    probabilities = {name: task.activate(outputs[name]) for name, task in tasks.items()}
    reports = {
        name: task.report(probabilities[name].numpy(), targets[name].numpy())
        for name, task in tasks.items()
        if labelled
    }
    if len(tasks) == 1:
        (name,) = tasks
        report = reports.get(name)
        return Evaluation(loss, report, probabilities[name], targets[name], dict(tasks))
    return Evaluation(loss, MultiTaskReport(reports), probabilities, dict(targets), dict(tasks))


def evaluate(
    model: nn.Module,
    data: Dataset,
    *,
    batch_size: int = 2,
    device: str = "auto",
    amp: str = "auto",
    class_names: Sequence[str] | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> Evaluation:
    """Run a model over labelled data (in eval mode) and report its loss and every head's metrics.

    Args:
        model: a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] or any ``nn.Module`` mapping
            ``(B, C, D, H, W)`` volumes to logits.
        data: a dataset of ``(volume, target)`` samples.
        batch_size: scans per forward pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        amp: ``"auto"`` (bf16 on CUDA), ``"bf16"`` or ``"off"``.
        class_names: names of a plain module's classes (a slicevid model knows its own).
        num_workers: DataLoader worker processes.
        progress: show a progress bar.

    Returns:
        The `Evaluation`: loss, report (kappa, accuracy and F1 for a classifier; AUCs,
        quadratic-weighted kappa, errors for other tasks), probabilities and targets.

    Raises:
        DataError: the data are empty, or their targets do not fit the model's tasks.
    """
    target = resolve_device(device)
    context = setup_distributed(target)
    config = describe_model(model, data, class_names)
    tasks = named_tasks(config.tasks, data, class_names)
    model.to(target)
    outputs, targets, slice_loss = predict_outputs(
        ModelOutputs(model),
        data,
        Objective(tasks, slices=config.slice_supervision),
        batch_size=batch_size,
        device=target,
        num_workers=num_workers,
        autocast_dtype=autocast_dtype_for(amp, target),
        context=context,
        progress=progress,
    )
    return make_evaluation(outputs, targets, tasks, slice_loss)
