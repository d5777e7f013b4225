"""Which pretraining helps when labels are scarce? A learning curve on the synthetic yardstick.

Every row fine-tunes the ``demo`` recipe's model on 10 %, 25 % and 100 % of the labelled
training phantoms (stratified; the validation and test phantoms stay the same), each from
another start:

* No PT: random weights;
* video PT: pretrained on the synthetic action clips (the runner's own pretraining);
* SSL order / SSL contrastive, training phantoms: self-supervised on the training phantoms,
  labels unused (``pretrain_ssl``);
* SSL order, training + extra phantoms: the same, with as many unlabeled phantoms again;
* video PT, then SSL order: the two chained.

Scored as test kappa mean ± sd over seeds; the seconds of each pretraining run go beside it.
Phantoms are 32 x 64 x 64 (read at 16 x 48 x 48), balanced classes; self-supervised runs take
the demo's pretraining settings with ``--ssl-epochs`` epochs.

    python benchmarks/learning_curve.py --out runs/learning-curve   # about 18 min on 2 cores
    python benchmarks/learning_curve.py --quick --out /tmp/lc       # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

from _timing import finish_table, markdown_table

from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.model_config import Heads
from slicevid.recipes import Configuration, demo_recipe, run_recipe, scan_splits, stage_folder
from slicevid.train import pretrain_ssl

FRACTIONS = (0.1, 0.25, 1.0)
ROWS = (
    "No PT",
    "video PT",
    "SSL order, training phantoms",
    "SSL contrastive, training phantoms",
    "SSL order, training + extra phantoms",
    "video PT, then SSL order",
)


def write_data(root: Path, seed: int, recipe, per_class: int, shape, videos: int) -> dict:
    labels = write_tb_phantoms(root / "phantoms", per_class, shape, seed)
    test = write_tb_phantoms(root / "phantoms-test", per_class // 2, shape, [seed, 1], prefix="TST")
    extra = write_tb_phantoms(root / "phantoms-extra", per_class, shape, [seed, 2], prefix="EXT")
    clip = recipe.video
    write_action_videos(root / "videos", recipe.video_classes, videos, clip.num_frames, clip.size, seed)
    return {
        "scans": labels.parent,
        "labels_csv": labels,
        "test_scans": test.parent,
        "test_labels_csv": test,
        "extra": extra.parent,
        "videos": root / "videos",
    }


def pretrain_all(recipe, data: dict, out: Path, ssl_epochs: int) -> tuple[dict[str, Path | None], dict[str, float]]:
    """Every row's starting model (a folder) and the seconds its pretraining took."""
    started = time.perf_counter()
    video = run_recipe(
        recipe.replace(configurations={"PT": Configuration()}, label_fraction=FRACTIONS[0]),
        out=out / "video",
        cache_dir=out / "cache",
        progress=False,
        **{k: v for k, v in data.items() if k != "extra"},
    )
    seconds = {"video PT": video.seconds["pretraining"]}
    starts: dict[str, Path | None] = {"No PT": None, "video PT": out / "video" / "pretrain" / "best"}
    training = scan_splits(recipe.replace(label_fraction=1.0), data["scans"], data["labels_csv"])[0].sources
    settings = replace(recipe.pretrain, epochs=ssl_epochs, progress=False)
    plans = {
        "SSL order, training phantoms": ("order", training, None),
        "SSL contrastive, training phantoms": ("contrastive", training, None),
        "SSL order, training + extra phantoms": ("order", [*training, data["extra"]], None),
        "video PT, then SSL order": ("order", training, starts["video PT"]),
    }
    for row, (objective, scans, start) in plans.items():
        folder = stage_folder(out, row)
        model = recipe.model_start(pretrained=start).build(Heads.of(3), recipe.finetune.seed)
        began = time.perf_counter()
        pretrain_ssl(
            model,
            scans,
            objective,
            replace(settings, out_dir=str(folder), overwrite=True),
            preprocessing=recipe.preprocessing,
            cache_dir=out / "cache" / "volumes",
        )
        seconds[row] = time.perf_counter() - began
        starts[row] = folder / "best"
    print(f"  pretraining: {time.perf_counter() - started:.0f} s", flush=True)
    return starts, seconds


def run_seed(seed: int, out: Path, args: argparse.Namespace) -> dict:
    recipe = demo_recipe(args.quick).with_seed(seed)
    shape = (12, 32, 32) if args.quick else (32, 64, 64)
    data = write_data(out / "data", seed, recipe, args.per_class, shape, args.videos)
    starts, seconds = pretrain_all(recipe, data, out, args.ssl_epochs)
    kappas: dict[str, dict[float, float]] = {row: {} for row in ROWS}
    labelled = {k: v for k, v in data.items() if k not in ("extra", "videos")}
    for fraction in FRACTIONS:
        for row in ROWS:
            name = "No PT" if starts[row] is None else "PT"
            result = run_recipe(
                recipe.replace(label_fraction=fraction, configurations={name: Configuration(pretrained=name == "PT")}),
                out=stage_folder(out, f"{row} {fraction}"),
                cache_dir=out / "cache",
                pretrained=starts[row],
                progress=False,
                **labelled,
            )
            kappas[row][fraction] = result.reports[name].kappa
        print(f"  {fraction:.0%}: " + ", ".join(f"{row} {kappas[row][fraction]:.2f}" for row in ROWS), flush=True)
    return {"kappa": kappas, "pretraining_seconds": seconds}


def summarize(per_seed: list[dict]) -> str:
    def mean_sd(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}"

    rows = []
    for row in ROWS:
        cells = [row]
        for fraction in FRACTIONS:
            cells.append(mean_sd([seed["kappa"][row][fraction] for seed in per_seed]))
        spent = [seed["pretraining_seconds"].get(row) for seed in per_seed]
        cells.append("-" if spent[0] is None else f"{statistics.mean(spent):.0f}")
        rows.append(cells)
    header = ["start", *(f"{f:.0%} of labels: test kappa" for f in FRACTIONS), "pretraining s"]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-class", type=int, default=40, help="labelled phantoms per class (split 80/20)")
    parser.add_argument("--videos", type=int, default=20, help="action clips per class")
    parser.add_argument("--ssl-epochs", type=int, default=8, help="epochs of each self-supervised run")
    parser.add_argument("--quick", action="store_true", help="tiny data and epochs (tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.per_class, args.videos, args.ssl_epochs = [0], 20, 2, 1
    out = Path(args.out)
    started = time.perf_counter()
    per_seed = []
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        per_seed.append(run_seed(seed, out / f"seed{seed}", args))
    return finish_table(out, f"Learning curve, {len(args.seeds)} seeds", started, summarize(per_seed), per_seed)


if __name__ == "__main__":
    main()
