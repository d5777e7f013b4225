"""From parsed command-line options to what the library takes: datasets, heads, model starts, settings.

The command line spells every setting as the dataclass that owns it does (options generated
from ``TrainConfig``, ``Architecture``, ``CTPreprocessing``, ``ClipSettings``, ``SliceExecution``,
``SplitSettings`` and ``LabelSettings``); this module only assembles them, and checks what
cannot work before any data is read: options that exclude each other, a missing optional
package, an output that would overwrite one of the command's own inputs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError
from .options import dataclass_from_args

INTERNAL = ("handler", "config", "debug", "parser", "explicit", "_required", "command", "resume", "overwrite")
"""Parsed values that are not options of a run (or that must never rerun from its record)."""


def record_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options of this command as a ``--config`` file maps them (what ``config.yaml`` saves).

    ``--resume`` and ``--overwrite`` are left out (a rerun from the record must not replace the run
    it came from), and plugin files are recorded by absolute path (a rerun from elsewhere finds them).
    """
    values = {k: v for k, v in vars(args).items() if k not in INTERNAL}
    if values.get("imports"):
        values["imports"] = [str(Path(m).resolve()) if m.endswith(".py") else m for m in values["imports"]]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def import_plugins(modules: list[str] | None) -> None:
    """Import each ``--import`` module name or Python file, so the encoders and aggregators it registers exist.

    Raises:
        ConfigError: a file that is not ``.py``, a module that cannot be found or imported, or a
            plugin that exits while importing (its error in one line).
    """
    for target in modules or ():
        path = Path(target)
        looks_like_a_file = path.suffix or "/" in target or os.sep in target
        if looks_like_a_file and path.suffix != ".py":
            raise ConfigError("--import", f"{target}: a plugin file must be a .py file (or give a module name)")
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
        except SystemExit as err:
            raise ConfigError("--import", f"{target} called sys.exit({err.code}) while importing") from err
        except Exception as err:  # a user's module may raise anything while importing
            raise ConfigError("--import", f"{target} failed to import ({type(err).__name__}: {err})") from err


def require_package(module: str, flag: str, extra: str) -> None:
    """Refuse, in one line naming the extra to install, an option whose optional package is missing."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(flag, f"needs the {module} package: pip install 'slicevid[{extra}]'")


def check_outputs(outputs: dict[str, str | os.PathLike | None], inputs: list[str | os.PathLike]) -> None:
    """Refuse an output path that is one of the command's own inputs (a scan, a model, a checkpoint's files).

    Args:
        outputs: flag -> the path it writes (``None``: not written).
        inputs: the files and folders the command reads; for a folder, every file inside counts too.

    Raises:
        OutputError: an output that would overwrite an input.
    """
    read: set[Path] = set()
    for item in map(Path, inputs):
        read.add(item.resolve())
        if item.is_dir():
            read.update(child.resolve() for child in item.rglob("*") if child.is_file())
    for flag, path in outputs.items():
        if path is not None and Path(path).resolve() in read:
            raise OutputError(f"{flag} {path} is one of this command's inputs; choose another file to write")


def check_train_settings(config) -> None:
    """The device, the run folder and the optional packages a run needs, before any data is read."""
    from ..devices import resolve_device
    from ..train.run_folder import check_run_folder

    resolve_device(config.device)
    check_run_folder(config.out_dir, resume=config.resume, overwrite=config.overwrite)
    if config.tensorboard:
        require_package("tensorboard", "--tensorboard", "tensorboard")


def train_config(args: argparse.Namespace):
    """The training settings, checked before any data is read."""
    from ..train import TrainConfig

    config = dataclass_from_args(TrainConfig, args)
    check_train_settings(config)
    return config


def label_settings(args: argparse.Namespace):
    from .labels import LabelSettings

    return dataclass_from_args(LabelSettings, args)


def split_settings(args: argparse.Namespace, **changes: Any):
    from ..data.splits import SplitSettings

    return dataclass_from_args(SplitSettings, args, **changes)


def preprocessing(args: argparse.Namespace):
    """The CT preprocessing the options describe (the paper's size unless given; no depth when it is native)."""
    from ..data import CTPreprocessing
    from ..data.preprocess import VARIABLE_DEPTH

    default = CTPreprocessing().size
    depth = None if args.resample in VARIABLE_DEPTH and args.depth is None else (args.depth or default[0])
    side = args.size or default[1]
    return dataclass_from_args(CTPreprocessing, args, size=(depth, side, side))


def clip_settings(args: argparse.Namespace):
    from ..data.clips import ClipSettings

    return dataclass_from_args(ClipSettings, args)


def architecture(args: argparse.Namespace):
    """The model options as an `Architecture` (``--hidden-size`` into the aggregator's keywords)."""
    from ..model_config import Architecture

    if args.hidden_size is not None:
        args = argparse.Namespace(
            **{**vars(args), "aggregator_kwargs": {**args.aggregator_kwargs, "hidden_size": args.hidden_size}}
        )
    return dataclass_from_args(Architecture, args)


def model_start(args: argparse.Namespace):
    """How the command's model starts: ``--pretrained``, or a new model of the architecture options."""
    from ..model_config import SliceExecution
    from ..recipes import ModelStart

    return ModelStart(
        architecture(args),
        args.encoder_weights,
        args.init,
        dataclass_from_args(SliceExecution, args),
        args.pretrained,
    )


def refuse_model_flags(args: argparse.Namespace) -> None:
    """A ``--pretrained`` model's architecture comes from its checkpoint: architecture options are refused."""
    from dataclasses import fields

    from ..model_config import Architecture

    model_flags = (*(f.name for f in fields(Architecture)), "hidden_size", "encoder_weights", "init")
    given = [name for name in model_flags if name in args.explicit]
    if args.pretrained and given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(
            flags,
            "cannot apply to a --pretrained model (its architecture and weights come from the checkpoint); "
            "drop them, or drop --pretrained to build a new model",
        )


MEDMNIST_EXCLUDES = ("scans", "labels_csv", "split_column", "group_column", "exclude", "cache_dir", "depth", "size")
"""Options that cannot apply with ``--medmnist`` (its volumes, labels, split and size come from the file)."""


def check_data_source(args: argparse.Namespace, *, labels: bool = True) -> None:
    """``--medmnist`` or ``--scans`` (with ``--labels-csv``), and nothing that contradicts the choice."""
    if args.medmnist:
        given = [name for name in MEDMNIST_EXCLUDES if name in args.explicit]
        label_flags = [name for name in ("head", "label_columns", "levels", "classes") if name in args.explicit]
        if given or label_flags:
            flags = ", ".join("--" + name.replace("_", "-") for name in given + label_flags)
            raise ConfigError(
                flags, "cannot apply to --medmnist: its volumes, classes, split and size come from the .npz file"
            )
        return
    missing = [flag for flag, value in (("--scans", args.scans), ("--labels-csv", args.labels_csv)) if not value]
    if missing and (labels or not args.scans):
        raise ConfigError(" and ".join(missing), "are needed (or --medmnist FLAG_OR_NPZ for a MedMNIST 3D set)")


def labelled_data(args: argparse.Namespace, part: str, heads=None, **kwargs: Any):
    """One part (train, val, test) of the labelled data the options name: scans and a CSV, or MedMNIST.

    With ``--folds`` (``cv``), ``args.fold`` chooses the fold whose parts these are.
    """
    settings = split_settings(args, **({"fold": args.fold} if getattr(args, "folds", None) else {}))
    if args.medmnist:
        from ..data import MedMNIST3D

        if settings.folds is None:
            return MedMNIST3D(args.medmnist, part)
        return MedMNIST3D(args.medmnist, ("train", "val")).fold_parts(settings, args.seed)[part]
    from ..data import LabelledScans

    labels = label_settings(args)
    return LabelledScans(
        args.scans,
        args.labels_csv,
        part,
        file_column=labels.file_column,
        heads=heads if heads is not None else labels.head_columns(),
        val_fraction=settings.val_fraction,
        seed=args.seed,
        exclude=args.exclude,
        on_error=args.on_error,
        cache_dir=args.cache_dir,
        split_column=settings.split_column,
        group_column=settings.group_column,
        folds=settings.folds,
        fold=settings.fold,
        **kwargs,
    )


def slice_targets(args: argparse.Namespace):
    """Where per-slice targets come from (``--slice-targets`` or ``--slice-masks``), if anywhere."""
    from ..data import SliceTargets
    from ..data.slices import read_slice_indices

    if args.slice_targets and args.slice_masks:
        raise ConfigError("--slice-targets", "and --slice-masks exclude each other: give one source")
    if args.slice_targets:
        return SliceTargets(indices=read_slice_indices(args.slice_targets, args.file_column, args.slice_column))
    if args.slice_masks:
        return SliceTargets(masks=Path(args.slice_masks))
    return None


def check_slice_targets_name(train, targets) -> None:
    """Refuse slice targets that name none of the training scans (a wrong column would turn them off unseen)."""
    from ..errors import DataError

    if targets is None or targets.indices is None or set(train.file_ids) & set(targets.indices):
        return
    named = ", ".join(sorted(targets.indices)[:3])
    raise DataError(
        f"--slice-targets names none of the {len(train)} training scans (it names {named} ...): check its "
        "file column (--file-column) against the scan names"
    )


def slice_supervision(args: argparse.Namespace, targets):
    from ..tasks import SliceSupervision

    if targets is None:
        return None
    return SliceSupervision((targets.label,), args.slice_weight, args.slice_pool_into, args.slice_pool)


def tasks_for(dataset, args: argparse.Namespace):
    """The model's tasks for the training data: its heads' class, label and level names (MedMNIST: its classes)."""
    from ..keys import TARGET
    from ..tasks import Multiclass, tasks_from_columns

    if args.medmnist:
        return {TARGET: Multiclass(dataset.class_names)}
    labels = label_settings(args)
    tasks = tasks_from_columns(labels.head_columns(), dataset.head_names, labels.flip_label_pairs())
    named = {name for task in tasks.values() for pair in getattr(task, "flip_pairs", ()) for name in pair}
    unknown = sorted({name for pair in labels.flip_label_pairs() for name in pair} - named)
    if unknown:
        raise ConfigError("--flip-pairs", f"name {unknown}, which no multilabel head holds as a pair")
    return tasks
