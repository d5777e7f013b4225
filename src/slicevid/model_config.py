"""``ModelConfig``: what a model is and what it takes, the one source of truth saved with its weights.

A model built by :class:`~slicevid.SliceSequenceClassifier` carries one of these as ``model.config``.
It holds the architecture (enough to rebuild the model before loading weights) and what
anyone needs to *use* the model: its class names, the input size and value range it was
trained on, and, for models trained on CT, the exact preprocessing. ``save_pretrained``
writes it as ``config.json``; ``from_pretrained`` restores it, so ``slicevid predict`` needs
nothing but the checkpoint.

Runtime switches (slice chunking, activation checkpointing, channels-last) are not part of
it: they change how a forward pass runs, never what it computes.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, get_args

from ._registry import check_choice
from .data.preprocess import CTPreprocessing
from .errors import CheckpointError, ConfigError

Adapter = Literal["conv", "repeat", "none"]
FeatureNorm = Literal["none", "layernorm"]
FORMAT_VERSION = 2
ARCHITECTURE = (
    "encoder",
    "aggregator",
    "num_classes",
    "in_channels",
    "adapter",
    "head_hidden",
    "encoder_kwargs",
    "aggregator_kwargs",
    "feature_norm",
    "slice_context",
)
"""The fields that decide the shapes of the weights."""
_RUNTIME_KEYS = ("slice_chunk", "checkpoint_slices", "channels_last")  # saved by version 1, now runtime-only


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, class names and input description of a :class:`~slicevid.SliceSequenceClassifier`.

    Attributes:
        encoder: registered encoder name or ``"timm:<name>"``; ``None`` for a module instance
            (such a model cannot be saved by name).
        aggregator: registered aggregator name; ``None`` for a module instance.
        num_classes: number of output logits.
        in_channels: channels ``C`` of each input volume.
        adapter: how the encoder's input channels are made: ``"conv"`` (learnable 1x1x1
            convolution to 3 channels, the paper's), ``"repeat"`` (tile one channel to 3) or
            ``"none"`` (the encoder takes ``in_channels * (2 * slice_context + 1)`` channels).
        head_hidden: width of the head's hidden layer (1024 in the paper).
        encoder_kwargs: keyword arguments of the encoder builder.
        aggregator_kwargs: keyword arguments of the aggregator builder.
        feature_norm: ``"layernorm"`` normalises each slice's features before the aggregator.
        slice_context: neighbouring slices on each side stacked as extra channels (2.5D input).
        class_names: one name per class, in label order.
        input_size: ``(depth, height, width)`` of the training inputs; depth ``None`` when it varied.
        input_range: ``(low, high)`` of the input values the model was trained on.
        preprocessing: how CT scans became inputs, for models trained on CT; ``None`` otherwise.
    """

    encoder: str | None = "vgg16"
    aggregator: str | None = "lstm"
    num_classes: int = 5
    in_channels: int = 1
    adapter: Adapter = "conv"
    head_hidden: int = 1024
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    aggregator_kwargs: dict[str, Any] = field(default_factory=dict)
    feature_norm: FeatureNorm = "none"
    slice_context: int = 0
    class_names: tuple[str, ...] = ()
    input_size: tuple[int | None, int, int] | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    preprocessing: CTPreprocessing | None = None

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_channels", "head_hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be a positive integer, got {value!r}")
        if isinstance(self.slice_context, bool) or not isinstance(self.slice_context, int) or self.slice_context < 0:
            raise ConfigError("slice_context", f"must be a non-negative integer, got {self.slice_context!r}")
        object.__setattr__(self, "adapter", check_choice("adapter", self.adapter, get_args(Adapter)))
        object.__setattr__(self, "feature_norm", check_choice("feature_norm", self.feature_norm, get_args(FeatureNorm)))
        names = tuple(str(n) for n in self.class_names) or tuple(str(i) for i in range(self.num_classes))
        if len(names) != self.num_classes:
            raise ConfigError("class_names", f"has {len(names)} names for num_classes={self.num_classes}: {names}")
        object.__setattr__(self, "class_names", names)
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(None if s is None else int(s) for s in self.input_size))
        low, high = (float(v) for v in self.input_range)
        if not high > low:
            raise ConfigError("input_range", f"must be (low, high) with high > low, got {self.input_range}")
        object.__setattr__(self, "input_range", (low, high))

    @property
    def slice_channels(self) -> int:
        """Channels of one slice with its context: ``in_channels * (2 * slice_context + 1)``."""
        return self.in_channels * (2 * self.slice_context + 1)

    def architecture(self) -> dict[str, Any]:
        """The fields that decide the weights' shapes (two configs with equal ones share checkpoints)."""
        return {name: getattr(self, name) for name in ARCHITECTURE}

    def architecture_differences(self, other: ModelConfig) -> list[str]:
        """``"name: ours vs theirs"`` for every architecture field that differs from ``other``."""
        ours, theirs = self.architecture(), other.architecture()
        return [f"{name}: {ours[name]!r} vs {theirs[name]!r}" for name in ARCHITECTURE if ours[name] != theirs[name]]

    def with_head(self, num_classes: int, class_names: tuple[str, ...] | None = None) -> ModelConfig:
        """This config with a ``num_classes``-way output (names default to ``"0"``, ``"1"``, ...)."""
        return replace(self, num_classes=num_classes, class_names=tuple(class_names or ()))

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, with ``format_version``."""
        values = asdict(self)
        values["preprocessing"] = self.preprocessing.params() if self.preprocessing else None
        values["class_names"] = list(self.class_names)
        values["input_range"] = list(self.input_range)
        values["input_size"] = list(self.input_size) if self.input_size else None
        return {"format_version": FORMAT_VERSION, **values}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; configs written by slicevid 0.1 load with a warning.

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
        if version < FORMAT_VERSION:
            missing = sorted(k for k in ("class_names", "input_size", "preprocessing") if k not in values)
            warnings.warn(
                f"{source} was written by an older slicevid (format {version}); "
                f"{', '.join(missing) or 'nothing'} filled with defaults: class names '0', '1', ..., "
                "input size and preprocessing unknown",
                stacklevel=3,
            )
        for key in _RUNTIME_KEYS:
            values.pop(key, None)
        if values.get("preprocessing") is not None:
            values["preprocessing"] = CTPreprocessing.from_params(values["preprocessing"])
        for key in ("class_names", "input_size", "input_range"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: {err}") from err
