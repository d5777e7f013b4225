"""Your own scans and classes: a binary task ("normal" / "abnormal") with your own CSV columns.

The labels CSV names each scan (a path inside the scan folder, extension optional) and its class
by name; any class names work, in any column. Runs offline on synthetic phantoms in seconds.

    python examples/own_classes.py
"""

import csv
import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import CTPreprocessing, CTVolumeDataset, LabelledScans
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.predict import predict_scans, write_results
from slicevid.train import TrainConfig, evaluate, fit

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    phantoms = write_tb_phantoms(tmp / "scans", n_per_class=4, shape=(12, 48, 48))
    with phantoms.open() as source, (tmp / "findings.csv").open("w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["scan", "Finding"])
        for row in csv.DictReader(source):  # types 1-2 as "normal", the others "abnormal"
            writer.writerow([row["FileName"], "normal" if row["TypeOfTB"] in "12" else "abnormal"])

    # --8<-- [start:labelled]
    preprocessing = CTPreprocessing(size=(8, 48, 48))
    options = {"file_column": "scan", "label_column": "Finding", "preprocessing": preprocessing}
    train = LabelledScans(tmp / "scans", tmp / "findings.csv", "train", **options)  # stratified 80/20
    val = LabelledScans(tmp / "scans", tmp / "findings.csv", "val", **options)
    print("classes:", train.classes, "training scans per class:", train.class_counts().tolist())

    model = create_model("compact_cnn", "attention", num_classes=2, feature_norm="layernorm")
    config = TrainConfig(epochs=3, batch_size=4, optimizer="adamw", lr=2e-3, out_dir=str(tmp / "run"), progress=False)
    fit(model, train, val, config)
    print(evaluate(model, val, progress=False).report.to_markdown("normal / abnormal"))
    # --8<-- [end:labelled]

    # --8<-- [start:predict]
    rows = predict_scans(tmp / "run" / "best", [tmp / "scans"], batch_size=4)  # knows its classes
    results = write_results(rows, tmp / "results.csv")
    print(results.read_text().splitlines()[0])  # file_id,file,predicted,p_abnormal,p_normal
    # --8<-- [end:predict]

    # --8<-- [start:volumes]
    # Without a CSV: any list of scans and class indices, with the class names in index order.
    scans = sorted((tmp / "scans").glob("*.nii.gz"))
    labels = [index % 2 for index in range(len(scans))]
    dataset = CTVolumeDataset(scans, labels, classes=("control", "case"), preprocessing=preprocessing)
    volume, label = dataset[0]
    print(f"{dataset.file_ids[0]}: volume {tuple(volume.shape)}, class {dataset.classes[label]!r}")
    # --8<-- [end:volumes]
