"""What each ``slicevid`` subcommand does, given its parsed arguments.

Every training command checks what it can before reading any data (the device, the run
folder, options that cannot apply), and passes its every option to the run folder's
``config.yaml``, so ``--config run/config.yaml`` reruns the run. Only the main process prints
under torchrun.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..train.distributed import is_main_process
from . import inputs

INTERNAL = ("handler", "config", "debug", "parser", "explicit", "_required", "command")


def say(*lines: str) -> None:
    """Print on the main process only (rank 0 under torchrun)."""
    if is_main_process():
        print(*lines, sep="\n")


def record_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options of this command as a ``--config`` file maps them (what ``config.yaml`` saves)."""
    values = {k: v for k, v in vars(args).items() if k not in INTERNAL}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _train_config(args: argparse.Namespace):
    """The training settings, checked (device, run folder) before any data is read."""
    from ..devices import resolve_device
    from ..train import TrainConfig
    from ..train.run_folder import check_run_folder
    from .options import dataclass_from_args

    config = dataclass_from_args(TrainConfig, args)
    resolve_device(config.device)
    check_run_folder(config.out_dir, resume=config.resume, overwrite=config.overwrite)
    return config


def _new_model(args: argparse.Namespace, **heads: Any):
    """The model the architecture options describe, initialised after seeding (same seed, same weights)."""
    import torch

    from ..presets import viptt_net

    torch.manual_seed(args.seed)
    execution = inputs.execution(args)
    return viptt_net(
        encoder_weights=args.encoder_weights,
        init=args.init,
        slice_chunk=execution.slice_chunk,
        checkpoint_slices=execution.checkpoint_slices,
        channels_last=execution.channels_last,
        **inputs.architecture(args),
        **heads,
    )


def _print_result(result, out_dir: str, name: str) -> None:
    if result.evaluation is not None and result.evaluation.report is not None:
        say(result.evaluation.report.to_markdown(name))
    say(f"best weights: {Path(out_dir) / 'best'} (epoch {result.best_epoch})")


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    run_demo(args.out, seed=args.seed, quick=args.quick)


def cmd_synth(args: argparse.Namespace) -> None:
    from ..data.synthetic import write_action_videos, write_tb_phantoms

    out = Path(args.out)
    csv_path = write_tb_phantoms(out / "phantoms", args.phantoms_per_class, tuple(args.phantom_shape), args.seed)
    write_action_videos(
        out / "videos", n_per_class=args.videos_per_class, frames=args.frames, size=args.video_size, seed=args.seed
    )
    print(f"phantoms: {csv_path.parent} (labels: {csv_path})\nvideos:   {out / 'videos'}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    from ..data import HeadColumns, LabelledScans
    from ..data.labels import TARGET

    heads = {TARGET: HeadColumns("class", (args.label_column,))}
    dataset = LabelledScans(
        args.scans,
        args.labels_csv,
        "all" if args.labels_csv else "test",
        file_column=args.file_column,
        heads=heads if args.labels_csv else None,
        exclude=args.exclude,
        on_error=args.on_error,
        preprocessing=inputs.preprocessing(args),
        cache_dir=args.cache_dir,
        cache_dtype=args.dtype,
    )
    skipped = dataset.fill_cache(workers=args.workers)
    print(
        f"{len(dataset)} scans cached in {args.cache_dir} ({dataset.cache.misses} new, "
        f"{dataset.cache.hits} already there); {len(skipped)} skipped"
    )
    for path, reason in skipped:
        print(f"  skipped {path}: {reason}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from ..data import UCF50_PAPER_CLASSES, ucf50
    from ..errors import ConfigError
    from ..train import pretrain

    inputs.import_plugins(args.imports)
    if args.ssl:
        return _pretrain_ssl(args)
    if args.videos is None:
        raise ConfigError("--videos", "is required (or --ssl with --scans, to pretrain on unlabeled scans)")
    for flag in ("scans", "pretrained"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag}", "applies to --ssl pretraining on scans only")
    config = _train_config(args)
    classes = {"paper": UCF50_PAPER_CLASSES, "all": None}.get(args.classes)
    if args.classes not in ("paper", "all"):
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    common = {
        "classes": classes,
        "clip": inputs.clip_settings(args),
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "split_by": args.split_by,
        "on_error": args.on_error,
        "cache_dir": args.cache_dir,
    }
    train, val = ucf50(args.videos, split="train", **common), ucf50(args.videos, split="val", **common)
    model = _new_model(args, num_classes=len(train.classes))
    result = pretrain(model, train, val, config, freeze_encoder=not args.train_encoder, record=record_of(args))
    _print_result(result, args.out_dir, "pretrained")


def _pretrain_ssl(args: argparse.Namespace) -> None:
    from ..data import CTPreprocessing
    from ..errors import ConfigError
    from ..model import SliceSequenceClassifier
    from ..train.ssl import ORDER_CLASSES, pretrain_ssl
    from .options import dataclass_from_args

    if args.scans is None:
        raise ConfigError("--scans", f"is required with --ssl {args.ssl}: the folder of unlabeled scans")
    if args.videos is not None:
        raise ConfigError(
            "--videos", "and --ssl exclude each other; chain them: pretrain on videos, then --ssl --pretrained"
        )
    inputs.refuse_model_flags(args, args.explicit)
    native = args.resample in ("native", "spacing")
    size = (None if native else args.num_frames, args.size, args.size)
    preprocessing = dataclass_from_args(CTPreprocessing, args, size=size)
    if args.pretrained:
        execution = inputs.execution(args)
        model = SliceSequenceClassifier.from_pretrained(args.pretrained).set_slice_execution(
            chunk=execution.slice_chunk, checkpoint=execution.checkpoint_slices, channels_last=execution.channels_last
        )
    else:
        model = _new_model(args, num_classes=len(ORDER_CLASSES))
    result = pretrain_ssl(
        model,
        args.scans,
        args.ssl,
        _train_config(args),
        preprocessing=preprocessing,
        val_fraction=args.val_fraction,
        cache_dir=args.cache_dir,
        record=record_of(args),
    )
    _print_result(result, args.out_dir, f"pretrained ({args.ssl})")


def cmd_finetune(args: argparse.Namespace) -> None:
    from ..errors import ConfigError
    from ..model import SliceSequenceClassifier
    from ..train import finetune

    inputs.import_plugins(args.imports)
    inputs.refuse_model_flags(args, args.explicit)
    if args.feature_cache:
        raise ConfigError(
            "feature_cache", "applies to pretraining only (the encoder is frozen there); fine-tuning trains it"
        )
    config = _train_config(args)
    heads, targets = inputs.head_columns(args), inputs.slice_targets(args)
    preprocessing = inputs.preprocessing(args)
    train, val = (
        inputs.labelled_scans(args, split, heads, preprocessing=preprocessing, slice_targets=targets)
        for split in ("train", "val")
    )
    tasks, supervision = inputs.tasks_for(train, heads, args), inputs.slice_supervision(args, targets)
    if args.pretrained:
        execution = inputs.execution(args)
        start = SliceSequenceClassifier.from_pretrained(args.pretrained).set_slice_execution(
            chunk=execution.slice_chunk, checkpoint=execution.checkpoint_slices, channels_last=execution.channels_last
        )
    else:
        start = _new_model(args, tasks=tasks, slice_supervision=supervision)
    _, result = finetune(
        start,
        train,
        val,
        config,
        tasks=tasks,
        slice_supervision=supervision,
        freeze_encoder=args.freeze_encoder,
        record=record_of(args),
    )
    _print_result(result, args.out_dir, "fine-tuned")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..model import SliceSequenceClassifier
    from ..predict import check_trained_on_scans, resolve_preprocessing
    from ..train import evaluate
    from .evaluation_data import evaluation_data

    inputs.import_plugins(args.imports)
    model = SliceSequenceClassifier.from_pretrained(args.checkpoint).eval()
    check_trained_on_scans(model.config)
    preprocessing = resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
    data, description = evaluation_data(args, model.config, preprocessing)
    evaluation = evaluate(model, data, device=args.device)
    say(f"{description}: {len(data)} scans, loss {evaluation.loss:.4f}")
    say(evaluation.report.to_markdown(Path(args.checkpoint).name))
    if args.report:
        evaluation.report.save_json(args.report, split=args.split, samples=len(data), checkpoint=str(args.checkpoint))


def cmd_predict(args: argparse.Namespace) -> None:
    from ..predict import (
        load_predictor,
        predict_scans,
        resolve_preprocessing,
        result_columns,
        result_row,
        write_results,
        write_submission,
    )

    inputs.import_plugins(args.imports)
    model = load_predictor(args.checkpoint)
    preprocessing = resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
    rows = predict_scans(
        model,
        args.inputs,
        preprocessing=preprocessing,
        cache_dir=args.cache_dir,
        device=args.device,
        explain_dir=args.explain,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        tta=[t.strip() for t in (args.tta or "").split(",") if t.strip()],
        series=args.series,
    )
    say(",".join(["file_id", "file", *result_columns(model.tasks)]), *(",".join(result_row(row)) for row in rows))
    if args.out:
        say(f"results: {write_results(rows, args.out)}")
    if args.submission:
        say(f"submission: {write_submission(rows, args.submission, ids=args.ids)}")
    if args.explain:
        say(f"slice importance pictures: {Path(args.explain)}")


def cmd_run(args: argparse.Namespace) -> None:
    from ..recipes import Recipe, run_recipe

    inputs.import_plugins(args.imports)
    result = run_recipe(
        Recipe.load(args.recipe),
        videos=args.videos,
        scans=args.scans,
        labels_csv=args.labels_csv,
        out=args.out_dir,
        test_scans=args.test_scans,
        test_labels_csv=args.test_labels_csv,
        exclude=args.exclude,
        cache_dir=args.cache_dir,
    )
    say(f"scored on the {result.scored_on} scans", result.table, f"table: {Path(args.out_dir) / 'table.md'}")


def cmd_recipe(args: argparse.Namespace) -> None:
    from ..errors import ConfigError
    from ..recipes import RECIPES, named_recipe

    if args.action == "list":
        for name, build in RECIPES.items():
            print(f"{name}: {(build.__doc__ or '').strip().splitlines()[0]}")
        return
    if args.name is None:
        raise ConfigError("recipe show", f"needs a recipe name: one of {', '.join(RECIPES)}")
    print(named_recipe(args.name).to_yaml(), end="")


def cmd_export(args: argparse.Namespace) -> None:
    from ..deploy import export_onnx, export_program, quantize_onnx
    from ..errors import ConfigError
    from ..model import SliceSequenceClassifier

    inputs.import_plugins(args.imports)
    model = SliceSequenceClassifier.from_pretrained(args.checkpoint)
    if args.format == "torch-export":
        if args.int8:
            raise ConfigError("--int8", "applies to --format onnx only")
        print(f"torch.export program: {export_program(model, args.out, depth=args.depth)}")
        return
    path = export_onnx(model, args.out, depth=args.depth)
    if args.int8:
        quantize_onnx(path, path)
    print(
        f"ONNX graph{' (int8 weights)' if args.int8 else ''}: {path}; predict with slicevid predict --checkpoint {path}"
    )


def cmd_convert_keras(args: argparse.Namespace) -> None:
    from ..convert import load_keras_h5

    model = load_keras_h5(args.h5)
    model.save_pretrained(args.out)
    print(f"{args.h5} -> {args.out} ({model.num_classes} classes)")
