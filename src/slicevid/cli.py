"""The ``slicevid`` command line.

Every subcommand takes ``--config FILE`` (YAML or JSON): its keys are the subcommand's
option names (``batch_size`` for ``--batch-size``) and act as defaults that explicit
flags override. Errors about input print one line; set ``SLICEVID_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

from . import __version__
from .errors import DataError, TrainingDivergedError, WeightsNotFoundError

EPILOG = """examples:
  slicevid demo                                   # everything, on embedded synthetic data
  slicevid synth --out data/
  slicevid pretrain --videos UCF50/ --out runs/pt --feature-cache
  slicevid finetune --scans TBT/ --labels-csv TBT/labels.csv --pretrained runs/pt/best --out runs/ft
  slicevid evaluate --checkpoint runs/ft/best --scans TBT/ --labels-csv TBT/labels.csv
  slicevid predict --checkpoint runs/ft/best TBT_test/*.nii.gz --csv submission.csv
"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--encoder", default="vgg16", help="'vgg16' (the paper's), 'timm:<name>' or a registered name")
    group.add_argument("--aggregator", default="lstm", help="'lstm', 'gru' or 'mean'")
    group.add_argument("--hidden-size", type=int, default=256, help="recurrent units")
    group.add_argument("--encoder-weights", default=None, help="'imagenet' or a .pth/.safetensors path")
    group.add_argument("--slice-chunk", type=int, default=None, help="encode at most this many slices at once")
    group.add_argument("--checkpoint-slices", action="store_true", help="activation checkpointing in the encoder")


def _add_size_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input size")
    group.add_argument("--depth", type=int, default=70, help="slices (or frames) per sample")
    group.add_argument("--size", type=int, default=224, help="height and width")


def _add_ct_options(parser: argparse.ArgumentParser, labels_required: bool = True) -> None:
    group = parser.add_argument_group("CT data")
    group.add_argument("--scans", required=True, help="folder of .nii/.nii.gz scans or DICOM series folders")
    group.add_argument("--labels-csv", required=labels_required, help="challenge-style label CSV")
    group.add_argument("--file-column", default="FileName", help="CSV column with the scan file name")
    group.add_argument("--label-column", default="TypeOfTB", help="CSV column with the TB type 1..5")
    group.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the stratified split")
    group.add_argument("--cache-dir", default=None, help="cache preprocessed volumes here")
    group.add_argument("--rotate90", action="store_true", help="rotate slices as the reference pipeline did")
    group.add_argument("--on-error", choices=["raise", "skip"], default="raise", help="what to do with bad scans")


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: the paper's recipe)")
    group.add_argument("--out", required=True, help="run folder (checkpoints, metrics, plots)")
    group.add_argument("--epochs", type=int, default=100)
    group.add_argument("--batch-size", type=int, default=2)
    group.add_argument("--lr", type=float, default=1e-3)
    group.add_argument("--momentum", type=float, default=0.0)
    group.add_argument("--plateau-patience", type=int, default=5)
    group.add_argument("--early-stopping-patience", type=int, default=8, help="0 disables early stopping")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    group.add_argument("--grad-accum", type=int, default=1)
    group.add_argument("--device", default="auto")
    group.add_argument("--amp", choices=["auto", "bf16", "off"], default="auto")
    group.add_argument("--channels-last", action="store_true")
    group.add_argument("--compile", action="store_true", help="torch.compile the model")
    group.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="slicevid", formatter_class=_Formatter, epilog=EPILOG,
        description="Treat 3D scans as videos: slice encoder + recurrent aggregator (ViPTT-Net).")
    parser.add_argument("--version", action="version", version=f"slicevid {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description, formatter_class=_Formatter)
        sub.add_argument("--config", help="YAML/JSON file of option defaults (keys: option names with _)")
        subparsers[name] = sub
        return sub

    demo = command("demo", "run the whole workflow on embedded synthetic data",
                   "Write synthetic phantoms and videos, pretrain on the videos, fine-tune on the phantoms "
                   "with and without pretraining, evaluate, and write plots and a Markdown report. "
                   "About 5 minutes on 2 CPU cores; offline.")
    demo.add_argument("--out", default="slicevid-demo", help="run folder")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    demo.set_defaults(handler=_cmd_demo)

    synth = command("synth", "write synthetic CT phantoms and action videos",
                    "Write CT-like phantoms (NIfTI, HU, ImageCLEF-style labels.csv) and action videos "
                    "(AVI, UCF50 layout). Synthetic stand-ins, not medical data.")
    synth.add_argument("--out", required=True, help="writes OUT/phantoms and OUT/videos")
    synth.add_argument("--phantoms-per-class", type=int, default=8)
    synth.add_argument("--phantom-shape", type=int, nargs=3, default=[48, 96, 96], metavar=("D", "H", "W"))
    synth.add_argument("--videos-per-class", type=int, default=4)
    synth.add_argument("--frames", type=int, default=40)
    synth.add_argument("--video-size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=_cmd_synth)

    prep = command("preprocess", "fill the preprocessed-volume cache",
                   "Load, window, resample and store every scan once, in parallel, so training reads "
                   "small arrays instead of decoding NIfTI each epoch.")
    _add_ct_options(prep, labels_required=False)
    _add_size_options(prep)
    prep.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    prep.add_argument("--dtype", choices=["float16", "uint8", "float32"], default="float16")
    prep.set_defaults(handler=_cmd_preprocess)

    pre = command("pretrain", "pretrain on action videos (encoder frozen)",
                  "Stage 1 of ViPTT-Net: train on UCF50-style videos with the encoder frozen.")
    group = pre.add_argument_group("video data")
    group.add_argument("--videos", required=True, help="UCF50-style folder, one sub-folder per class")
    group.add_argument("--classes", default="paper", help="'paper' (the 10-class subset), 'all' or a comma list")
    group.add_argument("--frames", choices=["first", "uniform"], default="first")
    group.add_argument("--split-by", choices=["random", "group"], default="random")
    group.add_argument("--val-fraction", type=float, default=0.2)
    pre.add_argument("--feature-cache", action="store_true",
                     help="freeze the adapter too and train on cached slice features (fast)")
    pre.add_argument("--train-encoder", action="store_true", help="do not freeze the encoder")
    _add_model_options(pre)
    _add_size_options(pre)
    _add_train_options(pre)
    pre.set_defaults(handler=_cmd_pretrain)

    fine = command("finetune", "fine-tune every layer on CT scans",
                   "Stage 2 of ViPTT-Net: new 5-way head, all layers trained. Without --pretrained this "
                   "is the paper's 'No PT'.")
    fine.add_argument("--pretrained", default=None, help="folder from save_pretrained (e.g. a pretrain run's best/)")
    fine.add_argument("--class-weights", action="store_true", help="balanced class weights ('CW')")
    fine.add_argument("--augment", choices=["none", "paper", "notebook"], default="none", help="rotation ('AUG')")
    _add_ct_options(fine)
    _add_model_options(fine)
    _add_size_options(fine)
    _add_train_options(fine)
    fine.set_defaults(handler=_cmd_finetune)

    ev = command("evaluate", "report kappa, accuracy and per-class F1",
                 "Evaluate a saved model on a split of a labelled CT set; prints the report table.")
    ev.add_argument("--checkpoint", required=True, help="folder from save_pretrained")
    ev.add_argument("--split", choices=["val", "train", "all"], default="val")
    ev.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    ev.add_argument("--report", default=None, help="also write the report JSON here")
    ev.add_argument("--device", default="auto")
    _add_ct_options(ev)
    _add_size_options(ev)
    ev.set_defaults(handler=_cmd_evaluate)

    pred = command("predict", "classify new scans",
                   "Print the class and probabilities of each scan; optionally write the challenge's "
                   "submission CSV (<file id>,<label 1..5>).")
    pred.add_argument("inputs", nargs="+", help="NIfTI files, DICOM series folders, or folders of scans")
    pred.add_argument("--checkpoint", required=True, help="folder from save_pretrained")
    pred.add_argument("--csv", default=None, help="write the submission CSV here")
    pred.add_argument("--cache-dir", default=None)
    pred.add_argument("--rotate90", action="store_true")
    pred.add_argument("--device", default="auto")
    _add_size_options(pred)
    pred.set_defaults(handler=_cmd_predict)

    conv = command("convert-keras", "convert the authors' Keras .h5 checkpoint",
                   "Read a ViPTT-Net HDF5 file written by Keras 2 / TF 2.4 (h5py only) and write it in "
                   "save_pretrained format.")
    conv.add_argument("h5", help="ViPTT-Net-UCF50.h5 or ViPTT-Net-CLEF-TBT.h5")
    conv.add_argument("out", help="output folder")
    conv.set_defaults(handler=_cmd_convert_keras)
    return parser, subparsers


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``, applying a ``--config`` file as defaults of the chosen subcommand."""
    from .train.config import read_config_file

    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        sub = subparsers[args.command]
        values = read_config_file(args.config)
        valid = {action.dest for action in sub._actions} - {"help", "config"}
        unknown = sorted(set(values) - valid)
        if unknown:
            parser.error(f"{args.config}: unknown option(s) {unknown} for '{args.command}'")
        sub.set_defaults(**values)
        args = parser.parse_args(argv)
    return args


# ------------------------------------------------------------------------------ handlers
def _train_config(args: argparse.Namespace, **extra):
    from .train import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                       plateau_patience=args.plateau_patience, early_stopping_patience=args.early_stopping_patience,
                       seed=args.seed, num_workers=args.workers, grad_accum=args.grad_accum, device=args.device,
                       amp=args.amp, channels_last=args.channels_last, compile=args.compile, resume=args.resume,
                       progress=not args.no_progress, out_dir=args.out, **extra)


def _model(args: argparse.Namespace, num_classes: int):
    from .model import create_model

    return create_model(args.encoder, args.aggregator, num_classes, encoder_weights=args.encoder_weights,
                        aggregator_kwargs={"hidden_size": args.hidden_size}, slice_chunk=args.slice_chunk,
                        checkpoint_slices=args.checkpoint_slices)


def _preprocessing(args: argparse.Namespace):
    from .data import CTPreprocessing

    return CTPreprocessing(size=(args.depth, args.size, args.size), rotate90=args.rotate90)


def _ct_dataset(args: argparse.Namespace, split: str, **kwargs):
    from .data import ImageCLEFTBT

    return ImageCLEFTBT(args.scans, args.labels_csv, split, val_fraction=args.val_fraction,
                        seed=getattr(args, "seed", 0), file_column=args.file_column, label_column=args.label_column,
                        on_error=args.on_error, preprocessing=_preprocessing(args), cache_dir=args.cache_dir, **kwargs)


def _cmd_demo(args: argparse.Namespace) -> None:
    from .demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    run_demo(args.out, DemoSettings(**{**settings.__dict__, "seed": args.seed}))


def _cmd_synth(args: argparse.Namespace) -> None:
    from .data.synthetic import write_action_videos, write_tb_phantoms

    out = Path(args.out)
    csv_path = write_tb_phantoms(out / "phantoms", args.phantoms_per_class, tuple(args.phantom_shape), args.seed)
    write_action_videos(out / "videos", n_per_class=args.videos_per_class, frames=args.frames,
                        size=args.video_size, seed=args.seed)
    print(f"phantoms: {csv_path.parent} (labels: {csv_path})\nvideos:   {out / 'videos'}")


def _cmd_preprocess(args: argparse.Namespace) -> None:
    from .data import ImageCLEFTBT

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


def _cmd_pretrain(args: argparse.Namespace) -> None:
    from .data import UCF50_PAPER_CLASSES, ucf50
    from .train import pretrain

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


def _cmd_finetune(args: argparse.Namespace) -> None:
    from .data import TB_CLASSES
    from .train import finetune

    train, val = _ct_dataset(args, "train"), _ct_dataset(args, "val")
    start = args.pretrained if args.pretrained else _model(args, len(TB_CLASSES))
    config = _train_config(args, class_weights=args.class_weights, augment=args.augment)
    _, result = finetune(start, train, val, config, num_classes=len(TB_CLASSES))
    print(result.evaluation.report.to_markdown("fine-tuned"))
    print(f"best weights: {Path(args.out) / 'best'} (epoch {result.best_epoch})")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from .model import SliceSequenceClassifier
    from .train import evaluate

    model = SliceSequenceClassifier.from_pretrained(args.checkpoint).eval()
    evaluation = evaluate(model, _ct_dataset(args, args.split), device=args.device)
    print(f"{evaluation.report.num_samples} scans, loss {evaluation.loss:.4f}")
    print(evaluation.report.to_markdown(Path(args.checkpoint).name))
    if args.report:
        evaluation.report.save_json(args.report)


def _cmd_predict(args: argparse.Namespace) -> None:
    from .predict import predict_scans

    rows = predict_scans(args.checkpoint, args.inputs, preprocessing=_preprocessing(args),
                         cache_dir=args.cache_dir, device=args.device)
    names = rows[0].class_names if rows else ()
    print("file_id,predicted," + ",".join(f"p_{n}" for n in names))
    for row in rows:
        print(f"{row.file_id},{row.class_name}," + ",".join(f"{p:.4f}" for p in row.probabilities))
    if args.csv:
        from ._io import atomic_write_text

        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows((row.file_id, row.label + 1) for row in rows)
        atomic_write_text(args.csv, buffer.getvalue())
        print(f"submission: {args.csv}")


def _cmd_convert_keras(args: argparse.Namespace) -> None:
    from .convert import load_keras_h5

    model = load_keras_h5(args.h5)
    model.save_pretrained(args.out)
    print(f"{args.h5} -> {args.out} ({model.num_classes} classes)")


USER_ERRORS = (DataError, WeightsNotFoundError, TrainingDivergedError, FileNotFoundError, ValueError, KeyError)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slicevid`` command."""
    args = parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as err:
        if os.environ.get("SLICEVID_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"slicevid {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
