"""From parsed command-line options to what the library takes: datasets, heads, models, settings.

The command line spells every setting as the dataclass that owns it does (options generated
from ``TrainConfig``, ``ModelConfig``, ``CTPreprocessing``, ``ClipSettings`` and ``SliceExecution``);
this module only assembles them, and checks combinations that cannot work before any data is read.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..data import TB_CLASSES, ClipSettings, CTPreprocessing, HeadColumns, LabelledScans, SliceTargets
from ..data.imageclef import TB_LABEL_COLUMN
from ..data.labels import TARGET
from ..data.preprocess import VARIABLE_DEPTH
from ..data.slices import read_slice_indices
from ..errors import ConfigError
from ..model_config import ARCHITECTURE, SliceExecution
from ..tasks import SliceSupervision, Task, tasks_from_columns
from .options import dataclass_from_args

TASK_KINDS = {"multiclass": "class", "multilabel": "binary", "ordinal": "level", "regression": "number"}
"""Command-line task names and the label-column kind each reads."""


def import_plugins(modules: list[str] | None) -> None:
    """Import each ``--import`` module name or Python file, so the encoders and aggregators it registers exist.

    Raises:
        ConfigError: a module that cannot be found or imported (its error in one line).
    """
    for target in modules or ():
        path = Path(target)
        try:
            if path.suffix == ".py":
                if not path.is_file():
                    raise ConfigError("--import", f"{target}: file not found")
                name = f"slicevid_plugin_{path.stem}"
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(target)
        except ConfigError:
            raise
        except Exception as err:  # a user's module may raise anything while importing
            raise ConfigError("--import", f"{target} failed to import ({type(err).__name__}: {err})") from err


def class_names(args: argparse.Namespace) -> tuple[tuple[str, ...] | None, int | None]:
    """The classes and numbering of a one-head classifier: given, the ImageCLEF TB types, or from the data."""
    if args.classes:
        return tuple(c.strip() for c in args.classes.split(",") if c.strip()), None
    if args.label_column == TB_LABEL_COLUMN:
        return TB_CLASSES, 1
    return None, None


def head_columns(args: argparse.Namespace) -> dict[str, HeadColumns]:
    """The heads the labels CSV feeds: ``--head`` options, else one ``--task`` head."""
    if args.head:
        return dict(_parse_head(text) for text in args.head)
    kind = TASK_KINDS[args.task]
    if args.label_columns:
        columns = tuple(c.strip() for c in args.label_columns.split(",") if c.strip())
    else:
        columns = (args.label_column,)
    if kind == "class":
        names, first = class_names(args)
        return {TARGET: HeadColumns("class", columns, names, first)}
    levels = tuple(c.strip() for c in args.levels.split(",")) if kind == "level" and args.levels else None
    return {TARGET: HeadColumns(kind, columns, levels)}


def _parse_head(text: str) -> tuple[str, HeadColumns]:
    """``"findings=multilabel:left,right"`` -> ``("findings", HeadColumns("binary", ("left", "right")))``.

    A third part names classes or levels in order: ``"severity=ordinal:Severity:low,medium,high"``.
    """
    try:
        name, rest = text.split("=", 1)
        kind, columns, *names = rest.split(":")
    except ValueError:
        raise ConfigError("--head", f"{text!r} must look like NAME=KIND:COLUMN[,COLUMN...][:NAME,NAME...]") from None
    if kind not in TASK_KINDS:
        raise ConfigError("--head", f"{text!r}: the kind must be one of {sorted(TASK_KINDS)}")
    if len(names) > 1:
        raise ConfigError("--head", f"{text!r} has more than three parts (NAME=KIND:COLUMNS:NAMES)")

    def listed(part: str) -> tuple[str, ...]:
        return tuple(c.strip() for c in part.split(",") if c.strip())

    return name.strip(), HeadColumns(TASK_KINDS[kind], listed(columns), listed(names[0]) if names else None)


def tasks_for(dataset: LabelledScans, heads: dict[str, HeadColumns], args: argparse.Namespace) -> dict[str, Task]:
    """The model's tasks for a labelled dataset's heads, with its class, label and level names."""
    pairs = [tuple(p.split(":")) for p in (args.flip_pairs or "").split(",") if p]
    return tasks_from_columns(heads, dataset.head_names, pairs)


def preprocessing(args: argparse.Namespace) -> CTPreprocessing:
    """The CT preprocessing the options describe (depth 70 unless it is the scans' own)."""
    depth = args.depth if args.depth is not None or args.resample in VARIABLE_DEPTH else CTPreprocessing().size[0]
    return dataclass_from_args(CTPreprocessing, args, size=(depth, args.size, args.size))


def clip_settings(args: argparse.Namespace) -> ClipSettings:
    """The clip settings the options describe."""
    return dataclass_from_args(ClipSettings, args)


def slice_targets(args: argparse.Namespace) -> SliceTargets | None:
    """Where per-slice targets come from (``--slice-targets`` or ``--slice-masks``), if anywhere."""
    if args.slice_targets and args.slice_masks:
        raise ConfigError("--slice-targets", "and --slice-masks exclude each other: give one source")
    if args.slice_targets:
        return SliceTargets(indices=read_slice_indices(args.slice_targets, args.file_column, args.slice_column))
    if args.slice_masks:
        return SliceTargets(masks=Path(args.slice_masks))
    return None


def slice_supervision(args: argparse.Namespace, targets: SliceTargets | None) -> SliceSupervision | None:
    if targets is None:
        return None
    return SliceSupervision((targets.label,), args.slice_weight, args.slice_pool_into, args.slice_pool)


def labelled_scans(args: argparse.Namespace, split: str, heads: dict[str, HeadColumns], **kwargs: Any) -> LabelledScans:
    """The CT split the options describe."""
    return LabelledScans(
        args.scans,
        args.labels_csv,
        split,
        file_column=args.file_column,
        heads=heads,
        val_fraction=args.val_fraction,
        seed=args.seed,
        exclude=args.exclude,
        on_error=args.on_error,
        cache_dir=args.cache_dir,
        **kwargs,
    )


def architecture(args: argparse.Namespace) -> dict[str, Any]:
    """The model options as ``create_model`` keyword arguments."""
    values = {name: getattr(args, name) for name in ARCHITECTURE if name != "in_channels"}
    if args.hidden_size is not None:
        values["aggregator_kwargs"] = {**values["aggregator_kwargs"], "hidden_size": args.hidden_size}
    return values


def execution(args: argparse.Namespace) -> SliceExecution:
    return dataclass_from_args(SliceExecution, args)


MODEL_FLAGS = (*[n for n in ARCHITECTURE if n != "in_channels"], "hidden_size", "encoder_weights", "init")
"""Options that describe a new model's architecture or start (they cannot apply to a ``--pretrained`` one)."""


def refuse_model_flags(args: argparse.Namespace, explicit: set[str]) -> None:
    """A ``--pretrained`` model's architecture comes from its checkpoint: architecture options are refused."""
    given = [name for name in MODEL_FLAGS if name in explicit]
    if args.pretrained and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(
            flags,
            "cannot apply to a --pretrained model (its architecture and weights come from the checkpoint); "
            "drop them, or drop --pretrained to build a new model",
        )
