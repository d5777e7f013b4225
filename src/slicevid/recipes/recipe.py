"""``Recipe``: every setting of a two-stage experiment (video pretraining, CT fine-tuning) in one object.

A recipe holds the model, the clip settings, the CT preprocessing, both stages' training
settings, the starting weights and initialisation, the augmentation, the label columns, and
the configurations to run (the rows of the paper's Table 1: No PT, PT, PT+CW, PT+CW+AUG, or
any others). Every default comes from the dataclass that owns it ([`Architecture`][slicevid.model_config.Architecture],
[`ClipSettings`][slicevid.data.ClipSettings], [`CTPreprocessing`][slicevid.data.CTPreprocessing],
[`TrainConfig`][slicevid.train.TrainConfig]); a recipe only says where it differs.

It reads and writes YAML: ``slicevid recipe show NAME`` prints a named recipe in full, and
``slicevid run RECIPE.yaml`` runs an edited copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from .._registry import check_literal_fields, suggest
from ..augment import Augmentation
from ..data.clips import ClipSettings
from ..data.ct import NanPolicy
from ..data.imageclef import TB_FILE_COLUMN, TB_LABEL_COLUMN
from ..data.labels import TARGET, HeadColumns
from ..data.preprocess import CTPreprocessing
from ..data.splits import VAL_FRACTION
from ..data.ucf import SplitBy
from ..errors import ConfigError
from ..model_config import Architecture, SliceExecution
from ..predict import SubmissionIds
from ..presets import Init
from ..tasks import SliceSupervision
from ..train.config import TrainConfig, read_config_file
from .stage import ModelStart


@dataclass(frozen=True)
class Configuration:
    """One configuration of an experiment: how fine-tuning starts and trains.

    Attributes:
        pretrained: start from the video-pretrained model (the paper's "PT"); else from new weights.
        class_weights: balanced class weights in the loss ("CW").
        augment: train with the recipe's augmentation ("AUG").
        encoder_weights: a model not pretrained on video starts its encoder from the recipe's
            encoder weights (ImageNet); ``False`` starts every layer from random weights.
        frozen_encoder: keep the encoder frozen while fine-tuning (the authors' "No PT" did).
    """

    pretrained: bool = True
    class_weights: bool = False
    augment: bool = False
    encoder_weights: bool = True
    frozen_encoder: bool = False


RESERVED_FOLDERS = ("pretrain", "cache")
"""Folders the runner writes beside the configurations' own."""


def folder_name(configuration: str) -> str:
    """A configuration's folder name, made file-name safe: ``"PT+CW"`` -> ``"PT_CW"``, ``"No PT"`` -> ``"No_PT"``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", configuration.replace("+", "_")).strip("_.")


PAPER_CONFIGURATIONS = {
    "No PT": Configuration(pretrained=False),
    "PT": Configuration(),
    "PT+CW": Configuration(class_weights=True),
    "PT+CW+AUG": Configuration(class_weights=True, augment=True),
}
"""The paper's Table 1, as slicevid runs it ("No PT" trains every layer, as the paper's text says)."""


@dataclass(frozen=True)
class CTLabels:
    """Which columns of the labels CSV a recipe reads, and how its classes are numbered.

    Attributes:
        file_column: the column of scan names.
        label_column: the column of classes (names or integers) of a one-head classifier.
        classes: class names in order (``None``: from the column's values).
        first_label: the integer of the first class when integers name ``classes`` (1 in ImageCLEF's CSV).
        heads: several heads, or another kind of target, instead of the classifier: head name ->
            ``{kind: class | binary | level | number, columns: [...], names: [...]}``.
    """

    file_column: str = TB_FILE_COLUMN
    label_column: str = TB_LABEL_COLUMN
    classes: tuple[str, ...] | None = None
    first_label: int | None = None
    heads: dict[str, HeadColumns] | None = None

    def __post_init__(self) -> None:
        if self.heads is not None:
            heads = {name: h if isinstance(h, HeadColumns) else HeadColumns(**h) for name, h in self.heads.items()}
            object.__setattr__(self, "heads", heads)

    def head_columns(self) -> dict[str, HeadColumns]:
        """The heads the CSV feeds (one classifier unless ``heads`` says otherwise)."""
        return self.heads or {TARGET: HeadColumns("class", (self.label_column,), self.classes, self.first_label)}

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["heads"] = {n: asdict(h) for n, h in self.heads.items()} if self.heads else None
        return values


@dataclass(frozen=True)
class Recipe:
    """A complete two-stage experiment.

    Attributes:
        name: a label for tables and logs.
        model: the architecture (its heads come from the data: the video and scan classes).
        encoder_weights: the encoder's starting weights ("imagenet", "keras-imagenet", a file, or null).
        init: initialisation of the other layers ("pytorch" or "keras", as the authors' model).
        execution: how slices run through the encoder (memory and speed only).
        video: how videos become clips.
        video_classes: the class folders to pretrain on (null: every folder).
        video_split: how clips split into training and validation: "random", "group" (by UCF
            scene) or "keras" (the authors' train/test split, then Keras's last 20% for validation).
        video_val_fraction: the clips' validation share.
        pretrain_frozen_encoder: freeze the encoder during video pretraining (the paper's, with
            ImageNet weights); false trains it too (for encoders without pretrained weights).
        labels: the labels CSV's columns.
        slice_supervision: a per-slice head trained from the slice targets given to the runner, if any.
        preprocessing: how scans become inputs.
        val_fraction: the scans' validation share (the stratified 80/20 split of the paper).
        label_fraction: share of the training scans fine-tuned on (stratified; for learning curves).
        test_nan_policy: NaN voxels in test scans: "raise", or "replace" to predict every scan.
        pretrain: training settings of the video stage.
        finetune: training settings of the CT stage.
        augment: the augmentation of configurations with augment: "paper", "notebook" or "torchio".
        configurations: the configurations to run, by name.
        submission_ids: ids in submission files: "stem" (TST_0001) or "filename" (TST_0001.nii.gz).
    """

    name: str = "experiment"
    model: Architecture = field(default_factory=Architecture)
    encoder_weights: str | None = "imagenet"
    init: Init = "pytorch"
    execution: SliceExecution = field(default_factory=SliceExecution)
    video: ClipSettings = field(default_factory=ClipSettings)
    video_classes: tuple[str, ...] | None = None
    video_split: SplitBy = "random"
    video_val_fraction: float = VAL_FRACTION
    pretrain_frozen_encoder: bool = True
    labels: CTLabels = field(default_factory=CTLabels)
    slice_supervision: SliceSupervision | None = None
    preprocessing: CTPreprocessing = field(default_factory=CTPreprocessing)
    val_fraction: float = VAL_FRACTION
    label_fraction: float = 1.0
    test_nan_policy: NanPolicy = "replace"
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    finetune: TrainConfig = field(default_factory=TrainConfig)
    augment: Augmentation = "paper"
    configurations: dict[str, Configuration] = field(default_factory=lambda: dict(PAPER_CONFIGURATIONS))
    submission_ids: SubmissionIds = "stem"

    def __post_init__(self) -> None:
        check_literal_fields(self)
        if not self.configurations:
            raise ConfigError("configurations", "must name at least one configuration to run")
        folders: dict[str, str] = {}
        for name in self.configurations:
            folder = folder_name(str(name))
            if not folder or folder in RESERVED_FOLDERS:
                raise ConfigError("configurations", f"{name!r} makes no usable folder name ({folder!r}); rename it")
            if folder in folders:
                raise ConfigError(
                    "configurations", f"{folders[folder]!r} and {name!r} would share the folder {folder!r}"
                )
            folders[folder] = name
        if self.video_classes is not None:
            object.__setattr__(self, "video_classes", tuple(self.video_classes))

    @property
    def needs_pretraining(self) -> bool:
        return any(c.pretrained for c in self.configurations.values())

    def model_start(self, pretrained: str | os.PathLike | None = None, encoder_weights: bool = True) -> ModelStart:
        """How a stage's model starts: from ``pretrained`` (a saved model), else new, its encoder from the
        recipe's encoder weights (random without ``encoder_weights``); the recipe's slice execution either way."""
        return ModelStart(
            self.model, self.encoder_weights if encoder_weights else None, self.init, self.execution, pretrained
        )

    def replace(self, **changes: Any) -> Recipe:
        return replace(self, **changes)

    def with_seed(self, seed: int) -> Recipe:
        """This recipe with both stages seeded by ``seed`` (splits, initialisation, shuffling)."""
        return replace(self, pretrain=replace(self.pretrain, seed=seed), finetune=replace(self.finetune, seed=seed))

    # ------------------------------------------------------------------ YAML
    def to_dict(self) -> dict[str, Any]:
        """Every setting, nested by the dataclass that owns it (what ``recipe show`` prints)."""
        values: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "preprocessing":
                value = value.params()
            elif item.name == "configurations":
                value = {name: asdict(config) for name, config in value.items()}
            elif hasattr(value, "to_dict"):
                value = value.to_dict()
            elif hasattr(value, "__dataclass_fields__"):
                value = asdict(value)
            values[item.name] = value
        for stage in ("pretrain", "finetune"):
            for runtime in ("out_dir", "resume", "overwrite"):  # the runner sets these per stage
                values[stage].pop(runtime)
        return _plain(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "recipe") -> Recipe:
        """Build a recipe from `to_dict()`'s form; missing settings keep their defaults.

        Raises:
            ConfigError: an unknown setting (with close names) or an invalid value, naming ``source``.
        """
        _check_keys(values, [f.name for f in fields(cls)], source)
        parsed: dict[str, Any] = dict(values)
        nested = {"model": Architecture, "execution": SliceExecution, "video": ClipSettings, "labels": CTLabels}
        try:
            for key, kind in nested.items():
                if key in values:
                    parsed[key] = _build(kind, values[key], f"{source}: {key}")
            if "preprocessing" in values:
                _check_keys(
                    values["preprocessing"], [f.name for f in fields(CTPreprocessing)], f"{source}: preprocessing"
                )
                parsed["preprocessing"] = CTPreprocessing.from_params(
                    {**CTPreprocessing().params(), **values["preprocessing"]}
                )
            for stage in ("pretrain", "finetune"):
                if stage in values:
                    parsed[stage] = TrainConfig.from_dict(values[stage], source=f"{source}: {stage}")
            if values.get("slice_supervision") is not None:
                parsed["slice_supervision"] = _build(
                    SliceSupervision, values["slice_supervision"], f"{source}: slice_supervision"
                )
            if "configurations" in values:
                parsed["configurations"] = {
                    name: _build(Configuration, config or {}, f"{source}: configurations: {name}")
                    for name, config in values["configurations"].items()
                }
            return cls(**parsed)
        except ConfigError:
            raise
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{source}:", str(err)) from err

    def save(self, path: str | os.PathLike) -> Path:
        """Write the recipe as YAML, atomically."""
        atomic_write_text(path, self.to_yaml())
        return Path(path)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, width=100)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recipe:
        """Read a recipe written by `save()` (or edited by hand).

        Raises:
            ConfigError: an unreadable or empty file (an empty recipe is not the default one), or
                settings that do not validate.
        """
        values = read_config_file(path)
        if not values:
            raise ConfigError(f"{path}:", "holds no settings; start from slicevid recipe show NAME")
        return cls.from_dict(values, source=str(path))


def _build(kind: type, values: Any, source: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{source}:", f"expected a mapping of settings, got {values!r}")
    _check_keys(values, [f.name for f in fields(kind)], source)
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return kind(**converted)


def _check_keys(values: Any, known: list[str], source: str) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}:", f"expected a mapping of settings, got {type(values).__name__}")
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{source}:", f"unknown setting(s) {unknown}.{suggest(unknown[0], known)} Valid: {known}")


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML's safe dumper writes plain lists only)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
