"""The optimizer a ``TrainConfig`` names, and learning-rate cuts on a validation-loss plateau.

The optimizers are PyTorch's: SGD (the paper's, without momentum as in Keras's default),
Adam and AdamW (decoupled weight decay).

The plateau cuts are counted as Keras counts them. ``ReduceLROnPlateau(patience=5)`` in
Keras cuts the rate once 5 epochs have passed without improvement (``wait >= patience``);
PyTorch's scheduler of the same name waits for a 6th (``num_bad_epochs > patience``) and
measures improvement relatively. The ViPTT-Net recipe was tuned with Keras, so slicevid
counts as Keras does: ``patience=N`` means "cut after N epochs without improvement", an
improvement is a drop of more than ``min_delta`` (absolute, 1e-4 by default), and
``cooldown`` epochs after a cut are not counted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .config import TrainConfig


def make_optimizer(config: TrainConfig, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over ``parameters``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer(parameters, lr=config.lr, weight_decay=config.weight_decay)


class PlateauLR:
    """Multiply every parameter group's learning rate by ``factor`` when the monitored loss stalls.

    Args:
        optimizer: the optimizer whose learning rates to cut.
        factor: the multiplier, in (0, 1).
        patience: epochs without improvement before a cut.
        min_delta: the loss must fall below ``best - min_delta`` to count as an improvement.
        cooldown: epochs after a cut during which nothing is counted.
        min_lr: learning rates never go below this.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        factor: float = 0.1,
        patience: int = 5,
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        self.optimizer = optimizer
        self.factor, self.patience, self.min_delta = factor, patience, min_delta
        self.cooldown, self.min_lr = cooldown, min_lr
        self.best, self.wait, self.cooldown_counter = math.inf, 0, 0

    def step(self, loss: float) -> bool:
        """Record one epoch's loss; returns True when the learning rate was cut."""
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if loss < self.best - self.min_delta:
            self.best, self.wait = loss, 0
            return False
        if self.cooldown_counter > 0:
            return False
        self.wait += 1
        if self.wait < self.patience:
            return False
        for group in self.optimizer.param_groups:
            group["lr"] = max(group["lr"] * self.factor, self.min_lr)
        self.cooldown_counter, self.wait = self.cooldown, 0
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.cooldown_counter = state["best"], state["wait"], state["cooldown_counter"]
