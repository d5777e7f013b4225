"""Reproduce the paper's Table 1 (validation) and write Table 2 submissions (test), resumably.

This runs a named recipe with the one runner (``slicevid.recipes.run_recipe``, as ``slicevid
run`` does) on the real data, and prints its table beside the paper's numbers. The
configurations are the recipe's: for ``viptt-reproduction`` (the default) the authors' code
setting by setting, with **No PT** as their code ran it (ImageNet VGG-16 frozen, the rest
trained) and **No PT (scratch)** as the paper's text says it (every layer from random weights),
then **PT**, **PT+CW** and **PT+CW+AUG**; ``slicevid`` is slicevid's variant. Single settings can
be overridden (``--depth``, ``--epochs`` ...), e.g. for a quick look.

Data (not downloadable by slicevid):

* ImageCLEF 2021 tuberculosis TBT: register at imageclef.org (2021 medical tuberculosis task)
  and download the training CT scans and label CSV (and the test scans for Table 2);
* UCF50: crcv.ucf.edu/data/UCF50.php, unpacked to one folder per class;
* Keras's VGG-16 weights offline: ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` in
  ``~/.keras/models/`` (torchvision's ``vgg16-397923af.pth`` in ``~/.cache/torch/hub/checkpoints/``
  for ``--recipe slicevid``).

Rerunning the same command skips finished configurations and resumes an interrupted one.

    python benchmarks/imageclef_table.py --scans TBT/train --labels-csv TBT/labels.csv --ucf50 UCF50 \\
        --test-scans TBT/test --exclude exclude.txt --out runs/table
    python benchmarks/imageclef_table.py --synthetic --out runs/synthetic-table   # the CPU-sized version
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from slicevid._io import atomic_write_text
from slicevid.metrics import format_table
from slicevid.recipes import RECIPES, Recipe, named_recipe, run_recipe

PAPER_TABLE1 = {  # validation split, 184 scans; the paper prints four F1 columns (mapping uncertain)
    "No PT": {"kappa": 0.17, "Infiltrative": 0.61, "Focal": 0.46, "Tuberculoma": 0.00, "Miliary": 0.14},
    "PT": {"kappa": 0.35, "Infiltrative": 0.68, "Focal": 0.56, "Tuberculoma": 0.09, "Miliary": 0.48},
    "PT+CW": {"kappa": 0.30, "Infiltrative": 0.59, "Focal": 0.41, "Tuberculoma": 0.37, "Miliary": 0.65},
    "PT+CW+AUG": {"kappa": 0.33, "Infiltrative": 0.59, "Focal": 0.47, "Tuberculoma": 0.27, "Miliary": 0.54},
}
PAPER_TABLE2 = {"PT": (0.13, 0.423), "PT+CW": (0.14, 0.385), "PT+CW+AUG": (0.20, 0.423)}  # test: kappa, accuracy


def apply_overrides(recipe: Recipe, args: argparse.Namespace) -> Recipe:
    """The recipe with the command line's overrides of single settings."""
    changes = {}
    if args.depth or args.size:
        depth, size = args.depth or recipe.preprocessing.size[0], args.size or recipe.preprocessing.size[1]
        changes["preprocessing"] = replace(recipe.preprocessing, size=(depth, size, size))
        changes["video"] = replace(recipe.video, num_frames=depth, size=size)
    for stage, epochs in (("pretrain", args.pretrain_epochs), ("finetune", args.epochs)):
        settings = {"epochs": epochs, "device": args.device, "num_workers": args.workers}
        changes[stage] = replace(getattr(recipe, stage), **{k: v for k, v in settings.items() if v is not None})
    if args.encoder:
        changes["model"] = recipe.model.replace(encoder=args.encoder)
    if args.encoder_weights is not None:
        changes["encoder_weights"] = None if args.encoder_weights == "none" else args.encoder_weights
    return recipe.replace(**changes)


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
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="viptt-reproduction", help="the named recipe")
    parser.add_argument("--synthetic", action="store_true", help="run benchmarks/synthetic_table.py instead")
    for name, kind in {"depth": int, "size": int, "epochs": int, "pretrain_epochs": int, "workers": int}.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help="override the recipe")
    for name in ("encoder", "encoder_weights", "device"):
        parser.add_argument(
            "--" + name.replace("_", "-"), default=None, help="override the recipe ('none': no weights)"
        )
    args = parser.parse_args(argv)
    recipe = apply_overrides(named_recipe(args.recipe), args)
    result = run_recipe(
        recipe,
        videos=args.ucf50,
        scans=args.scans,
        labels_csv=args.labels_csv,
        out=args.out,
        test_scans=args.test_scans,
        exclude=args.exclude,
    )
    class_names = next(iter(result.val_reports.values())).class_names
    table = format_table(result.val_reports, class_names, reference=PAPER_TABLE1)
    text = (
        f"Table 1, validation split, {recipe.name}; the paper's values in parentheses (its F1 column "
        f"mapping is uncertain)\n\n{table}\n"
    )
    if args.test_scans:
        text += "\nTable 2: upload each configuration's submission.csv; the paper's test results (kappa, accuracy):\n"
        text += "\n".join(f"- {k}: {v[0]:.2f}, {v[1]:.1%}" for k, v in PAPER_TABLE2.items()) + "\n"
    text += "\nSeconds: " + ", ".join(f"{k} {s:.0f}" for k, s in result.seconds.items()) + "\n"
    atomic_write_text(result.out_dir / "paper-table.md", text)
    print(text)
    return text


if __name__ == "__main__":
    main()
