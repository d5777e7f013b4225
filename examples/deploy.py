"""Deploy a trained model: export it to ONNX, predict from the .onnx file alone, make an int8 copy.

The .onnx file carries the model's description, so it predicts with nothing else beside it.

    python examples/deploy.py             # a briefly trained model on synthetic scans of mixed depths
    python examples/deploy.py RUN/best    # your saved model (scored on fresh synthetic scans)
"""

import sys
import tempfile
from pathlib import Path

import torch

from slicevid import SliceSequenceClassifier, create_model
from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.deploy import OnnxModel, export_onnx, quantize_onnx, read_onnx_config
from slicevid.predict import predict_scans
from slicevid.train import TrainConfig, fit

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    # Scans of 6 to 10 slices, read at their own depth: the graph must take any depth.
    labels = write_tb_phantoms(tmp / "scans", n_per_class=2, shape=(10, 48, 48), depths=(6, 10))
    if len(sys.argv) > 1:
        model = SliceSequenceClassifier.from_pretrained(sys.argv[1])
    else:
        native = CTPreprocessing(size=(None, 48, 48), resample="native")
        train = ImageCLEFTBT(labels.parent, labels, "all", preprocessing=native)
        model = create_model("compact_cnn", "gru", 5, aggregator_kwargs={"bidirectional": True})
        fit(model, train, None, TrainConfig(epochs=1, batch_size=4, out_dir=str(tmp / "run"), progress=False))

    # --8<-- [start:export]
    onnx_file = export_onnx(model, tmp / "model.onnx")  # or: slicevid export --checkpoint run/best --out model.onnx
    config = read_onnx_config(onnx_file)  # the model's description travels inside the file
    print(f"{onnx_file.name}: classes {config.class_names}, input {config.input_size}")
    # --8<-- [end:export]

    # --8<-- [start:runtime]
    session = OnnxModel(onnx_file)  # ONNX Runtime, no model code
    volumes = torch.rand(3, 1, 9, 48, 48)  # a padded batch: real depths 9, 7 and 6
    lengths = torch.tensor([9, 7, 6])
    logits = session(volumes, lengths).tasks["target"]
    with torch.no_grad():
        expected = model.eval()(volumes, lengths)
    print(f"ONNX Runtime vs PyTorch, largest difference: {(logits - expected).abs().max():.1e}")
    # --8<-- [end:runtime]

    # --8<-- [start:predict]
    # The .onnx file predicts like the checkpoint: batched (mixed depths padded), flip-averaged.
    rows = predict_scans(onnx_file, [labels.parent], batch_size=8, tta=["flip"])
    print(", ".join(f"{row.file_id}: {row.class_name}" for row in rows[:4]), "...")
    # --8<-- [end:predict]

    # --8<-- [start:int8]
    small = quantize_onnx(onnx_file, tmp / "model-int8.onnx")
    agree = [a.label == b.label for a, b in zip(rows, predict_scans(small, [labels.parent], tta=["flip"]), strict=True)]
    size = f"{small.stat().st_size / 1e3:.0f} kB vs {onnx_file.stat().st_size / 1e3:.0f} kB"
    print(f"int8 copy: {size}, same class for {sum(agree)} of {len(agree)} scans")
    # --8<-- [end:int8]
