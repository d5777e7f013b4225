"""Any model as the trainer sees it: a module whose forward returns ``{task name: logits}``.

``fit``, ``evaluate`` and ``predict_scans`` accept a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier]
or any ``nn.Module`` that maps ``(B, C, D, H, W)`` volumes to logits (a MONAI 3D CNN, a
torchvision video network ...). Such a module is trained by exactly the same loop, data,
augmentation, optimiser, schedule and epoch selection; it gives up what it does not offer:
padded batches of different depths (unless its forward takes ``lengths``), slice importance,
and a saved [`ModelConfig`][slicevid.ModelConfig] that rebuilds it by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..aggregators import takes_lengths
from ..errors import ConfigError
from ..keys import TARGET
from ..model import SliceSequenceClassifier
from ..model_config import ModelConfig
from ..outputs import Outputs
from ..tasks import Multiclass, Task
from .datasets import class_names_for, first_input


class ModelOutputs(nn.Module):
    """Calls ``model`` and returns its `Outputs` (what DDP and ``torch.compile`` wrap).

    Args:
        model: a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] or any volume-to-logits module.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.takes_lengths = isinstance(model, SliceSequenceClassifier) or takes_lengths(model)

    def forward(self, volumes: Tensor, lengths: Tensor | None = None) -> Outputs:
        if isinstance(self.model, SliceSequenceClassifier):
            return self.model.forward_outputs(volumes, lengths)
        if lengths is not None and not self.takes_lengths:
            raise ConfigError(
                f"model {type(self.model).__name__}",
                "cannot read a padded batch of scans of different depths (its forward takes no lengths); "
                "resample every scan to one depth",
            )
        outputs = self.model(volumes) if lengths is None else self.model(volumes, lengths)
        if isinstance(outputs, Outputs):  # a FoldEnsemble, or a user's module that returns them
            return outputs
        return Outputs(dict(outputs) if isinstance(outputs, dict) else {TARGET: outputs})


def describe_model(model: nn.Module, dataset: Dataset, class_names: Sequence[str] | None = None) -> ModelConfig:
    """The [`ModelConfig`][slicevid.ModelConfig] of a model about to be trained on ``dataset``.

    A slicevid model has its own. A plain module's class count is read from one forward pass
    of the first sample: a ``config`` it carries (its own, or the one an earlier fit left) is
    kept while its heads still match that count, and otherwise the module gets one multi-class
    head and no architecture names. The check matters when a head is swapped between two fits,
    as in video pretraining (ten actions) before fine-tuning (five classes).
    """
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig) and config.encoder is not None:
        return config
    volume = first_input(dataset)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = ModelOutputs(model)(volume[None].float()).tasks[TARGET]
    model.train(was_training)
    if logits.ndim != 2:
        shape = tuple(logits.shape)
        raise ConfigError(f"model {type(model).__name__}", f"must return logits (B, classes), got {shape}")
    if isinstance(config, ModelConfig) and [task.outputs for task in config.tasks.values()] == [logits.shape[1]]:
        return config
    names = class_names_for(logits.shape[1], dataset, class_names)
    return ModelConfig(encoder=None, aggregator=None, tasks={TARGET: Multiclass(names)}, in_channels=volume.shape[0])


def named_tasks(
    tasks: Mapping[str, Task], dataset: Dataset | None, class_names: Sequence[str] | None = None
) -> dict[str, Task]:
    """The tasks, a one-head classifier's classes named: ``class_names``, else the dataset's, else its own."""
    tasks = dict(tasks)
    if len(tasks) == 1:
        ((name, task),) = tasks.items()
        if isinstance(task, Multiclass):
            names = class_names_for(task.outputs, dataset, class_names, task.classes)
            tasks[name] = replace(task, classes=names)
    return tasks
