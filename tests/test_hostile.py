"""The hostile pass: each case that once lost a run or a file, gave a silently wrong result, hung, or
answered with a traceback or a misleading message, as it behaves now."""

import gzip
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from slicevid import DataError
from slicevid.cli import main
from slicevid.data import CTPreprocessing, CTVolumeDataset, ImageCLEFTBT, LabelledScans, load_ct
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.errors import CheckpointError, OutputError, RunFolderError
from slicevid.predict import expand_inputs, predict_scans
from slicevid.train import TrainConfig, fit
from slicevid.train.run_folder import REPLACED

from .helpers import plain_model, toy_data, write_dicom_series, write_nifti

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")
QUIET = {"progress": False, "batch_size": 4, "lr": 0.05}


def one_line(capsys, code: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert all(fragment in line for fragment in fragments), line
    return line


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    write_tb_phantoms(root / "scans", n_per_class=3, shape=(6, 32, 32), seed=0)
    return root / "scans"


# ------------------------------------------------------------------ nothing lost
@pytest.mark.slow
def test_demo_never_deletes_what_it_did_not_write(tmp_path, capsys):
    folder = tmp_path / "p"
    (folder / "src").mkdir(parents=True)
    (folder / "report.md").write_text("n")
    (folder / "src" / "important.py").write_text("y")
    one_line(capsys, main(["demo", "--quick", "--out", str(folder)]), "report.md", "no earlier demo wrote")
    assert (folder / "src" / "important.py").read_text() == "y" and (folder / "report.md").read_text() == "n"
    (folder / "report.md").unlink()
    assert main(["demo", "--quick", "--out", str(folder)]) == 0
    assert main(["demo", "--quick", "--out", str(folder)]) == 0  # its own earlier demo is replaced
    assert (folder / "src" / "important.py").read_text() == "y"


def test_a_failing_overwrite_keeps_the_old_run(tmp_path):
    fit(plain_model(), toy_data(), toy_data(seed=1), TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    before = (tmp_path / "last.safetensors").read_bytes()
    poisoned = torch.utils.data.TensorDataset(torch.full((8, 1, 3, 32, 32), float("nan")), torch.arange(8) % 3)
    with pytest.raises(Exception, match="became nan"):
        fit(plain_model(), poisoned, None, TrainConfig(epochs=2, out_dir=str(tmp_path), overwrite=True, **QUIET))
    assert (tmp_path / "last.safetensors").read_bytes() == before and not (tmp_path / REPLACED).exists()
    assert not (tmp_path / ".lock").exists()  # the lock goes with the run


def test_a_killed_overwrite_is_undone_by_the_next_run(tmp_path):
    fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    before = (tmp_path / "last.safetensors").read_bytes()
    (tmp_path / REPLACED).mkdir()  # what a kill between setting the old run aside and the first checkpoint leaves
    for name in ("last.safetensors", "best", "metrics.csv", "config.yaml"):
        os.replace(tmp_path / name, tmp_path / REPLACED / name)
    fit(plain_model(), toy_data(), None, TrainConfig(epochs=2, out_dir=str(tmp_path), resume=True, **QUIET))
    assert not (tmp_path / REPLACED).exists() and (tmp_path / "last.safetensors").read_bytes() != before


def test_a_refused_resume_keeps_the_record(tmp_path, phantoms, capsys):
    common = ["--scans", str(phantoms), "--labels-csv", str(phantoms / "labels.csv"), "--out", str(tmp_path / "r")]
    small = ["--encoder", "test_plain_cnn", "--depth", "4", "--size", "32", "--epochs", "1", "--no-progress"]
    assert main(["finetune", *common, *small, "--aggregator", "mean", "--val-fraction", "0.34"]) == 0
    record = (tmp_path / "r" / "config.yaml").read_text()
    code = main(
        ["finetune", *common, *small, "--aggregator", "gru", "--resume", "--lr", "0.5", "--val-fraction", "0.34"]
    )
    one_line(capsys, code, "--resume", "aggregator: 'mean' vs 'gru'", "lr: 0.001 vs 0.5")
    assert (tmp_path / "r" / "config.yaml").read_text() == record


# ------------------------------------------------------------------ nothing silently wrong
def test_resume_refuses_a_changed_seed_or_size_and_an_empty_folder(tmp_path):
    fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path / "a"), **QUIET))
    with pytest.raises(RunFolderError, match="seed: 0 vs 3"):
        fit(
            plain_model(),
            toy_data(),
            None,
            TrainConfig(epochs=2, seed=3, out_dir=str(tmp_path / "a"), resume=True, **QUIET),
        )
    bigger = torch.utils.data.TensorDataset(torch.rand(12, 1, 4, 32, 32), torch.arange(12) % 3)
    with pytest.raises(RunFolderError, match=r"input_size: \(3, 32, 32\) vs \(4, 32, 32\)"):
        fit(plain_model(), bigger, None, TrainConfig(epochs=2, out_dir=str(tmp_path / "a"), resume=True, **QUIET))
    with pytest.raises(RunFolderError, match="holds no run to resume"):
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path / "b"), resume=True, **QUIET))


def test_evaluate_scores_the_runs_own_validation_scans(tmp_path, phantoms, capsys):
    small = ["--encoder", "test_plain_cnn", "--depth", "4", "--size", "32", "--epochs", "1", "--no-progress"]
    labels = ["--scans", str(phantoms), "--labels-csv", str(phantoms / "labels.csv")]
    assert (
        main(["finetune", *labels, *small, "--seed", "3", "--val-fraction", "0.34", "--out", str(tmp_path / "r")]) == 0
    )
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "r" / "best"), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    validation = LabelledScans(
        phantoms, phantoms / "labels.csv", "val", label_column="TypeOfTB", seed=3, val_fraction=0.34
    )
    assert "validation scans (seed 3, 34%" in printed and f"{len(validation)} scans" in printed


def test_per_patient_folders_keep_their_scans_apart(tmp_path):
    for k in range(6):
        write_nifti((tmp_path / f"P{k}").mkdir() or tmp_path / f"P{k}" / "ct.nii.gz", np.full((4, 8, 8), k * 10))
    (tmp_path / "labels.csv").write_text(
        "FileName,Finding\n" + "".join(f"P{k}/ct.nii.gz,{'ab'[k % 2]}\n" for k in range(6))
    )
    data = LabelledScans(tmp_path, tmp_path / "labels.csv", "all", label_column="Finding")
    assert data.file_ids == [f"P{k}/ct" for k in range(6)] and data.classes == ("a", "b")
    _, ids = expand_inputs([tmp_path])
    assert ids == [f"P{k}/ct" for k in range(6)]


def test_prediction_ids_are_unique_or_refused(tmp_path):
    for folder in ("one", "two"):
        write_nifti((tmp_path / folder).mkdir() or tmp_path / folder / "scan.nii.gz", np.zeros((4, 8, 8)))
    with pytest.raises(DataError, match="two scans have the id 'scan'"):
        expand_inputs([tmp_path / "one", tmp_path / "two"])
    series = write_dicom_series(tmp_path / "series", np.zeros((3, 8, 8)))
    cwd = Path.cwd()
    os.chdir(series)
    try:
        assert expand_inputs(["."])[1] == ["series"]  # a series folder given as "." is named after itself
    finally:
        os.chdir(cwd)


def test_a_video_model_is_refused_for_scans(tmp_path, phantoms):
    from slicevid.data import ucf50
    from slicevid.data.synthetic import write_action_videos
    from slicevid.train import pretrain

    write_action_videos(tmp_path / "videos", ["A", "B"], n_per_class=4, frames=4, size=32)
    model = plain_model(classes=2)
    clips = ucf50(tmp_path / "videos", num_frames=4, size=32)
    pretrain(model, clips, None, TrainConfig(epochs=1, out_dir=str(tmp_path / "pt"), **QUIET), freeze_encoder=False)
    with pytest.raises(CheckpointError, match="trained on video clips"):
        predict_scans(tmp_path / "pt" / "best", [phantoms / "TRN_0001.nii.gz"])
    with pytest.raises(DataError, match="at least two classes"):
        pretrain(
            plain_model(classes=1),
            ucf50(tmp_path / "videos", ["A"], num_frames=4, size=32),
            None,
            TrainConfig(epochs=1, **QUIET),
        )


def test_a_bad_cache_entry_is_rebuilt_not_trusted(tmp_path, phantoms):
    scans = [phantoms / "TRN_0001.nii.gz", phantoms / "TRN_0002.nii.gz"]
    data = CTVolumeDataset(scans, preprocessing=CTPreprocessing(size=(4, 16, 16)), cache_dir=tmp_path)
    expected = [data.load_volume(i) for i in range(2)]
    first, second = (data.cache.path_for(s, data.preprocessing.params() | {"series": None}) for s in scans)
    shutil.copy(second, first)  # another valid entry in its place
    with pytest.warns(UserWarning, match="holds another entry's data; rebuilding"):
        assert np.array_equal(data.load_volume(0), expected[0])
    first.write_bytes(first.read_bytes()[:100])  # truncated
    with pytest.warns(UserWarning, match=f"{first.name} unreadable"):
        assert np.array_equal(data.load_volume(0), expected[0])
    assert data.cache.rebuilt == 2


def test_skip_without_a_cache_leaves_bad_scans_out(tmp_path, phantoms):
    shutil.copytree(phantoms, tmp_path / "scans")
    (tmp_path / "scans" / "TRN_0002.nii.gz").write_bytes(b"not a scan")
    with pytest.warns(UserWarning, match="Skipped 1 scan"):
        data = ImageCLEFTBT(tmp_path / "scans", tmp_path / "scans" / "labels.csv", "all", on_error="skip",
                            preprocessing=CTPreprocessing(size=(4, 16, 16)))  # fmt: skip
    assert len(data) == 14 and all(v.shape == (1, 4, 16, 16) for v, _ in (data[i] for i in range(len(data))))


# ------------------------------------------------------------------ no hang, no traceback
def test_a_fifo_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "x.nii.gz")
    with pytest.raises(DataError, match="not a regular file or folder"):
        load_ct(tmp_path / "x.nii.gz")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: (p / "x.nii.gz").write_text("hello"), "named .nii.gz but not gzip-compressed"),
        (lambda p: (p / "x.nii.gz").write_bytes(b""), "empty file (0 bytes)"),
        (lambda p: (p / "x.nii").write_bytes(gzip.compress(b"x" * 400)), "gzip-compressed data named .nii"),
        (lambda p: (p / "x.nii.gz").write_bytes(gzip.compress(b"x" * 400)), "not a NIfTI file"),
        (lambda p: (p / "x").mkdir(), "empty folder"),
        (lambda p: (p / "x").symlink_to(p / "x"), "a loop of links"),
    ],
)
def test_broken_inputs_are_one_line_errors(tmp_path, make, fragment):
    make(tmp_path)
    target = next(tmp_path.iterdir())
    with pytest.raises(DataError, match=re.escape(fragment)):
        load_ct(target)


def test_an_empty_file_name_in_the_csv_is_refused(tmp_path, phantoms):
    (tmp_path / "labels.csv").write_text("FileName,TypeOfTB\nTRN_0001.nii.gz,1\n,2\n")
    with pytest.raises(DataError, match=r"line 3: empty 'FileName'"):
        ImageCLEFTBT(phantoms, tmp_path / "labels.csv", "all")


def test_symlinked_scans_are_followed(tmp_path, phantoms):
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    for path in phantoms.glob("TRN_*.nii.gz"):
        shutil.copy(path, tmp_path / "store" / path.name)
        (tmp_path / "links" / path.name).symlink_to(tmp_path / "store" / path.name)
    data = ImageCLEFTBT(tmp_path / "links", phantoms / "labels.csv", "all")
    assert len(data) == 15 and data.sources[0].is_symlink()


def test_cli_mistakes_are_one_line_in_cli_terms(tmp_path, phantoms, capsys):
    labels = ["--scans", str(phantoms), "--labels-csv", str(phantoms / "labels.csv"), "--val-fraction", "0.34"]
    model = ["--encoder", "timm:test_resnet", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "r")]
    vgg = ["--epochs", "1", "--no-progress", "--out", str(tmp_path / "v"), "--size", "4", "--depth", "2"]
    one_line(capsys, main(["finetune", *labels, *vgg]), "encoder 'vgg16' cannot take 4x4 slices")
    one_line(
        capsys,
        main(["synth", "--out", str(tmp_path / "s"), "--phantom-shape", "0", "16", "16"]),
        "shape must be three sizes",
    )
    one_line(
        capsys, main(["finetune", *labels, *model, "--feature-cache"]), "--feature-cache applies to pretraining only"
    )
    one_line(
        capsys,
        main(["finetune", *labels, *model, "--window", "400", "-1000"]),
        "--window must be (lo, hi) with hi > lo",
    )
    config = tmp_path / "c.yaml"
    config.write_text("window: [-1000, 400, 5]\n")
    with pytest.raises(SystemExit):
        main(["finetune", "--config", str(config), *labels, *model])
    assert "setting 'window' (--window) takes 2 values" in capsys.readouterr().err


def test_depth_one_trains_to_the_end(tmp_path, phantoms):
    config = TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET)
    data = ImageCLEFTBT(phantoms, phantoms / "labels.csv", "all", preprocessing=CTPreprocessing(size=(1, 32, 32)))
    fit(plain_model(classes=5), data, None, config)
    assert (tmp_path / "montage.png").is_file()


def test_outputs_of_the_wrong_kind_are_one_line(tmp_path, phantoms, capsys):
    config = TrainConfig(epochs=1, out_dir=str(tmp_path / "r"), **QUIET)
    data = ImageCLEFTBT(phantoms, phantoms / "labels.csv", "all", preprocessing=CTPreprocessing(size=(3, 32, 32)))
    fit(plain_model(classes=5), data, None, config)
    (tmp_path / "pictures").write_text("a file")
    with pytest.raises(OutputError, match="is an existing file; expected a folder"):
        predict_scans(tmp_path / "r" / "best", [phantoms / "TRN_0001.nii.gz"], explain_dir=tmp_path / "pictures")
    (tmp_path / "report").mkdir()
    args = [
        "evaluate",
        "--checkpoint",
        str(tmp_path / "r" / "best"),
        "--split",
        "all",
        "--report",
        str(tmp_path / "report"),
    ]
    one_line(
        capsys, main([*args, "--scans", str(phantoms), "--labels-csv", str(phantoms / "labels.csv")]), "is a folder"
    )


def test_worker_count_does_not_change_the_weights(phantoms):
    """Workers read the same batches in the same order: the weights are equal, not merely close."""
    data = ImageCLEFTBT(phantoms, phantoms / "labels.csv", "all", preprocessing=CTPreprocessing(size=(3, 32, 32)))
    states = []
    for workers in (0, 2):
        model = plain_model(classes=5)
        fit(model, data, None, TrainConfig(epochs=2, num_workers=workers, augment="paper", **QUIET))
        states.append(model.state_dict())
    assert all(torch.equal(value, states[1][key]) for key, value in states[0].items())
