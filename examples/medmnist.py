"""Real scans from Python: AdrenalMNIST3D (MedMNIST v2) on its official split, scored with 95% intervals.

Trains the compact CNN with attention for three epochs (about 40 s on two CPU cores),
keeps the epoch of the best validation AUC, and reports the official test split with bootstrap
intervals. The data is the repository's copy (``../shared/data``), a path given as the first
argument, or ``~/.medmnist/adrenalmnist3d.npz`` (the ``medmnist`` package's folder).
MedMNIST v2 is CC BY 4.0: cite Yang et al., Scientific Data 2023, with any figure from it.

    python examples/medmnist.py [path/to/adrenalmnist3d.npz]
"""

import sys
import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import MedMNIST3D
from slicevid.train import TrainConfig, evaluate, fit

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "adrenalmnist3d.npz"
source = sys.argv[1] if len(sys.argv) > 1 else (SHARED if SHARED.is_file() else "adrenalmnist3d")

# --8<-- [start:train]
train, val, test = (MedMNIST3D(source, split) for split in ("train", "val", "test"))
model = create_model("compact_cnn", "attention", num_classes=2, feature_norm="layernorm", head_hidden=128)
with tempfile.TemporaryDirectory() as run:
    config = TrainConfig(
        epochs=3,
        batch_size=32,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.01,
        precise_bn=4,
        monitor="val_auc",  # keep the epoch of the best validation AUC
        calibrate="temperature",  # fit the softmax temperature on the validation volumes
        progress=False,
        out_dir=run,
    )
    result = fit(model, train, val, config)
evaluation = evaluate(model, test, batch_size=64, progress=False)  # the official test split, untouched
print(evaluation.report.to_markdown(f"test, kept epoch {result.best_epoch}"))
(intervals,) = evaluation.intervals(1000).values()  # one task: its metrics' 95% bootstrap intervals
for metric, (low, high) in intervals.items():
    print(f"{metric}: 95% interval {low:.3f} to {high:.3f}")
# --8<-- [end:train]
