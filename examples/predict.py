"""Predict TB types for new scans with a saved model; write a results CSV and a challenge submission.

The checkpoint records its class names and preprocessing, so prediction needs nothing else.

    python examples/predict.py                      # a briefly trained model on synthetic scans
    python examples/predict.py RUN/best SCANS/...   # your model and NIfTI files / DICOM folders
"""

import sys
import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.predict import predict_scans, write_results, write_submission
from slicevid.train import TrainConfig, fit

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    if len(sys.argv) > 2:
        checkpoint, inputs = sys.argv[1], sys.argv[2:]
    else:  # one epoch on a few phantoms: enough to show the shape of the output
        labels = write_tb_phantoms(tmp / "scans", n_per_class=2, shape=(16, 48, 48))
        train = ImageCLEFTBT(labels.parent, labels, "all", preprocessing=CTPreprocessing(size=(8, 48, 48)))
        fit(
            create_model("compact_cnn", "lstm", 5),
            train,
            None,
            TrainConfig(epochs=1, out_dir=str(tmp / "run"), progress=False),
        )
        checkpoint, inputs = tmp / "run" / "best", [labels.parent]
    # --8<-- [start:predict]
    predictions = predict_scans(checkpoint, inputs, batch_size=4, tta=["flip"])
    for p in predictions:
        (probabilities,) = p.probabilities.values()  # one head: the class probabilities
        shares = ", ".join(f"{name} {value:.2f}" for name, value in zip(p.class_names, probabilities, strict=True))
        print(f"{p.file_id}: {p.class_name}  ({shares})")
    results = write_results(predictions, tmp / "results.csv")  # header, id, class, one column per class
    submission = write_submission(predictions, tmp / "submission.csv")  # <file id>,<label 1..5>
    print(results.read_text().splitlines()[:2], submission.read_text().splitlines()[:2])
    # --8<-- [end:predict]
