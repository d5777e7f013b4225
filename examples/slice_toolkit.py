"""2.5D slice context, an attention aggregator and scans at their own depth, then per-slice explanations.

Phantoms of 12 to 20 slices stay at their own depth (no SIZ); batches are padded and the
model ignores the padding. Runs offline on a CPU in under a minute.

    python examples/slice_toolkit.py
"""

import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.batching import pad_collate
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.plots import plot_slice_importance
from slicevid.train import TrainConfig, fit

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    labels = write_tb_phantoms(tmp / "scans", n_per_class=4, shape=(16, 48, 48), depths=(12, 20))

    # --8<-- [start:train]
    # Keep every slice of every scan: depth None, in-plane resize only.
    native = CTPreprocessing(size=(None, 48, 48), resample="native")
    train = ImageCLEFTBT(labels.parent, labels, "train", preprocessing=native, val_fraction=0.25)
    val = ImageCLEFTBT(labels.parent, labels, "val", preprocessing=native, val_fraction=0.25)
    print("training depths:", sorted(train.depths()))

    # Each slice with one neighbour per side (3 channels), gated attention over the slices.
    model = create_model(
        "compact_cnn", "attention", 5, slice_context=1, adapter="none", feature_norm="layernorm", head_hidden=64
    )
    config = TrainConfig(epochs=2, batch_size=4, optimizer="adamw", lr=2e-3, progress=False)
    result = fit(model, train, val, config)  # batches of similar depth, padded, lengths passed on
    print(result.evaluation.report.to_markdown("attention, 2.5D, native depth"))
    # --8<-- [end:train]

    # --8<-- [start:explain]
    # Which slices drove the prediction for the first validation scan?
    volumes, _, lengths = pad_collate([val[0]])
    importance = model.explain(volumes, lengths)[0]
    top = importance.argsort(descending=True)[:3].tolist()
    print(f"{val.file_ids[0]}: {volumes.shape[2]} slices, the most important: {top}")
    picture = plot_slice_importance(volumes[0, 0].numpy(), importance.numpy(), tmp / "explain.png")
    print("picture written:", picture.name)
    # --8<-- [end:explain]
