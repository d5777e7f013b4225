"""``ModelConfig``: what a model is and what it takes, the one description saved with its weights.

It is composed of four parts, each with one concern:

* `Architecture`: what decides the shapes of the encoder, aggregator and hidden layer. Its
  field defaults *are* the paper's ViPTT-Net (VGG-16 encoder, 1x1x1 convolution adapter, an
  LSTM, a 1024-unit hidden layer); nothing else in slicevid restates them.
* `Heads`: the tasks the heads predict (five TB classes by default), and a slice head.
* `InputSpec`: the input size and value range the model was trained on, and the exact CT
  preprocessing.
* `Provenance`: which data trained and validated it, and how they were split.

A model built by [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier] carries one as
``model.config``; every part's fields read straight off it too (``config.encoder``,
``config.class_names``, ``config.preprocessing``). ``save_pretrained`` writes it as
``config.json``; ``from_pretrained`` restores it, so ``slicevid predict`` needs nothing but the
checkpoint. Configs written by every earlier slicevid still load.

Runtime switches (`SliceExecution`: slice chunking, activation checkpointing,
channels-last) are not part of it: they change how a forward pass runs, never what it computes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from ._registry import check_literal_fields
from .data.preprocess import CTPreprocessing
from .data.provenance import TrainingData
from .errors import CheckpointError, ConfigError
from .keys import TARGET
from .tasks import Multiclass, SliceSupervision, Task, check_tasks, task_from_dict

Adapter = Literal["conv", "repeat", "none"]
FeatureNorm = Literal["none", "layernorm"]
FORMAT_VERSION = 4
DEFAULT_CLASSES = 5
"""The paper's five TB types: the class count of a model built without a task."""
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
class Architecture:
    """What decides the weights' shapes of the encoder, aggregator and hidden layer (the paper's by default).

    Attributes:
        encoder: registered encoder name or ``"timm:<name>"``; ``None`` for a module instance
            (such a model cannot be saved by name).
        aggregator: registered aggregator name; ``None`` for a module instance.
        in_channels: channels ``C`` of each input volume.
        adapter: how the encoder's input channels are made: ``"conv"`` (learnable 1x1x1
            convolution to 3 channels, the paper's), ``"repeat"`` (tile one channel to 3) or
            ``"none"`` (the encoder takes ``in_channels * (2 * slice_context + 1)`` channels).
        head_hidden: width of the heads' shared hidden layer (1024 in the paper).
        encoder_kwargs: keyword arguments of the encoder builder.
        aggregator_kwargs: keyword arguments of the aggregator builder.
        feature_norm: ``"layernorm"`` normalises each slice's features before the aggregator.
        slice_context: neighbouring slices on each side stacked as extra channels (2.5D input).
    """

    encoder: str | None = field(
        default="vgg16", metadata={"help": 'registered encoder name, or "timm:<name>" for any timm model'}
    )
    aggregator: str | None = field(default="lstm", metadata={"help": "registered aggregator name"})
    in_channels: int = 1
    adapter: Adapter = "conv"
    head_hidden: int = 1024
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    aggregator_kwargs: dict[str, Any] = field(default_factory=dict)
    feature_norm: FeatureNorm = "none"
    slice_context: int = 0

    def __post_init__(self) -> None:
        for name in ("in_channels", "head_hidden"):
            _check_positive(name, getattr(self, name))
        if isinstance(self.slice_context, bool) or not isinstance(self.slice_context, int) or self.slice_context < 0:
            raise ConfigError("slice_context", f"must be a non-negative integer, got {self.slice_context!r}")
        check_literal_fields(self)
        for name in ("encoder_kwargs", "aggregator_kwargs"):  # their JSON form, so saved and built configs compare
            object.__setattr__(self, name, json.loads(json.dumps(dict(getattr(self, name)))))

    @property
    def slice_channels(self) -> int:
        """Channels of one slice with its context: ``in_channels * (2 * slice_context + 1)``."""
        return self.in_channels * (2 * self.slice_context + 1)

    def replace(self, **changes: Any) -> Architecture:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


ARCHITECTURE = tuple(f.name for f in fields(Architecture))
"""The `Architecture` fields (as flat keywords of ``ModelConfig`` and ``create_model``)."""


@dataclass(frozen=True)
class Heads:
    """What the heads predict: the tasks by name, and a per-slice head.

    Build one with `Heads.of()` from a class count or names, or give ``tasks``.

    Attributes:
        tasks: the heads, by name (`slicevid.tasks`).
        slice_supervision: a per-slice head trained from slice targets, if any.
    """

    tasks: Mapping[str, Task] = field(default_factory=lambda: {TARGET: Multiclass(DEFAULT_CLASSES)})
    slice_supervision: SliceSupervision | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", check_tasks(self.tasks))
        if self.slice_supervision is not None:
            self.slice_supervision.check_against(self.tasks)

    @classmethod
    def of(
        cls,
        num_classes: int | None = None,
        class_names: tuple[str, ...] | list[str] = (),
        tasks: Mapping[str, Task] | None = None,
        slice_supervision: SliceSupervision | None = None,
    ) -> Heads:
        """Heads from ``tasks``, or one multi-class head of ``num_classes`` named ``class_names`` (5 by default).

        With ``tasks``, ``num_classes`` and ``class_names`` are checks: they must match what the tasks predict.
        """
        names = tuple(str(n) for n in class_names)
        if tasks is None:
            if num_classes is not None:
                _check_positive("num_classes", num_classes)
            count = num_classes or len(names) or DEFAULT_CLASSES
            if names and len(names) != count:
                raise ConfigError("class_names", f"has {len(names)} names for num_classes={count}: {names}")
            tasks = {TARGET: Multiclass(names or count)}
        heads = cls(dict(tasks), slice_supervision)
        if num_classes is not None and num_classes != heads.num_classes:
            raise ConfigError("num_classes", f"is {num_classes}, but the tasks predict {heads.num_classes} names")
        if names and names != heads.class_names:
            raise ConfigError("class_names", f"{list(names)} disagree with the tasks' names {list(heads.class_names)}")
        return heads

    @property
    def class_names(self) -> tuple[str, ...]:
        """A one-head model's class (label, level) names; ``"<task>.<name>"`` across several heads."""
        if len(self.tasks) == 1:
            return next(iter(self.tasks.values())).names
        return tuple(f"{name}.{label}" for name, task in self.tasks.items() for label in task.names)

    @property
    def num_classes(self) -> int:
        """How many names the heads predict: the classes of a one-head classifier."""
        return len(self.class_names)

    @property
    def single_task(self) -> Task | None:
        """The task of a one-head model, else ``None``."""
        return next(iter(self.tasks.values())) if len(self.tasks) == 1 else None

    def shapes(self) -> dict[str, Any]:
        """What decides the heads' weights: each head's kind and outputs, and the slice head."""
        slices = self.slice_supervision.to_dict() if self.slice_supervision else None
        if slices is not None:
            slices.pop("weight")
        return {"heads": {name: [task.kind, task.outputs] for name, task in self.tasks.items()}, "slice_head": slices}

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": {name: task.to_dict() for name, task in self.tasks.items()},
            "slice_supervision": self.slice_supervision.to_dict() if self.slice_supervision else None,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Heads:
        supervision = values.get("slice_supervision")
        return cls(
            {name: task_from_dict(task) for name, task in values["tasks"].items()},
            SliceSupervision(**supervision) if supervision is not None else None,
        )


@dataclass(frozen=True)
class InputSpec:
    """What the model takes: the inputs it was trained on.

    Attributes:
        input_size: ``(depth, height, width)`` of the training inputs; depth ``None`` when it varied.
        input_range: ``(low, high)`` of the input values the model was trained on.
        preprocessing: how CT scans became inputs, for models trained on CT; ``None`` otherwise.
    """

    input_size: tuple[int | None, int, int] | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    preprocessing: CTPreprocessing | None = None

    def __post_init__(self) -> None:
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(None if s is None else int(s) for s in self.input_size))
        low, high = (float(v) for v in self.input_range)
        if not high > low:
            raise ConfigError("input_range", f"must be (low, high) with high > low, got {self.input_range}")
        object.__setattr__(self, "input_range", (low, high))

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size) if self.input_size else None,
            "input_range": list(self.input_range),
            "preprocessing": self.preprocessing.params() if self.preprocessing else None,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> InputSpec:
        preprocessing = values.get("preprocessing")
        return cls(
            tuple(values["input_size"]) if values.get("input_size") is not None else None,
            tuple(values.get("input_range") or (0.0, 1.0)),
            CTPreprocessing.from_params(preprocessing) if preprocessing is not None else None,
        )


@dataclass(frozen=True)
class Provenance:
    """Where the model's training and validation samples came from.

    Attributes:
        training_data: which samples trained and validated the model, and how they were split.
    """

    training_data: TrainingData | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"training_data": self.training_data.to_dict() if self.training_data else None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> Provenance:
        data = values.get("training_data")
        return cls(TrainingData.from_dict(data, source) if data is not None else None)


PARTS = {"architecture": Architecture, "heads": Heads, "inputs": InputSpec, "provenance": Provenance}
"""The parts of a `ModelConfig`, by attribute name."""
FLAT_FIELDS = {
    **{name: "architecture" for name in ARCHITECTURE},
    "num_classes": "heads",
    "class_names": "heads",
    "tasks": "heads",
    "slice_supervision": "heads",
    **{f.name: "inputs" for f in fields(InputSpec)},
    "training_data": "provenance",
}
"""Each flat keyword of ``ModelConfig(...)``, ``create_model`` and ``replace`` and the part that owns it."""
_READS = {**FLAT_FIELDS, "single_task": "heads", "slice_channels": "architecture"}


@dataclass(frozen=True, init=False)
class ModelConfig:
    """The whole description of a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier], in four parts.

    ``ModelConfig(architecture=..., heads=..., inputs=..., provenance=...)`` composes parts;
    flat keywords (``ModelConfig(encoder="compact_cnn", num_classes=3, input_size=...)``) set the
    fields of the part that owns them (`FLAT_FIELDS`). Every part's field reads off the config
    (``config.encoder``, ``config.tasks``, ``config.class_names``, ``config.preprocessing``).

    Attributes:
        architecture: encoder, aggregator, adapter, widths (`Architecture`).
        heads: the tasks and the slice head (`Heads`).
        inputs: input size, value range and CT preprocessing (`InputSpec`).
        provenance: the training data (`Provenance`).
    """

    architecture: Architecture
    heads: Heads
    inputs: InputSpec
    provenance: Provenance

    def __init__(
        self,
        architecture: Architecture | None = None,
        heads: Heads | None = None,
        inputs: InputSpec | None = None,
        provenance: Provenance | None = None,
        **flat: Any,
    ) -> None:
        unknown = sorted(set(flat) - set(FLAT_FIELDS))
        if unknown:
            raise ConfigError(
                "ModelConfig", f"got unknown setting(s) {unknown}; expected some of {sorted(FLAT_FIELDS)}"
            )
        given = {"architecture": architecture, "heads": heads, "inputs": inputs, "provenance": provenance}
        for part, kind in PARTS.items():
            values = {name: value for name, value in flat.items() if FLAT_FIELDS[name] == part}
            if part == "heads":
                built = _heads_with(given[part], values)
            else:
                base = given[part] if given[part] is not None else kind()
                built = replace(base, **values) if values else base
            object.__setattr__(self, part, built)

    def __getattr__(self, name: str) -> Any:
        """A part's field read off the config (``config.encoder`` is ``config.architecture.encoder``)."""
        part = _READS.get(name)
        if part is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(object.__getattribute__(self, part), name)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (parts by name, or flat fields) and validated.

        Changing ``num_classes`` or ``class_names`` (without ``tasks``) makes the model one classifier.
        """
        parts = {part: getattr(self, part) for part in PARTS}
        parts.update({part: changes.pop(part) for part in PARTS if part in changes})
        if {"num_classes", "class_names"} & set(changes) and "tasks" not in changes:
            keep = parts["heads"].slice_supervision
            parts["heads"] = Heads.of(changes.pop("num_classes", None), changes.pop("class_names", ()))
            parts["heads"] = replace(parts["heads"], slice_supervision=changes.pop("slice_supervision", keep))
        return ModelConfig(**parts, **changes)

    def with_tasks(self, tasks: Mapping[str, Task]) -> ModelConfig:
        """This config with other heads (their class names come from the tasks)."""
        return self.replace(heads=replace(self.heads, tasks=dict(tasks)))

    def with_head(self, num_classes: int, class_names: tuple[str, ...] | None = None) -> ModelConfig:
        """This config with one ``num_classes``-way head (names default to ``"0"``, ``"1"``, ...)."""
        return self.with_tasks({TARGET: Multiclass(tuple(class_names) if class_names else num_classes)})

    def shapes(self) -> dict[str, Any]:
        """What decides the weights' shapes (two configs with equal ones share checkpoints)."""
        return {**asdict(self.architecture), **self.heads.shapes()}

    def architecture_differences(self, other: ModelConfig) -> list[str]:
        """``"name: ours vs theirs"`` for every entry of `shapes()` that differs from ``other``."""
        ours, theirs = self.shapes(), other.shapes()
        return [f"{name}: {ours[name]!r} vs {theirs[name]!r}" for name in ours if ours[name] != theirs[name]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of the four parts, with ``format_version``."""
        values = {part: getattr(self, part).to_dict() for part in PARTS}
        return json.loads(json.dumps({"format_version": FORMAT_VERSION, **values}))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> ModelConfig:
        """Rebuild from `to_dict()` output; the flat configs of earlier slicevid versions load too.

        Raises:
            CheckpointError: unknown keys, or values that do not validate (the message names ``source``).
        """
        if not isinstance(values, dict):
            raise CheckpointError(f"{source}: expected a JSON object, got {type(values).__name__}")
        values = dict(values)
        version = values.pop("format_version", 1)
        try:
            if version >= 4:
                unknown = sorted(set(values) - set(PARTS))
                if unknown:
                    raise CheckpointError(f"{source}: unknown key(s) {unknown}; expected {sorted(PARTS)}")
                return cls(
                    Architecture(**(values.get("architecture") or {})),
                    Heads.from_dict(values["heads"]),
                    InputSpec.from_dict(values.get("inputs") or {}),
                    Provenance.from_dict(values.get("provenance") or {}, source),
                )
            return cls._from_flat(values, version, source)
        except CheckpointError:
            raise
        except (TypeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{source}: {err}") from err

    @classmethod
    def _from_flat(cls, values: dict[str, Any], version: int, source: str) -> ModelConfig:
        """A config saved flat, by slicevid 0.1 and 0.2 (format versions 1 to 3)."""
        unknown = sorted(set(values) - set(FLAT_FIELDS) - set(_RUNTIME_KEYS))
        if unknown:
            raise CheckpointError(f"{source}: unknown key(s) {unknown}; expected some of {sorted(FLAT_FIELDS)}")
        if version < 2:
            missing = sorted(k for k in ("class_names", "input_size", "preprocessing") if k not in values)
            warnings.warn(
                f"{source} was written by an older slicevid (format {version}); "
                f"{', '.join(missing) or 'nothing'} filled with defaults: class names '0', '1', ..., "
                "input size and preprocessing unknown",
                stacklevel=4,
            )
        tasks = values.get("tasks")
        supervision = values.get("slice_supervision")
        heads = Heads.of(
            values.get("num_classes"),
            tuple(values.get("class_names") or ()),
            {name: task_from_dict(task) for name, task in tasks.items()} if tasks is not None else None,
            SliceSupervision(**supervision) if supervision is not None else None,
        )
        architecture = Architecture(**{name: values[name] for name in ARCHITECTURE if name in values})
        return cls(architecture, heads, InputSpec.from_dict(values), Provenance.from_dict(values, source))


def _heads_with(base: Heads | None, values: dict[str, Any]) -> Heads:
    """``base`` (or the default heads) with flat head keywords applied: ``tasks`` (or a classifier's
    ``num_classes`` / ``class_names``) replace the tasks, ``slice_supervision`` the slice head."""
    if not values:
        return base if base is not None else Heads()
    tasks = values.get("tasks")
    if tasks is None and base is not None and not {"num_classes", "class_names"} & set(values):
        tasks = base.tasks
    supervision = values.get("slice_supervision", base.slice_supervision if base is not None else None)
    return Heads.of(values.get("num_classes"), values.get("class_names", ()), tasks, supervision)


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(name, f"must be a positive integer, got {value!r}")
