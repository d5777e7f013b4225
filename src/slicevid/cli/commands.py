"""What each ``slicevid`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path


def _train_config(args: argparse.Namespace, **extra):
    from ..train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                       plateau_patience=args.plateau_patience, early_stopping_patience=args.early_stopping_patience,
                       seed=args.seed, num_workers=args.workers, grad_accum=args.grad_accum, device=args.device,
                       amp=args.amp, channels_last=args.channels_last, compile=args.compile, resume=args.resume,
                       progress=not args.no_progress, out_dir=args.out, **extra)


def _model(args: argparse.Namespace, num_classes: int):
    from ..model import create_model

    return create_model(args.encoder, args.aggregator, num_classes, encoder_weights=args.encoder_weights,
                        aggregator_kwargs={"hidden_size": args.hidden_size}, slice_chunk=args.slice_chunk,
                        checkpoint_slices=args.checkpoint_slices)


def _preprocessing(args: argparse.Namespace):
    from ..data import CTPreprocessing

    return CTPreprocessing(size=(args.depth, args.size, args.size), rotate90=args.rotate90)


def _ct_dataset(args: argparse.Namespace, split: str, **kwargs):
    from ..data import ImageCLEFTBT

    return ImageCLEFTBT(args.scans, args.labels_csv, split, val_fraction=args.val_fraction,
                        seed=getattr(args, "seed", 0), file_column=args.file_column, label_column=args.label_column,
                        on_error=args.on_error, preprocessing=_preprocessing(args), cache_dir=args.cache_dir, **kwargs)


def cmd_demo(args: argparse.Namespace) -> None:
    from ..demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(args.out, DemoSettings(**{**settings.__dict__, "seed": args.seed}))


def cmd_synth(args: argparse.Namespace) -> None:
    from ..data.synthetic import write_action_videos, write_tb_phantoms

    out = Path(args.out)
    csv_path = write_tb_phantoms(out / "phantoms", args.phantoms_per_class, tuple(args.phantom_shape), args.seed)
    write_action_videos(out / "videos", n_per_class=args.videos_per_class, frames=args.frames,
                        size=args.video_size, seed=args.seed)
    print(f"phantoms: {csv_path.parent} (labels: {csv_path})\nvideos:   {out / 'videos'}")


def cmd_preprocess(args: argparse.Namespace) -> None:
    from ..data import ImageCLEFTBT

    if args.cache_dir is None:
        raise ValueError("--cache-dir is required for preprocess")
    split = "all" if args.labels_csv else "test"
    dataset = ImageCLEFTBT(args.scans, args.labels_csv, split, file_column=args.file_column,
                           label_column=args.label_column, on_error=args.on_error,
                           preprocessing=_preprocessing(args), cache_dir=args.cache_dir, cache_dtype=args.dtype)
    skipped = dataset.fill_cache(workers=args.workers)
    print(f"{len(dataset)} scans cached in {args.cache_dir} ({dataset.cache.misses} new, "
          f"{dataset.cache.hits} already there); {len(skipped)} skipped")
    for path, reason in skipped:
        print(f"  skipped {path}: {reason}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from ..data import UCF50_PAPER_CLASSES, ucf50
    from ..train import pretrain

    classes = {"paper": UCF50_PAPER_CLASSES, "all": None}.get(args.classes)
    if args.classes not in ("paper", "all"):
        classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    common = {"classes": classes, "num_frames": args.depth, "size": args.size, "frames": args.frames,
              "val_fraction": args.val_fraction, "seed": args.seed, "split_by": args.split_by}
    train, val = ucf50(args.videos, split="train", **common), ucf50(args.videos, split="val", **common)
    model = _model(args, len(train.classes))
    result = pretrain(model, train, val, _train_config(args, feature_cache=args.feature_cache),
                      freeze_encoder=not args.train_encoder, class_names=train.classes)
    print(result.evaluation.report.to_markdown("pretrained") if result.evaluation else "")
    print(f"best weights: {Path(args.out) / 'best'} (epoch {result.best_epoch})")


def cmd_finetune(args: argparse.Namespace) -> None:
    from ..data import TB_CLASSES
    from ..train import finetune

    train, val = _ct_dataset(args, "train"), _ct_dataset(args, "val")
    start = args.pretrained if args.pretrained else _model(args, len(TB_CLASSES))
    config = _train_config(args, class_weights=args.class_weights, augment=args.augment)
    _, result = finetune(start, train, val, config, num_classes=len(TB_CLASSES))
    print(result.evaluation.report.to_markdown("fine-tuned"))
    print(f"best weights: {Path(args.out) / 'best'} (epoch {result.best_epoch})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..model import SliceSequenceClassifier
    from ..train import evaluate

    model = SliceSequenceClassifier.from_pretrained(args.checkpoint).eval()
    evaluation = evaluate(model, _ct_dataset(args, args.split), device=args.device)
    print(f"{evaluation.report.num_samples} scans, loss {evaluation.loss:.4f}")
    print(evaluation.report.to_markdown(Path(args.checkpoint).name))
    if args.report:
        evaluation.report.save_json(args.report)


def cmd_predict(args: argparse.Namespace) -> None:
    from ..predict import predict_scans

    rows = predict_scans(args.checkpoint, args.inputs, preprocessing=_preprocessing(args),
                         cache_dir=args.cache_dir, device=args.device)
    names = rows[0].class_names if rows else ()
    print("file_id,predicted," + ",".join(f"p_{n}" for n in names))
    for row in rows:
        print(f"{row.file_id},{row.class_name}," + ",".join(f"{p:.4f}" for p in row.probabilities))
    if args.csv:
        from .._io import atomic_write_text

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows((row.file_id, row.label + 1) for row in rows)
        atomic_write_text(args.csv, buffer.getvalue())
        print(f"submission: {args.csv}")


def cmd_convert_keras(args: argparse.Namespace) -> None:
    from ..convert import load_keras_h5

    model = load_keras_h5(args.h5)
    model.save_pretrained(args.out)
    print(f"{args.h5} -> {args.out} ({model.num_classes} classes)")
