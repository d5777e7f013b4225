"""The training objective: every head's loss on its known targets, weighted and summed, plus the slice loss.

Batches carry their targets as the data gives them: one tensor for a one-head model, or a dict
from task name to tensor (and ``"slices"``: per-slice targets ``(B, D, labels)``). This module
turns both into one dict and checks it against the model's tasks, so a dataset whose targets
do not match the heads fails at the first batch with the names of both.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from ..aggregators import valid_mask
from ..errors import DataError
from ..keys import SLICES
from ..outputs import Outputs
from ..tasks import SliceSupervision, Task


def batch_targets(targets: Tensor | Mapping[str, Tensor], tasks: Mapping[str, Task], device) -> dict[str, Tensor]:
    """A batch's targets as ``{task name: tensor}`` (plus ``"slices"``), on ``device``.

    Raises:
        DataError: the targets name other tasks than the model's, or one target feeds several heads.
    """
    if isinstance(targets, Mapping):
        names = set(targets) - {SLICES}
        if names != set(tasks):
            raise DataError(f"the data's targets {sorted(names)} do not match the model's tasks {sorted(tasks)}")
        return {name: torch.as_tensor(value).to(device) for name, value in targets.items()}
    if len(tasks) != 1:
        raise DataError(f"the data give one target per sample, but the model has {len(tasks)} tasks {sorted(tasks)}")
    return {next(iter(tasks)): torch.as_tensor(targets).to(device)}


class Objective:
    """The weighted sum of the heads' losses (and the slice loss) for one model.

    Args:
        tasks: the model's tasks, by name.
        balances: per task, the class or positive weights to train with (``None``: unweighted).
        class_weight_mode: how multi-class weights enter (``"keras"`` or ``"normalized"``).
        slices: the model's slice supervision, if it has one.
    """

    def __init__(
        self,
        tasks: Mapping[str, Task],
        balances: Mapping[str, Tensor | None] | None = None,
        class_weight_mode: str = "keras",
        slices: SliceSupervision | None = None,
    ) -> None:
        self.tasks, self.balances = dict(tasks), dict(balances or {})
        self.class_weight_mode, self.slices = class_weight_mode, slices

    def task_loss(self, outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]) -> Tensor:
        """The weighted sum of the heads' losses."""
        return sum(
            task.weight * task.loss(outputs[name], targets[name], self.balances.get(name), self.class_weight_mode)
            for name, task in self.tasks.items()
        )

    def slice_loss(self, outputs: Outputs, targets: Mapping[str, Tensor], lengths: Tensor | None):
        """The weighted slice loss, or ``None`` without slice supervision.

        Raises:
            DataError: the model has a slice head but the data give no slice targets.
        """
        if self.slices is None:
            return None
        if SLICES not in targets:
            raise DataError(
                "the model has a slice head, but the data give no slice targets "
                "(pass slice_targets= to the dataset, or --slice-targets / --slice-masks)"
            )
        logits = outputs.slices
        valid = valid_mask(lengths, *logits.shape[:2], logits.device)
        slice_targets = targets[SLICES][:, : logits.shape[1]].to(logits.dtype)
        return self.slices.weight * self.slices.loss(logits, slice_targets, valid)

    def __call__(self, outputs: Outputs, targets: Mapping[str, Tensor], lengths: Tensor | None) -> Tensor:
        loss = self.task_loss(outputs.tasks, targets)
        slice_loss = self.slice_loss(outputs, targets, lengths)
        return loss if slice_loss is None else loss + slice_loss
