"""The training loop's policies as small callbacks: each one decides one thing, at one point of the loop.

`fit` runs one loop (train an epoch, validate, keep the best weights, checkpoint) and asks its
callbacks at three points:

* ``on_epoch_end(trainer, row)``: after an epoch's validation and the best-weights update; ``row``
  is the epoch's history row. The learning-rate plateau, early stopping, the wall-clock budget
  and TensorBoard act here; setting ``trainer.state.stopped`` ends the run after this epoch.
* ``on_fit_end(trainer, evaluation)``: once the kept weights are back, with their validation
  `Evaluation`; returns the evaluation to pass on (a changed one when the callback changed the
  model's decisions). Temperature scaling and the decision thresholds act here, in that order.
* ``on_run_end(trainer, evaluation)``: the last step, when the run folder is complete (the report).

A callback keeps whatever it must resume with in ``trainer.state`` (a `TrainState`, saved with
every checkpoint), so a resumed run continues exactly. Pass your own with ``fit(callbacks=[...])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..metrics import best_f1_thresholds, choose_threshold
from ..tasks import Multiclass, Multilabel
from .calibration import fit_temperature
from .optim import PlateauLR


class Callback:
    """Base of the loop's callbacks: every hook does nothing unless overridden."""

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        """After an epoch is validated and the best weights updated."""

    def on_fit_end(self, trainer, evaluation):
        """With the kept weights restored and validated; returns the evaluation to pass on."""
        return evaluation

    def on_run_end(self, trainer, evaluation) -> None:
        """When the run is complete."""


class LearningRatePlateau(Callback):
    """Cut the learning rate when the validation loss stalls (counted as Keras counts, see `PlateauLR`)."""

    def __init__(self, trainer) -> None:
        config = trainer.config
        self.plateau = PlateauLR(
            trainer.optimizer,
            config.plateau_factor,
            config.plateau_patience,
            config.plateau_min_delta,
            config.plateau_cooldown,
        )
        if trainer.state.plateau:
            self.plateau.load_state_dict(trainer.state.plateau)

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        if "val_loss" in row:
            self.plateau.step(row["val_loss"])
            trainer.state.plateau = self.plateau.state_dict()


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a new best monitored value (0: never)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        state = trainer.state
        if self.patience and trainer.val_data is not None and state.bad_epochs >= self.patience:
            state.stopped = True


class TimeBudget(Callback):
    """Stop after the epoch during which the run's training time passed ``seconds`` (a wall-clock budget).

    The time counted is the sum of the epochs' own seconds, so a resumed run keeps its budget.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        if sum(r["seconds"] for r in trainer.state.history) >= self.seconds:
            trainer.state.stopped = True


class TensorBoardLogger(Callback):
    """Every epoch's numbers as TensorBoard scalars in ``out_dir/tensorboard`` (``tensorboard --logdir``)."""

    def __init__(self, out_dir) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError("tensorboard", "needs the tensorboard package: pip install tensorboard") from err
        self.writer = SummaryWriter(str(out_dir / "tensorboard"))

    def on_epoch_end(self, trainer, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(key.replace("_", "/", 1) if key.startswith("val_") else key, value, row["epoch"])
        self.writer.flush()

    def on_run_end(self, trainer, evaluation) -> None:
        self.writer.close()


class TemperatureScaling(Callback):
    """Fit each multi-class head's softmax temperature on the validation logits (Guo et al., 2017).

    One scalar per head divides its logits: it changes the probabilities (their calibration),
    never which class is most probable. It is saved with the model, so ``predict``, ``evaluate``
    and the ONNX export use it.
    """

    def on_fit_end(self, trainer, evaluation):
        if evaluation is None:
            return evaluation
        logits, targets = trainer.last_outputs
        fitted = {
            name: task.with_temperature(fit_temperature(logits[name], targets[name]))
            for name, task in trainer.tasks.items()
            if isinstance(task, Multiclass)
        }
        return trainer.update_tasks(fitted)


class DecisionThresholds(Callback):
    """Choose decision thresholds on the validation predictions, saved with the model.

    A two-class head gets a threshold on its second class's probability by ``rule`` (Youden's
    index by default, or the highest threshold that reaches ``target_sensitivity``); each label
    of a multi-label head gets the threshold of best F1.
    """

    def __init__(self, rule: str = "youden", target_sensitivity: float = 0.9) -> None:
        self.rule, self.target_sensitivity = rule, target_sensitivity

    def on_fit_end(self, trainer, evaluation):
        if evaluation is None:
            return evaluation
        logits, targets = trainer.last_outputs
        chosen = {}
        for name, task in trainer.tasks.items():
            probabilities = task.activate(logits[name]).numpy().astype(np.float64)
            truth = targets[name].numpy()
            if isinstance(task, Multilabel):
                chosen[name] = task.with_thresholds(best_f1_thresholds(truth, probabilities))
            elif isinstance(task, Multiclass) and task.outputs == 2:
                known = truth >= 0
                cut = choose_threshold(truth[known], probabilities[known, 1], self.rule, self.target_sensitivity)
                chosen[name] = task.with_threshold(cut)
        return trainer.update_tasks(chosen) if chosen else evaluation


def default_callbacks(trainer) -> list[Callback]:
    """The policies ``trainer.config`` asks for, in the order they act."""
    config = trainer.config
    callbacks: list[Callback] = [LearningRatePlateau(trainer), EarlyStopping(config.early_stopping_patience)]
    if config.time_limit is not None:
        callbacks.append(TimeBudget(config.time_limit))
    if config.tensorboard and trainer.writes:
        callbacks.append(TensorBoardLogger(trainer.out_dir))
    if config.calibrate == "temperature":
        callbacks.append(TemperatureScaling())
    callbacks.append(DecisionThresholds(config.threshold, config.target_sensitivity))
    return callbacks
