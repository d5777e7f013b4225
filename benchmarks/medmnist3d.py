"""slicevid on real scans: AdrenalMNIST3D (MedMNIST v2) beside MONAI's 3D CNNs and the published baselines.

Every row is trained by slicevid's own ``fit`` on the official split, with one recipe: AdamW at
1e-3 (weight decay 0.01), batches of 32, BatchNorm statistics recomputed before each validation,
the learning rate cut on a validation-loss plateau, and the kept model chosen by validation AUC.
Each row has an epoch budget and a wall-clock budget, and stops at whichever comes first.

* slicevid: the compact CNN with gated attention, a bidirectional GRU and the paper's LSTM, from
  random weights (No PT) and after pretraining on the synthetic action clips (PT, the ViPTT-Net
  transfer at this size); 2.5D input (``slice_context=1``); a timm ResNet-18 slice encoder from
  random weights;
* MONAI ``resnet10`` and ``resnet18`` (``spatial_dims=3``) and ``DenseNet121`` (3D; its five
  halvings need 32 voxels, so its volumes are zero-padded from 28 to 32 on each axis);
* anchors: the MedMNIST v2 paper's rows for this test split (Yang et al., Scientific Data 2023,
  Table 4; 100 epochs, Adam at 1e-3, the model of the best validation AUC), quoted, not run.

Nothing is chosen on the test split: the test AUC is recorded each time a row's validation AUC
reaches a new best, so the two comparisons (at equal epochs, at equal wall-clock time) read the
model that validation chose by then. Each kept model also gets a 95% bootstrap interval of its
test AUC (1,000 resamples). Seconds per epoch stand beside the same model's in-memory floor (a
bare training loop over tensors already in memory), so the cost of slicevid's loop shows.

    python benchmarks/medmnist3d.py --out runs/medmnist3d                       # 3 seeds, every row
    python benchmarks/medmnist3d.py --out runs/m --seeds 0 --rows slicevid      # the slicevid rows
    python benchmarks/medmnist3d.py --npz ~/.medmnist/nodulemnist3d_64.npz --out runs/nodule64
    python benchmarks/medmnist3d.py --quick --out /tmp/m                        # smoke test

Each finished (row, seed) is saved in its folder under ``--out``, so an interrupted run, rerun
with the same command, goes on where it stopped.

Data: ``--npz`` (default: ``../shared/data/adrenalmnist3d.npz`` beside the repository), any
MedMNIST 3D file at any size. The data is CC BY 4.0; cite MedMNIST v2 with any figure from it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from slicevid.train.callbacks import Callback

DEFAULT_NPZ = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adrenalmnist3d.npz"
PUBLISHED = {  # MedMNIST v2 (Yang et al., Scientific Data 2023), Table 4, AdrenalMNIST3D test split: AUC, ACC
    "ResNet-18 + 2.5D": (0.718, 0.772),
    "ResNet-18 + 3D": (0.827, 0.721),
    "ResNet-18 + ACS": (0.839, 0.754),
    "ResNet-50 + 2.5D": (0.732, 0.763),
    "ResNet-50 + 3D": (0.828, 0.745),
    "ResNet-50 + ACS": (0.828, 0.758),
    "auto-sklearn": (0.828, 0.802),
    "AutoKeras": (0.804, 0.705),
}
"""The published rows of the MedMNIST v2 paper for AdrenalMNIST3D (quoted; they trained 100 epochs)."""
ATTENTION = {"aggregator": "attention", "aggregator_kwargs": {}}
BIGRU = {"aggregator": "gru", "aggregator_kwargs": {"hidden_size": 128, "bidirectional": True}}
LSTM = {"aggregator": "lstm", "aggregator_kwargs": {"hidden_size": 128}}


@dataclass(frozen=True)
class Row:
    """One method: how its model is built, whether it starts from video pretraining, its wall-clock budget."""

    name: str
    group: str
    architecture: dict = field(default_factory=dict)
    peer: str | None = None
    pretrained: bool = False
    seconds: float = 80.0


ROWS = [
    Row("slicevid compact CNN + attention", "slicevid", ATTENTION),
    Row("slicevid compact CNN + attention, PT", "slicevid", ATTENTION, pretrained=True),
    Row("slicevid compact CNN + BiGRU", "slicevid", BIGRU),
    Row("slicevid compact CNN + BiGRU, PT", "slicevid", BIGRU, pretrained=True),
    Row("slicevid compact CNN + LSTM (the paper's aggregator)", "slicevid", LSTM),
    Row("slicevid compact CNN + LSTM, PT", "slicevid", LSTM, pretrained=True),
    Row("slicevid compact CNN + attention, 2.5D", "slicevid", {**ATTENTION, "slice_context": 1}),
    Row(
        "slicevid timm ResNet-18 + attention",
        "slicevid",
        {**ATTENTION, "encoder": "timm:resnet18", "adapter": "none"},
        seconds=140.0,
    ),
    Row("MONAI ResNet-10 (3D)", "MONAI", peer="resnet10", seconds=600.0),
    Row("MONAI ResNet-18 (3D)", "MONAI", peer="resnet18", seconds=600.0),
    Row("MONAI DenseNet121-3D", "MONAI", peer="densenet121", seconds=600.0),
]
"""The rows this benchmark runs, in table order."""
GROUPS = {row.name: row.group for row in ROWS}
BASE = {"encoder": "compact_cnn", "feature_norm": "layernorm", "head_hidden": 128}
"""What every slicevid row shares: the compact CNN, layer-normalised slice features, a 128-unit hidden layer."""


# ----------------------------------------------------------------------------- the models
class PadTo(nn.Module):
    """Zero-pad ``(B, C, D, H, W)`` volumes to ``size`` on every axis, then run ``model`` (DenseNet needs 32)."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model, self.size = model, size

    def forward(self, volumes: torch.Tensor) -> torch.Tensor:
        pads = []
        for extent in reversed(volumes.shape[2:]):
            missing = max(0, self.size - extent)
            pads += [missing // 2, missing - missing // 2]
        return self.model(nn.functional.pad(volumes, pads))


def peer_model(kind: str, classes: int, side: int) -> nn.Module:
    """A MONAI 3D CNN with one input channel and ``classes`` outputs, at MONAI's defaults otherwise."""
    from monai.networks.nets import DenseNet121, resnet10, resnet18

    if kind == "densenet121":
        return PadTo(DenseNet121(spatial_dims=3, in_channels=1, out_channels=classes), max(32, side))
    build = {"resnet10": resnet10, "resnet18": resnet18}[kind]
    return build(spatial_dims=3, n_input_channels=1, num_classes=classes)


def train_settings(args: argparse.Namespace, seed: int, row: Row, out: Path):
    from slicevid.train import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        time_limit=row.seconds * args.budget_scale,
        batch_size=32,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-2,
        plateau_patience=4,
        early_stopping_patience=0,
        precise_bn=4,
        monitor="val_auc",
        threshold="argmax",  # accuracy at 0.5, as the published rows report it
        seed=seed,
        device=args.device,
        out_dir=str(out),
        overwrite=True,
        progress=False,
    )


# ----------------------------------------------------------------------------- one row
class TestWhenBest(Callback):
    """A fit callback that scores the test split whenever validation AUC reaches a new best.

    The test scores are only recorded (never read by training), with each epoch's cumulative
    training seconds, so that "the model validation had chosen by epoch E / by time T" can be
    read afterwards for both comparisons.
    """

    def __init__(self, test) -> None:
        self.test, self.events = test, []

    def on_epoch_end(self, trainer, row: dict) -> None:
        if trainer.state.best_epoch != row["epoch"]:
            return
        from slicevid.train import evaluate

        report = evaluate(trainer.model, self.test, batch_size=64, device=trainer.config.device, progress=False).report
        seconds = sum(r["seconds"] for r in trainer.state.history)
        kept = {"epoch": row["epoch"], "seconds": seconds, "val_auc": row["val_auc"]}
        self.events.append({**kept, "auc": report.auc, "acc": report.accuracy})


def floor_seconds(build, train, val, batches: int = 6, batch_size: int = 32) -> float:
    """Seconds per epoch of a bare loop on tensors already in memory: a training pass (forward, loss,
    backward, AdamW step) and a validation forward pass, timed on a few batches and scaled to the data."""
    model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = max(1, min(batches, len(train) // batch_size - 1))
    count = batch_size * (batches + 1)
    volumes = torch.stack([train[i % len(train)][0] for i in range(count)])
    labels = torch.as_tensor([train[i % len(train)][1] for i in range(count)])

    def step(index: int) -> None:
        chunk = slice(batch_size * index, batch_size * (index + 1))
        loss = nn.functional.cross_entropy(model(volumes[chunk]), labels[chunk])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    step(0)  # warm-up
    started = time.perf_counter()
    for index in range(1, batches + 1):
        step(index)
    training = (time.perf_counter() - started) / (batch_size * batches) * len(train)
    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        model(volumes[: 2 * batch_size])
    return training + (time.perf_counter() - started) / (2 * batch_size) * len(val)


def row_folder(out: Path, seed: int, row: Row) -> Path:
    return out / f"seed{seed}" / row.name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")


def saved_result(out: Path, seed: int, row: Row) -> Path:
    """Where a finished (row, seed) keeps its result, so that a rerun skips it."""
    return row_folder(out, seed, row) / "result.json"


def kept_or_run(row: Row, seed: int, data: dict, starts: dict[str, Path], args, out: Path) -> dict:
    """A row's result on one seed: the one an earlier, interrupted run saved, else a fresh run's.

    A whole run takes hours on a CPU, so each finished (row, seed) is saved as it ends and a
    rerun with the same ``--out`` goes on where the last one stopped.
    """
    from slicevid._io import atomic_write_text

    saved = saved_result(out, seed, row)
    if saved.is_file():
        return json.loads(saved.read_text())
    started = time.perf_counter()
    result = run_row(row, seed, data, starts.get(row.name), args, out)
    result["wall_seconds"] = time.perf_counter() - started  # training and test scoring
    atomic_write_text(saved, json.dumps(result))
    return result


def run_row(row: Row, seed: int, data: dict, pretrained: Path | None, args: argparse.Namespace, out: Path) -> dict:
    """Train one row on one seed; its kept model's test scores, costs and best-epoch events."""
    from slicevid import create_model
    from slicevid.keys import TARGET
    from slicevid.metrics import bootstrap_intervals
    from slicevid.metrics.clinical import auc
    from slicevid.model_config import Architecture
    from slicevid.recipes import ModelStart, run_finetuning
    from slicevid.tasks import Multiclass
    from slicevid.train import evaluate, fit

    train, val, test = data["train"], data["val"], data["test"]
    tasks = {TARGET: Multiclass(train.class_names)}
    folder = row_folder(out, seed, row)
    settings = train_settings(args, seed, row, folder)
    tracker = TestWhenBest(test)
    side = train.input_spec()["input_size"][-1]
    if row.peer is None:
        architecture = Architecture(**{**BASE, **row.architecture})
        start = ModelStart(architecture, pretrained=pretrained if row.pretrained else None)
        model, _ = run_finetuning(start, train, val, settings, tasks=tasks, callbacks=[tracker])

        def build() -> nn.Module:
            return create_model(**{**BASE, **row.architecture}, num_classes=len(train.class_names))
    else:

        def build() -> nn.Module:
            return peer_model(row.peer, len(train.class_names), side)

        torch.manual_seed(seed)
        model = build()
        fit(model, train, val, settings, callbacks=[tracker])
    started = time.perf_counter()
    kept = evaluate(model, test, batch_size=64, device=args.device, progress=False)
    inference_ms = 1000 * (time.perf_counter() - started) / len(test)
    truth, scores = kept.targets_of(TARGET), kept.probabilities_of(TARGET)
    (low, high) = bootstrap_intervals(lambda i: {"auc": auc(truth[i], scores[i])}, len(truth), args.bootstrap)["auc"]
    with (folder / "metrics.csv").open() as handle:
        epochs = [float(r["seconds"]) for r in csv.DictReader(handle)]
    return {
        "test_auc": kept.report.auc,
        "test_acc": kept.report.accuracy,
        "auc_ci": [low, high],
        "epochs_run": len(epochs),
        "kept_epoch": tracker.events[-1]["epoch"] if tracker.events else None,
        "val_auc": tracker.events[-1]["val_auc"] if tracker.events else math.nan,
        "seconds_to_kept": tracker.events[-1]["seconds"] if tracker.events else None,
        "seconds_per_epoch": statistics.median(epochs),
        "floor_seconds_per_epoch": floor_seconds(build, train, val),
        "parameters": sum(p.numel() for p in model.parameters()),
        "inference_ms_per_scan": inference_ms,
        "events": tracker.events,
    }


def pretrain_on_clips(seed: int, side: int, depth: int, args: argparse.Namespace, out: Path) -> dict[str, Path]:
    """Each PT row's start: its architecture pretrained on the synthetic action clips, at the scans' size."""
    from slicevid.data import ClipSettings, ucf50
    from slicevid.data.synthetic import write_action_videos
    from slicevid.model_config import Architecture
    from slicevid.recipes import ModelStart, run_pretraining
    from slicevid.train import TrainConfig

    videos = out / f"seed{seed}" / "videos"
    if not videos.is_dir():
        write_action_videos(videos, n_per_class=args.videos, frames=max(depth, 16), size=max(side, 32), seed=seed)
    clip = ClipSettings(num_frames=depth, size=side)
    train, val = (ucf50(videos, split=s, clip=clip, seed=seed, cache_dir=out / "clips") for s in ("train", "val"))
    starts = {}
    for row in ROWS:
        if not row.pretrained:
            continue
        folder = out / f"seed{seed}" / f"pretrain-{row.architecture['aggregator']}"
        if (folder / "best").is_dir():  # pretrained by an earlier, interrupted run
            starts[row.name] = folder / "best"
            continue
        settings = TrainConfig(
            epochs=args.pretrain_epochs,
            batch_size=16,
            optimizer="adamw",
            lr=2e-3,
            precise_bn=4,
            early_stopping_patience=0,
            seed=seed,
            device=args.device,
            out_dir=str(folder),
            overwrite=True,
            progress=False,
        )
        start = ModelStart(Architecture(**{**BASE, **row.architecture}))
        run_pretraining(start, train, val, settings, freeze_encoder=False)
        starts[row.name] = folder / "best"
    return starts


# ----------------------------------------------------------------------------- the table
def comparisons(results: dict[str, list[dict]], epochs: int, seconds: list[float]) -> dict[str, dict]:
    """Per row: the test AUC of the model validation had chosen by ``epochs`` epochs, and by each of ``seconds``."""

    def chosen(events: list[dict], key: str, limit: float) -> float:
        within = [e for e in events if e[key] <= limit]
        return within[-1]["auc"] if within else math.nan

    return {
        name: {
            "auc_at_epochs": _mean([chosen(run["events"], "epoch", epochs) for run in runs]),
            "auc_at_seconds": {
                f"{limit:.0f}": _mean([chosen(run["events"], "seconds", limit) for run in runs]) for limit in seconds
            },
        }
        for name, runs in results.items()
    }


def _auc_by_then(value: float) -> str:
    """A comparison's cell: the AUC, or a note that no epoch had finished by then."""
    return "no epoch yet" if math.isnan(value) else f"{value:.3f}"


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.mean(finite) if finite else math.nan


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def summarize(results: dict[str, list[dict]], args) -> list[dict]:
    compared = comparisons(results, args.equal_epochs, args.equal_seconds)
    rows = []
    for name, runs in results.items():
        aucs, accs = [r["test_auc"] for r in runs], [r["test_acc"] for r in runs]
        rows.append(
            {
                "name": name,
                "test_auc": statistics.mean(aucs),
                "test_auc_sd": statistics.stdev(aucs) if len(aucs) > 1 else 0.0,
                "test_aucs": aucs,
                "auc_cis": [r["auc_ci"] for r in runs],
                "val_auc": _mean([r["val_auc"] for r in runs]),
                "test_acc": statistics.mean(accs),
                "test_acc_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "seconds_per_epoch": statistics.mean(r["seconds_per_epoch"] for r in runs),
                "floor_seconds_per_epoch": statistics.mean(r["floor_seconds_per_epoch"] for r in runs),
                "seconds_to_kept": _mean([r["seconds_to_kept"] or math.nan for r in runs]),
                "epochs_run": statistics.mean(r["epochs_run"] for r in runs),
                "parameters": runs[0]["parameters"],
                "inference_ms_per_scan": statistics.mean(r["inference_ms_per_scan"] for r in runs),
                **compared[name],
            }
        )
    return rows


def table(rows: list[dict], args) -> str:
    from _timing import markdown_table

    header = [
        "method",
        "validation AUC",
        "test AUC (mean ± sd)",
        "95% CI of each run's AUC",
        "test ACC",
        f"AUC at {args.equal_epochs} epochs",
        *(f"AUC at {limit:.0f} s" for limit in args.equal_seconds),
        "epochs run",
        "s / epoch (floor)",
        "s to kept epoch",
        "parameters",
        "inference ms / scan",
    ]
    cells = [
        [
            r["name"],
            f"{r['val_auc']:.3f}",
            f"{r['test_auc']:.3f} ± {r['test_auc_sd']:.3f}",
            "; ".join(f"{low:.2f}-{high:.2f}" for low, high in r["auc_cis"]),
            f"{r['test_acc']:.3f} ± {r['test_acc_sd']:.3f}",
            f"{r['auc_at_epochs']:.3f}",
            *(_auc_by_then(value) for value in r["auc_at_seconds"].values()),
            f"{r['epochs_run']:.1f}",
            f"{r['seconds_per_epoch']:.1f} ({r['floor_seconds_per_epoch']:.1f})",
            f"{r['seconds_to_kept']:.0f}",
            f"{r['parameters'] / 1e6:.2f} M",
            f"{r['inference_ms_per_scan']:.1f}",
        ]
        for r in rows
    ]
    cells += [
        [f"MedMNIST v2: {name} (published)", "", f"{auc:.3f}", "", f"{acc:.3f}", *[""] * (len(header) - 5)]
        for name, (auc, acc) in PUBLISHED.items()
    ]
    return markdown_table(header, cells) + "\n\n" + chosen_by_validation(rows)


def chosen_by_validation(rows: list[dict]) -> str:
    """Per group of rows, the one of the best mean validation AUC and its test AUC (the honest headline)."""
    lines = []
    for group in dict.fromkeys(GROUPS[r["name"]] for r in rows):
        members = [r for r in rows if GROUPS[r["name"]] == group and math.isfinite(r["val_auc"])]
        if members:
            best = max(members, key=lambda r: r["val_auc"])
            lines.append(
                f"Chosen by validation AUC among the {group} rows: {best['name']} "
                f"(validation {best['val_auc']:.3f}, test {best['test_auc']:.3f} ± {best['test_auc_sd']:.3f})."
            )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder (medmnist3d.json, table.md, run folders)")
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help="a MedMNIST 3D .npz (default: AdrenalMNIST3D)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", nargs="+", default=["slicevid", "MONAI"], help="groups or row names to run")
    parser.add_argument("--epochs", type=int, default=15, help="every row's epoch budget")
    parser.add_argument("--budget-scale", type=float, default=1.0, help="multiplies every row's wall-clock budget")
    parser.add_argument("--pretrain-epochs", type=int, default=8, help="video pretraining epochs of the PT rows")
    parser.add_argument("--videos", type=int, default=12, help="synthetic action clips per class for PT")
    parser.add_argument("--equal-epochs", type=int, default=4, help="the equal-epochs comparison's epoch count")
    parser.add_argument(
        "--equal-seconds", type=float, nargs="+", default=[100.0, 300.0], help="the equal-time comparisons' seconds"
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of each run's test AUC")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="a few volumes, one seed, one epoch (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.pretrain_epochs, args.videos, args.bootstrap = [0], 1, 1, 2, 20
        args.equal_epochs, args.equal_seconds = 1, [600.0]
    return args


def load_data(args) -> dict:
    from slicevid.data import MedMNIST3D

    data = {split: MedMNIST3D(args.npz, split) for split in ("train", "val", "test")}
    if args.quick:  # a handful of volumes of each class
        data = {split: d.select([*range(0, len(d), max(1, len(d) // 40))][:40]) for split, d in data.items()}
    return data


def main(argv: list[str] | None = None) -> list[dict]:
    from _timing import finish_table, machine

    args = parse(argv)
    out = Path(args.out)
    started = time.perf_counter()
    chosen = [row for row in ROWS if row.group in args.rows or row.name in args.rows]
    data = load_data(args)
    depth, side = data["train"].input_spec()["input_size"][0], data["train"].input_spec()["input_size"][-1]
    results: dict[str, list[dict]] = {row.name: [] for row in chosen}
    for seed in args.seeds:
        pretraining = time.perf_counter()
        pending = [row for row in chosen if not saved_result(out, seed, row).is_file()]
        starts = pretrain_on_clips(seed, side, depth, args, out) if any(r.pretrained for r in pending) else {}
        if starts:
            seconds = time.perf_counter() - pretraining
            print(f"seed {seed} | video pretraining of the PT rows not saved before: {seconds:.0f} s", flush=True)
        for row in chosen:
            result = kept_or_run(row, seed, data, starts, args, out)
            results[row.name].append(result)
            print(
                f"seed {seed} | {row.name}: test AUC {result['test_auc']:.3f}, {result['epochs_run']} epochs",
                flush=True,
            )
    rows = summarize(results, args)
    title = f"{args.npz.name}, official split, {len(args.seeds)} seed(s), epoch budget {args.epochs}"
    payload = {"machine": machine(), "npz": str(args.npz), "rows": rows, "runs": results, "published": PUBLISHED}
    spent = sum(run["wall_seconds"] for runs in results.values() for run in runs)  # resumed runs' too
    finish_table(out, title, started, table(rows, args), payload, name="medmnist3d.json", spent=spent)
    return rows


if __name__ == "__main__":
    main()
