"""The ``slicevid`` argument parser: subcommands, their options and help texts.

Training, architecture and preprocessing options are generated from ``TrainConfig``,
``ModelConfig`` and ``CTPreprocessing`` (see :mod:`slicevid.cli.options`); this file only
adds the options that belong to a command (data locations, checkpoints, outputs).
"""

from __future__ import annotations

import argparse
import os

from .. import __version__
from ..data.preprocess import CTPreprocessing
from ..model_config import ARCHITECTURE, ModelConfig
from ..train.config import TrainConfig
from . import commands
from .options import add_dataclass_options

EPILOG = """examples:
  slicevid demo                                   # everything, on embedded synthetic data
  slicevid synth --out data/
  slicevid pretrain --videos UCF50/ --out runs/pt --feature-cache
  slicevid finetune --scans TBT/ --labels-csv TBT/labels.csv --pretrained runs/pt/best --out runs/ft
  slicevid evaluate --checkpoint runs/ft/best --scans TBT/ --labels-csv TBT/labels.csv
  slicevid predict --checkpoint runs/ft/best TBT_test/ --csv submission.csv
"""
ARCHITECTURE_OPTIONS = tuple(n for n in ARCHITECTURE if n not in ("num_classes", "in_channels"))
"""The architecture fields set on the command line (classes come from the data, channels are 1)."""
REQUIRED = "_required"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (defaults: the paper's ViPTT-Net)")
    add_dataclass_options(group, ModelConfig, only=ARCHITECTURE_OPTIONS)
    group.add_argument(
        "--hidden-size",
        type=int,
        default=None,
        help="units of a recurrent aggregator (its aggregator_kwargs hidden_size; 256 by default)",
    )
    group.add_argument(
        "--encoder-weights", default=None, help="'imagenet', 'keras-imagenet' (vgg16) or a .pth/.safetensors/.h5 path"
    )
    group.add_argument(
        "--init",
        choices=["pytorch", "keras"],
        default="pytorch",
        help="initialisation of the layers not loaded from weights ('keras': as the authors' model)",
    )
    group = parser.add_argument_group("slice execution (memory and speed only)")
    group.add_argument("--slice-chunk", type=int, default=None, help="encode at most this many slices at once")
    group.add_argument("--checkpoint-slices", action="store_true", help="activation checkpointing in the encoder")


def _add_ct_options(parser: argparse.ArgumentParser, *, labels: bool = True, preprocessing: bool = True) -> None:
    group = parser.add_argument_group("CT data")
    group.add_argument("--scans", help="folder of .nii/.nii.gz scans or DICOM series folders (required)")
    group.add_argument("--labels-csv", help="challenge-style label CSV" + (" (required)" if labels else ""))
    group.add_argument("--file-column", default="FileName", help="CSV column with the scan file name")
    group.add_argument("--label-column", default="TypeOfTB", help="CSV column with the TB type 1..5")
    group.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the stratified split")
    group.add_argument("--exclude", default=None, help="text file of scan names to leave out before the split")
    group.add_argument("--cache-dir", default=None, help="cache preprocessed volumes here")
    group.add_argument("--on-error", choices=["raise", "skip"], default="raise", help="what to do with bad scans")
    parser.set_defaults(**{REQUIRED: ["scans", *(["labels_csv"] if labels else [])]})
    if preprocessing:
        _add_preprocessing_options(parser)


def _add_preprocessing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CT preprocessing (defaults: the paper's)")
    group.add_argument("--depth", type=int, default=None, help="slices per scan (70 unless the depth is native)")
    group.add_argument("--size", type=int, default=224, help="slice height and width")
    add_dataclass_options(group, CTPreprocessing, exclude=("size",))


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: the paper's recipe)")
    add_dataclass_options(group, TrainConfig)
    parser.set_defaults(**{REQUIRED: [*parser.get_default(REQUIRED), "out_dir"]})


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="slicevid",
        formatter_class=_Formatter,
        epilog=EPILOG,
        description="Treat 3D scans as videos: slice encoder + recurrent aggregator (ViPTT-Net).",
    )
    parser.add_argument("--version", action="version", version=f"slicevid {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=help_text, description=description, formatter_class=_Formatter)
        sub.add_argument("--config", help="YAML/JSON file of option defaults (keys: option names with _)")
        sub.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
        sub.set_defaults(**{REQUIRED: []})
        subparsers[name] = sub
        return sub

    demo = command(
        "demo",
        "run the whole workflow on embedded synthetic data",
        "Write synthetic phantoms and videos, pretrain on the videos, fine-tune on the phantoms "
        "with and without pretraining, evaluate, and write plots, a Markdown report and "
        "results.json. About 2 to 3 minutes on 2 CPU cores; offline.",
    )
    demo.add_argument("--out", default="slicevid-demo", help="run folder (a previous demo there is replaced)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, the splits and the training")
    demo.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    demo.set_defaults(handler=commands.cmd_demo)

    synth = command(
        "synth",
        "write synthetic CT phantoms and action videos",
        "Write CT-like phantoms (NIfTI, HU, ImageCLEF-style labels.csv) and action videos "
        "(AVI, UCF50 layout). Synthetic stand-ins, not medical data.",
    )
    synth.add_argument("--out", help="writes OUT/phantoms and OUT/videos (required)")
    synth.add_argument("--phantoms-per-class", type=int, default=8)
    synth.add_argument("--phantom-shape", type=int, nargs=3, default=[48, 96, 96], metavar=("D", "H", "W"))
    synth.add_argument("--videos-per-class", type=int, default=4)
    synth.add_argument("--frames", type=int, default=40)
    synth.add_argument("--video-size", type=int, default=64)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=commands.cmd_synth, **{REQUIRED: ["out"]})

    prep = command(
        "preprocess",
        "fill the preprocessed-volume cache",
        "Load, window, resample and store every scan once, in parallel, so training reads "
        "small arrays instead of decoding NIfTI each epoch.",
    )
    _add_ct_options(prep, labels=False)
    prep.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    prep.add_argument("--dtype", choices=["float16", "uint8", "float32"], default="float16")
    prep.set_defaults(handler=commands.cmd_preprocess, **{REQUIRED: ["scans", "cache_dir"]})

    pre = command(
        "pretrain",
        "pretrain on action videos (encoder frozen)",
        "Stage 1 of ViPTT-Net: train on UCF50-style videos with the encoder frozen.",
    )
    group = pre.add_argument_group("video data")
    group.add_argument("--videos", help="UCF50-style folder, one sub-folder per class (required)")
    group.add_argument("--classes", default="paper", help="'paper' (the 10-class subset), 'all' or a comma list")
    group.add_argument("--frames", choices=["first", "uniform"], default="first")
    group.add_argument("--depth", type=int, default=70, help="frames per clip")
    group.add_argument("--size", type=int, default=224, help="frame height and width")
    group.add_argument(
        "--split-by",
        choices=["random", "group", "keras"],
        default="random",
        help="'keras': the authors' 80/20 train/test, then the last 20%% of train as validation",
    )
    group.add_argument("--val-fraction", type=float, default=0.2)
    group.add_argument(
        "--video-range",
        type=float,
        choices=[1.0, 255.0],
        default=1.0,
        help="frames in [0, 1], or raw [0, 255] as the authors fed them",
    )
    group.add_argument("--cache-dir", default=None, help="store decoded clips here (decode each video once)")
    group.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="'skip' decodes every video first and leaves out the broken ones",
    )
    pre.add_argument("--train-encoder", action="store_true", help="do not freeze the encoder")
    _add_model_options(pre)
    _add_train_options(pre)
    pre.set_defaults(handler=commands.cmd_pretrain, **{REQUIRED: ["videos", "out_dir"]})

    fine = command(
        "finetune",
        "fine-tune every layer on CT scans",
        "Stage 2 of ViPTT-Net: new 5-way head, all layers trained. Without --pretrained this is the paper's 'No PT'.",
    )
    fine.add_argument("--pretrained", default=None, help="folder from save_pretrained (e.g. a pretrain run's best/)")
    fine.add_argument(
        "--freeze-encoder",
        action="store_true",
        help="keep the encoder frozen (the authors' 'No PT' froze ImageNet VGG-16)",
    )
    _add_ct_options(fine)
    _add_model_options(fine)
    _add_train_options(fine)
    fine.set_defaults(handler=commands.cmd_finetune)

    ev = command(
        "evaluate",
        "report kappa, accuracy and per-class F1",
        "Evaluate a saved model on a split of a labelled CT set, preprocessing as in its training; "
        "prints the report table.",
    )
    ev.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    ev.add_argument("--split", choices=["val", "train", "all"], default="val")
    ev.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    ev.add_argument("--report", default=None, help="also write the report JSON here")
    ev.add_argument("--device", default="auto")
    _add_ct_options(ev, preprocessing=False)
    _add_checked_preprocessing(ev)
    ev.set_defaults(handler=commands.cmd_evaluate, **{REQUIRED: ["checkpoint", "scans", "labels_csv"]})

    pred = command(
        "predict",
        "classify new scans",
        "Preprocess each scan as the model's training did, print its class and the probability of "
        "every class; optionally write the challenge's submission CSV (<file id>,<label 1..5>) and "
        "per-scan slice-importance pictures.",
    )
    pred.add_argument("inputs", nargs="+", help="NIfTI files, DICOM series folders, or folders of scans")
    pred.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    pred.add_argument("--csv", default=None, help="write the submission CSV here")
    pred.add_argument(
        "--ids",
        choices=["stem", "filename"],
        default="stem",
        help="submission ids: TST_0001 ('stem') or TST_0001.nii.gz ('filename', the authors')",
    )
    pred.add_argument(
        "--explain",
        default=None,
        metavar="DIR",
        help="write DIR/<id>.png: the slices beside how much each drove the prediction",
    )
    pred.add_argument("--cache-dir", default=None)
    pred.add_argument("--device", default="auto")
    _add_checked_preprocessing(pred)
    pred.set_defaults(handler=commands.cmd_predict, **{REQUIRED: ["checkpoint"]})

    conv = command(
        "convert-keras",
        "convert the authors' Keras .h5 checkpoint",
        "Read a ViPTT-Net HDF5 file written by Keras 2 / TF 2.4 (h5py only) and write it in save_pretrained format.",
    )
    conv.add_argument("h5", help="ViPTT-Net-UCF50.h5 or ViPTT-Net-CLEF-TBT.h5")
    conv.add_argument("out", help="output folder")
    conv.set_defaults(handler=commands.cmd_convert_keras)
    return parser, subparsers


def _add_checked_preprocessing(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("preprocessing (taken from the checkpoint; given values must match it)")
    group.add_argument("--depth", type=int, default=None, help="slices per scan the model expects")
    group.add_argument("--size", type=int, default=None, help="slice height and width the model expects")
    group.add_argument("--rotate90", action="store_true", default=None, help="the model was trained on rotated slices")
    group.add_argument(
        "--nan-policy",
        choices=["raise", "replace"],
        default=None,
        help="'replace' predicts scans holding NaN (set to the window's lower bound, with a warning)",
    )
