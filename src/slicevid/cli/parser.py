"""The ``slicevid`` argument parser: subcommands, their options and help texts.

Training, model, runtime, preprocessing, clip, split and label options are generated from the
dataclasses that own them (``TrainConfig``, ``Architecture``, ``SliceExecution``,
``CTPreprocessing``, ``ClipSettings``, ``SplitSettings``, ``LabelSettings``; see
`slicevid.cli.options`); this file only adds the options that belong to a command (data
locations, checkpoints, outputs). Every option has a help text and shows its default.

A subcommand's options are built only when that subcommand runs (`build_parser` with
``only``), importing what they describe then: ``slicevid --help`` imports neither torch nor
any model code.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from .. import __version__

EPILOG = """examples:
  slicevid demo                                   # everything, on embedded synthetic data
  slicevid synth --out data/
  slicevid pretrain --videos UCF50/ --out runs/pt --feature-cache
  slicevid finetune --scans TBT/ --labels-csv TBT/labels.csv --pretrained runs/pt/best --out runs/ft
  slicevid finetune --scans scans/ --labels-csv labels.csv --label-column Finding --out runs/binary
  slicevid finetune --medmnist adrenalmnist3d --encoder compact_cnn --aggregator attention --out runs/adrenal
  slicevid cv --folds 5 --scans scans/ --labels-csv labels.csv --group-column Patient --out runs/cv
  slicevid evaluate --checkpoint runs/ft/best --bootstrap 1000   # the run's own validation scans
  slicevid predict --checkpoint runs/ft/best TBT_test/ --out results.csv --submission submission.csv
  slicevid recipe show viptt-reproduction > r.yaml && slicevid run r.yaml --videos UCF50/ --scans TBT/ \\
      --labels-csv TBT/labels.csv --out runs/table
"""
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


def _require(parser: argparse.ArgumentParser, *names: str) -> None:
    """Options the command needs (checked after ``--config`` is applied, so a config file may give them)."""
    parser.set_defaults(**{REQUIRED: [*parser.get_default(REQUIRED), *names]})


# ----------------------------------------------------------------------------- option groups
def _add_model_options(parser: argparse.ArgumentParser) -> None:
    from ..model_config import Architecture
    from ..presets import INITS
    from .options import add_dataclass_options

    group = parser.add_argument_group("model (defaults: the paper's ViPTT-Net)")
    add_dataclass_options(group, Architecture, exclude=("in_channels",))
    group.add_argument(
        "--hidden-size", type=int, default=None, help="units of a recurrent aggregator (256 when not given)"
    )
    group.add_argument(
        "--encoder-weights",
        default=None,
        help="weights the encoder names (slicevid encoders --weights lists them; 'imagenet' for vgg16 and "
        "timm models) or a .pth/.safetensors/.h5 file; random weights when not given",
    )
    group.add_argument(
        "--init",
        choices=INITS,
        default=INITS[0],
        help="initialisation of the layers not loaded from weights ('keras': as the authors' model)",
    )
    _add_execution_options(parser)


def _add_execution_options(parser: argparse.ArgumentParser) -> None:
    from ..model_config import SliceExecution
    from .options import add_dataclass_options

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


def _add_scan_options(parser: argparse.ArgumentParser, *, from_checkpoint: bool = False) -> argparse._ArgumentGroup:
    """Where labelled scans come from: a folder and a labels CSV, or a MedMNIST 3D set."""
    group = parser.add_argument_group("data (--scans and --labels-csv, or --medmnist)")
    from_run = " (default: the checkpoint's training data)" if from_checkpoint else ""
    group.add_argument(
        "--scans", help="folder of scans: .nii/.nii.gz files and DICOM series folders, at any depth" + from_run
    )
    group.add_argument("--labels-csv", help="labels CSV: one row per scan" + from_run)
    _add_medmnist_option(group)
    group.add_argument("--exclude", default=None, help="text file of scan names to leave out before the split")
    _add_cache_and_error_options(
        group,
        "keep preprocessed scans in this folder (each scan is preprocessed once)",
        "'skip' reads every scan first and leaves out the unreadable ones (listing them)",
    )
    return group


def _add_cache_and_error_options(group, cache: str, skip: str) -> None:
    """``--cache-dir`` (what it keeps, in ``cache``) and ``--on-error`` (what 'skip' does, in ``skip``)."""
    from ..data.volumes import ON_ERROR

    group.add_argument("--cache-dir", default=None, help=cache)
    group.add_argument("--on-error", choices=ON_ERROR, default=ON_ERROR[0], help=skip)


def _add_medmnist_option(group) -> None:
    group.add_argument(
        "--medmnist",
        default=None,
        metavar="FLAG_OR_NPZ",
        help="a MedMNIST 3D set instead of --scans: a flag (adrenalmnist3d, nodulemnist3d_64 ...) found in "
        "~/.medmnist, or an .npz file; its official train/val/test split",
    )


def _add_split_options(parser: argparse.ArgumentParser, *, folds: bool = False, from_checkpoint: bool = False) -> None:
    from ..data.splits import SplitSettings
    from .options import add_dataclass_options

    group = parser.add_argument_group("split")
    keep = ("val_fraction", "split_column", "group_column", *(("folds",) if folds else ()))
    defaults = {"val_fraction": None} if from_checkpoint else {}
    add_dataclass_options(group, SplitSettings, only=keep, defaults=defaults)


def _add_label_options(parser: argparse.ArgumentParser, *, from_checkpoint: bool = False) -> None:
    from .labels import LabelSettings
    from .options import add_dataclass_options

    title = (
        "labels (default: the checkpoint's columns and classes; given ones must agree)"
        if from_checkpoint
        else ("labels (default: the ImageCLEF CSV's TypeOfTB, one class of five per scan)")
    )
    group = parser.add_argument_group(title)
    defaults = {f: None for f in ("file_column", "label_column", "task")} if from_checkpoint else None
    add_dataclass_options(group, LabelSettings, defaults=defaults)


def _add_slice_target_options(parser: argparse.ArgumentParser) -> None:
    from ..tasks import SLICE_POOLS

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
    group.add_argument("--slice-pool", choices=SLICE_POOLS, default=SLICE_POOLS[0], help="how --slice-pool-into pools")


def _add_preprocessing_options(parser: argparse.ArgumentParser) -> None:
    from ..data.preprocess import CTPreprocessing
    from .options import add_dataclass_options

    group = parser.add_argument_group("CT preprocessing (defaults: the paper's)")
    group.add_argument(
        "--depth", type=int, default=None, help="slices per scan after resampling (the paper's unless native)"
    )
    group.add_argument("--size", type=int, default=None, help="slice height and width after resampling (the paper's)")
    add_dataclass_options(group, CTPreprocessing, exclude=("size",))


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    from ..train.config import TrainConfig
    from .options import add_dataclass_options

    group = parser.add_argument_group("training (defaults: the paper's recipe)")
    add_dataclass_options(group, TrainConfig, exclude=("progress",))
    _require(parser, "out_dir")


def _add_checked_preprocessing(parser: argparse.ArgumentParser) -> None:
    from ..data.ct import NAN_POLICIES

    group = parser.add_argument_group("preprocessing (taken from the checkpoint; given values must match it)")
    group.add_argument("--depth", type=int, default=None, help="slices per scan the model expects")
    group.add_argument("--size", type=int, default=None, help="slice height and width the model expects")
    group.add_argument("--rotate90", action="store_true", default=None, help="the model was trained on rotated slices")
    group.add_argument(
        "--nan-policy",
        choices=NAN_POLICIES,
        default=None,
        help="'replace' predicts scans holding NaN (set to the window's lower bound, with a warning); "
        "the checkpoint's policy when not given",
    )


def _add_finetune_options(parser: argparse.ArgumentParser, *, folds: bool = False) -> None:
    """What ``finetune`` takes (and ``cv``, which runs it once per fold)."""
    parser.add_argument(
        "--pretrained",
        default=None,
        help="folder from save_pretrained (e.g. a pretrain run's best/); a new model if not given",
    )
    parser.add_argument(
        "--freeze-encoder",
        action="store_true",
        help="keep the encoder frozen (the authors' 'No PT' froze ImageNet VGG-16)",
    )
    _add_scan_options(parser)
    _add_split_options(parser, folds=folds)
    _add_label_options(parser)
    _add_slice_target_options(parser)
    _add_preprocessing_options(parser)
    _add_model_options(parser)
    _add_train_options(parser)
    _add_import_option(parser)


# ----------------------------------------------------------------------------- subcommands
def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="slicevid-demo", help="the demo's folder (an earlier demo there is replaced)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the splits and the training")
    p.add_argument("--quick", action="store_true", help="tiny data and epochs: a smoke test in seconds")


def _synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="writes OUT/phantoms and OUT/videos (required)")
    p.add_argument("--phantoms-per-class", type=int, default=8, help="phantoms of each of the five TB types")
    p.add_argument(
        "--phantom-shape", type=int, nargs=3, default=[48, 96, 96], metavar=("D", "H", "W"), help="phantom size"
    )
    p.add_argument("--videos-per-class", type=int, default=4, help="clips of each of the ten action classes")
    p.add_argument("--frames", type=int, default=40, help="frames per clip")
    p.add_argument("--video-size", type=int, default=64, help="frame height and width (even)")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random")
    _require(p, "out")


def _preprocess(p: argparse.ArgumentParser) -> None:
    from ..data.cache import CACHE_DTYPES

    _add_scan_options(p)
    p.add_argument("--label-column", default=None, help="CSV column of the classes (every CSV row is cached)")
    _add_preprocessing_options(p)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads that preprocess scans in parallel")
    p.add_argument(
        "--dtype",
        choices=CACHE_DTYPES,
        default=CACHE_DTYPES[0],
        help="storage type in the cache (uint8: 1/255 steps, half the size of float16)",
    )
    _require(p, "scans", "cache_dir")


def _pretrain(p: argparse.ArgumentParser) -> None:
    from ..data.clips import ClipSettings
    from ..data.preprocess import CTPreprocessing
    from ..data.splits import SplitSettings
    from ..data.ucf import SPLIT_BY
    from ..train.ssl import SSL_OBJECTIVES
    from .options import add_dataclass_options

    group = p.add_argument_group("video data")
    group.add_argument("--videos", help="UCF50-style folder, one sub-folder per class (required without --ssl)")
    group.add_argument(
        "--classes", default="paper", help="'paper' (the paper's 10 UCF50 classes), 'all' or a comma-separated list"
    )
    group.add_argument(
        "--split-by",
        choices=SPLIT_BY,
        default=SPLIT_BY[0],
        help="'group': no UCF scene on both sides; 'keras': the authors' 80/20 train/test, then the last "
        "20%% of train as validation",
    )
    add_dataclass_options(group, SplitSettings, only=("val_fraction",))
    _add_cache_and_error_options(
        group,
        "store decoded clips (or preprocessed scans) here: each is made once",
        "'skip' decodes every video first and leaves out the broken ones",
    )
    add_dataclass_options(p.add_argument_group("clips (defaults: the paper's)"), ClipSettings)
    ssl = p.add_argument_group("unlabeled scans (--ssl; --depth and --size set the scans' input size too)")
    ssl.add_argument("--ssl", choices=SSL_OBJECTIVES, default=None, help="self-supervised objective on --scans")
    ssl.add_argument("--scans", default=None, help="folder of unlabeled scans (NIfTI, DICOM series), at any depth")
    _add_medmnist_option(ssl)
    ssl.add_argument("--pretrained", default=None, help="continue from this model (e.g. a video pretraining's best/)")
    add_dataclass_options(ssl, CTPreprocessing, exclude=("size",))
    p.add_argument("--train-encoder", action="store_true", help="train the encoder too (not the paper's)")
    _add_model_options(p)
    _add_train_options(p)
    _add_import_option(p)


def _finetune(p: argparse.ArgumentParser) -> None:
    _add_finetune_options(p)


def _cv(p: argparse.ArgumentParser) -> None:
    _add_finetune_options(p, folds=True)
    _require(p, "folds")


def _evaluate(p: argparse.ArgumentParser) -> None:
    from ..data.labelled import SPLITS

    p.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    p.add_argument(
        "--split",
        choices=SPLITS,
        default=None,
        help="which scans to score: the training run's val(idation) or train(ing) scans, the test part (of a "
        "split column, or MedMNIST's official test split), or all. Not given: the run's validation scans, "
        "or every scan of a labels CSV the run was not trained on",
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the split (default: the training run's)")
    p.add_argument("--report", default=None, help="also write the report as JSON to this file")
    p.add_argument(
        "--plots",
        default=None,
        metavar="DIR",
        help="write the confusion matrix, ROC curves and reliability diagram here",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        metavar="N",
        help="95%% confidence intervals of every metric from N bootstrap resamples of the scored scans (1000 is usual)",
    )
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    _add_scan_options(p, from_checkpoint=True)
    _add_split_options(p, from_checkpoint=True)
    _add_label_options(p, from_checkpoint=True)
    _add_checked_preprocessing(p)
    _add_import_option(p)
    _require(p, "checkpoint")


def _predict(p: argparse.ArgumentParser) -> None:
    from ..predict import SUBMISSION_IDS

    p.add_argument("inputs", nargs="*", help="NIfTI files, DICOM series folders, or folders of scans")
    p.add_argument(
        "--checkpoint",
        help="folder from save_pretrained, a cv folder (its folds averaged), or a .onnx file from slicevid "
        "export (required)",
    )
    group = p.add_argument_group("MedMNIST (instead of inputs)")
    _add_medmnist_option(group)
    group.add_argument("--split", choices=("train", "val", "test"), default="test", help="which official split")
    p.add_argument(
        "--out", default=None, metavar="FILE", help="results CSV: header, id, decisions and every probability"
    )
    p.add_argument(
        "--submission",
        "--csv",
        dest="submission",
        default=None,
        metavar="FILE",
        help="the challenge's submission lines: <id>,<class 1..K>, no header",
    )
    p.add_argument(
        "--ids",
        choices=SUBMISSION_IDS,
        default=SUBMISSION_IDS[0],
        help="submission ids: TST_0001 ('stem') or TST_0001.nii.gz ('filename', the authors')",
    )
    p.add_argument(
        "--explain",
        default=None,
        metavar="DIR",
        help="write DIR/<id>.png: the slices beside how much each drove the prediction",
    )
    p.add_argument("--batch-size", type=int, default=1, help="scans per forward pass (mixed depths are padded)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader processes that read and preprocess scans")
    p.add_argument(
        "--tta",
        default=None,
        help="comma-separated test-time augmentations averaged with the scan itself: flip (left-right), "
        "reverse (slice order)",
    )
    p.add_argument(
        "--series",
        default=None,
        help="in a DICOM folder of several series, the one to read: its UID or its number in the error that lists them",
    )
    _add_cache_and_error_options(
        p,
        "keep preprocessed scans in this folder",
        "'skip' reads every scan first, predicts the readable ones and lists the others",
    )
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    _add_checked_preprocessing(p)
    _add_import_option(p)
    _require(p, "checkpoint")


def _run(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="recipe YAML file")
    p.add_argument("--videos", default=None, help="UCF50-style folder (needed when a configuration is pretrained)")
    p.add_argument("--scans", help="folder of scans (required)")
    p.add_argument("--labels-csv", help="their labels (required)")
    p.add_argument("--out", dest="out_dir", help="the experiment's folder (required)")
    p.add_argument("--test-scans", default=None, help="held-out scans to score every configuration on")
    p.add_argument(
        "--test-labels-csv", default=None, help="their labels (without them, each configuration writes a submission)"
    )
    p.add_argument("--exclude", default=None, help="text file of scan names to leave out before the split")
    p.add_argument("--cache-dir", default=None, help="where preprocessed scans and clips are kept (default: OUT/cache)")
    _add_import_option(p)
    _require(p, "scans", "labels_csv", "out_dir")


def _recipe(p: argparse.ArgumentParser) -> None:
    from ..recipes import RECIPES

    p.add_argument("action", choices=["show", "list"], help="'show NAME' prints one recipe; 'list' names them")
    p.add_argument("name", nargs="?", choices=list(RECIPES), default=None, help="the recipe to show")


def _export(p: argparse.ArgumentParser) -> None:
    from ..deploy import EXPORT_FORMATS

    p.add_argument("--checkpoint", help="folder from save_pretrained (required)")
    p.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="onnx", help="the file format")
    p.add_argument(
        "--out", dest="out", help="the file to write: FILE.onnx (--format onnx) or FILE.pt2 (torch-export) (required)"
    )
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantization of the weights (ONNX Runtime's)")
    p.add_argument("--depth", type=int, default=None, help="example depth to trace with (the graph takes any)")
    _add_import_option(p)
    _require(p, "checkpoint", "out")


def _convert_keras(p: argparse.ArgumentParser) -> None:
    p.add_argument("h5", help="ViPTT-Net-UCF50.h5 or ViPTT-Net-CLEF-TBT.h5")
    p.add_argument("out", help="output folder")


def _encoders(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="a shell-style pattern of names (e.g. '*cnn*')")
    p.add_argument("--weights", action="store_true", help="also list the pretrained weights each encoder names")
    p.add_argument("--timm", action="store_true", help="also list every matching timm model (as timm:<name>)")
    _add_import_option(p)


COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "demo": (
        "run the whole workflow on embedded synthetic data",
        "Write synthetic phantoms and videos, pretrain on the videos, fine-tune on the phantoms "
        "with and without pretraining, score both on test phantoms, and write plots, a Markdown "
        "report and results.json: the 'demo' recipe (slicevid recipe show demo). Offline; about "
        "2 to 3 minutes on 2 CPU cores.",
        _demo,
    ),
    "synth": (
        "write synthetic CT phantoms and action videos",
        "Write CT-like phantoms (NIfTI, HU, ImageCLEF-style labels.csv) and action videos "
        "(AVI, UCF50 layout). Synthetic stand-ins, not medical data.",
        _synth,
    ),
    "preprocess": (
        "fill the preprocessed-volume cache",
        "Load, window, resample and store every scan once, in parallel, so training reads "
        "small arrays instead of decoding NIfTI each epoch.",
        _preprocess,
    ),
    "pretrain": (
        "pretrain on action videos (encoder frozen), or on unlabeled scans (--ssl)",
        "Stage 1 of ViPTT-Net: train on UCF50-style videos (one folder per class) with the encoder frozen. "
        "With --ssl, pretrain on unlabeled scans (--scans, or a MedMNIST set's volumes) instead: 'order' "
        "learns to tell slices in order from reversed and shuffled ones, 'contrastive' to match two augmented "
        "views of each scan; chain it after video pretraining with --pretrained.",
        _pretrain,
    ),
    "finetune": (
        "fine-tune every layer on CT scans or a MedMNIST 3D set",
        "Stage 2 of ViPTT-Net: new heads for the scans' task, all layers trained. Without "
        "--pretrained this is the paper's 'No PT'. Any classes (--label-column), several labels "
        "(--task multilabel), levels, scores, several heads (--head) and slice targets; a stratified "
        "split, a split column, patient groups, or MedMNIST's official split.",
        _finetune,
    ),
    "cv": (
        "k-fold cross-validation: fine-tune once per fold, score the held-out folds",
        "Split the labelled scans (or a MedMNIST set's training and validation volumes) into K stratified "
        "folds (grouped with --group-column); for each fold, fine-tune on the others (choosing the epoch on "
        "a validation share of them) and predict it. Writes OUT/fold-<k>/ run folders, OUT/oof.csv "
        "(out-of-fold predictions) and OUT/cv-report.json (each metric's mean and sd over folds). Every "
        "finetune option applies; predict --checkpoint OUT averages the folds' models.",
        _cv,
    ),
    "evaluate": (
        "report a model's metrics on labelled scans",
        "Evaluate a saved model on labelled scans, preprocessed as in its training: by default the "
        "validation scans of the run that trained it, or every scan of another labels CSV. Prints the "
        "report table (kappa, accuracy, F1; AUC, sensitivity, specificity, calibration for classifiers), "
        "with bootstrap confidence intervals on request.",
        _evaluate,
    ),
    "predict": (
        "predict new scans",
        "Preprocess each scan as the model's training did and predict it; print one line per scan "
        "and optionally write a results CSV with probabilities, the challenge's submission lines and "
        "slice-importance pictures.",
        _predict,
    ),
    "run": (
        "run a recipe: both stages, every configuration, a table",
        "Run a two-stage experiment from a recipe file (slicevid recipe show NAME prints one): "
        "pretrain on the videos, fine-tune each configuration on the scans, score it, and write the "
        "table. Rerunning the same command resumes where it stopped.",
        _run,
    ),
    "recipe": ("show the named recipes", "Print a named recipe's every setting as YAML, or list them.", _recipe),
    "export": (
        "export a trained model for deployment (ONNX, torch.export)",
        "Write a saved model as an ONNX graph (dynamic batch and depth; the model's description "
        "embedded, so slicevid predict --checkpoint FILE.onnx needs nothing else) or a torch.export program.",
        _export,
    ),
    "convert-keras": (
        "convert the authors' Keras .h5 checkpoint",
        "Read a ViPTT-Net HDF5 file written by Keras 2 / TF 2.4 (h5py only) and write it in save_pretrained format.",
        _convert_keras,
    ),
    "encoders": (
        "list the encoders (and the weights each names)",
        "List the registered encoders (plugins loaded with --import or installed as entry points "
        "included), the pretrained weights each declares with their input convention, and timm's models.",
        _encoders,
    ),
}
"""Every subcommand: its one-line help, its description, and the function that adds its options."""


def build_parser(
    only: set[str] | None = None,
) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and each subcommand's parser; the options of the commands in ``only`` (all by default)."""
    parser = argparse.ArgumentParser(
        prog="slicevid",
        formatter_class=_Formatter,
        epilog=EPILOG,
        description="Treat 3D scans as videos: slice encoder + recurrent aggregator (ViPTT-Net).",
    )
    parser.add_argument("--version", action="version", version=f"slicevid {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for name, (help_text, description, add_options) in COMMANDS.items():
        sub = subcommands.add_parser(name, help=help_text, description=description, formatter_class=_Formatter)
        sub.set_defaults(command=name, **{REQUIRED: []})
        if only is None or name in only:
            sub.add_argument("--config", help="YAML/JSON file of option defaults (keys: option names with _)")
            sub.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
            sub.add_argument(
                "--progress",
                action=argparse.BooleanOptionalAction,
                default=True,
                help="progress bars (drawn on a terminal only, never into a captured log)",
            )
            add_options(sub)
        subparsers[name] = sub
    return parser, subparsers
