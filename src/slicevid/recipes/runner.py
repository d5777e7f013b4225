"""``run_recipe``: one two-stage experiment, the one orchestration behind the CLI, the demo and the benchmarks.

1. check the folder and write ``recipe.yaml`` (the exact recipe run);
2. pretrain on the videos, if any configuration starts from video pretraining (``pretrain/``);
3. fine-tune each configuration on the scans (``<configuration>/``), choosing its epoch on
   the validation split;
4. score each on the test scans: a report when they are labelled, a submission when not;
5. write ``table.md``, ``results.json`` and a test confusion matrix per configuration.

Every stage writes a run folder of its own (``best/``, ``config.yaml``, curves ...). The whole
run is resumable: rerunning the same command skips finished stages and resumes an interrupted
one from its last epoch; a folder that holds a run of another recipe is refused.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .._io import atomic_write_text
from ..data.labelled import LabelledScans
from ..data.slices import SliceTargets
from ..data.ucf import ucf50
from ..data.video import VideoClipDataset
from ..errors import DataError, RunFolderError
from ..metrics import ClassificationReport, Report, format_table, metrics_table, report_from_dict
from ..model import SliceSequenceClassifier
from ..plots import plot_confusion_matrix
from ..predict import predict_scans, write_submission
from ..tasks import tasks_from_columns
from ..train import TrainConfig, evaluate
from ..train.checkpoint import LAST_CHECKPOINT
from .recipe import Configuration, Recipe, folder_name
from .stage import run_finetuning, run_pretraining

DONE = "done.json"
"""What a finished stage writes into its folder."""


@dataclass
class RecipeResult:
    """What an experiment measured (``results.json`` in its folder holds the same).

    Attributes:
        reports: per configuration, its report on the test scans when they are labelled, else
            on the validation split (see ``scored_on``).
        val_reports: per configuration, the validation report of its kept epoch.
        seconds: wall time of each stage.
        pretrain_val_accuracy: the pretrained model's validation accuracy on clips, if pretrained.
        out_dir: the experiment's folder.
        table: the Markdown table of ``reports``.
        scored_on: ``"test"`` or ``"validation"``.
        submissions: per configuration, its submission file (unlabelled test scans).
    """

    reports: dict[str, Report] = field(default_factory=dict)
    val_reports: dict[str, Report] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    pretrain_val_accuracy: float | None = None
    out_dir: Path | None = None
    table: str = ""
    scored_on: str = "validation"
    submissions: dict[str, Path] = field(default_factory=dict)


def stage_folder(out: Path, name: str) -> Path:
    """The folder of a configuration: its name with ``+`` and spaces made file-name safe (`folder_name`).

    Args:
        out: the experiment's folder.
        name: the configuration's name (``"PT+CW"``).
    """
    return out / folder_name(name)


def run_recipe(
    recipe: Recipe,
    *,
    scans: str | os.PathLike,
    labels_csv: str | os.PathLike,
    out: str | os.PathLike,
    videos: str | os.PathLike | None = None,
    test_scans: str | os.PathLike | None = None,
    test_labels_csv: str | os.PathLike | None = None,
    exclude: str | os.PathLike | None = None,
    slice_targets: SliceTargets | None = None,
    pretrained: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> RecipeResult:
    """Run ``recipe``'s experiment into ``out`` and return what it measured.

    Args:
        recipe: every setting of the experiment.
        scans: the scan folder.
        labels_csv: its labels.
        out: the experiment's folder (resumable; refused when it holds another recipe's run).
        videos: the pretraining videos (a UCF-style folder of class folders); needed when a
            configuration is pretrained.
        test_scans: held-out scans to score each configuration on.
        test_labels_csv: their labels (without them, each configuration writes a submission).
        exclude: scans to leave out before the split (a text file of names).
        slice_targets: where the scans' per-slice targets come from (needed with the recipe's
            slice supervision).
        pretrained: a pretrained model's folder (``save_pretrained``) to fine-tune instead of
            pretraining here: experiments that differ only after pretraining can share one.
        cache_dir: where preprocessed scans and decoded clips are kept (``out/cache`` by default);
            experiments on the same data can share one.
        progress: show progress bars and stage lines.

    Returns:
        The `RecipeResult`.

    Raises:
        RunFolderError: ``out`` holds a run of another recipe.
        DataError: missing data for a stage, or data the stages cannot use.
    """
    out = Path(out)
    if recipe.needs_pretraining and videos is None and pretrained is None:
        raise DataError("the recipe pretrains on video (a configuration is pretrained): pass the videos (--videos)")
    if (recipe.slice_supervision is None) != (slice_targets is None):
        raise DataError("slice supervision needs slice targets, and slice targets need the recipe's slice supervision")
    _claim_folder(out, recipe)
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    say = print if progress else (lambda *_: None)
    result = RecipeResult(out_dir=out)
    if recipe.needs_pretraining and pretrained is None:
        done = " (already done)" if (out / "pretrain" / DONE).is_file() else ""
        say(f"[pretraining] {recipe.name}: {videos}{done}")
        pretrained, result.pretrain_val_accuracy, result.seconds["pretraining"] = _pretrain(
            recipe, Path(videos), out / "pretrain", cache / "clips", progress
        )
    data = scan_splits(
        recipe, scans, labels_csv, exclude=exclude, slice_targets=slice_targets, cache_dir=cache / "volumes"
    )
    for split in data:  # preprocessed into the cache up front
        split.fill_cache(workers=max(1, recipe.finetune.num_workers), progress=progress)
    test = held_out_scans(recipe, test_scans, test_labels_csv, cache / "volumes") if test_scans else None
    tasks = tasks_from_columns(recipe.labels.head_columns(), data[0].head_names)
    for name, configuration in recipe.configurations.items():
        folder = stage_folder(out, name)
        say(f"[fine-tuning] {name}" + (" (already done)" if (folder / DONE).is_file() else ""))
        record = _finetune(recipe, configuration, data, tasks, folder, pretrained, progress)
        result.seconds[name] = record["seconds"]
        result.val_reports[name] = report_from_dict(record["report"])
        if test is not None:
            _score_on_test(recipe, name, folder, test, test_labels_csv is not None, result)
    result.scored_on = "test" if test is not None and test_labels_csv is not None else "validation"
    if result.scored_on == "validation":
        result.reports = dict(result.val_reports)
    result.table = _table(result.reports)
    _write_results(out, recipe, result)
    return result


def _claim_folder(out: Path, recipe: Recipe) -> None:
    """Write ``recipe.yaml``, or refuse a folder that holds another recipe's run."""
    saved = out / "recipe.yaml"
    if saved.is_file():
        if Recipe.load(saved).to_dict() != recipe.to_dict():
            raise RunFolderError(
                f"{out} holds a run of another recipe ({saved} differs); choose another folder to run this one"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    recipe.save(saved)


def _stage_config(settings: TrainConfig, folder: Path, progress: bool) -> TrainConfig:
    """A stage's training settings in ``folder``: resumed when a killed run left a checkpoint there, its
    progress bars shown only when both the recipe's stage and the caller ask for them."""
    resume = (folder / LAST_CHECKPOINT).is_file()
    return replace(settings, out_dir=str(folder), resume=resume, progress=progress and settings.progress)


def _table(reports: dict[str, Report]) -> str:
    """The paper's table layout for classifiers, the headline metrics for any other task."""
    if all(isinstance(report, ClassificationReport) for report in reports.values()):
        return format_table(reports, next(iter(reports.values())).class_names)
    return metrics_table(reports)


def _pretrain(recipe: Recipe, videos: Path, folder: Path, cache: Path, progress: bool):
    """The pretrained model's folder, its validation accuracy and seconds (from ``done.json`` when finished)."""
    if (folder / DONE).is_file():
        done = json.loads((folder / DONE).read_text())
        return folder / "best", done["val_accuracy"], done["seconds"]
    train, val = clip_splits(recipe, videos, cache)
    started = time.perf_counter()
    config = _stage_config(recipe.pretrain, folder, progress)
    fitted = run_pretraining(recipe.model_start(), train, val, config, freeze_encoder=recipe.pretrain_frozen_encoder)
    seconds = round(time.perf_counter() - started, 1)
    accuracy = fitted.evaluation.report.accuracy
    atomic_write_text(folder / DONE, json.dumps({"seconds": seconds, "val_accuracy": accuracy}) + "\n")
    return folder / "best", accuracy, seconds


def scan_splits(
    recipe: Recipe,
    scans: str | os.PathLike,
    labels_csv: str | os.PathLike,
    *,
    exclude: str | os.PathLike | None = None,
    slice_targets: SliceTargets | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[LabelledScans, LabelledScans]:
    """The training and validation scans of ``recipe``'s split, as its fine-tuning reads them.

    Args:
        recipe: the experiment (labels, split fraction and seed, label fraction, preprocessing).
        scans: the scan folder.
        labels_csv: its labels.
        exclude: scans to leave out before the split (a text file of names).
        slice_targets: where the scans' per-slice targets come from.
        cache_dir: where preprocessed scans are kept.
    """
    kwargs = {
        "file_column": recipe.labels.file_column,
        "heads": recipe.labels.head_columns(),
        "slice_targets": slice_targets,
        "val_fraction": recipe.val_fraction,
        "seed": recipe.finetune.seed,
        "exclude": exclude,
        "preprocessing": recipe.preprocessing,
        "cache_dir": cache_dir,
    }
    train = LabelledScans(scans, labels_csv, "train", label_fraction=recipe.label_fraction, **kwargs)
    return train, LabelledScans(scans, labels_csv, "val", **kwargs)


def clip_splits(
    recipe: Recipe, videos: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> tuple[VideoClipDataset, VideoClipDataset]:
    """The training and validation clips of ``recipe``'s video pretraining.

    Args:
        recipe: the experiment (classes, clip settings, split and seed).
        videos: a UCF-style folder of class folders.
        cache_dir: where decoded clips are kept.
    """
    common = {
        "classes": recipe.video_classes,
        "clip": recipe.video,
        "seed": recipe.pretrain.seed,
        "split_by": recipe.video_split,
        "val_fraction": recipe.video_val_fraction,
        "cache_dir": cache_dir,
    }
    return ucf50(videos, split="train", **common), ucf50(videos, split="val", **common)


def held_out_scans(
    recipe: Recipe,
    scans: str | os.PathLike,
    labels_csv: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None = None,
) -> LabelledScans:
    """Held-out scans as the recipe scores them (every scan; labelled when ``labels_csv`` is given).

    Args:
        recipe: the experiment (labels, preprocessing, the test NaN policy).
        scans: the test scan folder.
        labels_csv: their labels, or ``None`` to predict them.
        cache_dir: where preprocessed scans are kept.
    """
    preprocessing = replace(recipe.preprocessing, nan_policy=recipe.test_nan_policy)
    labels = recipe.labels
    return LabelledScans(
        scans,
        labels_csv,
        "all" if labels_csv else "test",
        file_column=labels.file_column,
        heads=labels.head_columns() if labels_csv else None,
        classes=labels.classes,
        preprocessing=preprocessing,
        cache_dir=cache_dir,
    )


def _finetune(
    recipe: Recipe, configuration: Configuration, data, tasks: dict, folder: Path, pretrained, progress: bool
) -> dict:
    """Fine-tune one configuration (or read its finished record)."""
    if (folder / DONE).is_file():
        return json.loads((folder / DONE).read_text())
    train, val = data
    settings = replace(
        _stage_config(recipe.finetune, folder, progress),
        class_weights=configuration.class_weights,
        augment=recipe.augment if configuration.augment else "none",
    )
    start = recipe.model_start(pretrained if configuration.pretrained else None, configuration.encoder_weights)
    started = time.perf_counter()
    _, fitted = run_finetuning(
        start,
        train,
        val,
        settings,
        tasks=tasks,
        slice_supervision=recipe.slice_supervision,
        freeze_encoder=configuration.frozen_encoder,
    )
    record = {
        "report": fitted.evaluation.report.as_json(),
        "best_epoch": fitted.best_epoch,
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(folder / DONE, json.dumps(record, indent=2) + "\n")
    return record


def _score_on_test(recipe: Recipe, name: str, folder: Path, test, labelled: bool, result: RecipeResult) -> None:
    """The kept weights on the test scans: a report and a confusion matrix, or a submission."""
    model = SliceSequenceClassifier.from_pretrained(folder / "best", execution=recipe.execution).eval()
    device = recipe.finetune.device
    if labelled:
        report = evaluate(model, test, batch_size=recipe.finetune.batch_size, device=device, progress=False).report
        result.reports[name] = report
        if isinstance(report, ClassificationReport):
            title = f"{name}, test scans: kappa {report.kappa:.2f}, accuracy {report.accuracy:.2f}"
            plot_confusion_matrix(report.confusion, report.class_names, folder / "test-confusion.png", title=title)
        report.save_json(folder / "test-report.json", split="test", samples=report.num_samples)
        return
    rows = predict_scans(model, [test.root], preprocessing=test.preprocessing, cache_dir=test.cache.root, device=device)
    result.submissions[name] = write_submission(rows, folder / "submission.csv", ids=recipe.submission_ids)


def _write_results(out: Path, recipe: Recipe, result: RecipeResult) -> None:
    results = {
        name: {
            **report.metrics(),
            **({"f1": report.to_dict()["f1_by_class"]} if isinstance(report, ClassificationReport) else {}),
            **{f"val_{k}": v for k, v in result.val_reports[name].metrics().items()},
        }
        for name, report in result.reports.items()
    }
    summary = {
        "recipe": recipe.name,
        "scored_on": result.scored_on,
        **results,
        "pretrain_val_accuracy": result.pretrain_val_accuracy,
        "seconds": round(sum(result.seconds.values()), 1),
        "seconds_by_stage": result.seconds,
        "submissions": {name: str(path) for name, path in result.submissions.items()},
    }
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "table.md", f"{recipe.name}, scored on the {result.scored_on} scans\n\n{result.table}\n")
