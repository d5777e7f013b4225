"""The trainer's state as a type: what ``fit`` has done so far, checkpointed and returned.

``TrainState`` is everything the loop decides from (epochs done, the best validation loss
and its epoch, epochs without improvement, the learning-rate controller) and everything it
records (the per-epoch history). It round-trips through a checkpoint's JSON metadata, which
is what makes a resumed run reach the same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrainState:
    """Progress of one ``fit`` call.

    Attributes:
        epoch: epochs completed.
        best_epoch: 1-based epoch of the best monitored value so far (``None`` before any).
        best_val_loss: that epoch's validation loss.
        best_score: that epoch's monitored value (the validation loss unless another metric is monitored).
        bad_epochs: epochs since the best one (early stopping counts these).
        history: one row per epoch: ``epoch``, ``train_loss``, ``lr``, ``seconds`` and, with
            validation data, ``val_loss``, ``val_kappa``, ``val_accuracy``.
        stopped: early stopping ended the run.
        initial_loss: the first batch's loss, the reference for divergence detection.
        plateau: the learning-rate controller's counters.
    """

    epoch: int = 0
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    best_score: float | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    initial_loss: float | None = None
    plateau: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


@dataclass
class FitResult:
    """What ``fit`` returns; the model itself holds the kept weights afterwards.

    Attributes:
        history: one row per epoch (see `TrainState`).
        best_epoch: the kept epoch.
        best_val_loss: its validation loss.
        evaluation: the kept weights on the validation data, or ``None`` without it.
        out_dir: the run folder, if any.
        stopped_early: early stopping ended the run.
        config: the trained model's description (heads, class names, thresholds, input, data).
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    evaluation: Any = None
    out_dir: Path | None = None
    stopped_early: bool = False
    config: Any = None

    @classmethod
    def from_state(cls, state: TrainState, evaluation: Any, out_dir: Path | None, config: Any) -> FitResult:
        return cls(state.history, state.best_epoch, state.best_val_loss, evaluation, out_dir, state.stopped, config)
