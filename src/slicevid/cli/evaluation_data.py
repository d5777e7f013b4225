"""Which scans ``slicevid evaluate`` scores: by default, exactly the validation scans of the training run.

A checkpoint records its training data (`TrainingData`): the
scan folder, the labels CSV and its columns, the split's seed and fraction, and the ids of its
validation scans. ``evaluate`` rebuilds that split and checks it yields the same ids, so it can
neither score training scans by accident nor silently score another split; options given on
the command line take the place of the saved values.
"""

from __future__ import annotations

import argparse
import warnings

from ..data import CTPreprocessing, HeadColumns, LabelledScans
from ..data.labels import TARGET
from ..errors import ConfigError, DataError
from ..model_config import ModelConfig

KIND_OF_TASK = {"multiclass": "class", "multilabel": "binary", "ordinal": "level", "regression": "number"}


def evaluation_data(
    args: argparse.Namespace, config: ModelConfig, preprocessing: CTPreprocessing
) -> tuple[LabelledScans, str]:
    """The dataset to score and a description of it.

    Raises:
        ConfigError: no scans or labels given, and the checkpoint does not record them.
        DataError: the saved validation split no longer yields the training run's validation scans.
    """
    saved = config.training_data if config.training_data is not None and config.training_data.kind == "ct" else None
    scans = args.scans or (saved.root if saved else None)
    labels_csv = args.labels_csv or (saved.labels_csv if saved else None)
    if not scans or not labels_csv:
        raise ConfigError("--scans", "and --labels-csv are needed: the checkpoint does not record its training data")
    seed = args.seed if args.seed is not None else (saved.seed if saved and saved.seed is not None else 0)
    fraction = args.val_fraction if args.val_fraction is not None else (saved.val_fraction if saved else None) or 0.2
    file_column = args.file_column if "file_column" in args.explicit or not saved else saved.file_column
    dataset = LabelledScans(
        scans,
        labels_csv,
        args.split,
        file_column=file_column,
        heads=_heads(config, saved),
        val_fraction=fraction,
        seed=seed,
        exclude=args.exclude or (list(saved.exclude) if saved else None),
        on_error=args.on_error,
        preprocessing=preprocessing,
        cache_dir=args.cache_dir,
    )
    same_data = saved is not None and (scans, labels_csv) == (saved.root, saved.labels_csv)
    if args.split == "val" and same_data and saved.val_ids:
        if (seed, fraction) != (saved.seed, saved.val_fraction):
            warnings.warn(
                f"--seed {seed} / --val-fraction {fraction} differ from the training run's ({saved.seed}, "
                f"{saved.val_fraction}): this scores another split, which may hold training scans",
                stacklevel=2,
            )
        elif tuple(dataset.file_ids) != saved.val_ids:
            raise DataError(
                f"the validation split of {labels_csv} no longer gives the training run's {len(saved.val_ids)} "
                "validation scans (the CSV or the scans changed since training); pass --split all, or other data"
            )
        return dataset, f"the training run's validation scans (seed {seed}, {fraction:.0%} of {labels_csv})"
    return dataset, f"the {args.split} scans of {labels_csv}"


def _heads(config: ModelConfig, saved) -> dict[str, HeadColumns]:
    """The label columns of each head, as training read them (the ImageCLEF column for old checkpoints)."""
    columns = dict(saved.label_columns) if saved and saved.label_columns else {TARGET: ("TypeOfTB",)}
    if set(columns) != set(config.tasks):
        raise DataError(f"the checkpoint's heads {sorted(config.tasks)} do not match its recorded columns {columns}")
    heads = {}
    for name, task in config.tasks.items():
        kind = KIND_OF_TASK[task.kind]
        names = task.names if kind in ("class", "level") else None
        first = saved.first_label if saved and kind == "class" else None
        heads[name] = HeadColumns(kind, tuple(columns[name]), names, first)
    return heads
