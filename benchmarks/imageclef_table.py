"""Reproduce the paper's Table 1 (validation) and write Table 2 submissions (test), resumably.

The four configurations of the paper, on the stratified 80/20 split (seed 0):

* **No PT**: fine-tune from ImageNet VGG-16 without video pretraining;
* **PT**: pretrain on the UCF50 10-class subset (VGG frozen), then fine-tune every layer;
* **PT+CW**: as PT, with balanced class weights;
* **PT+CW+AUG**: as PT+CW, with the paper's rotation augmentation.

Data (not downloadable by slicevid):

* ImageCLEF 2021 tuberculosis TBT: register at imageclef.org (2021 medical tuberculosis task)
  and download the training CT scans and label CSV (and the test scans for Table 2);
* UCF50: crcv.ucf.edu/data/UCF50.php, unpacked to one folder per class;
* ImageNet VGG-16 weights offline: copy ``vgg16-397923af.pth`` (download.pytorch.org/models/)
  to ``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints/`` by default).

Runs on CUDA by default with bf16 autocast and the preprocessed cache. Every configuration
writes its own folder under ``--out``; rerunning the same command skips finished
configurations and resumes an interrupted one from its last epoch.

    python benchmarks/imageclef_table.py --scans TBT/train --labels-csv TBT/labels.csv --ucf50 UCF50 --out runs/table
    python benchmarks/imageclef_table.py --synthetic --out runs/synthetic-table     # embedded data, CPU minutes
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from slicevid import SliceSequenceClassifier
from slicevid._io import atomic_write_text
from slicevid.data import TB_CLASSES, UCF50_PAPER_CLASSES, CTPreprocessing, ImageCLEFTBT, ucf50
from slicevid.data.synthetic import write_action_videos, write_tb_phantoms
from slicevid.metrics import ClassificationReport, format_table
from slicevid.predict import predict_scans
from slicevid.presets import viptt_net
from slicevid.train import TrainConfig, finetune, pretrain

PAPER_TABLE1 = {  # validation split, 184 scans; the paper prints four F1 columns (mapping uncertain)
    "No PT": {"kappa": 0.17, "Infiltrative": 0.61, "Focal": 0.46, "Tuberculoma": 0.00, "Miliary": 0.14},
    "PT": {"kappa": 0.35, "Infiltrative": 0.68, "Focal": 0.56, "Tuberculoma": 0.09, "Miliary": 0.48},
    "PT+CW": {"kappa": 0.30, "Infiltrative": 0.59, "Focal": 0.41, "Tuberculoma": 0.37, "Miliary": 0.65},
    "PT+CW+AUG": {"kappa": 0.33, "Infiltrative": 0.59, "Focal": 0.47, "Tuberculoma": 0.27, "Miliary": 0.54},
}
PAPER_TABLE2 = {"PT": (0.13, 0.423), "PT+CW": (0.14, 0.385), "PT+CW+AUG": (0.20, 0.423)}  # test: kappa, accuracy
CONFIGURATIONS = {  # name: (pretrained, class weights, augmentation)
    "No PT": (False, False, "none"),
    "PT": (True, False, "none"),
    "PT+CW": (True, True, "none"),
    "PT+CW+AUG": (True, True, "paper"),
}


@dataclass
class Settings:
    scans: str
    labels_csv: str
    ucf50: str
    out: str
    test_scans: str | None = None
    encoder: str = "vgg16"
    encoder_weights: str | None = "imagenet"
    depth: int = 70
    size: int = 224
    epochs: int = 100
    pretrain_epochs: int = 100
    batch_size: int = 2
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    workers: int = 4
    feature_cache: bool = False


def _config(settings: Settings, out_dir: Path, epochs: int, **extra) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=settings.batch_size, lr=settings.lr, seed=settings.seed,
                       device=settings.device, amp=settings.amp, out_dir=str(out_dir), resume=True,
                       num_workers=settings.workers, **extra)


def _model(settings: Settings, num_classes: int) -> SliceSequenceClassifier:
    weights = settings.encoder_weights
    return viptt_net(num_classes, encoder_weights=weights, encoder=settings.encoder)


def run_pretraining(settings: Settings) -> Path:
    best = Path(settings.out) / "pretrain" / "best"
    if (Path(settings.out) / "pretrain" / "done.json").is_file():
        return best
    common = {"classes": UCF50_PAPER_CLASSES, "num_frames": settings.depth, "size": settings.size,
              "seed": settings.seed}
    train, val = ucf50(settings.ucf50, split="train", **common), ucf50(settings.ucf50, split="val", **common)
    started = time.perf_counter()
    result = pretrain(_model(settings, len(UCF50_PAPER_CLASSES)), train, val,
                      _config(settings, best.parent, settings.pretrain_epochs, feature_cache=settings.feature_cache),
                      class_names=UCF50_PAPER_CLASSES)
    atomic_write_text(best.parent / "done.json", json.dumps(
        {"seconds": time.perf_counter() - started, "best_epoch": result.best_epoch,
         "kappa": result.evaluation.report.kappa}))
    return best


def run_configuration(name: str, settings: Settings, pretrained: Path | None) -> dict:
    folder = Path(settings.out) / name.replace("+", "_").replace(" ", "_")
    done = folder / "result.json"
    if done.is_file():
        print(f"{name}: already done ({done})")
        return json.loads(done.read_text())
    use_pt, class_weights, augment = CONFIGURATIONS[name]
    ct = {"preprocessing": CTPreprocessing(size=(settings.depth, settings.size, settings.size)),
          "seed": settings.seed, "cache_dir": Path(settings.out) / "cache", "workers": settings.workers}
    train = ImageCLEFTBT(settings.scans, settings.labels_csv, "train", **ct)
    val = ImageCLEFTBT(settings.scans, settings.labels_csv, "val", **ct)
    start = pretrained if use_pt else _model(settings, len(TB_CLASSES))
    started = time.perf_counter()
    model, result = finetune(start, train, val, _config(settings, folder, settings.epochs,
                                                        class_weights=class_weights, augment=augment))
    record = {"report": result.evaluation.report.to_dict(), "best_epoch": result.best_epoch,
              "seconds": time.perf_counter() - started}
    if settings.test_scans:
        rows = predict_scans(model, [settings.test_scans], preprocessing=ct["preprocessing"],
                             cache_dir=ct["cache_dir"], device=settings.device)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows((row.file_id, row.label + 1) for row in rows)
        atomic_write_text(folder / "submission.csv", buffer.getvalue())
        record["submission"] = str(folder / "submission.csv")
    atomic_write_text(done, json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", help="ImageCLEF 2021 TBT training scans")
    parser.add_argument("--labels-csv", help="its label CSV")
    parser.add_argument("--test-scans", help="test scans: write a submission per configuration (Table 2)")
    parser.add_argument("--ucf50", help="UCF50 folder")
    parser.add_argument("--out", required=True, help="results folder (resumable)")
    parser.add_argument("--synthetic", action="store_true", help="run the protocol on embedded synthetic data")
    parser.add_argument("--quick", action="store_true", help="with --synthetic: tiny model and data (tests)")
    for field in ("encoder", "encoder_weights", "depth", "size", "epochs", "pretrain_epochs", "batch_size", "lr",
                  "seed", "device", "amp", "workers"):
        kind = type(getattr(Settings, field)) if getattr(Settings, field) is not None else str
        parser.add_argument("--" + field.replace("_", "-"), type=kind, default=None)
    parser.add_argument("--feature-cache", action="store_true", help="pretrain on cached features (adapter frozen)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__ and v is not None}
    if args.synthetic:
        data = Path(args.out) / "data"
        labels = write_tb_phantoms(data / "phantoms", 5 if args.quick else 12, (16, 32, 32) if args.quick
                                   else (48, 96, 96), seed=0)
        write_action_videos(data / "videos", n_per_class=3 if args.quick else 6, frames=12 if args.quick else 30,
                            size=32 if args.quick else 64)
        small = {"encoder": "timm:test_resnet" if args.quick else "timm:resnet18", "encoder_weights": None,
                 "depth": 8 if args.quick else 24, "size": 32 if args.quick else 64, "epochs": 1 if args.quick else 8,
                 "pretrain_epochs": 1 if args.quick else 4, "workers": 0}
        overrides = {"scans": str(labels.parent), "labels_csv": str(labels), "ucf50": str(data / "videos"),
                     **small, **overrides, "feature_cache": args.feature_cache}
    elif not (args.scans and args.labels_csv and args.ucf50):
        parser.error("--scans, --labels-csv and --ucf50 are required (or --synthetic)")
    settings = Settings(**{**overrides, "out": args.out, "test_scans": args.test_scans,
                           "feature_cache": args.feature_cache})
    Path(settings.out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(settings.out) / "settings.json", json.dumps(asdict(settings), indent=2))
    pretrained = run_pretraining(settings)
    records = {name: run_configuration(name, settings, pretrained) for name in CONFIGURATIONS}
    table = format_table({name: ClassificationReport.from_dict(r["report"]) for name, r in records.items()}, TB_CLASSES,
                         reference=None if args.synthetic else PAPER_TABLE1)
    if args.synthetic:
        caption = "synthetic stand-in data (not comparable to the paper)"
    else:
        caption = "ImageCLEF 2021 TBT; the paper's values in parentheses (its F1 column mapping is uncertain)"
    text = f"Table 1, validation split, {caption}\n\n{table}\n"
    if settings.test_scans:
        text += "\nTable 2: upload each configuration's submission.csv; the paper's test results (kappa, accuracy):\n"
        text += "\n".join(f"- {k}: {v[0]:.2f}, {v[1]:.1%}" for k, v in PAPER_TABLE2.items()) + "\n"
    text += "\nSeconds: " + ", ".join(f"{k} {r['seconds']:.0f}" for k, r in records.items()) + "\n"
    atomic_write_text(Path(settings.out) / "table.md", text)
    print(text)
    return text


if __name__ == "__main__":
    main()
