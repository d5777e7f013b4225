"""Which scans ``slicevid evaluate`` scores, and what it writes about them.

A checkpoint records its training data (`TrainingData`): the scan folder and labels CSV (or
the MedMNIST file), the columns, the split's settings, and the ids of its validation scans.
By default ``evaluate`` scores exactly those validation scans: it rebuilds the split and checks
it yields the same ids, so it can neither score training scans by accident nor silently score
another split. Data the run was not trained on (another labels CSV) is scored whole, and the
message says so; options given on the command line take the place of the saved values, and
label options that contradict the checkpoint's heads are refused.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .._io import atomic_write_text
from ..data import CTPreprocessing, HeadColumns, LabelledScans, MedMNIST3D
from ..data.splits import SplitSettings
from ..errors import ConfigError, DataError
from ..keys import TARGET
from ..model_config import ModelConfig


def evaluation_data(
    args: argparse.Namespace, config: ModelConfig, preprocessing: CTPreprocessing | None
) -> tuple[object, str, str]:
    """The dataset to score, the split it is (``"val"``, ``"all"`` ...), and a description of it.

    Raises:
        ConfigError: no data given and none recorded, or label options that contradict the checkpoint.
        DataError: the saved validation split no longer yields the training run's validation scans.
    """
    saved = config.training_data
    if args.medmnist or (saved is not None and saved.kind == "medmnist" and not args.scans):
        return _medmnist_data(args, saved)
    saved = saved if saved is not None and saved.kind == "ct" else None
    scans = args.scans or (saved.root if saved else None)
    labels_csv = args.labels_csv or (saved.labels_csv if saved else None)
    if not scans or not labels_csv:
        raise ConfigError("--scans", "and --labels-csv are needed: the checkpoint does not record its training data")
    same_data = saved is not None and _same_path(scans, saved.root) and _same_path(labels_csv, saved.labels_csv)
    split = args.split or ("val" if same_data else "all")
    settings = _split_settings(args, saved if same_data else None)
    seed = args.seed if args.seed is not None else (saved.seed if same_data and saved.seed is not None else 0)
    dataset = LabelledScans(
        scans,
        labels_csv,
        split,
        file_column=_given(args, "file_column", saved.file_column if saved else None),
        heads=heads_of(config, saved, args),
        val_fraction=settings.val_fraction,
        seed=seed,
        exclude=args.exclude or (list(saved.exclude) if same_data else None),
        on_error=args.on_error,
        preprocessing=preprocessing,
        cache_dir=args.cache_dir,
        split_column=settings.split_column,
        group_column=settings.group_column,
        folds=settings.folds,
        fold=settings.fold,
    )
    if split == "val" and same_data and saved.val_ids:
        if (seed, settings.val_fraction) != (saved.seed, saved.val_fraction):
            warnings.warn(
                f"--seed {seed} / --val-fraction {settings.val_fraction} differ from the training run's "
                f"({saved.seed}, {saved.val_fraction}): this scores another split, which may hold training scans",
                stacklevel=2,
            )
        elif tuple(dataset.file_ids) != saved.val_ids:
            raise DataError(
                f"the validation split of {labels_csv} no longer gives the training run's {len(saved.val_ids)} "
                "validation scans (the CSV or the scans changed since training); pass --split all, or other data"
            )
        what = f"the training run's validation scans (seed {seed}, {settings.val_fraction:.0%} of {labels_csv})"
        return dataset, split, what
    if split == "all":
        why = "" if args.split else " (not the CSV the run was trained on, so every scan is scored)"
        return dataset, split, f"every scan of {labels_csv}{why}"
    return dataset, split, f"the {split} scans of {labels_csv}"


def _medmnist_data(args: argparse.Namespace, saved) -> tuple[MedMNIST3D, str, str]:
    """A MedMNIST split: the run's validation part of its own file by default, the test split of another."""
    source = args.medmnist or saved.root
    same_file = saved is not None and saved.kind == "medmnist" and _same_path(saved.root, _path_of(source))
    split = args.split or ("val" if same_file else "test")
    if split == "all":
        return MedMNIST3D(source, ("train", "val", "test")), split, f"every volume of {source}"
    if same_file and saved.folds is not None:
        settings = SplitSettings(saved.val_fraction, folds=saved.folds, fold=saved.fold)
        data = MedMNIST3D(source, ("train", "val")).fold_parts(settings, saved.seed)[split]
        return data, split, f"the {split} part of fold {saved.fold} of {source}"
    return MedMNIST3D(source, split), split, f"the official {split} split of {source}"


def _same_path(a, b) -> bool:
    return a is not None and b is not None and os.path.abspath(a) == os.path.abspath(b)


def _path_of(source) -> Path:
    from ..data.medmnist import resolve_medmnist

    return resolve_medmnist(source)[0]


def _split_settings(args: argparse.Namespace, saved) -> SplitSettings:
    """The split's settings: given ones, else the training run's (for its own data), else the defaults."""
    recorded = (
        SplitSettings(saved.val_fraction or SplitSettings.val_fraction, saved.split_column, saved.group_column)
        if saved is not None
        else SplitSettings()
    )
    folds = {"folds": saved.folds, "fold": saved.fold} if saved is not None and saved.folds else {}
    return replace(
        recorded,
        val_fraction=args.val_fraction if args.val_fraction is not None else recorded.val_fraction,
        split_column=args.split_column or recorded.split_column,
        group_column=args.group_column or recorded.group_column,
        **folds,
    )


def _given(args: argparse.Namespace, name: str, saved):
    """An option given on the command line, else the saved value, else the option's own default."""
    value = getattr(args, name)
    if name in args.explicit or saved is None:
        return value if value is not None else args.parser.get_default(name)
    return saved


def heads_of(config: ModelConfig, saved, args: argparse.Namespace) -> dict[str, HeadColumns]:
    """The label columns of each head, as training read them, with the ones given on the command line.

    Raises:
        ConfigError: given label options that contradict the checkpoint's heads (kinds, classes, levels).
        DataError: a checkpoint whose heads do not match its recorded columns.
    """
    from ..data.imageclef import TB_LABEL_COLUMN
    from .labels import LabelSettings

    columns = dict(saved.label_columns) if saved and saved.label_columns else {TARGET: (TB_LABEL_COLUMN,)}
    if set(columns) != set(config.tasks):
        raise DataError(f"the checkpoint's heads {sorted(config.tasks)} do not match its recorded columns {columns}")
    heads = {}
    for name, task in config.tasks.items():
        kind = task.column_kind
        names = task.names if kind in ("class", "level") else None
        first = saved.first_label if saved and kind == "class" else None
        heads[name] = HeadColumns(kind, tuple(columns[name]), names, first)
    label_options = ("label_column", "task", "label_columns", "classes", "levels", "head")
    given = [name for name in label_options if name in args.explicit]
    if not given:
        return heads
    single = config.single_task
    labels = LabelSettings(
        label_column=args.label_column or next(iter(columns.values()))[0],
        task=args.task or (single.kind if single is not None else "multiclass"),
        label_columns=args.label_columns,
        classes=args.classes,
        levels=args.levels,
        head=tuple(args.head or ()),
    )
    for name, wanted in labels.head_columns().items():
        have = heads.get(name)
        if have is None:
            raise ConfigError("--head", f"names a head {name!r} the checkpoint does not have ({', '.join(heads)})")
        if wanted.kind != have.kind:
            flag = _first_given(given, ("head", "task", "label_columns"))
            raise ConfigError(flag, f"gives {name!r} the kind {wanted.kind!r}, but the checkpoint's is {have.kind!r}")
        if wanted.names is not None and tuple(wanted.names) != tuple(have.names or ()):
            flag = _first_given(given, ("head", "classes", "levels"))
            raise ConfigError(
                flag, f"gives {name!r} {list(wanted.names)}, but the checkpoint predicts {list(have.names or ())}"
            )
        heads[name] = replace(have, columns=wanted.columns)
    return heads


def _first_given(given: list[str], candidates: tuple[str, ...]) -> str:
    """The command-line flag (of those given) whose value brought a contradiction with the checkpoint."""
    name = next((option for option in candidates if option in given), given[0])
    return "--" + name.replace("_", "-")


def write_evaluation(evaluation, split: str, args: argparse.Namespace, say: Callable[..., None]) -> None:
    """Print the report (with bootstrap intervals when asked), and write its JSON and plots when asked."""
    from ..train.reporting import write_classifier_plots

    intervals = evaluation.intervals(args.bootstrap) if args.bootstrap else {}
    say(evaluation.report.to_markdown(Path(args.checkpoint).name))
    several = len(evaluation.tasks) > 1
    for task, values in intervals.items():
        lines = [f"  {metric} {low:.3f} to {high:.3f}" for metric, (low, high) in values.items()]
        say(f"95% bootstrap intervals, {args.bootstrap} resamples{f' ({task})' if several else ''}:", *lines)
    if args.report:
        document = {"split": split, "samples": evaluation.report.num_samples, "checkpoint": str(args.checkpoint)}
        document.update(evaluation.report.to_dict())
        for task, bounds in intervals.items():
            target = document["reports"][task] if several else document
            target.update({f"{metric}_ci": list(pair) for metric, pair in bounds.items()})
        atomic_write_text(args.report, json.dumps(document, indent=2) + "\n")
    if args.plots:
        for path in write_classifier_plots(evaluation, Path(args.plots), "evaluation"):
            say(f"plot: {path}")
