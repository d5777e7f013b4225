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

Missing targets (a scan without a label for one head) are ``-1`` for class and level indices
and NaN for labels and scores. They are left out of that head's loss and metrics, never
treated as 0, so the scan still trains the other heads.

The ordinal head predicts the probabilities that the level exceeds each threshold,
``P(y > k)``, the cumulative-link formulation of Frank and Hall (2001): its level is the
number of thresholds passed, and its level probabilities are the differences of consecutive
cumulative ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._registry import check_choice
from .data.labels import HeadColumns
from .errors import ConfigError, DataError
from .metrics import (
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

TARGET = "target"
"""The name of the only task of a one-head model (``model(x)`` then returns a tensor, not a dict)."""
CLASS_WEIGHT_MODES = ("keras", "normalized")
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

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or not self.weight > 0:
            raise ConfigError("weight", f"must be a positive number, got {self.weight!r}")

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
    """One class per scan (the paper's TB type).

    Attributes:
        classes: a class count, or the class names in label order.
    """

    classes: int | Sequence[str] = 5
    kind: ClassVar[str] = "multiclass"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", _names(self.classes, "classes"))

    @property
    def outputs(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return self.classes

    def activate(self, logits: Tensor) -> Tensor:
        return logits.float().softmax(dim=-1)

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
        return np.asarray(probabilities).argmax(axis=-1)

    def report(self, probabilities: np.ndarray, targets: np.ndarray):
        known = ~self.missing(np.asarray(targets))
        return classification_report(
            np.asarray(targets)[known], self.decide(probabilities)[known], self.classes, num_classes=self.outputs
        )

    def balance(self, targets: np.ndarray) -> Tensor:
        return balanced_class_weights(np.asarray(targets)[np.asarray(targets) >= 0], self.outputs)

    def explained_score(self, logits: Tensor) -> Tensor:
        return logits.gather(1, logits.argmax(dim=1, keepdim=True))[:, 0]


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

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "levels", _names(self.levels, "levels"))
        if len(self.levels) < 2:
            raise ConfigError("levels", f"must be at least 2, got {list(self.levels)}")

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

    @property
    def outputs(self) -> int:
        return 1

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def activate(self, logits: Tensor) -> Tensor:
        return logits.float()

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
        object.__setattr__(self, "pool", check_choice("pool", self.pool, ("max", "attention")))
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


def tasks_from_columns(
    heads: Mapping[str, HeadColumns],
    names: Mapping[str, Sequence[str]],
    flip_pairs: Sequence[Sequence[str]] = (),
) -> dict[str, Task]:
    """The tasks that learn what a labels CSV's heads hold: classes, 0/1 labels, levels or scores.

    Args:
        heads: per head, the kind of its columns (`HeadColumns`).
        names: per head, its class, label or level names as the data gave them.
        flip_pairs: label pairs that swap in a left-right flip (for multi-label heads that hold both).
    """
    tasks: dict[str, Task] = {}
    for name, spec in heads.items():
        if spec.kind == "class":
            tasks[name] = Multiclass(tuple(names[name]))
        elif spec.kind == "binary":
            pairs = [tuple(p) for p in flip_pairs if set(p) <= set(names[name])]
            tasks[name] = Multilabel(tuple(names[name]), flip_pairs=pairs)
        elif spec.kind == "level":
            tasks[name] = Ordinal(tuple(names[name]))
        else:
            tasks[name] = Regression(name=spec.columns[0])
    return tasks
