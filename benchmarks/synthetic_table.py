"""Table 1 on the embedded synthetic data, sized for a CPU: the yardstick model changes are measured on.

Two tables, each over several seeds (data, splits and training all follow the seed), printed
as kappa mean +- standard deviation:

* ``--table paper`` (default): the paper's four configurations, No PT, PT, PT+CW and
  PT+CW+AUG, on phantoms in the challenge's class proportions (so class weights matter),
  with the demo's recipe (compact CNN, LSTM, AdamW). Pretraining runs once per seed.
* ``--table variants``: slice-sequence options from scratch (No PT), on phantoms whose depth
  varies between 24 and 40 slices: the LSTM baseline, a bidirectional GRU, gated attention,
  a transformer, 2.5D slice context, and native depth instead of SIZ to 16 slices (with the
  LSTM and with attention); each row also gives the seconds per training epoch.
* ``--table ablation``: what makes the demo's recipe learn. No PT on the demo's balanced
  phantoms, with one ingredient taken out per row (the feature LayerNorm, precise BatchNorm,
  AdamW) or the first demo's ResNet-18 encoder put back.

Phantoms are 32-40 x 64 x 64, inputs 16 x 48 x 48 (variants: native depth keeps each scan's
24-40 slices). Each row keeps its epoch of lowest validation loss and is scored on a separate
set of test phantoms, half as many (same class proportions), so the choice of epoch does not inflate its
numbers. Everything is synthetic stand-in data: it says which options learn this task, not
how they fare on CT.

    python benchmarks/synthetic_table.py --out runs/synthetic-table                  # about 9 min, 2 cores
    python benchmarks/synthetic_table.py --table variants --out runs/variants        # about 15 min
    python benchmarks/synthetic_table.py --quick --out /tmp/t                        # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from _timing import machine, markdown_table

from slicevid._io import atomic_write_text
from slicevid.data import TB_CLASSES, UCF50_PAPER_CLASSES, CTPreprocessing, ImageCLEFTBT, ucf50
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.data.synthetic.phantoms import CHALLENGE_PROPORTIONS
from slicevid.demo import DemoSettings
from slicevid.model import create_model
from slicevid.train import evaluate, finetune, pretrain

SCANS = 200  # split 80/20 into training and validation; half as many test phantoms, drawn apart
PAPER_ROWS = {
    "No PT": (False, False, "none"),
    "PT": (True, False, "none"),
    "PT+CW": (True, True, "none"),
    "PT+CW+AUG": (True, True, "paper"),
}


@dataclass(frozen=True)
class Variant:
    """One row of the variants table: an aggregator, its options, slice context, and the depth handling."""

    aggregator: str = "lstm"
    aggregator_kwargs: tuple[tuple[str, object], ...] = (("hidden_size", 128),)
    slice_context: int = 0
    native_depth: bool = False


VARIANTS = {
    "LSTM (SIZ to 16 slices)": Variant(),
    "BiGRU": Variant("gru", (("hidden_size", 128), ("bidirectional", True))),
    "attention": Variant("attention", ()),
    "transformer": Variant("transformer", ()),
    "LSTM, slice_context=1": Variant(slice_context=1),
    "LSTM, native depth": Variant(native_depth=True),
    "attention, native depth": Variant("attention", (), native_depth=True),
}


ABLATIONS = {  # name: (DemoSettings changes, create_model changes)
    "demo recipe": ({}, {}),
    "without the feature LayerNorm": ({}, {"feature_norm": "none"}),
    "without precise BatchNorm": ({"precise_bn": 0}, {}),
    "SGD (lr 0.01, momentum 0.9) for AdamW": ({"optimizer": "sgd", "lr": 0.01}, {}),
    "ResNet-18 encoder (the first demo's)": ({}, {"encoder": "timm:resnet18", "encoder_kwargs": {}}),
}


def class_counts(total: int) -> list[int]:
    """``total`` scans split in the challenge's class proportions (at least 5 per class)."""
    return [max(5, round(total * p / sum(CHALLENGE_PROPORTIONS))) for p in CHALLENGE_PROPORTIONS]


def write_phantoms(
    root: Path, settings: DemoSettings, counts: tuple[int | list[int], int | list[int]], depths=None
) -> tuple[Path, Path]:
    """Training-and-validation phantoms and, from a second random stream, the test phantoms."""
    return (
        write_tb_phantoms(root / "phantoms", counts[0], settings.phantom_shape, settings.seed, depths=depths),
        write_tb_phantoms(
            root / "phantoms-test", counts[1], settings.phantom_shape, [settings.seed, 1], depths=depths, prefix="TST"
        ),
    )


def write_data(root: Path, settings: DemoSettings, total: int, depths: tuple[int, int] | None) -> tuple[Path, Path]:
    labels = write_phantoms(root, settings, (class_counts(total), class_counts(total // 2)), depths)
    write_action_videos(
        root / "videos",
        UCF50_PAPER_CLASSES,
        settings.videos_per_class,
        settings.volume_size[0],
        settings.volume_size[1],
        settings.seed,
    )
    return labels


def ct_splits(labels: tuple[Path, Path], settings: DemoSettings, preprocessing: CTPreprocessing, cache: Path):
    """Training, validation and test datasets, preprocessed into ``cache`` up front."""
    kwargs = {"preprocessing": preprocessing, "seed": settings.seed, "cache_dir": cache}
    splits = (
        ImageCLEFTBT(labels[0].parent, labels[0], "train", **kwargs),
        ImageCLEFTBT(labels[0].parent, labels[0], "val", **kwargs),
        ImageCLEFTBT(labels[1].parent, labels[1], "all", **kwargs),
    )
    for split in splits:
        split.fill_cache(workers=2, progress=False)
    return splits


def run_paper_rows(seed: int, settings: DemoSettings, out: Path, total: int) -> dict[str, dict]:
    """Pretrain once, then fine-tune the four configurations; returns their kappas and timings."""
    labels = write_data(out / "data", settings, total, None)
    video = {
        "classes": UCF50_PAPER_CLASSES,
        "num_frames": settings.volume_size[0],
        "size": settings.volume_size[1],
        "seed": seed,
        "cache_dir": out / "cache" / "clips",
    }
    video_model = settings.model(len(UCF50_PAPER_CLASSES))
    pretrained = pretrain(
        video_model,
        ucf50(out / "data" / "videos", split="train", **video),
        ucf50(out / "data" / "videos", split="val", **video),
        settings.train_config(settings.pretrain_epochs, out / "pretrain", False),
        freeze_encoder=False,
    )
    video_model.save_pretrained(out / "pretrained")
    train, val, test = ct_splits(
        labels, settings, CTPreprocessing(size=settings.volume_size), out / "cache" / "volumes"
    )
    records = {}
    for name, (use_pt, class_weights, augment) in PAPER_ROWS.items():
        config = settings.train_config(settings.finetune_epochs, out / name.replace("+", "_").replace(" ", "_"), False)
        config = replace(config, class_weights=class_weights, augment=augment)
        start = out / "pretrained" if use_pt else settings.model(len(TB_CLASSES))
        records[name] = _record(*finetune(start, train, val, config), test)
    records["pretraining"] = {"val_accuracy": pretrained.evaluation.report.accuracy}
    return records


def run_variant_rows(seed: int, settings: DemoSettings, out: Path, total: int) -> dict[str, dict]:
    labels = write_data(out / "data", settings, total, depths=(24, 40))
    fixed = CTPreprocessing(size=settings.volume_size)
    native = CTPreprocessing(size=(None, *settings.volume_size[1:]), resample="native")
    splits = {
        False: ct_splits(labels, settings, fixed, out / "cache"),
        True: ct_splits(labels, settings, native, out / "cache"),
    }
    records = {}
    for name, variant in VARIANTS.items():
        import torch

        torch.manual_seed(seed)
        model = create_model(
            settings.encoder,
            variant.aggregator,
            len(TB_CLASSES),
            head_hidden=settings.head_hidden,
            encoder_kwargs={"widths": settings.widths},
            feature_norm="layernorm",
            aggregator_kwargs=dict(variant.aggregator_kwargs),
            slice_context=variant.slice_context,
        )
        train, val, test = splits[variant.native_depth]
        config = settings.train_config(settings.finetune_epochs, out / name.replace(" ", "_").replace(",", ""), False)
        records[name] = _record(*finetune(model, train, val, config), test)
    return records


def run_ablation_rows(seed: int, settings: DemoSettings, out: Path, total: int) -> dict[str, dict]:
    per_class = max(1, total // len(TB_CLASSES))
    labels = write_phantoms(out / "data", settings, (per_class, max(1, per_class // 2)))
    train, val, test = ct_splits(labels, settings, CTPreprocessing(size=settings.volume_size), out / "cache")
    records = {}
    for name, (setting_changes, model_changes) in ABLATIONS.items():
        import torch

        row_settings = settings.replace(**setting_changes)
        torch.manual_seed(seed)
        model_kwargs = {
            "encoder": settings.encoder,
            "encoder_kwargs": {"widths": settings.widths},
            "feature_norm": "layernorm",
            **model_changes,
        }
        model = create_model(
            aggregator=settings.aggregator,
            num_classes=len(TB_CLASSES),
            head_hidden=settings.head_hidden,
            aggregator_kwargs={"hidden_size": settings.hidden_size},
            **model_kwargs,
        )
        config = row_settings.train_config(settings.finetune_epochs, out / name.split(" (")[0].replace(" ", "_"), False)
        if setting_changes.get("optimizer") == "sgd":
            config = replace(config, momentum=0.9)
        records[name] = _record(*finetune(model, train, val, config), test)
    return records


def _record(model, result, test) -> dict:
    """Test kappa and accuracy of the kept epoch's weights, its validation kappa, and the epoch time."""
    seconds = [row["seconds"] for row in result.history]
    report = evaluate(model, test, device="cpu", progress=False).report
    return {
        "kappa": report.kappa,
        "accuracy": report.accuracy,
        "val_kappa": result.evaluation.report.kappa,
        "epochs": len(result.history),
        "seconds_per_epoch": statistics.median(seconds),
    }


def summarize(per_seed: dict[int, dict[str, dict]], rows: list[str], with_time: bool) -> str:
    def mean_sd(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}"

    table = []
    for name in rows:
        records = [per_seed[seed][name] for seed in per_seed]
        cells = [
            name,
            mean_sd([r["kappa"] for r in records]),
            mean_sd([r["accuracy"] for r in records]),
            ", ".join(f"{r['kappa']:.2f}" for r in records),
            f"{statistics.mean(r['val_kappa'] for r in records):.2f}",
        ]
        if with_time:
            cells.append(f"{statistics.mean(r['seconds_per_epoch'] for r in records):.1f}")
        table.append(cells)
    header = ["configuration", "test kappa (mean ± sd)", "test accuracy", "test kappa per seed", "val kappa"]
    return markdown_table(header + (["s / epoch"] if with_time else []), table)


TABLES = {
    "paper": (run_paper_rows, PAPER_ROWS),
    "variants": (run_variant_rows, VARIANTS),
    "ablation": (run_ablation_rows, ABLATIONS),
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--table", choices=sorted(TABLES), default="paper")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scans", type=int, default=SCANS, help="phantoms, in the challenge's proportions")
    parser.add_argument("--quick", action="store_true", help="tiny data and one epoch (tests)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    per_seed = {}
    for seed in args.seeds:
        settings = DemoSettings(seed=seed)
        total = args.scans
        if args.quick:
            settings = DemoSettings.quick().replace(seed=seed, phantom_shape=(12, 32, 32))
            total = 25
        per_seed[seed] = TABLES[args.table][0](seed, settings, out / f"seed{seed}", total)
        print(
            f"seed {seed}: " + ", ".join(f"{k} {v['kappa']:.2f}" for k, v in per_seed[seed].items() if "kappa" in v),
            flush=True,
        )
    rows = list(TABLES[args.table][1])
    text = (
        f"Synthetic Table 1 ({args.table}), {len(args.seeds)} seeds, {machine()}, "
        f"{time.perf_counter() - started:.0f} s in all\n\n{summarize(per_seed, rows, args.table != 'paper')}\n"
    )
    if args.table == "paper":
        accuracies = [per_seed[s]["pretraining"]["val_accuracy"] for s in per_seed]
        text += f"\nPretraining validation accuracy: {', '.join(f'{a:.2f}' for a in accuracies)}\n"
    atomic_write_text(out / "results.json", json.dumps(per_seed, indent=2) + "\n")
    atomic_write_text(out / "table.md", text)
    print(text)
    return text


if __name__ == "__main__":
    main()
