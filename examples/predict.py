"""Predict TB types for new scans with a saved model, and write a challenge submission CSV.

python examples/predict.py                      # a throwaway model on synthetic scans
python examples/predict.py RUN/best SCANS/...   # your model and NIfTI files / DICOM folders
"""

import sys
import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import CTPreprocessing
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.predict import predict_scans

with tempfile.TemporaryDirectory() as tmp:
    if len(sys.argv) > 2:
        checkpoint, inputs, prep = sys.argv[1], sys.argv[2:], CTPreprocessing()
    else:  # an untrained model and a few phantoms, to show the shape of the output
        checkpoint = create_model("timm:resnet10t", "lstm", 5).save_pretrained(Path(tmp) / "model")
        inputs = [write_tb_phantoms(Path(tmp) / "scans", n_per_class=1, shape=(16, 48, 48)).parent]
        prep = CTPreprocessing(size=(8, 48, 48))
    predictions = predict_scans(checkpoint, inputs, preprocessing=prep, device="auto")
    for p in predictions:
        pairs = zip(p.class_names, p.probabilities, strict=True)
        probabilities = ", ".join(f"{name} {value:.2f}" for name, value in pairs)
        print(f"{p.file_id}: {p.class_name}  ({probabilities})")
    submission = Path(tmp) / "submission.csv"
    submission.write_text("".join(f"{p.file_id},{p.label + 1}\n" for p in predictions))  # <file id>,<1..5>
    print(submission.read_text().splitlines()[:3])
