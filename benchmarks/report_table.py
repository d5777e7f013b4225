"""A CPU-sized synthetic CT-report table: findings, slice supervision and several heads, on test phantoms.

The ImageCLEF tuberculosis task that ViPTT-Net entered also ran a CT-report task (binary findings
per scan, scored by mean and minimum AUC) and a severity task. This table runs the same kinds of
target on the embedded CT-report phantoms (``write_report_phantoms``: one to three lesion patterns
per scan, the lungs they sit in, a severity level, lesion masks), with the demo's recipe, over
several seeds, each row scored on separate test phantoms:

* **No PT** and **PT**: one multi-label head of seven findings (five patterns, two lungs);
* **PT + slice supervision**: the same, plus a per-slice head trained on the masks' soft slice
  targets (each slice's lesion area over the largest);
* **PT, type only** and **PT, severity only**: one class head, one ordinal head;
* **PT, three heads**: type, findings and severity at once, one model.

Every row is the ``demo`` recipe with its labels (and slice supervision) changed, run by the one
runner; pretraining runs once per seed and is shared. Columns: the findings' mean and minimum AUC,
the type's kappa and the severity's quadratic-weighted kappa where the row predicts them, and the
seconds its fine-tuning took. Synthetic stand-in data: it says what each option does on this task.

    python benchmarks/report_table.py --out runs/report-table       # about 6 min, 2 cores
    python benchmarks/report_table.py --quick --out /tmp/r          # smoke test
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _timing import finish_table, markdown_table

from slicevid.data import TB_CLASSES, HeadColumns, SliceTargets
from slicevid.data.synthetic import mask_folder, write_action_videos, write_report_phantoms
from slicevid.data.synthetic.report import LATERALITY, SEVERITY_LEVELS
from slicevid.recipes import Configuration, CTLabels, demo_recipe, run_recipe, stage_folder
from slicevid.tasks import SliceSupervision

FINDINGS = HeadColumns("binary", (*(name.replace("-", "") for name in TB_CLASSES), *LATERALITY))
TYPE = HeadColumns("class", ("TypeOfTB",), TB_CLASSES, first=1)
SEVERITY = HeadColumns("level", ("Severity",), SEVERITY_LEVELS)
ROWS = {  # row: (heads, slice supervision, configuration)
    "No PT": ({"findings": FINDINGS}, False, "No PT"),
    "PT": ({"findings": FINDINGS}, False, "PT"),
    "PT + slice supervision": ({"findings": FINDINGS}, True, "PT"),
    "PT, type only": ({"type": TYPE}, False, "PT"),
    "PT, severity only": ({"severity": SEVERITY}, False, "PT"),
    "PT, three heads": ({"type": TYPE, "findings": FINDINGS, "severity": SEVERITY}, False, "PT"),
}
COLUMNS = {"findings mean AUC": "mean_auc", "findings min AUC": "min_auc", "type kappa": "kappa", "severity QWK": "qwk"}


def write_data(root: Path, seed: int, count: int, shape, videos: int) -> dict:
    """Report phantoms (train and validation), test phantoms from a second stream, and action videos."""
    recipe = demo_recipe()
    labels = write_report_phantoms(root / "scans", count, shape, seed)
    test = write_report_phantoms(root / "test", count // 2, shape, [seed, 1], prefix="TST")
    clip = recipe.video
    write_action_videos(root / "videos", recipe.video_classes, videos, clip.num_frames, clip.size, seed)
    return {"scans": labels.parent, "labels_csv": labels, "test_scans": test.parent, "test_labels_csv": test}


def run_seed(seed: int, out: Path, quick: bool) -> dict[str, dict]:
    """Every row for one seed: its test metrics and fine-tuning seconds."""
    count, shape = (20, (12, 32, 32)) if quick else (150, (32, 64, 64))
    data = write_data(out / "data", seed, count, shape, videos=2 if quick else 20)
    base = demo_recipe(quick).with_seed(seed)
    pretrained = None
    rows = {}
    for name, (heads, slices, configuration) in ROWS.items():
        folder = stage_folder(out, name)
        recipe = base.replace(
            name=name,
            labels=CTLabels(heads=heads),
            slice_supervision=SliceSupervision(("lesion",)) if slices else None,
            configurations={configuration: Configuration(pretrained=configuration == "PT")},
        )
        targets = SliceTargets(masks=mask_folder(data["scans"])) if slices else None
        videos = data["scans"].parent / "videos" if pretrained is None else None
        result = run_recipe(
            recipe,
            out=folder,
            videos=videos,
            pretrained=pretrained,
            slice_targets=targets,
            cache_dir=out / "cache",
            progress=False,
            **data,
        )
        if configuration == "PT" and pretrained is None:
            pretrained = folder / "pretrain" / "best"
        rows[name] = {"seconds": result.seconds[configuration], **_metrics(result.reports[configuration])}
    return rows


def _metrics(report) -> dict[str, float]:
    """The table's columns from a report of one head or several (``findings_mean_auc`` ...)."""
    values = report.metrics()
    found = {}
    for column, key in COLUMNS.items():
        matches = [v for k, v in values.items() if k == key or k.endswith(f"_{key}")]
        if matches:
            found[column] = matches[0]
    return found


def summarize(per_seed: dict[int, dict[str, dict]]) -> str:
    def mean_sd(values: list[float]) -> str:
        if not values:
            return ""
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {spread:.2f}"

    rows = []
    for name in ROWS:
        records = [per_seed[seed][name] for seed in per_seed]
        cells = [mean_sd([r[c] for r in records if c in r]) for c in COLUMNS]
        rows.append([name, *cells, f"{statistics.mean(r['seconds'] for r in records):.0f}"])
    return markdown_table(["row", *COLUMNS, "fine-tuning s"], rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of data, splits and training")
    parser.add_argument("--quick", action="store_true", help="tiny data and epochs (tests)")
    args = parser.parse_args(argv)
    out, started = Path(args.out), time.perf_counter()
    per_seed = {}
    for seed in args.seeds:
        per_seed[seed] = run_seed(seed, out / f"seed{seed}", args.quick)
        print(f"seed {seed}: " + json.dumps(per_seed[seed]), flush=True)
    title = f"Synthetic CT-report table, {len(args.seeds)} seeds"
    return finish_table(out, title, started, summarize(per_seed), per_seed)


if __name__ == "__main__":
    main()
