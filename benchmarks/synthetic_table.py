"""Table 1 on the embedded synthetic data, sized for a CPU: the yardstick model changes are measured on.

Three tables, each over several seeds (data, splits and training all follow the seed), printed
as test kappa mean +- standard deviation. Every row is the ``demo`` recipe, changed where the
row says, run by the one runner (``slicevid.recipes.run_recipe``):

* ``--table paper`` (default): the paper's four configurations, No PT, PT, PT+CW and
  PT+CW+AUG, on phantoms in the challenge's class proportions (so class weights matter).
  Pretraining runs once per seed.
* ``--table variants``: slice-sequence options from scratch (No PT), on phantoms whose depth
  varies between 24 and 40 slices: the LSTM baseline, a bidirectional GRU, gated attention,
  a transformer, 2.5D slice context, and native depth instead of SIZ to 16 slices (with the
  LSTM and with attention); each row also gives the seconds per training epoch.
* ``--table ablation``: what makes the demo's recipe learn. No PT on the demo's balanced
  phantoms, with one ingredient taken out per row (the feature LayerNorm, precise BatchNorm,
  AdamW) or the first demo's ResNet-18 encoder put back.

Phantoms are 32-40 x 64 x 64, inputs 16 x 48 x 48 (variants: native depth keeps each scan's
24-40 slices). Each row keeps its epoch of lowest validation loss and is scored on a separate
set of test phantoms, half as many (same class proportions), so the choice of epoch does not
inflate its numbers. Everything is synthetic stand-in data: it says which options learn this
task, not how they fare on CT.

    python benchmarks/synthetic_table.py --out runs/synthetic-table                  # about 9 min, 2 cores
    python benchmarks/synthetic_table.py --table variants --out runs/variants        # about 15 min
    python benchmarks/synthetic_table.py --quick --out /tmp/t                        # smoke test
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from _timing import finish_table, markdown_table

from slicevid.data import CTPreprocessing
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.data.synthetic.phantoms import CHALLENGE_PROPORTIONS
from slicevid.recipes import PAPER_CONFIGURATIONS, Configuration, Recipe, demo_recipe, run_recipe, stage_folder

SCANS = 200  # split 80/20 into training and validation; half as many test phantoms, drawn apart
NO_PT = {"No PT": Configuration(pretrained=False)}


def _model(**changes) -> Callable[[Recipe], Recipe]:
    return lambda recipe: recipe.replace(model=recipe.model.replace(**changes))


def _native(recipe: Recipe) -> Recipe:
    size = recipe.preprocessing.size
    return recipe.replace(preprocessing=CTPreprocessing(size=(None, *size[1:]), resample="native"))


def _finetune(**changes) -> Callable[[Recipe], Recipe]:
    return lambda recipe: recipe.replace(finetune=replace(recipe.finetune, **changes))


VARIANTS: dict[str, Callable[[Recipe], Recipe]] = {
    "LSTM (SIZ to 16 slices)": lambda recipe: recipe,
    "BiGRU": _model(aggregator="gru", aggregator_kwargs={"hidden_size": 128, "bidirectional": True}),
    "attention": _model(aggregator="attention", aggregator_kwargs={}),
    "transformer": _model(aggregator="transformer", aggregator_kwargs={}),
    "LSTM, slice_context=1": _model(slice_context=1),
    "LSTM, native depth": _native,
    "attention, native depth": lambda recipe: _native(_model(aggregator="attention", aggregator_kwargs={})(recipe)),
}
ABLATIONS: dict[str, Callable[[Recipe], Recipe]] = {
    "demo recipe": lambda recipe: recipe,
    "without the feature LayerNorm": _model(feature_norm="none"),
    "without precise BatchNorm": _finetune(precise_bn=0),
    "SGD (lr 0.01, momentum 0.9) for AdamW": _finetune(optimizer="sgd", lr=0.01, momentum=0.9),
    "ResNet-18 encoder (the first demo's)": _model(encoder="timm:resnet18", encoder_kwargs={}),
}


def class_counts(total: int) -> list[int]:
    """``total`` scans split in the challenge's class proportions (at least 5 per class)."""
    return [max(5, round(total * p / sum(CHALLENGE_PROPORTIONS))) for p in CHALLENGE_PROPORTIONS]


def write_data(root: Path, seed: int, recipe: Recipe, counts, shape, depths=None, videos: int = 0) -> dict:
    """Training-and-validation phantoms, test phantoms from a second random stream, and (for PT) videos."""
    labels = write_tb_phantoms(root / "phantoms", counts[0], shape, seed, depths=depths)
    test = write_tb_phantoms(root / "phantoms-test", counts[1], shape, [seed, 1], depths=depths, prefix="TST")
    data = {"scans": labels.parent, "labels_csv": labels, "test_scans": test.parent, "test_labels_csv": test}
    if videos:
        clip = recipe.video
        write_action_videos(root / "videos", recipe.video_classes, videos, clip.num_frames, clip.size, seed)
        data["videos"] = root / "videos"
    return data


def run_rows(table: str, seed: int, out: Path, total: int, quick: bool) -> dict[str, dict]:
    """Every row of ``table`` for one seed: test kappa and accuracy, validation kappa, seconds per epoch."""
    base = demo_recipe(quick).with_seed(seed)
    shape = (12, 32, 32) if quick else (32, 64, 64)
    if table == "paper":
        data = write_data(
            out / "data", seed, base, (class_counts(total), class_counts(total // 2)), shape, videos=2 if quick else 20
        )
        result = run_recipe(
            base.replace(configurations=dict(PAPER_CONFIGURATIONS)),
            out=out,
            cache_dir=out / "cache",
            progress=False,
            **data,
        )
        rows = {name: _row(result, name, stage_folder(out, name)) for name in PAPER_CONFIGURATIONS}
        return {**rows, "pretraining": {"val_accuracy": result.pretrain_val_accuracy}}
    if table == "variants":
        depths = (10, 14) if quick else (24, 40)
        data = write_data(out / "data", seed, base, (class_counts(total), class_counts(total // 2)), shape, depths)
        changes = VARIANTS
    else:
        per_class = max(1, total // 5)
        data = write_data(out / "data", seed, base, (per_class, max(1, per_class // 2)), shape)
        changes = ABLATIONS
    rows = {}
    for name, change in changes.items():
        folder = stage_folder(out, name)
        recipe = change(base).replace(name=name, configurations=dict(NO_PT))
        result = run_recipe(recipe, out=folder, cache_dir=out / "cache", progress=False, **data)
        rows[name] = _row(result, "No PT", stage_folder(folder, "No PT"))
    return rows


def _row(result, configuration: str, folder: Path) -> dict:
    seconds = [float(row["seconds"]) for row in csv.DictReader((folder / "metrics.csv").open())]
    report = result.reports[configuration]
    return {
        "kappa": report.kappa,
        "accuracy": report.accuracy,
        "val_kappa": result.val_reports[configuration].kappa,
        "epochs": len(seconds),
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


ROWS = {"paper": list(PAPER_CONFIGURATIONS), "variants": list(VARIANTS), "ablation": list(ABLATIONS)}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--table", choices=sorted(ROWS), default="paper", help="which table to run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of data, splits and training")
    parser.add_argument("--scans", type=int, default=SCANS, help="phantoms, in the challenge's proportions")
    parser.add_argument("--quick", action="store_true", help="tiny data and epochs (tests)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    started = time.perf_counter()
    total = 25 if args.quick else args.scans
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_rows(args.table, seed, out / f"seed{seed}", total, args.quick)
        print(
            f"seed {seed}: " + ", ".join(f"{k} {v['kappa']:.2f}" for k, v in per_seed[seed].items() if "kappa" in v),
            flush=True,
        )
    table = summarize(per_seed, ROWS[args.table], args.table != "paper")
    if args.table == "paper":
        accuracies = [per_seed[s]["pretraining"]["val_accuracy"] for s in per_seed]
        table += f"\n\nPretraining validation accuracy: {', '.join(f'{a:.2f}' for a in accuracies)}"
    title = f"Synthetic Table 1 ({args.table}), {len(args.seeds)} seeds"
    return finish_table(out, title, started, table, per_seed)


if __name__ == "__main__":
    main()
