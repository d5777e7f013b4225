"""Reproduce the paper's Table 1 (validation) and write Table 2 submissions (test), resumably.

The configurations of the paper, on the stratified 80/20 split (seed 0) of the labelled scans:

* **No PT**: no video pretraining. The authors' code kept ImageNet VGG-16 frozen and
  trained the rest (the reproduction recipe does that); **No PT (scratch)** is what the
  paper's text says, every layer from random weights;
* **PT**: pretrain on the UCF50 10-class subset (VGG frozen), then fine-tune every layer;
* **PT+CW**: as PT, with balanced class weights;
* **PT+CW+AUG**: as PT+CW, with rotation augmentation.

``--recipe reproduction`` (the default) is :func:`slicevid.recipes.viptt_reproduction`, the
authors' code setting by setting; ``--recipe slicevid`` is slicevid's variant. Individual
settings can be overridden (``--depth``, ``--epochs`` ...), e.g. for a quick look.

Data (not downloadable by slicevid):

* ImageCLEF 2021 tuberculosis TBT: register at imageclef.org (2021 medical tuberculosis task)
  and download the training CT scans and label CSV (and the test scans for Table 2);
* UCF50: crcv.ucf.edu/data/UCF50.php, unpacked to one folder per class;
* Keras's VGG-16 weights offline: ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` in
  ``~/.keras/models/`` (torchvision's ``vgg16-397923af.pth`` in ``~/.cache/torch/hub/checkpoints/``
  for ``--recipe slicevid``).

Every configuration writes its own folder under ``--out``; rerunning the same command skips
finished configurations and resumes an interrupted one from its last epoch.

    python benchmarks/imageclef_table.py --scans TBT/train --labels-csv TBT/labels.csv --ucf50 UCF50 \\
        --test-scans TBT/test --exclude exclude.txt --out runs/table
    python benchmarks/imageclef_table.py --synthetic --out runs/synthetic-table   # the CPU-sized version
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from slicevid._io import atomic_write_text
from slicevid.data import TB_CLASSES, ImageCLEFTBT, ucf50
from slicevid.metrics import ClassificationReport, format_table
from slicevid.predict import predict_scans, write_submission
from slicevid.presets import viptt_net
from slicevid.recipes import RECIPES, Recipe
from slicevid.train import finetune, pretrain

PAPER_TABLE1 = {  # validation split, 184 scans; the paper prints four F1 columns (mapping uncertain)
    "No PT": {"kappa": 0.17, "Infiltrative": 0.61, "Focal": 0.46, "Tuberculoma": 0.00, "Miliary": 0.14},
    "PT": {"kappa": 0.35, "Infiltrative": 0.68, "Focal": 0.56, "Tuberculoma": 0.09, "Miliary": 0.48},
    "PT+CW": {"kappa": 0.30, "Infiltrative": 0.59, "Focal": 0.41, "Tuberculoma": 0.37, "Miliary": 0.65},
    "PT+CW+AUG": {"kappa": 0.33, "Infiltrative": 0.59, "Focal": 0.47, "Tuberculoma": 0.27, "Miliary": 0.54},
}
PAPER_TABLE2 = {"PT": (0.13, 0.423), "PT+CW": (0.14, 0.385), "PT+CW+AUG": (0.20, 0.423)}  # test: kappa, accuracy
CONFIGURATIONS = {  # name: (pretrained, class weights, augmented, every layer from random weights)
    "No PT": (False, False, False, False),
    "No PT (scratch)": (False, False, False, True),
    "PT": (True, False, False, False),
    "PT+CW": (True, True, False, False),
    "PT+CW+AUG": (True, True, True, False),
}
OVERRIDES = {
    "depth": int,
    "size": int,
    "epochs": int,
    "pretrain_epochs": int,
    "encoder": str,
    "encoder_weights": str,
    "device": str,
    "workers": int,
}


def apply_overrides(recipe: Recipe, args: argparse.Namespace) -> tuple[Recipe, str]:
    """The recipe with the command line's overrides, and the encoder name to build."""
    preprocessing, video = recipe.preprocessing, recipe.video
    if args.depth or args.size:
        depth, size = args.depth or preprocessing.size[0], args.size or preprocessing.size[1]
        preprocessing = replace(preprocessing, size=(depth, size, size))
        video = replace(video, num_frames=depth, size=size)
    stages = {}
    for stage, epochs in (("pretrain", args.pretrain_epochs), ("finetune", args.epochs)):
        config = getattr(recipe, stage)
        changes = {"epochs": epochs} if epochs else {}
        changes.update({k: v for k, v in (("device", args.device), ("num_workers", args.workers)) if v is not None})
        stages[stage] = replace(config, **changes)
    weights = (
        recipe.encoder_weights
        if args.encoder_weights is None
        else (None if args.encoder_weights == "none" else args.encoder_weights)
    )
    recipe = recipe.replace(preprocessing=preprocessing, video=video, encoder_weights=weights, **stages)
    return recipe, args.encoder or "vgg16"


def build_model(recipe: Recipe, encoder: str, num_classes: int, scratch: bool = False):
    torch.manual_seed(recipe.finetune.seed)
    weights = None if scratch else recipe.encoder_weights
    return viptt_net(num_classes, encoder=encoder, encoder_weights=weights, init=recipe.init)


def run_pretraining(recipe: Recipe, encoder: str, ucf50_root: str, out: Path) -> Path:
    folder = out / "pretrain"
    if (folder / "done.json").is_file():
        return folder / "best"
    video = asdict(recipe.video)
    common = {
        **video,
        "classes": tuple(video["classes"]),
        "seed": recipe.pretrain.seed,
        "cache_dir": out / "cache" / "clips",
    }
    train, val = ucf50(ucf50_root, split="train", **common), ucf50(ucf50_root, split="val", **common)
    started = time.perf_counter()
    config = replace(recipe.pretrain, out_dir=str(folder), resume=True)
    result = pretrain(build_model(recipe, encoder, len(recipe.video.classes)), train, val, config)
    atomic_write_text(
        folder / "done.json",
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "best_epoch": result.best_epoch,
                "val_accuracy": result.evaluation.report.accuracy,
            }
        ),
    )
    return folder / "best"


def run_configuration(name: str, recipe: Recipe, encoder: str, args: argparse.Namespace, pretrained: Path | None):
    folder = Path(args.out) / name.replace("+", "_").replace(" ", "_").replace("(", "").replace(")", "")
    done = folder / "result.json"
    if done.is_file():
        print(f"{name}: already done ({done})")
        return json.loads(done.read_text())
    use_pt, class_weights, augmented, scratch = CONFIGURATIONS[name]
    ct = {
        "preprocessing": recipe.preprocessing,
        "seed": recipe.finetune.seed,
        "exclude": args.exclude,
        "cache_dir": Path(args.out) / "cache" / "volumes",
        "workers": recipe.finetune.num_workers,
    }
    train = ImageCLEFTBT(args.scans, args.labels_csv, "train", **ct)
    val = ImageCLEFTBT(args.scans, args.labels_csv, "val", **ct)
    start = pretrained if use_pt else build_model(recipe, encoder, len(TB_CLASSES), scratch)
    config = replace(
        recipe.finetune,
        out_dir=str(folder),
        resume=True,
        class_weights=class_weights,
        augment=recipe.augment if augmented else "none",
    )
    started = time.perf_counter()
    frozen = recipe.no_pt_frozen_encoder and not use_pt and not scratch
    model, result = finetune(start, train, val, config, freeze_encoder=frozen)
    record = {
        "report": result.evaluation.report.to_dict(),
        "best_epoch": result.best_epoch,
        "seconds": time.perf_counter() - started,
    }
    if args.test_scans:
        rows = predict_scans(
            model,
            [args.test_scans],
            preprocessing=replace(recipe.preprocessing, nan_policy=recipe.test_nan_policy),
            cache_dir=ct["cache_dir"],
            device=recipe.finetune.device,
        )
        record["submission"] = str(write_submission(rows, folder / "submission.csv", ids=recipe.submission_ids))
    atomic_write_text(done, json.dumps(record, indent=2))
    return record


def main(argv: list[str] | None = None) -> str:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--synthetic" in argv:
        from synthetic_table import main as synthetic_main

        return synthetic_main([a for a in argv if a != "--synthetic"])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", required=True, help="ImageCLEF 2021 TBT training scans")
    parser.add_argument("--labels-csv", required=True, help="their label CSV")
    parser.add_argument("--ucf50", required=True, help="UCF50 folder")
    parser.add_argument("--out", required=True, help="results folder (resumable)")
    parser.add_argument("--test-scans", help="test scans: write a submission per configuration (Table 2)")
    parser.add_argument("--exclude", help="scans to leave out before the split (the authors split 916 of 917)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="reproduction")
    parser.add_argument("--synthetic", action="store_true", help="run benchmarks/synthetic_table.py instead")
    for name, kind in OVERRIDES.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help="override the recipe")
    args = parser.parse_args(argv)
    recipe, encoder = apply_overrides(RECIPES[args.recipe](), args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        out / "settings.json", json.dumps({"args": vars(args), "recipe": asdict(recipe)}, indent=2, default=str)
    )
    pretrained = run_pretraining(recipe, encoder, args.ucf50, out)
    records = {name: run_configuration(name, recipe, encoder, args, pretrained) for name in CONFIGURATIONS}
    table = format_table(
        {name: ClassificationReport.from_dict(r["report"]) for name, r in records.items()},
        TB_CLASSES,
        reference=PAPER_TABLE1,
    )
    text = (
        f"Table 1, validation split, {recipe.name}; the paper's values in parentheses (its F1 column "
        f"mapping is uncertain)\n\n{table}\n"
    )
    if args.test_scans:
        text += "\nTable 2: upload each configuration's submission.csv; the paper's test results (kappa, accuracy):\n"
        text += "\n".join(f"- {k}: {v[0]:.2f}, {v[1]:.1%}" for k, v in PAPER_TABLE2.items()) + "\n"
    text += "\nSeconds: " + ", ".join(f"{k} {r['seconds']:.0f}" for k, r in records.items()) + "\n"
    atomic_write_text(out / "table.md", text)
    print(text)
    return text


if __name__ == "__main__":
    main()
