"""MedMNIST 3D: the reader on the real AdrenalMNIST3D file and on a tiny one, and every command taking --medmnist."""

import json

import numpy as np
import pytest
import torch

from slicevid.cli import main
from slicevid.data import MEDMNIST_3D, MedMNIST3D
from slicevid.errors import ConfigError, DataError

from .helpers import SHARED_ADRENALMNIST as REAL
from .helpers import write_medmnist_npz

SMALL = ["--encoder", "compact_cnn", "--encoder-kwargs", '{"widths": [4, 8]}', "--aggregator", "attention"]
FAST = ["--epochs", "2", "--batch-size", "8", "--optimizer", "adamw", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_medmnist_npz(tmp_path_factory.mktemp("medmnist") / "adrenalmnist3d.npz")


@pytest.fixture(scope="module")
def trained(npz, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    code = main(["finetune", "--medmnist", str(npz), "--out", str(out), "--monitor", "val_auc", *SMALL, *FAST])
    assert code == 0
    return out


@pytest.mark.skipif(not REAL.is_file(), reason="the shared AdrenalMNIST3D file is not beside the repository")
def test_the_real_adrenalmnist3d_file_reads_with_its_official_split():
    sizes = {split: MedMNIST3D(REAL, split) for split in ("train", "val", "test")}
    assert {split: len(data) for split, data in sizes.items()} == {"train": 1188, "val": 98, "test": 298}
    assert sizes["train"].class_counts().tolist() == [929, 259] and sizes["test"].class_counts().tolist() == [229, 69]
    volume, label = sizes["val"][0]
    assert volume.shape == (1, 28, 28, 28) and volume.dtype == torch.float32 and label in (0, 1)
    assert set(torch.unique(volume).tolist()) <= {0.0, 1.0}  # binary shapes, 0 and 255 in the file
    assert sizes["train"].class_names == MEDMNIST_3D["adrenalmnist3d"] == ("normal", "hyperplasia")
    assert sizes["test"].file_ids[:2] == ["test/0000", "test/0001"]


def test_flags_are_looked_up_in_the_root_and_any_size_is_read(tmp_path):
    write_medmnist_npz(tmp_path / "nodulemnist3d_64.npz", side=12)
    data = MedMNIST3D("nodulemnist3d_64", "val", root=tmp_path)
    assert data.class_names == ("benign", "malignant") and data[0][0].shape == (1, 12, 12, 12)
    assert data.input_spec()["input_size"] == (12, 12, 12)
    pooled = MedMNIST3D(tmp_path / "nodulemnist3d_64.npz", ("train", "val"))
    assert len(pooled) == 32 and pooled.file_ids[24] == "val/0000"


def test_a_missing_file_says_where_to_put_it_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match=r"adrenalmnist3d_64\.npz: not found\. Put .* in .*medmnist.AdrenalMNIST3D"):
        MedMNIST3D("adrenalmnist3d_64", root=tmp_path)
    with pytest.raises(DataError, match="not a MedMNIST 3D flag"):
        MedMNIST3D("chestmnist", root=tmp_path)


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        ({"train_images": np.zeros((4, 8, 8), np.uint8), "train_labels": np.zeros((4, 1), np.uint8)}, "2D sets"),
        ({"train_images": np.zeros((4, 8, 8, 8), np.uint8)}, "no train_images / train_labels"),
        ({"train_images": np.zeros((4, 8, 8, 8), np.uint8), "train_labels": np.zeros((4, 3))}, "several labels"),
    ],
)
def test_foreign_or_broken_files_are_one_clear_error(tmp_path, arrays, match):
    np.savez(tmp_path / "x.npz", **arrays)
    with pytest.raises(DataError, match=match):
        MedMNIST3D(tmp_path / "x.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        MedMNIST3D(tmp_path / "broken.npz")


def test_finetune_records_the_file_and_evaluate_scores_its_validation_then_test_split(trained, npz, capsys, tmp_path):
    saved = json.loads((trained / "best" / "config.json").read_text())
    assert saved["provenance"]["training_data"]["kind"] == "medmnist"
    report = json.loads((trained / "report.json").read_text())
    assert {"auc", "sensitivity", "specificity", "ppv", "npv", "balanced_accuracy", "brier", "ece"} <= set(report)
    assert (trained / "roc.png").is_file() and (trained / "reliability.png").is_file()
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(trained / "best"), "--device", "cpu", "--no-progress"]) == 0
    assert "the official val split" in capsys.readouterr().out
    out = tmp_path / "test.json"
    args = ["--split", "test", "--bootstrap", "50", "--report", str(out), "--plots", str(tmp_path / "plots")]
    assert main(["evaluate", "--checkpoint", str(trained / "best"), *args, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "the official test split" in printed and "95% bootstrap intervals, 50 resamples" in printed
    scored = json.loads(out.read_text())
    low, high = scored["auc_ci"]
    assert scored["split"] == "test" and low <= scored["auc"] <= high
    assert (tmp_path / "plots" / "roc.png").is_file() and (tmp_path / "plots" / "confusion.png").is_file()


def test_predict_a_medmnist_split(trained, npz, tmp_path, capsys):
    out = tmp_path / "p.csv"
    args = ["--checkpoint", str(trained / "best"), "--medmnist", str(npz), "--out", str(out), "--no-progress"]
    assert main(["predict", *args, "--explain", str(tmp_path / "why")]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "file_id,file,predicted,p_normal,p_hyperplasia" and len(lines) == 9
    assert lines[1].startswith("test/0000,test/0000,")
    assert len(list((tmp_path / "why").glob("test__*.png"))) == 8  # slice importance of each volume


def test_options_that_cannot_apply_to_medmnist_are_refused(npz, tmp_path, capsys):
    for extra in (["--scans", str(tmp_path)], ["--size", "32"], ["--split-column", "Split"]):
        code = main(["finetune", "--medmnist", str(npz), "--out", str(tmp_path / "r"), *extra, *FAST])
        err = capsys.readouterr().err
        assert code == 2 and "cannot apply to --medmnist" in err and "Traceback" not in err


def test_ssl_pretraining_on_medmnist_volumes_chains_into_finetuning(npz, tmp_path):
    pre = tmp_path / "ssl"
    assert main(["pretrain", "--ssl", "order", "--medmnist", str(npz), "--out", str(pre), *SMALL, *FAST]) == 0
    out = tmp_path / "ft"
    assert main(["finetune", "--medmnist", str(npz), "--pretrained", str(pre / "best"), "--out", str(out), *FAST]) == 0


def test_monitor_val_auc_and_a_name_no_head_reports(npz, tmp_path, capsys):
    code = main(
        ["finetune", "--medmnist", str(npz), "--out", str(tmp_path / "r"), "--monitor", "val_qwk", *SMALL, *FAST]
    )
    captured = capsys.readouterr()
    assert code == 2 and "--monitor 'val_qwk' is not a validation value of this model" in captured.err
    assert "val_auc" in captured.err and "epoch 1/" not in captured.out  # refused before the first epoch
    with pytest.raises(ConfigError, match="val_qwk"):
        from slicevid import create_model
        from slicevid.train import TrainConfig, fit

        data = MedMNIST3D(npz, "train")
        fit(
            create_model("compact_cnn", "mean", 2), data, data, TrainConfig(epochs=1, monitor="val_qwk", progress=False)
        )
