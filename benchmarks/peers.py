"""slicevid beside what users would pick instead: 3D CNNs, a video-pretrained 3D CNN and MIL, on one yardstick.

Every row is trained by slicevid's own public training API (``fit``, or the runner for
slicevid's rows) on the same data, split, augmentation, optimiser, schedule, epoch budget (the
demo's: 14 pretraining and 12 fine-tuning epochs) and epoch selection (lowest validation loss),
and scored on the same held-out test phantoms:

* slicevid, the paper's LSTM, a bidirectional GRU and gated attention, each from scratch (No PT)
  and pretrained on the synthetic action clips (PT): the ``demo`` recipe at this yardstick's size;
* MONAI ``DenseNet121`` and ``resnet10`` with ``spatial_dims=3``, from scratch;
* torchvision ``r3d_18``, from scratch and pretrained on the same action clips (its own
  10-way head, then a new 5-way one): ViPTT-Net's transfer with 3D convolutions;
* MONAI ``MILModel`` in attention mode: the slices as instances of a ResNet-50, from scratch.

Peers keep their libraries' defaults apart from input channels (one: the stem convolution takes
one channel) and class count; ``MILModel`` runs with ``pretrained=False`` (its ImageNet weights
cannot be downloaded here). Every row uses the demo recipe's AdamW at 2e-3, batch 8, with the
last incomplete batch of each epoch left out (``drop_last``: MONAI's DenseNet cannot train on a
batch of one at this size).

Data: the synthetic Table-1 phantoms (challenge class proportions, 32 x 64 x 64), read at
32 x 32 x 32 (MONAI's DenseNet halves each axis five times, so 32 is its smallest input).
Columns, measured side by side in one run: test kappa and accuracy (mean ± sd over seeds),
parameters, seconds per training epoch, inference milliseconds per scan (batches of 8), and
peak resident memory of the process that ran the row (each group of rows runs in its own
process; a slicevid group holds its No PT and PT rows and their pretraining).

    python benchmarks/peers.py --out runs/peers          # about 70 min on 2 cores (3 seeds)
    python benchmarks/peers.py --quick --out /tmp/peers  # smoke test

The CUDA variant at the paper's input size (70 x 224 x 224) is ``--size 70 224 --device cuda``;
its figures are "not measured yet" in RESULTS.md until a GPU run records them.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

GROUPS = {
    "slicevid LSTM": ["slicevid LSTM, No PT", "slicevid LSTM, PT"],
    "slicevid BiGRU": ["slicevid BiGRU, No PT", "slicevid BiGRU, PT"],
    "slicevid attention": ["slicevid attention, No PT", "slicevid attention, PT"],
    "MONAI DenseNet121-3D": ["MONAI DenseNet121-3D"],
    "MONAI ResNet10-3D": ["MONAI ResNet10-3D"],
    "torchvision r3d_18": ["torchvision r3d_18, No PT", "torchvision r3d_18, video PT"],
    "MONAI MILModel (attention)": ["MONAI MILModel (attention)"],
}
"""Groups of rows that run in one process each, and the rows each writes."""
AGGREGATORS = {
    "slicevid LSTM": {"aggregator": "lstm"},
    "slicevid BiGRU": {"aggregator": "gru", "aggregator_kwargs": {"hidden_size": 128, "bidirectional": True}},
    "slicevid attention": {"aggregator": "attention", "aggregator_kwargs": {}},
}


def yardstick(seed: int, depth: int, size: int, epochs: int, pretrain_epochs: int, device: str):
    """The demo recipe at this benchmark's input size and epoch budget."""
    from slicevid.data import CTPreprocessing
    from slicevid.data.clips import ClipSettings
    from slicevid.recipes import demo_recipe

    recipe = demo_recipe().with_seed(seed)
    return recipe.replace(
        preprocessing=CTPreprocessing(size=(depth, size, size)),
        video=ClipSettings(num_frames=depth, size=size),
        finetune=replace(recipe.finetune, epochs=epochs, device=device, drop_last=True),
        pretrain=replace(recipe.pretrain, epochs=pretrain_epochs, device=device, drop_last=True),
    )


# ----------------------------------------------------------------------------- the peers
def densenet121_3d(classes: int):
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=3, in_channels=1, out_channels=classes)


def resnet10_3d(classes: int):
    from monai.networks.nets import resnet10

    return resnet10(spatial_dims=3, n_input_channels=1, num_classes=classes)


def r3d_18(classes: int):
    """torchvision's r3d_18, its stem convolution taking one channel."""
    from torchvision.models.video import r3d_18 as build

    model = build(num_classes=classes)
    stem = model.stem[0]
    model.stem[0] = nn.Conv3d(1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
    return model


class SliceBags(nn.Module):
    """MONAI's ``MILModel`` (attention) reading a volume's slices as its instances.

    ``(B, 1, D, H, W)`` volumes become ``(B, D, 1, H, W)`` bags; its ResNet-50's stem takes one channel.
    """

    def __init__(self, classes: int) -> None:
        from monai.networks.nets import MILModel

        super().__init__()
        self.mil = MILModel(num_classes=classes, mil_mode="att", pretrained=False)
        conv = self.mil.net.conv1
        self.mil.net.conv1 = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        return self.mil(volumes.transpose(1, 2))


PEERS = {
    "MONAI DenseNet121-3D": densenet121_3d,
    "MONAI ResNet10-3D": resnet10_3d,
    "torchvision r3d_18, No PT": r3d_18,
    "MONAI MILModel (attention)": SliceBags,
}


# ----------------------------------------------------------------------------- one group, in a child process
def run_group(group: str, seed: int, data: dict, out: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Train and score every row of ``group`` for one seed."""
    from slicevid import SliceSequenceClassifier
    from slicevid.recipes import Configuration, run_recipe, scan_splits, stage_folder

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = yardstick(seed, args.size[0], args.size[1], args.epochs, args.pretrain_epochs, args.device)
    folder = out / f"seed{seed}" / stage_folder(Path(), group)
    cache = out / f"seed{seed}" / "cache"
    if group in AGGREGATORS:
        recipe = recipe.replace(
            name=group,
            model=recipe.model.replace(**AGGREGATORS[group]),
            configurations={"No PT": Configuration(pretrained=False), "PT": Configuration()},
        )
        run_recipe(recipe, out=folder, cache_dir=cache, progress=False, **data)
        rows = {}
        for name in GROUPS[group]:
            configuration = name.rsplit(", ", 1)[1]
            stage = stage_folder(folder, configuration)
            model = SliceSequenceClassifier.from_pretrained(stage / "best")
            rows[name] = _scored(model, stage, data, recipe, cache)
        return rows
    train, val = scan_splits(recipe, data["scans"], data["labels_csv"], cache_dir=cache / "volumes")
    rows = {}
    for name in GROUPS[group]:
        rows[name] = _train_peer(name, recipe, train, val, data, folder / stage_folder(Path(), name), cache)
    return rows


def _train_peer(name: str, recipe, train, val, data: dict, folder: Path, cache: Path) -> dict:
    from slicevid.train import fit

    torch.manual_seed(recipe.finetune.seed)
    classes = len(recipe.labels.classes)
    if name == "torchvision r3d_18, video PT":
        model = _video_pretrained_r3d(recipe, data["videos"], folder / "pretrain", cache)
        model.fc = torch.nn.Linear(model.fc.in_features, classes)
    else:
        model = PEERS[name](classes)
    settings = replace(recipe.finetune, out_dir=str(folder), progress=False)
    fit(model, train, val, settings, class_names=recipe.labels.classes)
    return _scored(model, folder, data, recipe, cache)


def _video_pretrained_r3d(recipe, videos: Path, folder: Path, cache: Path):
    """r3d_18 trained on the action clips with its own 10-way head (as slicevid's PT rows are)."""
    from slicevid.recipes import clip_splits
    from slicevid.train import fit

    train, val = clip_splits(recipe, videos, cache / "clips")
    model = r3d_18(len(train.classes))
    fit(model, train, val, replace(recipe.pretrain, out_dir=str(folder), progress=False))
    return model


def _scored(model: nn.Module, folder: Path, data: dict, recipe, cache: Path) -> dict:
    """The kept model's test scores and speed, its size, and the training's seconds per epoch."""
    from slicevid.recipes import held_out_scans
    from slicevid.train import evaluate

    test = held_out_scans(recipe, data["test_scans"], data["test_labels_csv"], cache / "volumes")
    evaluate(model, test, batch_size=8, progress=False, class_names=recipe.labels.classes)  # fills the cache
    started = time.perf_counter()
    evaluation = evaluate(model, test, batch_size=8, progress=False, class_names=recipe.labels.classes)
    inference_ms = 1000 * (time.perf_counter() - started) / len(test)
    report = evaluation.report
    seconds = [float(row["seconds"]) for row in csv.DictReader((folder / "metrics.csv").open())]
    return {
        "kappa": report.kappa,
        "accuracy": report.accuracy,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_epoch": statistics.median(seconds),
        "inference_ms_per_scan": inference_ms,
    }


# ----------------------------------------------------------------------------- the parent
def write_seed_data(out: Path, seed: int, args: argparse.Namespace) -> dict:
    """The synthetic Table-1 data of one seed (phantoms, test phantoms, action clips)."""
    from synthetic_table import class_counts, write_data

    recipe = yardstick(seed, args.size[0], args.size[1], args.epochs, args.pretrain_epochs, args.device)
    shape = (args.size[0], 64, 64) if not args.quick else (args.size[0], args.size[1], args.size[1])
    counts = (class_counts(args.scans), class_counts(args.scans // 2))
    data = write_data(out / f"seed{seed}" / "data", seed, recipe, counts, shape, videos=args.videos)
    return {key: str(value) for key, value in data.items()}


def measured_group(group: str, seed: int, data: dict, out: Path, args: argparse.Namespace) -> dict[str, dict]:
    """One group's rows for one seed, each with the peak resident memory of this process."""
    rows = run_group(group, seed, {k: Path(v) for k, v in data.items()}, out, args)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {name: {**row, "peak_rss_mb": peak} for name, row in rows.items()}


def run_child(group: str, seed: int, data: dict, out: Path, args: argparse.Namespace) -> dict:
    """``measured_group`` in a process of its own, so that its memory peak is the group's."""
    settings = [
        f"--out={args.out}",
        f"--scans={args.scans}",
        f"--videos={args.videos}",
        f"--epochs={args.epochs}",
        f"--pretrain-epochs={args.pretrain_epochs}",
        f"--device={args.device}",
        "--size",
        *map(str, args.size),
        *([f"--threads={args.threads}"] if args.threads else []),
    ]
    command = [sys.executable, __file__, "--child", group, "--seed-data", json.dumps([seed, data]), *settings]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{group}, seed {seed} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(per_seed: list[dict[str, dict]], groups: list[str]) -> list[dict]:
    rows = []
    for group in groups:
        names = GROUPS[group]
        for name in names:
            records = [seed[name] for seed in per_seed]
            kappas = [r["kappa"] for r in records]
            accuracies = [r["accuracy"] for r in records]
            rows.append(
                {
                    "name": name,
                    "kappa_mean": statistics.mean(kappas),
                    "kappa_sd": statistics.stdev(kappas) if len(kappas) > 1 else 0.0,
                    "kappas": kappas,
                    "accuracy_mean": statistics.mean(accuracies),
                    "accuracy_sd": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
                    "parameters": records[0]["parameters"],
                    "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in records),
                    "inference_ms_per_scan": statistics.mean(r["inference_ms_per_scan"] for r in records),
                    "peak_rss_mb": max(r["peak_rss_mb"] for r in records),
                    "group": group,
                }
            )
    return rows


def table(rows: list[dict]) -> str:
    from _timing import markdown_table

    header = [
        "method",
        "test kappa",
        "test accuracy",
        "parameters",
        "s / epoch",
        "inference ms / scan",
        "peak RSS (MB, per group)",
    ]
    cells = [
        [
            r["name"],
            f"{r['kappa_mean']:.2f} ± {r['kappa_sd']:.2f}",
            f"{r['accuracy_mean']:.2f} ± {r['accuracy_sd']:.2f}",
            f"{r['parameters'] / 1e6:.2f} M",
            f"{r['seconds_per_epoch']:.1f}",
            f"{r['inference_ms_per_scan']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
        ]
        for r in rows
    ]
    return markdown_table(header, cells)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder (peers.json, table.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scans", type=int, default=100, help="phantoms, split 80/20; half as many test phantoms")
    parser.add_argument("--videos", type=int, default=8, help="action clips per class")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs of every row (the demo's: 12)")
    parser.add_argument(
        "--pretrain-epochs", type=int, default=None, help="video pretraining epochs of every PT row (the demo's: 14)"
    )
    parser.add_argument("--size", type=int, nargs=2, default=[32, 32], metavar=("DEPTH", "SIZE"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--quick", action="store_true", help="tiny data, one seed, one epoch (tests)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed-data", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.scans, args.videos, args.epochs, args.pretrain_epochs = [0], 25, 2, 1, 1
    from slicevid.recipes import demo_recipe

    demo = demo_recipe()
    args.epochs = args.epochs or demo.finetune.epochs
    args.pretrain_epochs = args.pretrain_epochs or demo.pretrain.epochs
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    out = Path(args.out)
    if args.child:  # one group, one seed: print its rows as one JSON line
        seed, data = json.loads(args.seed_data)
        print(json.dumps(measured_group(args.child, seed, data, out, args)))
        return []
    from _timing import finish_table, machine

    started = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        data = write_seed_data(out, seed, args)
        rows = {}
        for group in args.groups:
            # --quick runs in this process (no start-up per group); its memory column is then the process's
            run = measured_group if args.quick else run_child
            group_rows = run(group, seed, data, out, args)
            print(f"seed {seed}: " + ", ".join(f"{k} {v['kappa']:.2f}" for k, v in group_rows.items()), flush=True)
            rows |= group_rows
        per_seed.append(rows)
    summary = summarize(per_seed, args.groups)
    title = (
        f"Peers on the synthetic Table-1 phantoms at {args.size[0]} x {args.size[1]} x {args.size[1]}, "
        f"{len(args.seeds)} seeds, {args.epochs} epochs each"
    )
    finish_table(out, title, started, table(summary), {"machine": machine(), "rows": summary}, name="peers.json")
    return summary


if __name__ == "__main__":
    main()
