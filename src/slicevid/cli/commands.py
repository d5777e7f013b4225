"""What each ``slicevid`` subcommand does, given its parsed arguments.

Every training command checks what it can before reading any data (the device, the run
folder, options that cannot apply, optional packages), describes its stage as the runner does
(`slicevid.recipes.ModelStart`) and runs it through the same function, and passes its every
option to the run folder's ``config.yaml``, so ``--config run/config.yaml`` reruns the run.
Only the main process prints under torchrun. Imports are made inside each command: the
command line starts without loading what the chosen command does not use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import inputs


def say(*lines: str) -> None:
    """Print on the main process only (rank 0 under torchrun)."""
    from ..train.distributed import is_main_process

    if is_main_process():
        print(*lines, sep="\n")


def _print_result(result, out_dir: str, name: str) -> None:
    if result.evaluation is not None and result.evaluation.report is not None:
        say(result.evaluation.report.to_markdown(name))
    say(f"best weights: {Path(out_dir) / 'best'} (epoch {result.best_epoch})")


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import run_demo

    run_demo(args.out, seed=args.seed, quick=args.quick, progress=args.progress)


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
    from ..data.imageclef import TB_LABEL_COLUMN
    from ..keys import TARGET

    if args.medmnist:
        from ..errors import ConfigError

        raise ConfigError("--medmnist", "needs no preprocessing: its volumes are arrays already")
    labelled = args.labels_csv is not None
    column = args.label_column or TB_LABEL_COLUMN
    dataset = LabelledScans(
        args.scans,
        args.labels_csv,
        "all" if labelled else "test",
        heads={TARGET: HeadColumns("class", (column,))} if labelled else None,
        exclude=args.exclude,
        on_error=args.on_error,
        preprocessing=inputs.preprocessing(args),
        cache_dir=args.cache_dir,
        cache_dtype=args.dtype,
    )
    skipped = dataset.fill_cache(workers=args.workers, progress=args.progress)
    print(
        f"{len(dataset)} scans cached in {args.cache_dir} ({dataset.cache.misses} new, "
        f"{dataset.cache.hits} already there); {len(skipped)} skipped"
    )
    for path, reason in skipped:
        print(f"  skipped {path}: {reason}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from ..data import UCF50_PAPER_CLASSES, ucf50
    from ..errors import ConfigError
    from ..recipes import run_pretraining

    inputs.import_plugins(args.imports)
    if args.ssl:
        return _pretrain_ssl(args)
    if args.videos is None:
        raise ConfigError(
            "--videos", "is required (or --ssl with --scans or --medmnist, to pretrain on unlabeled scans)"
        )
    for flag in ("scans", "medmnist", "pretrained"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag}", "applies to --ssl pretraining on scans only")
    config = inputs.train_config(args)
    classes = {"paper": UCF50_PAPER_CLASSES, "all": None}.get(args.classes)
    if args.classes not in ("paper", "all"):
        from .labels import names_in

        classes = list(names_in(args.classes, "--classes"))
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
    start = inputs.model_start(args)
    result = run_pretraining(
        start, train, val, config, freeze_encoder=not args.train_encoder, record=inputs.record_of(args)
    )
    _print_result(result, args.out_dir, "pretrained")


def _pretrain_ssl(args: argparse.Namespace) -> None:
    from ..data import CTPreprocessing, MedMNIST3D
    from ..errors import ConfigError
    from ..model_config import Heads
    from ..tasks import Multiclass
    from ..train.ssl import ORDER_CLASSES, pretrain_ssl
    from .options import dataclass_from_args

    if (args.scans is None) == (args.medmnist is None):
        raise ConfigError(
            "--scans", f"or --medmnist is needed with --ssl {args.ssl} (one of them): the unlabeled scans"
        )
    if args.videos is not None:
        raise ConfigError(
            "--videos", "and --ssl exclude each other; chain them: pretrain on videos, then --ssl --pretrained"
        )
    inputs.refuse_model_flags(args)
    config = inputs.train_config(args)
    if args.medmnist:  # the official training volumes train, the validation volumes choose the epoch
        scans = (MedMNIST3D(args.medmnist, "train"), MedMNIST3D(args.medmnist, "val"))
        preprocessing = None
    else:
        native = args.resample in ("native", "spacing")
        size = (None if native else args.num_frames, args.size, args.size)
        scans, preprocessing = args.scans, dataclass_from_args(CTPreprocessing, args, size=size)
    model = inputs.model_start(args).build(Heads({"slice_order": Multiclass(ORDER_CLASSES)}), config.seed)
    result = pretrain_ssl(
        model,
        scans,
        args.ssl,
        config,
        preprocessing=preprocessing,
        val_fraction=args.val_fraction,
        cache_dir=args.cache_dir,
        record=inputs.record_of(args),
    )
    _print_result(result, args.out_dir, f"pretrained ({args.ssl})")


def _finetune_inputs(args: argparse.Namespace):
    """What ``finetune`` and ``cv`` check and assemble before any scan is read."""
    from ..errors import ConfigError
    from ..recipes import from_scratch_advice

    inputs.import_plugins(args.imports)
    inputs.check_data_source(args)
    inputs.refuse_model_flags(args)
    if args.feature_cache:
        raise ConfigError(
            "feature_cache", "applies to pretraining only (the encoder is frozen there); fine-tuning trains it"
        )
    config = inputs.train_config(args)
    advice = from_scratch_advice(inputs.model_start(args), config)
    if advice:
        say(advice)
    targets = inputs.slice_targets(args)
    if targets is not None and args.medmnist:
        raise ConfigError("--slice-targets", "cannot apply to --medmnist (its volumes have no slice labels)")
    extra = {} if args.medmnist else {"preprocessing": inputs.preprocessing(args), "slice_targets": targets}
    return config, targets, extra


def cmd_finetune(args: argparse.Namespace) -> None:
    from ..recipes import run_finetuning

    config, targets, extra = _finetune_inputs(args)
    train, val = (inputs.labelled_data(args, part, **extra) for part in ("train", "val"))
    inputs.check_slice_targets_name(train, targets)
    tasks = inputs.tasks_for(train, args)
    _, result = run_finetuning(
        inputs.model_start(args),
        train,
        val,
        config,
        tasks=tasks,
        slice_supervision=inputs.slice_supervision(args, targets),
        freeze_encoder=args.freeze_encoder,
        record=inputs.record_of(args),
    )
    _print_result(result, args.out_dir, "fine-tuned")


def cmd_cv(args: argparse.Namespace) -> None:
    from ..recipes import cross_validate

    config, targets, extra = _finetune_inputs(args)
    record = inputs.record_of(args)

    def fold_data(fold: int):
        args.fold = fold
        return tuple(inputs.labelled_data(args, part, **extra) for part in ("train", "val", "test"))

    result = cross_validate(
        inputs.model_start(args),
        fold_data,
        args.folds,
        config,
        tasks_for=lambda train: inputs.tasks_for(train, args),
        slice_supervision=inputs.slice_supervision(args, targets),
        freeze_encoder=args.freeze_encoder,
        record=record,
    )
    say(result.summary(), f"out-of-fold predictions: {result.oof_csv}", f"report: {result.report_json}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..predict import check_trained_on_scans, load_predictor, resolve_preprocessing
    from ..train import evaluate
    from .evaluation_data import evaluation_data, write_evaluation

    inputs.import_plugins(args.imports)
    model = load_predictor(args.checkpoint)
    check_trained_on_scans(model.config)
    trained_on_medmnist = model.config.training_data is not None and model.config.training_data.kind == "medmnist"
    preprocessing = (
        None
        if args.medmnist or (trained_on_medmnist and not args.scans)
        else resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
    )
    data, split, description = evaluation_data(args, model.config, preprocessing)
    evaluation = evaluate(model, data, device=args.device, progress=args.progress)
    say(f"{description}: {len(data)} scans, loss {evaluation.loss:.4f}")
    write_evaluation(evaluation, split, args, say)


def cmd_predict(args: argparse.Namespace) -> None:
    from ..errors import ConfigError
    from ..predict import (
        load_predictor,
        predict_dataset,
        predict_scans,
        resolve_preprocessing,
        result_table,
        write_results,
        write_submission,
    )

    inputs.import_plugins(args.imports)
    if bool(args.inputs) == bool(args.medmnist):
        raise ConfigError("inputs", "are needed: scans to predict (files or folders), or --medmnist FLAG_OR_NPZ")
    read = [*args.inputs, args.checkpoint]
    inputs.check_outputs({"--out": args.out, "--submission": args.submission, "--explain": args.explain}, read)
    model = load_predictor(args.checkpoint)
    tta = [t.strip() for t in (args.tta or "").split(",") if t.strip()]
    common = {"device": args.device, "batch_size": args.batch_size, "tta": tta, "explain_dir": args.explain}
    if args.medmnist:
        from ..data import MedMNIST3D

        rows = predict_dataset(model, MedMNIST3D(args.medmnist, args.split), progress=args.progress, **common)
    else:
        preprocessing = resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
        scans = {"cache_dir": args.cache_dir, "num_workers": args.num_workers, "series": args.series}
        rows = predict_scans(
            model,
            args.inputs,
            preprocessing=preprocessing,
            on_error=args.on_error,
            progress=args.progress,
            **scans,
            **common,
        )
    say(result_table(rows).rstrip("\n"))
    for path, reason in rows.skipped:
        say(f"skipped {path}: {reason}")
    if args.out:
        say(f"results: {write_results(rows, args.out)}")
    if args.submission:
        say(f"submission: {write_submission(rows, args.submission, ids=args.ids)}")
    if args.explain:
        say(f"slice importance pictures: {Path(args.explain)}")


def cmd_run(args: argparse.Namespace) -> None:
    from ..recipes import Recipe, run_recipe

    inputs.import_plugins(args.imports)
    data = ("videos", "scans", "labels_csv", "test_scans", "test_labels_csv", "exclude", "cache_dir", "progress")
    result = run_recipe(Recipe.load(args.recipe), out=args.out_dir, **{name: getattr(args, name) for name in data})
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
    from ..deploy import EXPORT_FORMATS, export_onnx, export_program, quantize_onnx
    from ..errors import ConfigError
    from ..model import SliceSequenceClassifier

    suffix = EXPORT_FORMATS[args.format]
    if Path(args.out).suffix != suffix:
        raise ConfigError(
            "--out", f"of --format {args.format} must end in {suffix} (predict recognises the file by it)"
        )
    if args.format == "onnx":
        for module in ("onnx", "onnxscript", *(("onnxruntime",) if args.int8 else ())):
            inputs.require_package(module, "export --format onnx", "deploy")
    elif args.int8:
        raise ConfigError("--int8", "applies to --format onnx only")
    inputs.check_outputs({"--out": args.out}, [args.checkpoint])
    inputs.import_plugins(args.imports)
    model = SliceSequenceClassifier.from_pretrained(args.checkpoint)
    if args.format == "torch-export":
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


def cmd_encoders(args: argparse.Namespace) -> None:
    from ..encoders import encoder_weights, list_encoders

    inputs.import_plugins(args.imports)
    for name in list_encoders(args.pattern, include_timm=args.timm):
        print(name)
        if args.weights:
            for weights in encoder_weights(name):
                print(f"  {weights.describe()}")


HANDLERS = {
    "demo": cmd_demo,
    "synth": cmd_synth,
    "preprocess": cmd_preprocess,
    "pretrain": cmd_pretrain,
    "finetune": cmd_finetune,
    "cv": cmd_cv,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "run": cmd_run,
    "recipe": cmd_recipe,
    "export": cmd_export,
    "convert-keras": cmd_convert_keras,
    "encoders": cmd_encoders,
}
"""The function that runs each subcommand."""
