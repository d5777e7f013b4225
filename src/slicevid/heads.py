"""The heads of a slice-sequence model: scan-level task heads and an optional per-slice head.

* `TaskHeads`: a shared hidden layer (Dense 1024 + ReLU in the paper) and one output
  layer per task. A one-task model keeps the paper's layout (``head.hidden``, ``head.classifier``),
  so checkpoints of earlier versions and the authors' converted weights load unchanged; a model
  with several tasks has ``head.classifier.task_<name>`` (prefixed, because a task may well be
  called ``type``, a name ``nn.Module`` keeps for itself).
* `SliceHead`: one linear layer on the aggregator's per-slice outputs, giving slice
  logits ``(B, D, labels)``; padded slices get ``-inf``-free zeros and are masked wherever used.
  It can pool the slice logits into a scan-level task: the maximum over real slices, or a
  learned attention (softmax over real slices) weighting them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from .tasks import SliceSupervision, Task


class TaskHeads(nn.Module):
    """Hidden layer, then one output layer per task.

    Args:
        in_features: width of the aggregator's output.
        hidden: width of the shared hidden layer.
        tasks: the tasks, by name (in output order).
    """

    def __init__(self, in_features: int, hidden: int, tasks: Mapping[str, Task]) -> None:
        super().__init__()
        self.task_names = tuple(tasks)
        self.hidden = nn.Linear(in_features, hidden)
        self.act = nn.ReLU(inplace=True)
        if len(tasks) == 1:
            self.classifier: nn.Module = nn.Linear(hidden, next(iter(tasks.values())).outputs)
        else:
            layers = ((_key(n), nn.Linear(hidden, t.outputs)) for n, t in tasks.items())
            self.classifier = nn.ModuleDict(OrderedDict(layers))

    def forward(self, pooled: Tensor) -> dict[str, Tensor]:
        hidden = self.act(self.hidden(pooled))
        if isinstance(self.classifier, nn.ModuleDict):
            return {name: self.classifier[_key(name)](hidden) for name in self.task_names}
        return {self.task_names[0]: self.classifier(hidden)}

    def output_layers(self) -> dict[str, nn.Linear]:
        """Each task's output layer, by name."""
        if isinstance(self.classifier, nn.ModuleDict):
            return {name: self.classifier[_key(name)] for name in self.task_names}
        return {self.task_names[0]: self.classifier}


def _key(task: str) -> str:
    """The module name of a task's output layer."""
    return f"task_{task}"


class SliceHead(nn.Module):
    """Per-slice logits from per-slice aggregator outputs, and their pooling into one scan-level prediction.

    Args:
        in_features: width of the per-slice outputs (the aggregator's ``sequence_features``).
        supervision: what the slices are labelled with, and how (if at all) they are pooled.
    """

    def __init__(self, in_features: int, supervision: SliceSupervision) -> None:
        super().__init__()
        self.classifier = nn.Linear(in_features, len(supervision.labels))
        self.pool_into = supervision.pool_into
        attends = supervision.pool_into is not None and supervision.pool == "attention"
        self.attention = nn.Linear(in_features, 1) if attends else None

    def forward(self, sequence: Tensor, valid: Tensor) -> Tensor:
        """Slice logits ``(B, D, L)``; zero at padded slices."""
        return self.classifier(sequence.float()) * valid[..., None]

    def pool(self, slice_logits: Tensor, sequence: Tensor, valid: Tensor) -> Tensor:
        """Scan-level logits ``(B, L)``: attention-weighted or maximal slice logits over real slices."""
        if self.attention is None:
            return slice_logits.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)
        scores = self.attention(sequence.float()).squeeze(-1).masked_fill(~valid, float("-inf"))
        return torch.einsum("bd,bdl->bl", scores.softmax(dim=1), slice_logits)
