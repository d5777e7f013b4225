"""Your own task: several findings per scan, a severity level, the TB type and slice labels, in one model.

The CT-report phantoms carry what a radiology report would: 0/1 findings (five lesion patterns,
two lungs), a severity level, a type, and the slices each lesion touches (as masks and as slice
indices). Each kind of target becomes a head; the slice labels train a per-slice head beside
them. Runs offline in under a minute on a CPU.

    python examples/own_task.py
"""

import tempfile
from pathlib import Path

from slicevid import create_model
from slicevid.data import TB_CLASSES, CTPreprocessing, HeadColumns, LabelledScans, SliceTargets, read_slice_indices
from slicevid.data.synthetic import write_report_phantoms
from slicevid.predict import predict_scans, write_results
from slicevid.tasks import SliceSupervision, tasks_from_columns
from slicevid.train import TrainConfig, evaluate, fit

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    labels = write_report_phantoms(tmp / "scans", count=40, shape=(12, 48, 48))

    # --8<-- [start:heads]
    # Which CSV columns feed which head, and how to read them.
    heads = {
        "findings": HeadColumns("binary", ("Infiltrative", "Focal", "Tuberculoma", "RightLung", "LeftLung")),
        "severity": HeadColumns("level", ("Severity",), ("low", "medium", "high")),
        "type": HeadColumns("class", ("TypeOfTB",), TB_CLASSES, first=1),  # the CSV holds 1..5
    }
    slices = SliceTargets(indices=read_slice_indices(labels.parent / "slices.csv"))  # or masks=<folder>
    options = {"heads": heads, "slice_targets": slices, "preprocessing": CTPreprocessing(size=(12, 48, 48))}
    train = LabelledScans(tmp / "scans", labels, "train", **options)
    val = LabelledScans(tmp / "scans", labels, "val", **options)
    # --8<-- [end:heads]

    # --8<-- [start:model]
    tasks = tasks_from_columns(heads, train.head_names)  # Multilabel, Ordinal, Multiclass
    model = create_model(
        "compact_cnn",
        "gru",
        tasks=tasks,
        slice_supervision=SliceSupervision(("lesion",), weight=0.5),
        feature_norm="layernorm",
    )
    config = TrainConfig(epochs=3, batch_size=4, optimizer="adamw", lr=2e-3, progress=False, out_dir=str(tmp / "run"))
    fit(model, train, val, config)  # masked losses: an empty cell is a missing label, left out
    report = evaluate(model, val, progress=False).report
    print(report.to_markdown("findings, severity and type"))  # per head: AUCs, quadratic kappa, kappa
    # --8<-- [end:model]

    # --8<-- [start:predict]
    rows = predict_scans(tmp / "run" / "best", [tmp / "scans"], batch_size=4)
    header = write_results(rows, tmp / "results.csv").read_text().splitlines()[0]
    print(header)  # file_id,file,findings.p_Infiltrative,...,findings.Infiltrative,...,severity.predicted,...
    print(rows[0].file_id, rows[0].decisions)
    # --8<-- [end:predict]
