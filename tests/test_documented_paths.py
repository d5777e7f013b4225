"""Every documented path does what it says (issue 27): one-head label options, reruns from a run folder,
batch prediction that survives a bad file, missing optional packages, and the fourth hostile pass."""

import csv
import importlib.util
import json
import os

import numpy as np
import pytest
import yaml

from slicevid.cli import main
from slicevid.data import HeadColumns, LabelledScans
from slicevid.data.slices import read_slice_indices
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.errors import CheckpointError, ConfigError, DataError
from slicevid.keys import TARGET
from slicevid.recipes import Configuration, Recipe

from .helpers import PLAIN_CNN, plain_cnn, registered

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")
SMALL = ["--encoder", "test_plain_cnn", "--depth", "4", "--size", "32", "--epochs", "1", "--no-progress"]
SPLIT = ["--val-fraction", "0.25"]  # 5 validation scans of 20: one of each type


def one_line(capsys, code: int, *fragments: str) -> str:
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" not in captured.err, captured.err
    line = captured.err.strip().splitlines()[-1]
    assert all(fragment in line for fragment in fragments), line
    return line


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """20 phantoms with more columns: a score (one empty), 0/1 findings (one gap), class names with a comma
    or quotes, a column of one value and an empty one."""
    root = tmp_path_factory.mktemp("paths") / "scans"
    labels = write_tb_phantoms(root, n_per_class=4, shape=(6, 32, 32), seed=0)
    rows = list(csv.DictReader(labels.open()))
    with labels.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["FileName", "TypeOfTB", "Score", "A", "B", "Odd", "Const", "Empty"])
        for index, row in enumerate(rows):
            score = "" if index == 3 else f"{0.05 + 0.04 * index:.2f}"
            odd = "with, comma" if int(row["TypeOfTB"]) < 3 else 'with "quotes"'
            gap = "" if index == 4 else (index // 2) % 2
            writer.writerow([row["FileName"], row["TypeOfTB"], score, index % 2, gap, odd, "same", ""])
    return root


def finetune(scans, out, *flags: str) -> int:
    """``slicevid finetune`` on the phantoms with a tiny model, one epoch; its exit status."""
    data = ["--scans", str(scans), "--labels-csv", str(scans / "labels.csv")]
    return main(["finetune", *data, "--out", str(out), *SMALL, *SPLIT, *flags])


# ------------------------------------------------------------------ one-head label options
def test_a_one_head_regression_keeps_fractional_scores_and_masks_empty_cells(scans):
    data = LabelledScans(scans, scans / "labels.csv", "all", heads={TARGET: HeadColumns("number", ("Score",))})
    scores = data.targets[TARGET]
    assert scores[0] == pytest.approx(0.05) and scores[1] == pytest.approx(0.09) and np.isnan(scores[3])
    assert isinstance(data[0][1], dict) and float(data[0][1][TARGET]) == pytest.approx(0.05)


def test_task_regression_and_task_multilabel_train_from_the_cli(scans, tmp_path):
    assert finetune(scans, tmp_path / "reg", "--task", "regression", "--label-column", "Score") == 0
    report = json.loads((tmp_path / "reg" / "report.json").read_text())
    assert report["count"] >= 4 and 0 <= report["mae"] < 1  # scores in [0.05, 0.81], not truncated to 0
    assert finetune(scans, tmp_path / "ml", "--task", "multilabel", "--label-columns", "A,B") == 0
    saved = json.loads((tmp_path / "ml" / "best" / "config.json").read_text())
    assert saved["heads"]["tasks"]["target"]["labels"] == ["A", "B"]


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--task", "ordinal", "--levels", "low,medium,high,"], "--levels 'low,medium,high,' holds an empty name"),
        (["--levels", "low,high"], "--levels names the levels of an ordinal task"),
        (["--head", "t=multiclass:TypeOfTB", "--head", "t=regression:Score"], "--head names 't' twice"),
        (["--task", "multilabel", "--label-columns", "A,B", "--flip-pairs", "A:Bee"], "--flip-pairs name"),
        (["--label-column", "Const"], "Const holds one class only (['same'])"),
        (["--head", "f=multilabel:A,Empty"], "column(s) ['Empty'] hold no label at all"),
    ],
)
def test_label_options_that_cannot_mean_what_they_say_are_refused(scans, tmp_path, capsys, flags, fragment):
    one_line(capsys, finetune(scans, tmp_path / "r", *flags), fragment)


# ------------------------------------------------------------------ reruns
def test_a_run_folders_config_reruns_it_repeatable_options_and_plugins_included(scans, tmp_path, capsys, monkeypatch):
    plugin = tmp_path / "plugins" / "mine.py"
    plugin.parent.mkdir()
    plugin.write_text("from slicevid import register_aggregator\n")
    monkeypatch.chdir(tmp_path)
    heads = ["--head", "type=multiclass:TypeOfTB", "--head", "score=regression:Score"]
    run = tmp_path / "first"
    assert finetune(scans, run, *heads, "--import", "plugins/mine.py") == 0
    record = yaml.safe_load((run / "config.yaml").read_text())
    assert record["head"] == ["type=multiclass:TypeOfTB", "score=regression:Score"]
    assert record["imports"] == [str(plugin)] and "overwrite" not in record and "resume" not in record
    monkeypatch.chdir(tmp_path / "plugins")  # a rerun from elsewhere finds the plugin
    assert main(["finetune", "--config", str(run / "config.yaml"), "--out", str(tmp_path / "second")]) == 0
    one_line(capsys, main(["finetune", "--config", str(run / "config.yaml")]), "already holds a run")


def test_a_run_that_failed_in_its_first_epoch_says_overwrite(scans, tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text("epochs: 1\n")  # what a run that died before its first checkpoint leaves
    line = one_line(capsys, finetune(scans, run), "stopped before its first checkpoint")
    assert "--overwrite" in line
    one_line(capsys, finetune(scans, run, "--resume"), "pass --overwrite instead")


# ------------------------------------------------------------------ evaluation and prediction
@pytest.fixture(scope="module")
def trained(scans, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    with registered("encoder", PLAIN_CNN, plain_cnn):
        assert finetune(scans, out) == 0
    return out


def predict(trained, *args: str) -> int:
    return main(["predict", "--checkpoint", str(trained), *map(str, args)])


def test_evaluate_from_another_folder_finds_the_training_data(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--checkpoint", str(trained / "best"), "--no-progress"]) == 0
    assert "the training run's validation scans" in capsys.readouterr().out


def test_predict_skips_a_broken_scan_and_still_writes_the_csv(trained, scans, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("TRN_0001.nii.gz", "TRN_0002.nii.gz"):
        (folder / name).write_bytes((scans / name).read_bytes())
    (folder / "TRN_0003.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    out = tmp_path / "r.csv"
    assert predict(trained / "best", folder, "--on-error", "skip", "--out", out) == 0
    assert len(out.read_text().splitlines()) == 3 and "TRN_0003" not in out.read_text()
    assert "skipped" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--out", "--submission"])
def test_an_output_that_is_an_input_is_refused(trained, scans, tmp_path, capsys, flag):
    scan = tmp_path / "scan.nii.gz"
    scan.write_bytes((scans / "TRN_0001.nii.gz").read_bytes())
    one_line(capsys, predict(trained / "best", scan, flag, scan), "is one of this command's inputs")
    assert scan.read_bytes() == (scans / "TRN_0001.nii.gz").read_bytes()
    weights = trained / "best" / "model.safetensors"
    before = weights.read_bytes()
    code = main(["export", "--checkpoint", str(trained / "best"), "--out", str(weights)])
    one_line(capsys, code, "must end in .onnx")
    assert weights.read_bytes() == before


def test_the_results_table_on_stdout_quotes_names_with_commas(scans, tmp_path, capsys):
    assert finetune(scans, tmp_path / "r", "--label-column", "Odd") == 0
    capsys.readouterr()
    assert predict(tmp_path / "r" / "best", scans / "TRN_0001.nii.gz") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == 'file_id,file,predicted,"p_with ""quotes""","p_with, comma"'
    assert next(csv.reader([printed[1]]))[0] == "TRN_0001"


def test_submissions_are_for_one_class_per_scan(scans, tmp_path, capsys):
    assert finetune(scans, tmp_path / "reg", "--task", "regression", "--label-column", "Score") == 0
    capsys.readouterr()
    code = predict(tmp_path / "reg" / "best", scans / "TRN_0001.nii.gz", "--submission", tmp_path / "s.csv")
    one_line(capsys, code, "--submission lines name one class per scan", "use --out")


# ------------------------------------------------------------------ missing packages and files, damaged models
def test_missing_optional_packages_are_one_line_before_any_work(trained, tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    missing = ("onnx", "tensorboard")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in missing else real(name, *a))
    code = main(["export", "--checkpoint", str(trained / "best"), "--out", str(tmp_path / "m.onnx")])
    one_line(capsys, code, "needs the onnx package: pip install 'slicevid[deploy]'")
    nowhere = ["--scans", str(tmp_path / "nowhere"), "--labels-csv", "x.csv", "--out", str(tmp_path / "t")]
    one_line(
        capsys, main(["finetune", *nowhere, "--tensorboard", *SMALL]), "--tensorboard needs the tensorboard package"
    )


def test_a_missing_or_damaged_onnx_file_is_one_line(trained, tmp_path, capsys):
    one_line(capsys, predict(tmp_path / "missing.onnx", tmp_path), "checkpoint not found")
    path = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(trained / "best"), "--out", str(path)]) == 0
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(b ^ 0xFF for b in data[middle : middle + 4096])
    path.write_bytes(bytes(data))
    from slicevid.deploy import read_onnx_config

    with pytest.raises(CheckpointError, match="damaged|not a readable ONNX"):
        read_onnx_config(path)
    capsys.readouterr()
    export = ["export", "--checkpoint", str(trained / "best"), "--format", "torch-export", "--depth", "1"]
    one_line(capsys, main([*export, "--out", str(tmp_path / "m.pt2")]), "--depth must be an integer of at least 2")


# ------------------------------------------------------------------ plugins, recipes, settings files
def test_plugin_mistakes_are_one_line(scans, tmp_path, capsys):
    (tmp_path / "x.txt").write_text("print('hi')")
    (tmp_path / "quits.py").write_text("import sys\nsys.exit(0)\n")
    for target, fragment in ((tmp_path / "x.txt", "must be a .py file"), (tmp_path / "quits.py", "called sys.exit(0)")):
        one_line(capsys, finetune(scans, tmp_path / "r", "--import", str(target)), fragment)


def test_recipe_files_and_configurations_that_cannot_work(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="holds no settings"):
        Recipe.load(tmp_path / "empty.yaml")
    with pytest.raises(ConfigError, match="is a folder"):
        Recipe.load(tmp_path)
    (tmp_path / "r.txt").write_text("name: from a .txt file\n")
    assert Recipe.load(tmp_path / "r.txt").name == "from a .txt file"  # YAML whatever the file's ending
    with pytest.raises(ConfigError, match="would share the folder 'No_PT'"):
        Recipe(configurations={"No PT": Configuration(), "No_PT": Configuration()})
    with pytest.raises(ConfigError, match="makes no usable folder name"):
        Recipe(configurations={"..": Configuration()})
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\nencoder_kwargs: {k: *c}\n'
    (tmp_path / "bomb.yaml").write_text(bomb)
    with pytest.raises(ConfigError, match="aliases"):
        Recipe.load(tmp_path / "bomb.yaml")


# ------------------------------------------------------------------ slice targets, SSL, empty epochs
def test_slice_target_tables_that_cannot_be_meant(scans, tmp_path, capsys):
    for cell, fragment in (("5-3", "runs backwards"), ("0-2000000", "reaches past 10000 slices")):
        (tmp_path / "s.csv").write_text(f"FileName,slices\nTRN_0001,{cell}\n")
        with pytest.raises(DataError, match=fragment):
            read_slice_indices(tmp_path / "s.csv")
    (tmp_path / "s.csv").write_text("FileName,slices\nTRN_0001,1;2\nTRN_0001,3\n")
    with pytest.raises(DataError, match="listed on line 2 and again, with other slices, on line 3"):
        read_slice_indices(tmp_path / "s.csv")
    (tmp_path / "s.csv").write_text("FileName,slices\nscan_a,1\nscan_b,2\n")
    code = finetune(scans, tmp_path / "r", "--slice-targets", str(tmp_path / "s.csv"))
    one_line(capsys, code, "--slice-targets names none of the", "training scans")


def test_contrastive_pretraining_refuses_batches_of_one(scans, tmp_path, capsys):
    ssl = ["pretrain", "--ssl", "contrastive", "--scans", str(scans), "--batch-size", "1"]
    code = main([*ssl, "--out", str(tmp_path / "s"), *SMALL])
    one_line(capsys, code, "--batch-size must be at least 2 for contrastive pretraining")


def test_an_epoch_without_a_batch_is_an_error_not_a_nan():
    from slicevid.train import TrainConfig, fit
    from tests.helpers import plain_model, toy_data

    with pytest.raises(DataError, match="had no training batch"):
        fit(plain_model(), toy_data(3), None, TrainConfig(epochs=1, batch_size=4, drop_last=True, progress=False))


def test_the_plain_defaults_from_random_weights_get_one_line_of_advice(scans, tmp_path, capsys):
    assert finetune(scans, tmp_path / "r", "--aggregator", "lstm") == 0
    assert "what learns from scratch: --aggregator attention --feature-norm layernorm" in capsys.readouterr().out


def test_a_plain_module_fine_tunes_after_its_head_is_swapped_for_fewer_classes():
    """Pretrain with ten classes, swap the head for three: the second fit describes the new head."""
    import torch
    from torch import nn

    from slicevid.train import TrainConfig, fit
    from tests.helpers import toy_data

    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    quiet = TrainConfig(epochs=1, batch_size=4, progress=False)
    fit(module, toy_data(20, classes=10), toy_data(10, classes=10, seed=1), quiet)
    module[1] = nn.Linear(3 * 32 * 32, 3)
    result = fit(module, toy_data(), toy_data(seed=1), quiet, class_names=["a", "b", "c"])
    assert result.config.class_names == ("a", "b", "c") and module.config.class_names == ("a", "b", "c")


def test_a_plain_module_trained_by_fit_predicts_without_repeating_its_class_names(scans):
    import torch
    from torch import nn

    from slicevid.data import CTPreprocessing
    from slicevid.predict import predict_scans
    from slicevid.train import TrainConfig, fit

    preprocessing = CTPreprocessing(size=(4, 16, 16))
    data = LabelledScans(scans, scans / "labels.csv", "all", label_column="TypeOfTB", preprocessing=preprocessing)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(4 * 16 * 16, 5))
    fit(module, data, None, TrainConfig(epochs=1, batch_size=5, progress=False))
    rows = predict_scans(module, [scans / "TRN_0001.nii.gz"])
    assert rows[0].class_names == data.classes and os.path.basename(rows[0].file_name) == "TRN_0001.nii.gz"
