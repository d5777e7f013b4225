"""The clinical numbers: AUC, the rates at a chosen threshold, Brier, calibration error, bootstrap intervals,
temperature scaling, and their path through training, saving, prediction and export."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from slicevid import SliceSequenceClassifier, create_model
from slicevid.errors import ConfigError
from slicevid.metrics import (
    bootstrap_intervals,
    choose_threshold,
    classification_report,
    expected_calibration_error,
    lower_is_better,
)
from slicevid.tasks import Multiclass
from slicevid.train import TrainConfig, fit
from slicevid.train.calibration import fit_temperature

from .helpers import toy_data


def test_rates_of_a_known_binary_confusion():
    truth = [0] * 6 + [1] * 4
    decided = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]  # TN 4, FP 2, TP 3, FN 1
    report = classification_report(truth, decided, ["normal", "mass"])
    assert report.sensitivity == pytest.approx(3 / 4) and report.specificity == pytest.approx(4 / 6)
    assert report.ppv == pytest.approx(3 / 5) and report.npv == pytest.approx(4 / 5)
    assert report.balanced_accuracy == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert report.auc is None and "auc" not in report.metrics()  # no probabilities, no AUC


def test_multiclass_rates_are_one_vs_rest_macro_means_and_auc_is_sklearns():
    rng = np.random.default_rng(0)
    truth = np.arange(60) % 3
    probabilities = rng.dirichlet((1, 1, 1), 60) + np.eye(3)[truth] * 0.5
    probabilities /= probabilities.sum(1, keepdims=True)
    report = classification_report(truth, probabilities.argmax(1), probabilities=probabilities)
    assert report.auc == pytest.approx(roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"))
    recall = [((probabilities.argmax(1) == k) & (truth == k)).sum() / (truth == k).sum() for k in range(3)]
    assert report.sensitivity == pytest.approx(np.mean(recall)) == report.balanced_accuracy
    onehot = np.eye(3)[truth]
    assert report.brier == pytest.approx(np.mean(((probabilities - onehot) ** 2).sum(1)))


def test_an_absent_class_makes_auc_undefined_not_an_error():
    report = classification_report([0, 0, 0], [0, 1, 0], probabilities=np.array([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2]]))
    assert math.isnan(report.auc) and math.isnan(report.sensitivity)


def test_calibration_error_is_zero_when_confidence_is_accuracy():
    truth = np.array([1, 1, 1, 0] * 25)  # the top class is right 3 times in 4, at confidence 0.75
    probabilities = np.tile([0.25, 0.75], (100, 1))
    assert expected_calibration_error(truth, probabilities) == pytest.approx(0.0)
    assert expected_calibration_error(truth, np.tile([0.05, 0.95], (100, 1))) == pytest.approx(0.2)


def test_thresholds_by_youden_and_by_target_sensitivity():
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    assert choose_threshold(truth, score) == pytest.approx(0.7)  # sensitivity 0.75 at specificity 1
    assert choose_threshold(truth, score, "sensitivity", 1.0) == pytest.approx(0.4)  # every positive found
    assert choose_threshold(truth, score, "argmax") is None
    with pytest.raises(ConfigError, match="threshold must be one of"):
        choose_threshold(truth, score, "f2")


def test_bootstrap_intervals_hold_the_estimate_and_repeat_with_the_seed():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 200)
    probabilities = np.clip(truth * 0.4 + rng.random(200) * 0.6, 0, 1)
    both = np.stack([1 - probabilities, probabilities], 1)

    def metrics(indices):
        return classification_report(
            truth[indices], (probabilities[indices] >= 0.5).astype(int), probabilities=both[indices]
        ).metrics()

    first = bootstrap_intervals(metrics, 200, 200, seed=3)
    assert first == bootstrap_intervals(metrics, 200, 200, seed=3)
    low, high = first["auc"]
    assert low < roc_auc_score(truth, probabilities) < high < 1
    with pytest.raises(ConfigError, match="bootstrap must be an integer"):
        bootstrap_intervals(metrics, 200, 1)


def test_metric_directions_are_declared_not_guessed():
    assert lower_is_better("val_loss") and lower_is_better("val_brier") and lower_is_better("val_findings_mae")
    assert not lower_is_better("val_auc") and not lower_is_better("val_type_specificity")


def test_the_fitted_temperature_is_the_one_that_made_the_logits():
    torch.manual_seed(0)
    true_logits = torch.randn(4000, 3) * 2
    targets = torch.distributions.Categorical(logits=true_logits).sample()
    assert fit_temperature(true_logits * 3, targets) == pytest.approx(3.0, rel=0.1)


def test_a_task_decides_by_its_threshold_and_scales_by_its_temperature():
    task = Multiclass(["normal", "mass"], threshold=0.3, temperature=2.0)
    probabilities = np.array([[0.75, 0.25], [0.65, 0.35]])
    assert task.decide(probabilities).tolist() == [0, 1]
    logits = torch.tensor([[0.0, 2.0]])
    assert torch.allclose(task.activate(logits), torch.tensor([[0.0, 1.0]]).softmax(-1))
    assert torch.allclose(task.activate(task.inverse_activate(task.activate(logits))), task.activate(logits))
    with pytest.raises(ConfigError, match="threshold applies to two classes only"):
        Multiclass(3, threshold=0.5)
    with pytest.raises(ConfigError, match="temperature must be a positive number"):
        Multiclass(2, temperature=0)


def binary_data(seed: int = 0):
    data = toy_data(24, classes=2, seed=seed, noise=0.6)
    data.classes = ("normal", "mass")
    return data


def test_fit_chooses_the_threshold_and_temperature_on_validation_and_saves_them(tmp_path, plain_cnn_encoder):
    torch.manual_seed(0)
    model = create_model(plain_cnn_encoder, "mean", 2, head_hidden=16)
    settings = TrainConfig(
        epochs=3,
        batch_size=6,
        lr=0.05,
        progress=False,
        out_dir=str(tmp_path),
        calibrate="temperature",
        monitor="val_auc",
    )
    result = fit(model, binary_data(), binary_data(1), settings)
    task = model.config.tasks["target"]
    assert task.threshold is not None and task.temperature is not None and result.config == model.config
    saved = SliceSequenceClassifier.from_pretrained(tmp_path / "best")
    assert saved.config.tasks["target"] == task
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["threshold"] == pytest.approx(task.threshold)
    assert (tmp_path / "roc.png").is_file() and (tmp_path / "reliability.png").is_file()


def test_calibration_is_refused_for_a_model_without_a_multiclass_head(plain_cnn_encoder):
    from slicevid.tasks import Regression

    data = toy_data(8)
    model = create_model(plain_cnn_encoder, "mean", task=Regression())
    with pytest.raises(ConfigError, match="calibrate 'temperature' scales a multi-class head"):
        fit(model, data, None, TrainConfig(epochs=1, calibrate="temperature", progress=False))
