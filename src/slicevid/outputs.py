"""``Outputs``: what a forward pass gives the trainer, each task's logits and the per-slice logits kept apart."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class Outputs(NamedTuple):
    """A model's logits for a batch: per task, and per slice.

    A named tuple, so DDP, ``torch.compile`` and graph exporters pass it through as they pass tuples.

    Attributes:
        tasks: each task's logits ``(B, outputs)``, in the model's task order.
        slices: per-slice logits ``(B, D, labels)`` of a slice head, else ``None``.
    """

    tasks: dict[str, Tensor]
    slices: Tensor | None = None
