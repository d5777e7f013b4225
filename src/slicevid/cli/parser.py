"""The ``slicevid`` argument parser: subcommands, their options and help texts.

Training, model, runtime, preprocessing and clip options are generated from ``TrainConfig``,
``ModelConfig``, ``SliceExecution``, ``CTPreprocessing`` and ``ClipSettings`` (see
`slicevid.cli.options`); this file only adds the options that belong to a command (data
locations, labels, checkpoints, outputs). Every option has a help text and shows its default.
"""

from __future__ import annotations

import argparse
import os

from .. import __version__
from ..data.clips import ClipSettings
from ..data.preprocess import CTPreprocessing
from ..model_config import ARCHITECTURE, ModelConfig, SliceExecution
from ..recipes import RECIPES
from ..train.config import TrainConfig
from ..train.ssl import SSL_OBJECTIVES
from . import commands
from .inputs import TASK_KINDS
from .options import add_dataclass_options

EPILOG = """examples:
  slicevid demo                                   # everything, on embedded synthetic data
  slicevid synth --out data/
  slicevid pretrain --videos UCF50/ --out runs/pt --feature-cache
  slicevid finetune --scans TBT/ --labels-csv TBT/labels.csv --pretrained runs/pt/best --out runs/ft
  slicevid finetune --scans scans/ --labels-csv labels.csv --label-column Finding --out runs/binary
  slicevid evaluate --checkpoint runs/ft/best     # the run's own validation scans
  slicevid predict --checkpoint runs/ft/best TBT_test/ --out results.csv --submission submission.csv
  slicevid recipe show viptt-reproduction > r.yaml && slicevid run r.yaml --videos UCF50/ --scans TBT/ \\
      --labels-csv TBT/labels.csv --out runs/table
"""
ARCHITECTURE_OPTIONS = tuple(n for n in ARCHITECTURE if n != "in_channels")
"""The architecture fields set on the command line (channels are 1: CT and grayscale video)."""
REQUIRED = "_required"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default in CLI terms: none for an unset option or a plain switch,
    ``on``/``off`` for a ``--x/--no-x`` pair, lists space-separated."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "(default" in text or default in (None, argparse.SUPPRESS) or not action.option_strings:
            return text
        if isinstance(action, argparse.BooleanOptionalAction):
            return f"{text} (default: {'on' if default else 'off'})"
        if action.nargs == 0:  # a plain switch: off unless given
            return text
        if isinstance(default, (list, tuple)):
            default = " ".join(str(v) for v in default)
        return f"{text} (default: {default})"


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (defaults: the paper's ViPTT-Net)")
    add_dataclass_options(group, ModelConfig, only=ARCHITECTURE_OPTIONS)
    group.add_argument(
        "--hidden-size",
        type=int,
        default=None,
        help="units of a recurrent aggregator (256 when not given)",
    )
    group.add_argument(
        "--encoder-weights",
        default=None,
        help="'imagenet', 'keras-imagenet' (vgg16) or a .pth/.safetensors/.h5 file; random weights when not given",
    )
    group.add_argument(
        "--init",
        choices=["pytorch", "keras"],
        default="pytorch",
        help="initialisation of the layers not loaded from weights ('keras': as the authors' model)",
    )
    _add_execution_options(parser)


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("slice execution (memory and speed only; applies to --pretrained models too)")
    add_dataclass_options(group, SliceExecution)


def _add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=None,
        metavar="MODULE_OR_FILE",
        help="import a module or a .py file that registers encoders or aggregators (repeatable); "
        "installed packages can declare them as slicevid.encoders / slicevid.aggregators entry points instead",
    )


def _add_ct_options(parser: argparse.ArgumentParser, *, labels: bool = True, checkpoint_defaults: bool = False) -> None:
    group = parser.add_argument_group("CT data")
    from_run = " (default: the checkpoint's training data)" if checkpoint_defaults else ""
    group.add_argument(
        "--scans", help="folder of scans: .nii/.nii.gz files and DICOM series folders, at any depth" + from_run
    )
    group.add_argument("--labels-csv", help="labels CSV: one row per scan" + from_run)
    group.add_argument("--file-column", default="FileName", help="CSV column of scan names (paths inside --scans)")
    group.add_argument(
        "--val-fraction",
        type=float,
        default=None if checkpoint_defaults else 0.2,
        help="validation share of the stratified split"
        + (" (default: the training run's)" if checkpoint_defaults else ""),
    )
    group.add_argument("--exclude", default=None, help="text file of scan names to leave out before the split")
    group.add_argument(
        "--cache-dir", default=None, help="keep preprocessed scans in this folder (each scan is preprocessed once)"
    )
    group.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="'skip' reads every scan first and leaves out the unreadable ones (listing them)",
    )
    if labels:
        _add_label_options(parser)
    parser.set_defaults(**{REQUIRED: [] if checkpoint_defaults else ["scans", *(["labels_csv"] if labels else [])]})


def _add_label_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("labels (default: the ImageCLEF CSV's TypeOfTB, one class of five per scan)")
    group.add_argument(
        "--label-column", default="TypeOfTB", help="CSV column of the classes (class names, or integers)"
    )
    group.add_argument(
        "--task",
        choices=list(TASK_KINDS),
        default="multiclass",
        help="what one head predicts: one class, 0/1 labels (--label-columns), an ordered level, or a score",
    )
    group.add_argument(
        "--label-columns",
        default=None,
        help="comma-separated columns of a multilabel head (empty cells are missing labels, left out of the loss)",
    )
    group.add_argument(
        "--classes",
        default=None,
        help="comma-separated class names in label order; integers in the CSV then count from 1 (from 0 if "
        "one is 0). Not given: the TB types for the column TypeOfTB (numbered 1..5), else the column's values",
    )
    group.add_argument("--levels", default=None, help="comma-separated level names, lowest first (ordinal task)")
    group.add_argument(
        "--head",
        action="append",
        default=None,
        metavar="NAME=KIND:COLUMNS[:NAMES]",
        help="one head of a several-head model, e.g. type=multiclass:TypeOfTB, findings=multilabel:left,right or "
        "severity=ordinal:Severity:low,medium,high (names in order; repeatable; replaces --task)",
    )
    group.add_argument(
        "--flip-pairs",
        default=None,
        help="comma-separated LEFT:RIGHT label pairs that swap in a left-right flip (for --tta flip)",
    )
    group = parser.add_argument_group("slice targets (per-slice supervision)")
    group.add_argument(
        "--slice-targets", default=None, help="CSV of each scan's labelled slice indices (3;4;5 or 3-5, from 0)"
    )
    group.add_argument("--slice-column", default="slices", help="its column of slice indices")
    group.add_argument(
        "--slice-masks", default=None, help="folder of lesion masks named like the scans (soft per-slice targets)"
    )
    group.add_argument("--slice-weight", type=float, default=1.0, help="weight of the slice loss beside the heads'")
    group.add_argument(
        "--slice-pool-into",
        default=None,
        metavar="HEAD",
        help="a multilabel head whose scan logits are pooled from the slice logits (not given: separate heads)",
    )
    group.add_argument("--slice-pool", choices=["max", "attention"], default="max", help="how --slice-pool-into pools")


def _add_preprocessing_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CT preprocessing (defaults: the paper's)")
    group.add_argument(
        "--depth", type=int, default=None, help="slices per scan after resampling (70 unless the depth is native)"
    )
    group.add_argument("--size", type=int, default=224, help="slice height and width after resampling")
    add_dataclass_options(group, CTPreprocessing, exclude=("size",))


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (defaults: the paper's recipe)")
    add_dataclass_options(group, TrainConfig)
    parser.set_defaults(**{REQUIRED: [*parser.get_default(REQUIRED), "out_dir"]})


def _add_checked_preprocessing(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("preprocessing (taken from the checkpoint; given values must match it)")
    group.add_argument("--depth", type=int, default=None, help="slices per scan the model expects")
    group.add_argument("--size", type=int, default=None, help="slice height and width the model expects")
    group.add_argument("--rotate90", action="store_true", default=None, help="the model was trained on rotated slices")
    group.add_argument(
        "--nan-policy",
        choices=["raise", "replace"],
        default=None,
        help="'replace' predicts scans holding NaN (set to the window's lower bound, with a warning); "
        "the checkpoint's policy when not given",
    )


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
        "with and without pretraining, score both on test phantoms, and write plots, a Markdown "
        "report and results.json: the 'demo' recipe (slicevid recipe show demo). Offline; about "
        "2 to 3 minutes on 2 CPU cores.",
    )
    demo.add_argument("--out", default="slicevid-demo", help="the demo's folder (an earlier demo there is replaced)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, the splits and the training")
    demo.add_argument("--quick", action="store_true", help="tiny data and epochs: a smoke test in seconds")
    demo.set_defaults(handler=commands.cmd_demo)

    synth = command(
        "synth",
        "write synthetic CT phantoms and action videos",
        "Write CT-like phantoms (NIfTI, HU, ImageCLEF-style labels.csv) and action videos "
        "(AVI, UCF50 layout). Synthetic stand-ins, not medical data.",
    )
    synth.add_argument("--out", help="writes OUT/phantoms and OUT/videos (required)")
    synth.add_argument("--phantoms-per-class", type=int, default=8, help="phantoms of each of the five TB types")
    synth.add_argument(
        "--phantom-shape", type=int, nargs=3, default=[48, 96, 96], metavar=("D", "H", "W"), help="phantom size"
    )
    synth.add_argument("--videos-per-class", type=int, default=4, help="clips of each of the ten action classes")
    synth.add_argument("--frames", type=int, default=40, help="frames per clip")
    synth.add_argument("--video-size", type=int, default=64, help="frame height and width (even)")
    synth.add_argument("--seed", type=int, default=0, help="seed of everything random")
    synth.set_defaults(handler=commands.cmd_synth, **{REQUIRED: ["out"]})

    prep = command(
        "preprocess",
        "fill the preprocessed-volume cache",
        "Load, window, resample and store every scan once, in parallel, so training reads "
        "small arrays instead of decoding NIfTI each epoch.",
    )
    _add_ct_options(prep, labels=False)
    prep.add_argument("--label-column", default="TypeOfTB", help="CSV column of the classes")
    prep.add_argument("--seed", type=int, default=0, help="seed of the split (only the labelled scans are listed)")
    _add_preprocessing_options(prep)
    prep.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="threads that preprocess scans in parallel"
    )
    prep.add_argument(
        "--dtype",
        choices=["float16", "uint8", "float32"],
        default="float16",
        help="storage type in the cache (uint8: 1/255 steps, half the size of float16)",
    )
    prep.set_defaults(handler=commands.cmd_preprocess, **{REQUIRED: ["scans", "cache_dir"]})

    pre = command(
        "pretrain",
        "pretrain on action videos (encoder frozen), or on unlabeled scans (--ssl)",
        "Stage 1 of ViPTT-Net: train on UCF50-style videos (one folder per class) with the encoder frozen. "
        "With --ssl, pretrain on unlabeled scans instead: 'order' learns to tell slices in order from "
        "reversed and shuffled ones, 'contrastive' to match two augmented views of each scan; chain it "
        "after video pretraining with --pretrained.",
    )
    group = pre.add_argument_group("video data")
    group.add_argument("--videos", help="UCF50-style folder, one sub-folder per class (required without --ssl)")
    group.add_argument(
        "--classes", default="paper", help="'paper' (the paper's 10 UCF50 classes), 'all' or a comma-separated list"
    )
    group.add_argument(
        "--split-by",
        choices=["random", "group", "keras"],
        default="random",
        help="'group': no UCF scene on both sides; 'keras': the authors' 80/20 train/test, then the last "
        "20%% of train as validation",
    )
    group.add_argument("--val-fraction", type=float, default=0.2, help="validation share of the clips (or scans)")
    group.add_argument(
        "--cache-dir", default=None, help="store decoded clips (or preprocessed scans) here: each is made once"
    )
    group.add_argument(
        "--on-error",
        choices=["raise", "skip"],
        default="raise",
        help="'skip' decodes every video first and leaves out the broken ones",
    )
    add_dataclass_options(pre.add_argument_group("clips (defaults: the paper's)"), ClipSettings)
    ssl = pre.add_argument_group("unlabeled scans (--ssl; --depth and --size set the scans' input size too)")
    ssl.add_argument("--ssl", choices=list(SSL_OBJECTIVES), default=None, help="self-supervised objective on --scans")
    ssl.add_argument("--scans", default=None, help="folder of unlabeled scans (NIfTI, DICOM series), at any depth")
    ssl.add_argument("--pretrained", default=None, help="continue from this model (e.g. a video pretraining's best/)")
    add_dataclass_options(ssl, CTPreprocessing, exclude=("size",))
    pre.add_argument("--train-encoder", action="store_true", help="train the encoder too (not the paper's)")
    _add_model_options(pre)
    _add_train_options(pre)
    _add_import_option(pre)
    pre.set_defaults(handler=commands.cmd_pretrain, **{REQUIRED: ["out_dir"]})

    fine = command(
        "finetune",
        "fine-tune every layer on CT scans",
        "Stage 2 of ViPTT-Net: new heads for the scans' task, all layers trained. Without "
        "--pretrained this is the paper's 'No PT'. Any classes (--label-column), several labels "
        "(--task multilabel), levels, scores, several heads (--head) and slice targets.",
    )
    fine.add_argument(
        "--pretrained",
        default=None,
        help="folder from save_pretrained (e.g. a pretrain run's best/); a new model if not given",
    )
    fine.add_argument(
        "--freeze-encoder",
        action="store_true",
        help="keep the encoder frozen (the authors' 'No PT' froze ImageNet VGG-16)",
    )
    _add_ct_options(fine)
    _add_preprocessing_options(fine)
    _add_model_options(fine)
    _add_train_options(fine)
    _add_import_option(fine)
    fine.set_defaults(handler=commands.cmd_finetune)

    ev = command(
        "evaluate",
        "report a model's metrics on labelled scans",
        "Evaluate a saved model on labelled scans, preprocessed as in its training. By default it "
        "scores the validation scans of the run that trained the checkpoint; prints the report table.",
    )
    ev.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    ev.add_argument(
        "--split",
        choices=["val", "train", "all"],
        default="val",
        help="which scans to score: the training run's validation scans, its training scans, or all",
    )
    ev.add_argument("--seed", type=int, default=None, help="seed of the split (default: the training run's)")
    ev.add_argument("--report", default=None, help="also write the report as JSON to this file")
    ev.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    _add_ct_options(ev, labels=False, checkpoint_defaults=True)
    _add_checked_preprocessing(ev)
    _add_import_option(ev)
    ev.set_defaults(handler=commands.cmd_evaluate, **{REQUIRED: ["checkpoint"]})

    pred = command(
        "predict",
        "predict new scans",
        "Preprocess each scan as the model's training did and predict it; print one line per scan "
        "and optionally write a results CSV with probabilities, the challenge's submission lines and "
        "slice-importance pictures.",
    )
    pred.add_argument("inputs", nargs="+", help="NIfTI files, DICOM series folders, or folders of scans")
    pred.add_argument(
        "--checkpoint", help="folder from save_pretrained, or a .onnx file from slicevid export (required)"
    )
    pred.add_argument(
        "--out", default=None, metavar="FILE", help="results CSV: header, id, decisions and every probability"
    )
    pred.add_argument(
        "--submission",
        "--csv",
        dest="submission",
        default=None,
        metavar="FILE",
        help="the challenge's submission lines: <id>,<class 1..K>, no header",
    )
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
    pred.add_argument("--batch-size", type=int, default=1, help="scans per forward pass (mixed depths are padded)")
    pred.add_argument("--num-workers", type=int, default=0, help="DataLoader processes that read and preprocess scans")
    pred.add_argument(
        "--tta",
        default=None,
        help="comma-separated test-time augmentations averaged with the scan itself: flip (left-right), "
        "reverse (slice order)",
    )
    pred.add_argument("--cache-dir", default=None, help="keep preprocessed scans in this folder")
    pred.add_argument(
        "--series",
        default=None,
        help="in a DICOM folder of several series, the one to read: its UID or its number in the error that lists them",
    )
    pred.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    _add_checked_preprocessing(pred)
    _add_import_option(pred)
    pred.set_defaults(handler=commands.cmd_predict, **{REQUIRED: ["checkpoint"]})

    run = command(
        "run",
        "run a recipe: both stages, every configuration, a table",
        "Run a two-stage experiment from a recipe file (slicevid recipe show NAME prints one): "
        "pretrain on the videos, fine-tune each configuration on the scans, score it, and write the "
        "table. Rerunning the same command resumes where it stopped.",
    )
    run.add_argument("recipe", help="recipe YAML file")
    run.add_argument("--videos", default=None, help="UCF50-style folder (needed when a configuration is pretrained)")
    run.add_argument("--scans", help="folder of scans (required)")
    run.add_argument("--labels-csv", help="their labels (required)")
    run.add_argument("--out", dest="out_dir", help="the experiment's folder (required)")
    run.add_argument("--test-scans", default=None, help="held-out scans to score every configuration on")
    run.add_argument(
        "--test-labels-csv", default=None, help="their labels (without them, each configuration writes a submission)"
    )
    run.add_argument("--exclude", default=None, help="text file of scan names to leave out before the split")
    run.add_argument(
        "--cache-dir", default=None, help="where preprocessed scans and clips are kept (default: OUT/cache)"
    )
    _add_import_option(run)
    run.set_defaults(handler=commands.cmd_run, **{REQUIRED: ["scans", "labels_csv", "out_dir"]})

    recipe = command("recipe", "show the named recipes", "Print a named recipe's every setting as YAML, or list them.")
    recipe.add_argument("action", choices=["show", "list"], help="'show NAME' prints one recipe; 'list' names them")
    recipe.add_argument("name", nargs="?", choices=list(RECIPES), default=None, help="the recipe to show")
    recipe.set_defaults(handler=commands.cmd_recipe)

    exp = command(
        "export",
        "export a trained model for deployment (ONNX, torch.export)",
        "Write a saved model as an ONNX graph (dynamic batch and depth; the model's description "
        "embedded, so slicevid predict --checkpoint FILE.onnx needs nothing else) or a torch.export program.",
    )
    exp.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    exp.add_argument("--format", choices=["onnx", "torch-export"], default="onnx", help="the file format")
    exp.add_argument("--out", dest="out", help="the file to write, e.g. model.onnx or model.pt2 (required)")
    exp.add_argument("--int8", action="store_true", help="dynamic int8 quantization of the weights (ONNX Runtime's)")
    exp.add_argument("--depth", type=int, default=None, help="example depth to trace with (the graph takes any)")
    _add_import_option(exp)
    exp.set_defaults(handler=commands.cmd_export, **{REQUIRED: ["checkpoint", "out"]})

    conv = command(
        "convert-keras",
        "convert the authors' Keras .h5 checkpoint",
        "Read a ViPTT-Net HDF5 file written by Keras 2 / TF 2.4 (h5py only) and write it in save_pretrained format.",
    )
    conv.add_argument("h5", help="ViPTT-Net-UCF50.h5 or ViPTT-Net-CLEF-TBT.h5")
    conv.add_argument("out", help="output folder")
    conv.set_defaults(handler=commands.cmd_convert_keras)
    return parser, subparsers
