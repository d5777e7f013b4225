"""Cross-validation: fold run folders, out-of-fold predictions, the report over folds, and the folds as one model."""

import csv
import json

import pytest
import torch

from slicevid import SliceSequenceClassifier
from slicevid.cli import main
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.ensemble import FoldEnsemble
from slicevid.predict import predict_scans

from .helpers import write_medmnist_npz

FAST = ["--encoder", "test_plain_cnn", "--depth", "4", "--size", "32", "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv") / "scans"
    write_tb_phantoms(root, n_per_class=4, shape=(6, 32, 32), seed=0)
    return root


@pytest.fixture
def cv_run(scans, tmp_path, plain_cnn_encoder):
    out = tmp_path / "cv"
    args = ["cv", "--folds", "2", "--scans", str(scans), "--labels-csv", str(scans / "labels.csv"), "--out", str(out)]
    assert main([*args, *FAST, "--val-fraction", "0.5"]) == 0
    return out


def test_every_scan_is_predicted_once_by_a_model_that_never_saw_it(cv_run, scans, capsys):
    rows = list(csv.DictReader((cv_run / "oof.csv").open()))
    assert len(rows) == 20 and len({row["file_id"] for row in rows}) == 20
    assert {row["fold"] for row in rows} == {"0", "1"}
    assert set(rows[0]) >= {"file_id", "fold", "true", "predicted", "p_Infiltrative"}
    for fold in (0, 1):
        config = json.loads((cv_run / f"fold-{fold}" / "best" / "config.json").read_text())
        seen = set(config["provenance"]["training_data"]["val_ids"])
        held = {row["file_id"] for row in rows if row["fold"] == str(fold)}
        assert not seen & held  # the epoch was chosen on the fold's own validation share, not its held-out part
        assert (cv_run / f"fold-{fold}" / "test-report.json").is_file()
    report = json.loads((cv_run / "cv-report.json").read_text())
    assert report["folds"] == 2 and len(report["metrics"]["kappa"]["folds"]) == 2
    assert report["metrics"]["accuracy"]["mean"] == pytest.approx(sum(report["metrics"]["accuracy"]["folds"]) / 2)


def test_a_rerun_skips_the_finished_folds(cv_run, scans, plain_cnn_encoder):
    before = (cv_run / "fold-0" / "best" / "model.safetensors").stat().st_mtime_ns
    args = [
        "cv",
        "--folds",
        "2",
        "--scans",
        str(scans),
        "--labels-csv",
        str(scans / "labels.csv"),
        "--out",
        str(cv_run),
    ]
    assert main([*args, *FAST, "--val-fraction", "0.5"]) == 0
    assert (cv_run / "fold-0" / "best" / "model.safetensors").stat().st_mtime_ns == before


def test_predict_with_a_cv_folder_averages_its_folds(cv_run, scans, tmp_path, capsys, plain_cnn_encoder):
    out = tmp_path / "results.csv"
    assert main(["predict", "--checkpoint", str(cv_run), str(scans), "--out", str(out), "--no-progress"]) == 0
    ensemble = FoldEnsemble.from_folder(cv_run)
    folds = [SliceSequenceClassifier.from_pretrained(cv_run / f"fold-{k}" / "best").eval() for k in (0, 1)]
    volumes = torch.rand(2, 1, 4, 32, 32)
    with torch.no_grad():
        mean = sum(m.predict_proba(volumes) for m in folds) / 2
        averaged = ensemble.eval().config.tasks["target"].activate(ensemble.forward_outputs(volumes).tasks["target"])
    assert torch.allclose(averaged, mean, atol=1e-5)
    rows = predict_scans(cv_run, [scans])
    assert len(rows) == 20 and len(out.read_text().splitlines()) == 21


def test_cv_on_a_medmnist_file_pools_its_training_and_validation_volumes(tmp_path):
    npz = write_medmnist_npz(tmp_path / "adrenalmnist3d.npz")
    out = tmp_path / "cv"
    model = ["--encoder", "compact_cnn", "--encoder-kwargs", '{"widths": [4, 8]}', "--aggregator", "mean"]
    assert (
        main(
            ["cv", "--folds", "2", "--medmnist", str(npz), "--out", str(out), *model, "--epochs", "1", "--no-progress"]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "oof.csv").open()))
    assert len(rows) == 32 and {row["file_id"].split("/")[0] for row in rows} == {"train", "val"}
