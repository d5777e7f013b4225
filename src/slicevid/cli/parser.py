"""The ``slicevid`` argument parser: subcommands, their options and help texts."""

from __future__ import annotations

import argparse
import os

from .. import __version__
from . import commands

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
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=help_text, description=description, formatter_class=_Formatter)
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
    demo.set_defaults(handler=commands.cmd_demo)

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
    synth.set_defaults(handler=commands.cmd_synth)

    prep = command("preprocess", "fill the preprocessed-volume cache",
                   "Load, window, resample and store every scan once, in parallel, so training reads "
                   "small arrays instead of decoding NIfTI each epoch.")
    _add_ct_options(prep, labels_required=False)
    _add_size_options(prep)
    prep.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    prep.add_argument("--dtype", choices=["float16", "uint8", "float32"], default="float16")
    prep.set_defaults(handler=commands.cmd_preprocess)

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
    pre.set_defaults(handler=commands.cmd_pretrain)

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
    fine.set_defaults(handler=commands.cmd_finetune)

    ev = command("evaluate", "report kappa, accuracy and per-class F1",
                 "Evaluate a saved model on a split of a labelled CT set; prints the report table.")
    ev.add_argument("--checkpoint", required=True, help="folder from save_pretrained")
    ev.add_argument("--split", choices=["val", "train", "all"], default="val")
    ev.add_argument("--seed", type=int, default=0, help="seed of the train/val split")
    ev.add_argument("--report", default=None, help="also write the report JSON here")
    ev.add_argument("--device", default="auto")
    _add_ct_options(ev)
    _add_size_options(ev)
    ev.set_defaults(handler=commands.cmd_evaluate)

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
    pred.set_defaults(handler=commands.cmd_predict)

    conv = command("convert-keras", "convert the authors' Keras .h5 checkpoint",
                   "Read a ViPTT-Net HDF5 file written by Keras 2 / TF 2.4 (h5py only) and write it in "
                   "save_pretrained format.")
    conv.add_argument("h5", help="ViPTT-Net-UCF50.h5 or ViPTT-Net-CLEF-TBT.h5")
    conv.add_argument("out", help="output folder")
    conv.set_defaults(handler=commands.cmd_convert_keras)
    return parser, subparsers
