"""Splits: a split column, patient groups kept together, k folds, and evaluate on another labels CSV."""

import csv

import numpy as np
import pytest

from slicevid.cli import main
from slicevid.data import LabelledScans
from slicevid.data.splits import SplitSettings, split_parts
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.errors import ConfigError, DataError

TB = {"label_column": "TypeOfTB"}
FAST = ["--encoder", "test_plain_cnn", "--depth", "4", "--size", "32", "--epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """24 phantoms; two per patient (P0..P11); a split column of 16 train, 4 val, 4 test."""
    root = tmp_path_factory.mktemp("splits") / "scans"
    labels = write_tb_phantoms(root, n_per_class=5, shape=(6, 32, 32), seed=0)
    rows = list(csv.DictReader(labels.open()))[:24]
    parts = ["train"] * 16 + ["val"] * 4 + ["test"] * 4
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["FileName", "TypeOfTB", "Patient", "Split"])
        for index, (row, part) in enumerate(zip(rows, parts, strict=True)):
            writer.writerow([row["FileName"], row["TypeOfTB"], f"P{index // 2}", part])
    return root


def patients(dataset):
    return {f"P{(int(name.split('_')[-1]) - 1) // 2}" for name in dataset.file_ids}  # TRN_0001 is row 0


def test_a_split_column_decides_the_parts(scans):
    labels = scans / "labels.csv"
    parts = {p: LabelledScans(scans, labels, p, split_column="Split", **TB) for p in ("train", "val", "test")}
    assert [len(parts[p]) for p in ("train", "val", "test")] == [16, 4, 4]
    assert not set(parts["train"].file_ids) & set(parts["test"].file_ids)
    assert parts["val"].data_spec().split_column == "Split" and parts["val"].data_spec().split_by == "column"
    with pytest.raises(DataError, match="needs a split column"):
        LabelledScans(scans, labels, "test", **TB)


def test_a_bad_split_value_names_its_line(scans, tmp_path):
    text = (scans / "labels.csv").read_text().replace(",train\n", ",training-set\n", 1)
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=r"'Split' is 'training-set' on line 2; expected train, val or test"):
        LabelledScans(scans, tmp_path / "labels.csv", "train", split_column="Split", **TB)


def test_one_patients_scans_never_sit_in_two_parts(scans):
    labels = scans / "labels.csv"
    train, val = (
        LabelledScans(scans, labels, p, group_column="Patient", val_fraction=0.25, **TB) for p in ("train", "val")
    )
    assert len(train) + len(val) == 24 and not patients(train) & patients(val)
    seen = set()
    for fold in range(3):
        parts = {
            p: LabelledScans(scans, labels, p, group_column="Patient", folds=3, fold=fold, val_fraction=0.34, **TB)
            for p in ("train", "val", "test")
        }
        assert not patients(parts["test"]) & (patients(parts["train"]) | patients(parts["val"]))
        assert not patients(parts["train"]) & patients(parts["val"])
        seen |= set(parts["test"].file_ids)
    assert len(seen) == 24  # every scan held out exactly once across the folds


def test_kfold_parts_cover_every_sample_once_and_stratify():
    labels = np.repeat([0, 1, 2], 10)
    held_out = []
    for fold in range(5):
        parts = split_parts(30, SplitSettings(0.25, folds=5, fold=fold), seed=0, stratify=labels)
        assert not set(parts["test"]) & (set(parts["train"]) | set(parts["val"]))
        assert np.bincount(labels[parts["test"]]).tolist() == [2, 2, 2]
        held_out += parts["test"].tolist()
    assert sorted(held_out) == list(range(30))
    with pytest.raises(ConfigError, match="folds and split_column exclude each other"):
        SplitSettings(folds=3, split_column="Split")


def test_evaluate_on_another_csv_scores_all_of_it_and_says_so(scans, tmp_path, capsys, plain_cnn_encoder):
    labels = scans / "labels.csv"
    run = tmp_path / "r"
    assert (
        main(
            [
                "finetune",
                "--scans",
                str(scans),
                "--labels-csv",
                str(labels),
                "--split-column",
                "Split",
                "--out",
                str(run),
                *FAST,
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(labels.open()))
    other = tmp_path / "other.csv"
    with other.open("w", newline="") as handle:  # another column name, and the run's class names
        writer = csv.writer(handle)
        writer.writerow(["FileName", "Type"])
        writer.writerows([row["FileName"], row["TypeOfTB"]] for row in rows[:10])
    capsys.readouterr()
    base = ["evaluate", "--checkpoint", str(run / "best"), "--scans", str(scans), "--labels-csv", str(other)]
    assert main([*base, "--label-column", "Type", "--no-progress"]) == 0
    assert (
        f"every scan of {other} (not the CSV the run was trained on, so every scan is scored): 10 scans"
        in capsys.readouterr().out
    )
    code = main([*base, "--label-column", "Type", "--classes", "a,b,c,d,e"])
    err = capsys.readouterr().err
    assert code == 2 and "--classes gives 'target' ['a', 'b', 'c', 'd', 'e'], but the checkpoint predicts" in err
    assert main(["evaluate", "--checkpoint", str(run / "best"), "--split", "test", "--no-progress"]) == 0
    assert "the test scans of" in capsys.readouterr().out  # the run's split column, recorded
