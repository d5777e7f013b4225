"""Failure modes that once gave silent wrong results or lost runs, each pinned by a test."""

import os
import stat

import pytest
import torch
from torch.utils.data import TensorDataset

from slicevid import DataError, TrainingDivergedError
from slicevid.errors import ConfigError
from slicevid.train import TrainConfig, fit
from slicevid.train.run_folder import RunFolderError, open_run_folder

from .helpers import plain_model, toy_data

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")

QUIET = {"progress": False, "batch_size": 4, "lr": 0.05}


def test_existing_run_is_not_overwritten_silently(tmp_path):
    fit(plain_model(), toy_data(), toy_data(seed=1), TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    with pytest.raises(RunFolderError, match="already holds a run.*--resume.*--overwrite"):
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    (tmp_path / "notes.txt").write_text("mine")
    result = fit(plain_model(), toy_data(), None, TrainConfig(epochs=2, out_dir=str(tmp_path), overwrite=True, **QUIET))
    assert len(result.history) == 2 and (tmp_path / "notes.txt").read_text() == "mine"
    assert "val_loss" not in (tmp_path / "metrics.csv").read_text()  # the old run's history is gone


def test_out_is_an_existing_file(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(RunFolderError, match="is an existing file"):
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path / "run"), **QUIET))


def test_two_runs_cannot_share_a_folder(tmp_path):
    with open_run_folder(tmp_path, resume=False, overwrite=False), pytest.raises(RunFolderError, match="in use by"):
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))


def test_orphaned_temporary_files_are_removed(tmp_path):
    orphan = tmp_path / ".last.safetensors.abc123.slicevid-tmp.safetensors"
    orphan.write_bytes(b"half a checkpoint")
    fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    assert not orphan.exists()


def test_outputs_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    finally:
        os.umask(previous)
    for name in ("last.safetensors", "metrics.csv", "best/model.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_resume_with_another_architecture_names_the_difference(tmp_path):
    fit(plain_model(), toy_data(), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    other = plain_model(classes=4)
    with pytest.raises(RunFolderError, match=r"other settings \(heads: .*'multiclass', 3\]\} vs .*'multiclass', 4\]\}"):
        fit(
            other,
            TensorDataset(torch.rand(8, 1, 3, 32, 32), torch.arange(8) % 4),
            None,
            TrainConfig(epochs=2, out_dir=str(tmp_path), resume=True, **QUIET),
        )


@pytest.mark.parametrize("lr", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_learning_rates_are_refused_up_front(lr):
    with pytest.raises(ConfigError, match="lr must be"):
        TrainConfig(lr=lr)


def test_finite_divergence_is_detected():
    with pytest.raises(TrainingDivergedError, match="Training loss (exploded|became)"):
        fit(plain_model(), toy_data(), None, TrainConfig(epochs=3, **{**QUIET, "lr": 1e6}))


def test_nan_in_validation_data_is_an_error():
    volumes, labels = toy_data(seed=1).tensors
    volumes = volumes.clone()
    volumes[2] = float("nan")
    with pytest.raises(TrainingDivergedError, match="Validation loss became nan"):
        fit(plain_model(), toy_data(), TensorDataset(volumes, labels), TrainConfig(epochs=1, **QUIET))


def test_labels_out_of_range_are_a_data_error():
    data = TensorDataset(torch.rand(4, 1, 3, 32, 32), torch.tensor([0, 1, 2, 7]))
    with pytest.raises(DataError, match=r"\[7\] are out of range for 3 classes \(0..2\)"):
        fit(plain_model(), data, None, TrainConfig(epochs=1, **QUIET))


def test_empty_training_data_is_a_data_error():
    with pytest.raises(DataError, match="empty dataset"):
        fit(
            plain_model(),
            TensorDataset(torch.rand(0, 1, 3, 32, 32), torch.zeros(0, dtype=torch.long)),
            None,
            TrainConfig(epochs=1, **QUIET),
        )
