"""Use any timm backbone as the slice encoder, in one line, and train it briefly.

python examples/custom_timm_backbone.py
"""

import tempfile
from pathlib import Path

import torch

from slicevid import create_model
from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.train import TrainConfig, fit

# --8<-- [start:backbone]
# Any timm model name after "timm:" works; it is created with num_classes=0 (pooled features).
model = create_model("timm:resnet10t", aggregator="gru", num_classes=5)
print(f"encoder: {type(model.encoder.model).__name__}, {model.num_features} features per slice")
print(f"logits for one random volume: {model(torch.rand(1, 1, 8, 64, 64)).shape}")
# --8<-- [end:backbone]

with tempfile.TemporaryDirectory() as tmp:
    labels = write_tb_phantoms(Path(tmp) / "scans", n_per_class=3, shape=(16, 48, 48))
    prep = CTPreprocessing(size=(8, 48, 48))
    train = ImageCLEFTBT(labels.parent, labels, "train", preprocessing=prep, val_fraction=0.34)
    val = ImageCLEFTBT(labels.parent, labels, "val", preprocessing=prep, val_fraction=0.34)
    result = fit(model, train, val, TrainConfig(epochs=2, batch_size=4, lr=0.01, momentum=0.9, progress=False))
    print(result.evaluation.report.to_markdown("timm:resnet10t + GRU"))
