"""What each ``slicevid`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
from pathlib import Path


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


def _model(args: argparse.Namespace, num_classes: int):
    """The model the architecture options describe, initialised after seeding (same seed, same weights)."""
    import torch

    from ..model_config import ModelConfig
    from ..presets import viptt_net
    from .options import dataclass_from_args

    torch.manual_seed(args.seed)
    architecture = dataclass_from_args(ModelConfig, args, num_classes=num_classes).architecture()
    if args.hidden_size is not None:
        architecture["aggregator_kwargs"] = {**architecture["aggregator_kwargs"], "hidden_size": args.hidden_size}
    num_classes = architecture.pop("num_classes")
    model = viptt_net(num_classes, encoder_weights=args.encoder_weights, init=args.init, **architecture)
    return model.set_slice_execution(chunk=args.slice_chunk, checkpoint=args.checkpoint_slices)


def _preprocessing(args: argparse.Namespace):
    from ..data import CTPreprocessing
    from ..data.preprocess import VARIABLE_DEPTH
    from .options import dataclass_from_args

    depth = args.depth if args.depth is not None or args.resample in VARIABLE_DEPTH else CTPreprocessing().size[0]
    return dataclass_from_args(CTPreprocessing, args, size=(depth, args.size, args.size))


def _ct_dataset(args: argparse.Namespace, split: str, preprocessing, **kwargs):
    from ..data import ImageCLEFTBT

    return ImageCLEFTBT(
        args.scans,
        args.labels_csv,
        split,
        val_fraction=args.val_fraction,
        seed=getattr(args, "seed", 0),
        file_column=args.file_column,
        label_column=args.label_column,
        exclude=args.exclude,
        on_error=args.on_error,
        preprocessing=preprocessing,
        cache_dir=args.cache_dir,
        **kwargs,
    )


def _print_result(result, out_dir: str, name: str) -> None:
    if result.evaluation is not None:
        print(result.evaluation.report.to_markdown(name))
    print(f"best weights: {Path(out_dir) / 'best'} (epoch {result.best_epoch})")


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(args.out, settings.replace(seed=args.seed))


def cmd_synth(args: argparse.Namespace) -> None:
    from ..data.synthetic import write_action_videos, write_tb_phantoms

    out = Path(args.out)
    csv_path = write_tb_phantoms(out / "phantoms", args.phantoms_per_class, tuple(args.phantom_shape), args.seed)
    write_action_videos(
        out / "videos", n_per_class=args.videos_per_class, frames=args.frames, size=args.video_size, seed=args.seed
    )
    print(f"phantoms: {csv_path.parent} (labels: {csv_path})\nvideos:   {out / 'videos'}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    split = "all" if args.labels_csv else "test"
    dataset = _ct_dataset(args, split, _preprocessing(args), cache_dtype=args.dtype)
    skipped = dataset.fill_cache(workers=args.workers)
    print(
        f"{len(dataset)} scans cached in {args.cache_dir} ({dataset.cache.misses} new, "
        f"{dataset.cache.hits} already there); {len(skipped)} skipped"
    )
    for path, reason in skipped:
        print(f"  skipped {path}: {reason}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from ..data import UCF50_PAPER_CLASSES, ucf50
    from ..train import pretrain

    config = _train_config(args)
    classes = {"paper": UCF50_PAPER_CLASSES, "all": None}.get(args.classes)
    if args.classes not in ("paper", "all"):
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    common = {
        "classes": classes,
        "num_frames": args.depth,
        "size": args.size,
        "frames": args.frames,
        "val_fraction": args.val_fraction,
        "seed": args.seed,
        "split_by": args.split_by,
        "on_error": args.on_error,
        "value_range": (0.0, args.video_range),
        "cache_dir": args.cache_dir,
    }
    train, val = ucf50(args.videos, split="train", **common), ucf50(args.videos, split="val", **common)
    result = pretrain(_model(args, len(train.classes)), train, val, config, freeze_encoder=not args.train_encoder)
    _print_result(result, args.out_dir, "pretrained")


def cmd_finetune(args: argparse.Namespace) -> None:
    from ..data import TB_CLASSES
    from ..train import finetune

    config = _train_config(args)
    preprocessing = _preprocessing(args)
    train, val = _ct_dataset(args, "train", preprocessing), _ct_dataset(args, "val", preprocessing)
    start = args.pretrained if args.pretrained else _model(args, len(TB_CLASSES))
    _, result = finetune(start, train, val, config, num_classes=len(TB_CLASSES), freeze_encoder=args.freeze_encoder)
    _print_result(result, args.out_dir, "fine-tuned")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..model import SliceSequenceClassifier
    from ..predict import resolve_preprocessing
    from ..train import evaluate

    model = SliceSequenceClassifier.from_pretrained(args.checkpoint).eval()
    preprocessing = resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
    evaluation = evaluate(model, _ct_dataset(args, args.split, preprocessing), device=args.device)
    print(f"{evaluation.report.num_samples} scans, loss {evaluation.loss:.4f}")
    print(evaluation.report.to_markdown(Path(args.checkpoint).name))
    if args.report:
        evaluation.report.save_json(args.report)


def cmd_predict(args: argparse.Namespace) -> None:
    from ..model import SliceSequenceClassifier
    from ..predict import predict_scans, resolve_preprocessing, write_submission

    model = SliceSequenceClassifier.from_pretrained(args.checkpoint)
    preprocessing = resolve_preprocessing(model, args.depth, args.size, args.rotate90, args.nan_policy)
    rows = predict_scans(
        model,
        args.inputs,
        preprocessing=preprocessing,
        cache_dir=args.cache_dir,
        device=args.device,
        explain_dir=args.explain,
    )
    print("file_id,predicted," + ",".join(f"p_{n}" for n in model.config.class_names))
    for row in rows:
        print(f"{row.file_id},{row.class_name}," + ",".join(f"{p:.4f}" for p in row.probabilities))
    if args.csv:
        print(f"submission: {write_submission(rows, args.csv, ids=args.ids)}")
    if args.explain:
        print(f"slice importance pictures: {args.explain}/")


def cmd_convert_keras(args: argparse.Namespace) -> None:
    from ..convert import load_keras_h5

    model = load_keras_h5(args.h5)
    model.save_pretrained(args.out)
    print(f"{args.h5} -> {args.out} ({model.num_classes} classes)")
