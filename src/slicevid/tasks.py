"""What a model predicts: one class, several binary labels, an ordered level or a score, as many heads as needed.

A task is a small frozen description that owns everything that depends on the kind of target:

============  ========  ==================  ===============================  ===============================
task          outputs   activation          loss (missing targets masked)    metrics
============  ========  ==================  ===============================  ===============================
Multiclass    K         softmax             cross-entropy (class weights)    kappa, accuracy, per-class F1
Multilabel    L         sigmoid per label   binary cross-entropy (pos. w.)   per-label AUC, mean/min AUC, F1
Ordinal       K - 1     cumulative sigmoid  BCE on "level > k" for each k    quadratic-weighted kappa, MAE
Regression    1         identity            mean squared error               MAE, RMSE, Spearman
============  ========  ==================  ===============================  ===============================

Each task also owns how the labels CSV holds its targets (`Task.column_kind`), how it is built
from those columns (`Task.from_columns`), its columns and cells in a results CSV, its decision
rule, and which way each of its metrics improves (`Task.metric_directions`).

A two-class `Multiclass` task may carry a decision ``threshold`` on its second class's
probability (chosen on validation scans by Youden's index or a target sensitivity) and any
multi-class task a softmax ``temperature`` (fitted on validation scans); both are saved with
the model and used wherever it predicts.

Missing targets (a scan without a label for one head) are ``-1`` for class and level indices
and NaN for labels and scores. They are left out of that head's loss and metrics, never
treated as 0, so the scan still trains the other heads.

The ordinal head predicts the probabilities that the level exceeds each threshold,
``P(y > k)``, the cumulative-link formulation of Frank and Hall (2001): its level is the
number of thresholds passed, and its level probabilities are the differences of consecutive
cumulative ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Literal, Protocol, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._registry import check_choice
from .errors import ConfigError, DataError
from .keys import SLICES, TARGET
from .metrics import (
    ClassificationReport,
    MultilabelReport,
    OrdinalReport,
    RegressionReport,
    Report,
    balanced_class_weights,
    classification_report,
    multilabel_report,
    ordinal_report,
    regression_report,
)

__all__ = [
    "TARGET",
    "Multiclass",
    "Multilabel",
    "Ordinal",
    "Regression",
    "SliceSupervision",
    "Task",
    "class_weighted_cross_entropy",
    "tasks_from_columns",
]

SLICE_POOLS = ("max", "attention")
"""How slice logits pool into a scan head: the maximum over real slices, or learned attention."""
ClassWeightMode = Literal["keras", "normalized"]
"""How class weights scale a batch's loss: Keras's weighted mean, or normalised by the weights' sum."""
CLASS_WEIGHT_MODES: tuple[str, ...] = get_args(ClassWeightMode)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def class_weighted_cross_entropy(
    logits: Tensor, targets: Tensor, weights: Tensor | None = None, mode: str = "keras"
) -> Tensor:
    """Cross-entropy with per-class weights, in Keras's or in PyTorch's sense.

    The two frameworks weight differently. Keras's ``fit(class_weight=w)`` turns the weights
    into per-sample weights and averages over the batch: ``mean(w[y] * ce)``. PyTorch's
    ``CrossEntropyLoss(weight=w)`` divides by ``sum(w[y])`` instead, so the weights only shift
    the balance *within* a batch; at the paper's batch size of 2 the weighting vanishes whenever
    both scans share a class. The ViPTT-Net numbers came from Keras, so ``"keras"`` is the default.

    Args:
        logits: ``(B, K)``.
        targets: ``(B,)`` class indices.
        weights: ``(K,)`` per-class weights, or ``None`` for the plain mean cross-entropy.
        mode: ``"keras"``: ``mean(w[y] * ce)``; ``"normalized"``: ``sum(w[y] * ce) / sum(w[y])``.
    """
    mode = check_choice("class_weight_mode", mode, CLASS_WEIGHT_MODES)
    if weights is None:
        return F.cross_entropy(logits, targets)
    if mode == "normalized":
        return F.cross_entropy(logits, targets, weight=weights)
    return (F.cross_entropy(logits, targets, reduction="none") * weights[targets]).mean()


def _names(value: int | Sequence[str], what: str) -> tuple[str, ...]:
    """``3`` -> ``("0", "1", "2")``; a sequence of names stays as strings."""
    if isinstance(value, bool) or (isinstance(value, int) and value < 1):
        raise ConfigError(what, f"must be a positive count or a list of names, got {value!r}")
    names = tuple(str(i) for i in range(value)) if isinstance(value, int) else tuple(str(v) for v in value)
    if len(set(names)) != len(names):
        raise ConfigError(what, f"must not repeat a name, got {list(names)}")
    return names


@dataclass(frozen=True, kw_only=True)
class Task:
    """Base of the task kinds.

    Attributes:
        weight: this head's weight in the summed loss of a several-head model.
    """

    weight: float = 1.0
    kind: ClassVar[str] = ""
    column_kind: ClassVar[str] = ""
    """How the labels CSV holds this task's targets: ``"class"``, ``"binary"``, ``"level"`` or ``"number"``."""
    report_type: ClassVar[type[Report]] = Report
    headline: ClassVar[tuple[str, ...]] = ()
    """The metrics shown in each epoch's line and plotted in ``curves.png``."""

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not self.weight > 0:
            raise ConfigError("weight", f"must be a positive number, got {self.weight!r}")

    @classmethod
    def from_columns(cls, names: Sequence[str], columns: Sequence[str], flip_pairs: Sequence[Sequence[str]] = ()):
        """The task that learns what CSV ``columns`` hold, given the names the data gave them.

        Args:
            names: the class, label or level names read from the data.
            columns: the CSV columns that feed the task.
            flip_pairs: label pairs that swap in a left-right flip (kept where the task holds both).
        """
        raise NotImplementedError

    def metric_directions(self) -> dict[str, bool]:
        """Each metric this task's report has, and whether a larger value is better."""
        return dict(self.report_type.HIGHER_IS_BETTER)

    @property
    def outputs(self) -> int:
        """Logits this head produces."""
        raise NotImplementedError

    @property
    def names(self) -> tuple[str, ...]:
        """Names of what the head predicts (classes, labels, levels or the score)."""
        raise NotImplementedError

    def activate(self, logits: Tensor) -> Tensor:
        """Probabilities (or the score) from logits ``(B, outputs)``."""
        raise NotImplementedError

    def loss(self, logits: Tensor, targets: Tensor, balance: Tensor | None = None, mode: str = "keras") -> Tensor:
        """The head's loss on the samples whose target is known (0 when none is).

        Args:
            logits: ``(B, outputs)``.
            targets: ``(B,)`` indices or ``(B, labels)`` values, with missing ones marked.
            balance: class or positive weights from `balance()`, or ``None``.
            mode: how multi-class weights enter: ``"keras"`` (``mean(w[y] * ce)``, as Keras's
                ``class_weight``) or ``"normalized"`` (``sum(w[y] * ce) / sum(w[y])``, as PyTorch's
                ``CrossEntropyLoss(weight=w)``).
        """
        raise NotImplementedError

    def missing(self, targets: Tensor | np.ndarray) -> Tensor | np.ndarray:
        """Booleans ``(B,)``: samples without a target for this head."""
        raise NotImplementedError

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Decisions from `activate()` output: class or level indices, 0/1 labels, or scores."""
        raise NotImplementedError

    def decision(self, probabilities: Sequence[float]) -> int | float | tuple[int, ...]:
        """One scan's decision as a plain value: a class or level index, the 0/1 labels, or the score."""
        return int(self.decide(np.asarray(probabilities, dtype=np.float64)[None])[0])

    def result_columns(self) -> list[str]:
        """This task's columns in a results CSV (``predicted`` and ``p_<name>`` for classes and levels)."""
        return ["predicted", *(f"p_{n}" for n in self.names)]

    def result_cells(self, probabilities: Sequence[float], decision: Any) -> list[str]:
        """One scan's cells under `result_columns()`."""
        return [self.names[decision], *(f"{p:.4f}" for p in probabilities)]

    def target_cell(self, target: np.ndarray) -> str:
        """A scan's known target as one CSV cell: its class or level name (0/1 per label, the score)."""
        return self.names[int(target)]

    def inverse_activate(self, probabilities: Tensor) -> Tensor:
        """Logits whose `activate()` gives ``probabilities`` (to average several models' probabilities)."""
        raise NotImplementedError

    def report(self, probabilities: np.ndarray, targets: np.ndarray) -> Report:
        """The metrics of these predictions."""
        raise NotImplementedError

    def balance(self, targets: np.ndarray) -> Tensor | None:
        """Loss weights balancing the training targets (class weights, positive weights), if the kind has them."""
        return None

    def explained_score(self, logits: Tensor) -> Tensor:
        """One number per sample ``(B,)`` whose gradient says which slices drove the decision."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Multiclass(Task):
    """One class per scan (the paper's TB type; normal or mass).

    Attributes:
        classes: a class count, or the class names in label order.
        threshold: with two classes, the decision threshold on the second class's probability
            (chosen on validation scans by ``fit``); ``None``: the more probable class decides.
        temperature: the softmax temperature fitted on validation scans (``--calibrate
            temperature``); ``None`` is 1, the uncalibrated softmax.
    """

    classes: int | Sequence[str] = 5
    threshold: float | None = None
    temperature: float | None = None
    kind: ClassVar[str] = "multiclass"
    column_kind: ClassVar[str] = "class"
    report_type: ClassVar[type[Report]] = ClassificationReport
    headline: ClassVar[tuple[str, ...]] = ("kappa", "auc")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", _names(self.classes, "classes"))
        if self.threshold is not None:
            if len(self.classes) != 2:
                raise ConfigError("threshold", f"applies to two classes only, got {len(self.classes)}")
            if not 0.0 <= float(self.threshold) <= 1.0:
                raise ConfigError("threshold", f"must lie in [0, 1], got {self.threshold}")
            object.__setattr__(self, "threshold", float(self.threshold))
        if self.temperature is not None:
            if not (math.isfinite(float(self.temperature)) and float(self.temperature) > 0):
                raise ConfigError("temperature", f"must be a positive number, got {self.temperature}")
            object.__setattr__(self, "temperature", float(self.temperature))

    @classmethod
    def from_columns(cls, names, columns, flip_pairs=()) -> Multiclass:
        if len(names) < 2:
            raise DataError(
                f"{', '.join(columns)} holds one class only ({list(names)}): there is nothing to tell apart"
            )
        return cls(tuple(names))

    @property
    def outputs(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return self.classes

    def activate(self, logits: Tensor) -> Tensor:
        """Softmax rows, of the logits divided by the temperature when one was fitted."""
        return (logits.float() / (self.temperature or 1.0)).softmax(dim=-1)

    def inverse_activate(self, probabilities: Tensor) -> Tensor:
        return probabilities.float().clamp_min(1e-12).log() * (self.temperature or 1.0)

    def missing(self, targets):
        return targets < 0

    def loss(self, logits: Tensor, targets: Tensor, balance: Tensor | None = None, mode: str = "keras") -> Tensor:
        known = ~self.missing(targets)
        if bool((targets[known] >= self.outputs).any()):
            bad = sorted(set(targets[known & (targets >= self.outputs)].tolist()))
            raise DataError(f"class labels {bad} are out of range for {self.outputs} classes (0..{self.outputs - 1})")
        if not bool(known.any()):
            return logits.sum() * 0.0
        return class_weighted_cross_entropy(logits[known].float(), targets[known], balance, mode)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The class: the second one where its probability reaches ``threshold`` (two classes), else the likeliest."""
        probabilities = np.asarray(probabilities)
        if self.threshold is None:
            return probabilities.argmax(axis=-1)
        return (probabilities[..., 1] >= self.threshold).astype(np.int64)

    def report(self, probabilities: np.ndarray, targets: np.ndarray):
        targets, probabilities = np.asarray(targets), np.asarray(probabilities)
        known = ~self.missing(targets)
        return classification_report(
            targets[known],
            self.decide(probabilities)[known],
            self.classes,
            num_classes=self.outputs,
            probabilities=probabilities[known],
            threshold=self.threshold,
        )

    def balance(self, targets: np.ndarray) -> Tensor:
        return balanced_class_weights(np.asarray(targets)[np.asarray(targets) >= 0], self.outputs)

    def explained_score(self, logits: Tensor) -> Tensor:
        return logits.gather(1, logits.argmax(dim=1, keepdim=True))[:, 0]

    def with_threshold(self, threshold: float | None) -> Multiclass:
        return replace(self, threshold=threshold)

    def with_temperature(self, temperature: float | None) -> Multiclass:
        return replace(self, temperature=temperature)


@dataclass(frozen=True)
class Multilabel(Task):
    """Several independent yes/no findings per scan (the ImageCLEF CT report: lungs affected, caverns ...).

    Attributes:
        labels: the label names.
        thresholds: decision threshold per label on its probability (0.5 until chosen on validation data).
        pos_weight: per-label weight of positive examples in the loss (``None``: 1; training with
            ``class_weights`` uses negatives / positives of the training labels).
        flip_pairs: pairs of labels that swap when the scan is flipped left-right (``("left", "right")``);
            test-time flipping is refused for a task that names a side without declaring its pair.
    """

    labels: Sequence[str] = ()
    thresholds: Sequence[float] | None = None
    pos_weight: Sequence[float] | None = None
    flip_pairs: Sequence[Sequence[str]] = ()
    kind: ClassVar[str] = "multilabel"
    column_kind: ClassVar[str] = "binary"
    report_type: ClassVar[type[Report]] = MultilabelReport
    headline: ClassVar[tuple[str, ...]] = ("mean_auc", "min_auc")

    def __post_init__(self) -> None:
        super().__post_init__()
        labels = _names(self.labels, "labels")
        if not labels:
            raise ConfigError("labels", "must name at least one label")
        object.__setattr__(self, "labels", labels)
        for name in ("thresholds", "pos_weight"):
            values = getattr(self, name)
            if values is not None:
                values = tuple(float(v) for v in values)
                if len(values) != len(labels):
                    raise ConfigError(name, f"must have one value per label ({len(labels)}), got {len(values)}")
                object.__setattr__(self, name, values)
        if self.thresholds is not None and not all(0.0 < t < 1.0 for t in self.thresholds):
            raise ConfigError("thresholds", f"must lie in (0, 1), got {self.thresholds}")
        pairs = tuple(tuple(str(n) for n in pair) for pair in self.flip_pairs)
        unknown = sorted({n for pair in pairs for n in pair} - set(labels))
        if unknown or any(len(pair) != 2 for pair in pairs):
            raise ConfigError("flip_pairs", f"must be pairs of labels of this task; unknown or odd: {unknown or pairs}")
        object.__setattr__(self, "flip_pairs", pairs)

    @classmethod
    def from_columns(cls, names, columns, flip_pairs=()) -> Multilabel:
        return cls(tuple(names), flip_pairs=[tuple(p) for p in flip_pairs if set(p) <= set(names)])

    @property
    def outputs(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> tuple[str, ...]:
        return self.labels

    @property
    def decision_thresholds(self) -> tuple[float, ...]:
        return self.thresholds or (0.5,) * self.outputs

    def activate(self, logits: Tensor) -> Tensor:
        return logits.float().sigmoid()

    def inverse_activate(self, probabilities: Tensor) -> Tensor:
        return torch.logit(probabilities.float(), eps=1e-6)

    def decision(self, probabilities):
        return tuple(int(v) for v in self.decide(np.asarray(probabilities, dtype=np.float64)[None])[0])

    def result_columns(self) -> list[str]:
        """``p_<label>`` per label, then the 0/1 decision per label."""
        return [*(f"p_{n}" for n in self.names), *self.names]

    def result_cells(self, probabilities, decision) -> list[str]:
        return [*(f"{p:.4f}" for p in probabilities), *(str(int(d)) for d in decision)]

    def target_cell(self, target) -> str:
        """The 0/1 labels, ``;``-separated (a missing label left empty)."""
        return ";".join("" if math.isnan(v) else str(int(v)) for v in np.asarray(target, dtype=float).reshape(-1))

    def missing(self, targets):
        """A sample misses this head only when every label is missing (single missing labels are masked too)."""
        nan = torch.isnan(targets) if isinstance(targets, Tensor) else np.isnan(targets)
        return nan.all(-1)

    def loss(self, logits: Tensor, targets: Tensor, balance: Tensor | None = None, mode: str = "keras") -> Tensor:
        known = ~torch.isnan(targets)
        if not bool(known.any()):
            return logits.sum() * 0.0
        values = targets[known]
        if bool(((values < 0) | (values > 1)).any()):
            raise DataError(f"multi-label targets must lie in [0, 1] or be missing, got {sorted(set(values.tolist()))}")
        weight = balance if balance is not None else self._pos_weight(logits)
        losses = F.binary_cross_entropy_with_logits(
            logits.float(), torch.nan_to_num(targets, nan=0.0), pos_weight=weight, reduction="none"
        )
        return losses[known].mean()

    def _pos_weight(self, logits: Tensor) -> Tensor | None:
        return None if self.pos_weight is None else torch.tensor(self.pos_weight, device=logits.device)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return (np.asarray(probabilities) >= np.asarray(self.decision_thresholds)).astype(np.int64)

    def report(self, probabilities: np.ndarray, targets: np.ndarray):
        return multilabel_report(targets, probabilities, self.labels, self.decision_thresholds)

    def balance(self, targets: np.ndarray) -> Tensor:
        """Negatives / positives per label of the training targets."""
        targets = np.asarray(targets, dtype=np.float64)
        positives, negatives = np.nansum(targets == 1, axis=0), np.nansum(targets == 0, axis=0)
        never = [label for label, count in zip(self.labels, positives, strict=True) if count == 0]
        if never:
            raise DataError(f"label(s) {never} are never positive in the training data, so they cannot be weighted")
        return torch.tensor(negatives / positives, dtype=torch.float32)

    def explained_score(self, logits: Tensor) -> Tensor:
        """The summed logits of the labels decided positive (the largest logit when none is)."""
        decided = logits.sigmoid() >= torch.tensor(self.decision_thresholds, device=logits.device)
        positive = (logits * decided).sum(dim=1)
        return torch.where(decided.any(dim=1), positive, logits.max(dim=1).values)

    def flip_permutation(self) -> list[int]:
        """Output order after a left-right flip (declared pairs swap)."""
        order = list(range(self.outputs))
        for a, b in self.flip_pairs:
            i, j = self.labels.index(a), self.labels.index(b)
            order[i], order[j] = order[j], order[i]
        return order

    def with_thresholds(self, thresholds: Sequence[float]) -> Multilabel:
        return replace(self, thresholds=tuple(float(t) for t in thresholds))


@dataclass(frozen=True)
class Ordinal(Task):
    """An ordered level per scan (severity low < medium < high).

    Attributes:
        levels: a level count, or the level names from lowest to highest.
    """

    levels: int | Sequence[str] = 3
    kind: ClassVar[str] = "ordinal"
    column_kind: ClassVar[str] = "level"
    report_type: ClassVar[type[Report]] = OrdinalReport
    headline: ClassVar[tuple[str, ...]] = ("qwk", "mae")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "levels", _names(self.levels, "levels"))
        if len(self.levels) < 2:
            raise ConfigError("levels", f"must be at least 2, got {list(self.levels)}")

    @classmethod
    def from_columns(cls, names, columns, flip_pairs=()) -> Ordinal:
        return cls(tuple(names))

    @property
    def outputs(self) -> int:
        return len(self.levels) - 1

    @property
    def names(self) -> tuple[str, ...]:
        return self.levels

    def activate(self, logits: Tensor) -> Tensor:
        """Level probabilities ``(B, K)`` from cumulative ``P(y > k)``: differences, clipped at 0, renormalised."""
        above = logits.float().sigmoid()
        ones, zeros = above.new_ones(above.shape[0], 1), above.new_zeros(above.shape[0], 1)
        levels = (torch.cat([ones, above], dim=1) - torch.cat([above, zeros], dim=1)).clamp_min(0.0)
        return levels / levels.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def inverse_activate(self, probabilities: Tensor) -> Tensor:
        """The cumulative logits ``logit(P(y > k))`` of level probabilities."""
        above = 1.0 - probabilities.float().cumsum(dim=1)[:, :-1]
        return torch.logit(above, eps=1e-6)

    def missing(self, targets):
        return targets < 0

    def loss(self, logits: Tensor, targets: Tensor, balance: Tensor | None = None, mode: str = "keras") -> Tensor:
        known = ~self.missing(targets)
        if bool((targets[known] >= len(self.levels)).any()):
            raise DataError(f"levels {sorted(set(targets[known].tolist()))} are out of range 0..{len(self.levels) - 1}")
        if not bool(known.any()):
            return logits.sum() * 0.0
        thresholds = torch.arange(self.outputs, device=logits.device)
        above = (targets[known, None] > thresholds[None, :]).float()
        return F.binary_cross_entropy_with_logits(logits[known].float(), above)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """The level: how many thresholds the cumulative probability passes (``P(y > k) >= 0.5``)."""
        above = 1.0 - np.cumsum(np.asarray(probabilities), axis=-1)[..., :-1]
        return (above >= 0.5).sum(axis=-1)

    def report(self, probabilities: np.ndarray, targets: np.ndarray):
        return ordinal_report(targets, self.decide(probabilities), self.levels)

    def explained_score(self, logits: Tensor) -> Tensor:
        return logits.sum(dim=1)


@dataclass(frozen=True)
class Regression(Task):
    """A continuous score per scan (a severity score, lesion volume ...).

    Attributes:
        name: what the score is (a column name in prediction CSVs).
    """

    name: str = "score"
    kind: ClassVar[str] = "regression"
    column_kind: ClassVar[str] = "number"
    report_type: ClassVar[type[Report]] = RegressionReport
    headline: ClassVar[tuple[str, ...]] = ("mae", "spearman")

    @classmethod
    def from_columns(cls, names, columns, flip_pairs=()) -> Regression:
        return cls(name=columns[0])

    @property
    def outputs(self) -> int:
        return 1

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def activate(self, logits: Tensor) -> Tensor:
        return logits.float()

    def inverse_activate(self, probabilities: Tensor) -> Tensor:
        return probabilities.float()

    def decision(self, probabilities) -> float:
        return float(self.decide(np.asarray(probabilities, dtype=np.float64)[None])[0])

    def result_columns(self) -> list[str]:
        return [self.name]

    def result_cells(self, probabilities, decision) -> list[str]:
        return [f"{decision:.4f}"]

    def target_cell(self, target) -> str:
        return f"{float(np.asarray(target).reshape(-1)[0]):.4f}"

    def missing(self, targets):
        nan = torch.isnan(targets) if isinstance(targets, Tensor) else np.isnan(targets)
        return nan.reshape(nan.shape[0], -1).all(-1)

    def loss(self, logits: Tensor, targets: Tensor, balance: Tensor | None = None, mode: str = "keras") -> Tensor:
        targets = targets.reshape(-1)
        known = ~torch.isnan(targets)
        if not bool(known.any()):
            return logits.sum() * 0.0
        return F.mse_loss(logits.float().reshape(-1)[known], targets[known])

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return np.asarray(probabilities).reshape(-1)

    def report(self, probabilities: np.ndarray, targets: np.ndarray):
        return regression_report(np.asarray(targets).reshape(-1), self.decide(probabilities), self.name)

    def explained_score(self, logits: Tensor) -> Tensor:
        return logits.reshape(-1)


TASK_KINDS: dict[str, type[Task]] = {cls.kind: cls for cls in (Multiclass, Multilabel, Ordinal, Regression)}
"""The task kinds by name (``"multiclass"`` ...): the command line's ``--task`` and ``--head`` kinds."""
TASK_FOR_COLUMN_KIND: dict[str, type[Task]] = {cls.column_kind: cls for cls in TASK_KINDS.values()}
"""The task that learns each kind of labels-CSV column."""


def task_from_dict(values: Mapping[str, Any]) -> Task:
    """Rebuild a task from `Task.to_dict()` output."""
    values = dict(values)
    kind = check_choice("kind", values.pop("kind", None), TASK_KINDS)
    try:
        return TASK_KINDS[kind](**values)
    except TypeError as err:
        raise ConfigError(f"task of kind {kind!r}", f"has an unknown setting ({err})") from err


def check_tasks(tasks: Mapping[str, Task]) -> dict[str, Task]:
    """``tasks`` as a plain dict, checked: at least one, names usable as column names, Task values."""
    if not tasks:
        raise ConfigError("tasks", "must hold at least one task")
    for name, task in tasks.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError("tasks", f"names must be letters, digits, '_' or '-'; got {name!r}")
        if name == SLICES:
            raise ConfigError("tasks", f"{SLICES!r} is reserved for per-slice targets; name the task otherwise")
        if not isinstance(task, Task):
            raise ConfigError(f"task {name!r}", f"must be Multiclass, Multilabel, Ordinal or Regression, got {task!r}")
    return dict(tasks)


@dataclass(frozen=True)
class SliceSupervision:
    """A per-slice head on the aggregator's sequence outputs, trained from slice targets.

    This is how the RSNA slice-sequence winners used slice labels: an auxiliary loss on every
    slice (hard 0/1 labels, or soft ones such as the visible share of a lesion), and
    optionally the scan's prediction pooled from the slice predictions.

    Attributes:
        labels: what each slice is labelled with (``("lesion",)``).
        weight: the slice loss's weight beside the scan-level heads' losses.
        pool_into: the name of a Multilabel task with as many labels whose scan-level logits are
            pooled from the slice logits instead of coming from its own head; ``None`` keeps the heads apart.
        pool: ``"max"`` over the real slices, or ``"attention"`` (a learned, masked softmax over slices).
    """

    labels: Sequence[str] = ("lesion",)
    weight: float = 1.0
    pool_into: str | None = None
    pool: str = "max"

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _names(self.labels, "slice labels"))
        object.__setattr__(self, "pool", check_choice("pool", self.pool, SLICE_POOLS))
        if not self.weight > 0:
            raise ConfigError("slice weight", f"must be positive, got {self.weight}")

    def check_against(self, tasks: Mapping[str, Task]) -> None:
        """The pooled task must exist, be multi-label and have one label per slice label."""
        if self.pool_into is None:
            return
        task = tasks.get(self.pool_into)
        if not isinstance(task, Multilabel) or task.outputs != len(self.labels):
            raise ConfigError(
                "pool_into",
                f"must name a Multilabel task with {len(self.labels)} label(s); {self.pool_into!r} is {task!r}",
            )

    def loss(self, logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
        """Binary cross-entropy over real slices with a known target; ``targets`` ``(B, D, L)`` may be soft."""
        known = valid[..., None] & ~torch.isnan(targets)
        if not bool(known.any()):
            return logits.sum() * 0.0
        losses = F.binary_cross_entropy_with_logits(
            logits.float(), torch.nan_to_num(targets, nan=0.0), reduction="none"
        )
        return losses[known].mean()

    def to_dict(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "weight": self.weight, "pool_into": self.pool_into, "pool": self.pool}


class LabelColumns(Protocol):
    """What a task is built from: the kind of its CSV columns and their names (`slicevid.data.HeadColumns`)."""

    kind: str
    columns: tuple[str, ...]


def tasks_from_columns(
    heads: Mapping[str, LabelColumns],
    names: Mapping[str, Sequence[str]],
    flip_pairs: Sequence[Sequence[str]] = (),
) -> dict[str, Task]:
    """The tasks that learn what a labels CSV's heads hold: classes, 0/1 labels, levels or scores.

    Args:
        heads: per head, the kind of its columns and their names (`slicevid.data.HeadColumns`).
        names: per head, its class, label or level names as the data gave them.
        flip_pairs: label pairs that swap in a left-right flip (for multi-label heads that hold both).
    """
    return {
        name: TASK_FOR_COLUMN_KIND[spec.kind].from_columns(tuple(names[name]), spec.columns, flip_pairs)
        for name, spec in heads.items()
    }
