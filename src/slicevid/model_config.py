"""``ModelConfig``: what a model is and what it takes, the one source of truth saved with its weights.

Its field defaults *are* the paper's ViPTT-Net (VGG-16 encoder, 1x1x1 convolution adapter, an
LSTM, a 1024-unit hidden layer, five TB classes); nothing else in slicevid restates them.

A model built by [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] carries one of these as
``model.config``. It holds the architecture (enough to rebuild the model before loading
weights), the tasks its heads predict, and what anyone needs to *use* the model: the input
size and value range it was trained on, the exact CT preprocessing, and which data it saw.
``save_pretrained`` writes it as ``config.json``; ``from_pretrained`` restores it, so
``slicevid predict`` needs nothing but the checkpoint.

Runtime switches (`SliceExecution`: slice chunking, activation checkpointing,
channels-last) are not part of it: they change how a forward pass runs, never what it computes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ._registry import check_literal_fields
from .data.preprocess import CTPreprocessing
from .data.provenance import TrainingData
from .errors import CheckpointError, ConfigError
from .tasks import TARGET, Multiclass, SliceSupervision, Task, check_tasks, task_from_dict

Adapter = Literal["conv", "repeat", "none"]
FeatureNorm = Literal["none", "layernorm"]
FORMAT_VERSION = 3
DEFAULT_CLASSES = 5
"""The paper's five TB types: the class count of a model built without a task."""
ARCHITECTURE = (
    "encoder",
    "aggregator",
    "in_channels",
    "adapter",
    "head_hidden",
    "encoder_kwargs",
    "aggregator_kwargs",
    "feature_norm",
    "slice_context",
)
"""The fields that decide the shapes of the encoder, aggregator and hidden layer (the heads come from ``tasks``)."""
_RUNTIME_KEYS = ("slice_chunk", "checkpoint_slices", "channels_last")  # saved by version 1, now runtime-only


@dataclass(frozen=True)
class SliceExecution:
    """How slices run through the encoder: memory and speed only, never results (up to float rounding).

    Attributes:
        slice_chunk: encode at most this many slices per call, to bound peak memory.
        checkpoint_slices: recompute encoder activations in the backward pass instead of storing them.
        channels_last: run the encoder in channels-last memory format (the default: oneDNN's and
            cuDNN's convolutions run faster on it; the ViPTT-Net preset's CPU training step took
            13% less time, its inference 14% less, see ``benchmarks/vs_keras.py``).
    """

    slice_chunk: int | None = None
    checkpoint_slices: bool = False
    channels_last: bool = True

    def __post_init__(self) -> None:
        chunk = self.slice_chunk
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ConfigError("slice_chunk", f"must be a positive integer or None, got {chunk!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, tasks and input description of a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier].

    Attributes:
        encoder: registered encoder name or ``"timm:<name>"``; ``None`` for a module instance
            (such a model cannot be saved by name).
        aggregator: registered aggregator name; ``None`` for a module instance.
        num_classes: classes of a one-head classifier (5 when neither this nor ``tasks`` is given);
            with ``tasks``, the number of names the heads predict.
        in_channels: channels ``C`` of each input volume.
        adapter: how the encoder's input channels are made: ``"conv"`` (learnable 1x1x1
            convolution to 3 channels, the paper's), ``"repeat"`` (tile one channel to 3) or
            ``"none"`` (the encoder takes ``in_channels * (2 * slice_context + 1)`` channels).
        head_hidden: width of the heads' shared hidden layer (1024 in the paper).
        encoder_kwargs: keyword arguments of the encoder builder.
        aggregator_kwargs: keyword arguments of the aggregator builder.
        feature_norm: ``"layernorm"`` normalises each slice's features before the aggregator.
        slice_context: neighbouring slices on each side stacked as extra channels (2.5D input).
        class_names: names of a one-head classifier's classes, in label order.
        tasks: the heads, by name (`slicevid.tasks`); ``None`` is one multi-class head.
        slice_supervision: a per-slice head trained from slice targets, if any.
        input_size: ``(depth, height, width)`` of the training inputs; depth ``None`` when it varied.
        input_range: ``(low, high)`` of the input values the model was trained on.
        preprocessing: how CT scans became inputs, for models trained on CT; ``None`` otherwise.
        training_data: which samples trained and validated the model, and how they were split.
    """

    encoder: str | None = field(
        default="vgg16", metadata={"help": 'registered encoder name, or "timm:<name>" for any timm model'}
    )
    aggregator: str | None = field(default="lstm", metadata={"help": "registered aggregator name"})
    num_classes: int | None = None
    in_channels: int = 1
    adapter: Adapter = "conv"
    head_hidden: int = 1024
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    aggregator_kwargs: dict[str, Any] = field(default_factory=dict)
    feature_norm: FeatureNorm = "none"
    slice_context: int = 0
    class_names: tuple[str, ...] = ()
    tasks: Mapping[str, Task] | None = None
    slice_supervision: SliceSupervision | None = None
    input_size: tuple[int | None, int, int] | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    preprocessing: CTPreprocessing | None = None
    training_data: TrainingData | None = None

    def __post_init__(self) -> None:
        for name in ("in_channels", "head_hidden"):
            _check_positive(name, getattr(self, name))
        if isinstance(self.slice_context, bool) or not isinstance(self.slice_context, int) or self.slice_context < 0:
            raise ConfigError("slice_context", f"must be a non-negative integer, got {self.slice_context!r}")
        check_literal_fields(self)
        for name in (
            "encoder_kwargs",
            "aggregator_kwargs",
        ):  # their JSON form, so saved and built configs compare equal
            object.__setattr__(self, name, json.loads(json.dumps(dict(getattr(self, name)))))
        self._resolve_tasks()
        if self.slice_supervision is not None:
            self.slice_supervision.check_against(self.tasks)
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(None if s is None else int(s) for s in self.input_size))
        low, high = (float(v) for v in self.input_range)
        if not high > low:
            raise ConfigError("input_range", f"must be (low, high) with high > low, got {self.input_range}")
        object.__setattr__(self, "input_range", (low, high))

    def _resolve_tasks(self) -> None:
        """``tasks`` always set; ``num_classes`` and ``class_names`` consistent with it."""
        names = tuple(str(n) for n in self.class_names)
        if self.tasks is None:
            if self.num_classes is not None:
                _check_positive("num_classes", self.num_classes)
            count = self.num_classes or len(names) or DEFAULT_CLASSES
            if names and len(names) != count:
                raise ConfigError("class_names", f"has {len(names)} names for num_classes={count}: {names}")
            object.__setattr__(self, "tasks", {TARGET: Multiclass(names or count)})
        tasks = check_tasks(self.tasks)
        object.__setattr__(self, "tasks", tasks)
        derived = (
            next(iter(tasks.values())).names
            if len(tasks) == 1
            else tuple(f"{name}.{label}" for name, task in tasks.items() for label in task.names)
        )
        if self.num_classes is not None and self.num_classes != len(derived):
            raise ConfigError("num_classes", f"is {self.num_classes}, but the tasks predict {len(derived)} names")
        if names and names != derived:
            raise ConfigError("class_names", f"{list(names)} disagree with the tasks' names {list(derived)}")
        object.__setattr__(self, "num_classes", len(derived))
        object.__setattr__(self, "class_names", derived)

    @property
    def single_task(self) -> Task | None:
        """The task of a one-head model, else ``None``."""
        return next(iter(self.tasks.values())) if len(self.tasks) == 1 else None

    @property
    def slice_channels(self) -> int:
        """Channels of one slice with its context: ``in_channels * (2 * slice_context + 1)``."""
        return self.in_channels * (2 * self.slice_context + 1)

    def architecture(self) -> dict[str, Any]:
        """What decides the weights' shapes (two configs with equal ones share checkpoints)."""
        heads = {name: [task.kind, task.outputs] for name, task in self.tasks.items()}
        slices = self.slice_supervision.to_dict() if self.slice_supervision else None
        if slices is not None:
            slices.pop("weight")
        return {**{name: getattr(self, name) for name in ARCHITECTURE}, "heads": heads, "slice_head": slices}

    def architecture_differences(self, other: ModelConfig) -> list[str]:
        """``"name: ours vs theirs"`` for every architecture entry that differs from ``other``."""
        ours, theirs = self.architecture(), other.architecture()
        return [f"{name}: {ours[name]!r} vs {theirs[name]!r}" for name in ours if ours[name] != theirs[name]]

    def with_tasks(self, tasks: Mapping[str, Task]) -> ModelConfig:
        """This config with other heads (their class names come from the tasks)."""
        return replace(self, tasks=dict(tasks), num_classes=None, class_names=())

    def with_head(self, num_classes: int, class_names: tuple[str, ...] | None = None) -> ModelConfig:
        """This config with one ``num_classes``-way head (names default to ``"0"``, ``"1"``, ...)."""
        return self.with_tasks({TARGET: Multiclass(tuple(class_names) if class_names else num_classes)})

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (and validated).

        Changing ``num_classes`` or ``class_names`` (without ``tasks``) makes the model one classifier.
        """
        if ("num_classes" in changes or "class_names" in changes) and "tasks" not in changes:
            changes = {"num_classes": None, "class_names": (), **changes, "tasks": None}
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, with ``format_version``."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["tasks"] = {name: task.to_dict() for name, task in self.tasks.items()}
        values["slice_supervision"] = self.slice_supervision.to_dict() if self.slice_supervision else None
        values["preprocessing"] = self.preprocessing.params() if self.preprocessing else None
        values["training_data"] = self.training_data.to_dict() if self.training_data else None
        values["class_names"] = list(self.class_names)
        values["input_range"] = list(self.input_range)
        values["input_size"] = list(self.input_size) if self.input_size else None
        return json.loads(json.dumps({"format_version": FORMAT_VERSION, **values}))  # tuples as lists

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> ModelConfig:
        """Rebuild from `to_dict()` output; configs written by older slicevid versions load too.

        Raises:
            CheckpointError: unknown keys, or values that do not validate (the message names ``source``).
        """
        if not isinstance(values, dict):
            raise CheckpointError(f"{source}: expected a JSON object, got {type(values).__name__}")
        values = dict(values)
        version = values.pop("format_version", 1)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - set(_RUNTIME_KEYS))
        if unknown:
            raise CheckpointError(f"{source}: unknown key(s) {unknown}; expected some of {sorted(known)}")
        if version < 2:
            missing = sorted(k for k in ("class_names", "input_size", "preprocessing") if k not in values)
            warnings.warn(
                f"{source} was written by an older slicevid (format {version}); "
                f"{', '.join(missing) or 'nothing'} filled with defaults: class names '0', '1', ..., "
                "input size and preprocessing unknown",
                stacklevel=3,
            )
        for key in _RUNTIME_KEYS:
            values.pop(key, None)
        try:
            if values.get("tasks") is not None:
                values["tasks"] = {name: task_from_dict(task) for name, task in values["tasks"].items()}
            if values.get("slice_supervision") is not None:
                values["slice_supervision"] = SliceSupervision(**values["slice_supervision"])
            if values.get("preprocessing") is not None:
                values["preprocessing"] = CTPreprocessing.from_params(values["preprocessing"])
            if values.get("training_data") is not None:
                values["training_data"] = TrainingData.from_dict(values["training_data"], source)
            for key in ("class_names", "input_size", "input_range"):
                if values.get(key) is not None:
                    values[key] = tuple(values[key])
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: {err}") from err


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, f"must be a positive integer, got {value!r}")
