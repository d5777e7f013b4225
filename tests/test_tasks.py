"""Every kind of target: each task's activation, loss and metric against its formula, missing labels masked,
several heads, slice supervision with padded batches, thresholds, and the saved model."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from torch.utils.data import Dataset

from slicevid import SliceSequenceClassifier, create_model
from slicevid.data.batching import pad_collate
from slicevid.errors import ConfigError, DataError
from slicevid.keys import SLICES
from slicevid.metrics import MultilabelReport, OrdinalReport, RegressionReport
from slicevid.tasks import Multiclass, Multilabel, Ordinal, Regression, SliceSupervision
from slicevid.train import TrainConfig, evaluate, fit

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")
NAN = float("nan")


def test_activations_are_the_tasks_own():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    assert torch.allclose(Multiclass(3).activate(logits), logits.softmax(-1))
    assert torch.allclose(Multilabel(["a", "b", "c"]).activate(logits), logits.sigmoid())
    above = torch.tensor([[3.0, -3.0]]).sigmoid()  # P(y > 0), P(y > 1)
    levels = Ordinal(["low", "mid", "high"]).activate(torch.tensor([[3.0, -3.0]]))
    assert torch.allclose(levels, torch.tensor([[1 - above[0, 0], above[0, 0] - above[0, 1], above[0, 1]]]))
    assert torch.equal(Regression().activate(torch.tensor([[1.5]])), torch.tensor([[1.5]]))


def test_losses_are_the_tasks_own_and_mask_missing_targets():
    logits = torch.tensor([[2.0, -1.0], [0.3, 0.1], [-0.5, 1.0]])
    classes = torch.tensor([0, -1, 1])  # the middle scan has no class
    assert torch.isclose(Multiclass(2).loss(logits, classes), F.cross_entropy(logits[[0, 2]], classes[[0, 2]]))
    labels = torch.tensor([[1.0, NAN], [0.0, 1.0], [NAN, NAN]])
    known = ~torch.isnan(labels)
    expected = F.binary_cross_entropy_with_logits(logits[known], labels[known])
    assert torch.isclose(Multilabel(["a", "b"]).loss(logits, labels), expected)
    levels = torch.tensor([2, 0, -1])  # three levels: targets "y > 0", "y > 1"
    cumulative = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert torch.isclose(Ordinal(3).loss(logits, levels), F.binary_cross_entropy_with_logits(logits[:2], cumulative))
    scores = torch.tensor([1.0, NAN, 3.0])
    assert torch.isclose(Regression().loss(logits[:, :1], scores), F.mse_loss(logits[[0, 2], 0], scores[[0, 2]]))
    nothing = Multiclass(2).loss(logits, torch.tensor([-1, -1, -1]))
    assert nothing.item() == 0.0 and nothing.requires_grad is False


def test_metrics_are_the_tasks_own():
    rng = np.random.default_rng(0)
    targets = np.array([[1, 0], [0, 1], [1, 1], [0, np.nan], [1, 0], [0, 1]], dtype=float)
    probabilities = rng.random(targets.shape)
    report = Multilabel(["left", "right"]).report(probabilities, targets)
    assert isinstance(report, MultilabelReport)
    known = ~np.isnan(targets[:, 1])
    aucs = [
        roc_auc_score(targets[:, 0], probabilities[:, 0]),
        roc_auc_score(targets[known, 1], probabilities[known, 1]),
    ]
    assert report.auc == pytest.approx(aucs) and report.mean_auc == pytest.approx(np.mean(aucs))
    assert report.min_auc == pytest.approx(min(aucs)) and report.counted == (6, 5)
    levels = np.array([0, 1, 2, 2, 1, -1])
    level_probabilities = np.eye(3)[[0, 2, 2, 1, 1, 0]]
    ordinal = Ordinal(3).report(level_probabilities, levels)
    assert isinstance(ordinal, OrdinalReport)
    kept = levels >= 0
    predicted = np.array([0, 2, 2, 1, 1, 0])[kept]
    assert ordinal.qwk == pytest.approx(cohen_kappa_score(levels[kept], predicted, weights="quadratic"))
    assert ordinal.mae == pytest.approx(np.abs(levels[kept] - predicted).mean())
    regression = Regression("volume").report(np.array([[1.0], [2.0], [4.0]]), np.array([1.5, NAN, 3.0]))
    assert isinstance(regression, RegressionReport) and regression.count == 2
    assert regression.mae == pytest.approx(0.75) and regression.spearman == pytest.approx(1.0)


def test_an_undefined_auc_is_reported_and_left_out():
    report = Multilabel(["a", "b"]).report(np.array([[0.9, 0.2], [0.1, 0.4]]), np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert report.auc == (1.0, None) and report.mean_auc == 1.0 and "n/a" in report.to_markdown()


def test_ordinal_decision_counts_the_thresholds_passed():
    task = Ordinal(["low", "mid", "high"])
    logits = torch.tensor([[-4.0, -4.0], [4.0, -4.0], [4.0, 4.0]])
    assert task.decide(task.activate(logits).numpy()).tolist() == [0, 1, 2]


def test_task_settings_are_checked():
    with pytest.raises(ConfigError, match="thresholds must have one value per label"):
        Multilabel(["a", "b"], thresholds=[0.5])
    with pytest.raises(ConfigError, match="flip_pairs"):
        Multilabel(["a", "b"], flip_pairs=[("a", "c")])
    with pytest.raises(ConfigError, match="levels must be at least 2"):
        Ordinal(1)
    with pytest.raises(ConfigError, match="classes must not repeat"):
        Multiclass(["a", "a"])
    with pytest.raises(ConfigError, match="names must be letters"):
        create_model("test_plain_cnn", "mean", tasks={"bad name": Multiclass(2)})
    with pytest.raises(DataError, match="out of range for 2 classes"):
        Multiclass(2).loss(torch.zeros(1, 2), torch.tensor([5]))
    with pytest.raises(DataError, match="never positive"):
        Multilabel(["a", "b"]).balance(np.array([[1.0, 0.0], [0.0, 0.0]]))


HEADS = {"type": Multiclass(["x", "y", "z"]), "findings": Multilabel(["left", "right"]), "severity": Ordinal(3)}


def test_one_head_returns_a_tensor_several_a_dict():
    single = create_model("test_plain_cnn", "mean", task=Multilabel(["left", "right"]))
    x = torch.rand(2, 1, 3, 32, 32)
    assert single(x).shape == (2, 2) and torch.all((single.predict_proba(x) >= 0) & (single.predict_proba(x) <= 1))
    model = create_model("test_plain_cnn", "lstm", tasks=HEADS, aggregator_kwargs={"hidden_size": 8})
    out, proba = model(x), model.eval().predict_proba(x)
    assert {k: v.shape for k, v in out.items()} == {"type": (2, 3), "findings": (2, 2), "severity": (2, 2)}
    assert torch.allclose(proba["type"].sum(-1), torch.ones(2)) and proba["severity"].shape == (2, 3)
    assert model.explain(x, task="findings").shape == (2, 3)


class Report(Dataset):
    """Volumes whose brightness gives the class, the findings and the level; some targets missing."""

    def __init__(self, n=24, seed=0, depths=None):
        gen = torch.Generator().manual_seed(seed)
        self.classes = (torch.arange(n) % 3).tolist()
        self.depths = depths or [3] * n
        self.volumes = [
            torch.rand(1, d, 32, 32, generator=gen) * 0.3 + c * 0.3
            for c, d in zip(self.classes, self.depths, strict=True)
        ]

    def __len__(self):
        return len(self.classes)

    def __getitem__(self, index):
        c = self.classes[index]
        findings = torch.tensor([float(c == 2), float(c >= 1)])
        if index % 5 == 0:
            findings[0] = NAN  # a missing label: masked, never read as 0
        slices = torch.full((self.depths[index], 1), float(c == 2))
        target = {"type": torch.tensor(c if index % 7 else -1), "findings": findings, "severity": torch.tensor(c)}
        return self.volumes[index], {**target, SLICES: slices}


def test_a_three_head_model_with_slice_supervision_trains_on_padded_batches(tmp_path):
    torch.manual_seed(0)
    model = create_model(
        "test_plain_cnn",
        "lstm",
        tasks=HEADS,
        slice_supervision=SliceSupervision(("lesion",), weight=0.5),
        aggregator_kwargs={"hidden_size": 8},
        slice_context=1,
        adapter="conv",
    )
    depths = [3 + (i % 3) for i in range(24)]
    config = TrainConfig(epochs=4, batch_size=6, optimizer="adam", lr=3e-3, progress=False, out_dir=str(tmp_path))
    result = fit(model, Report(depths=depths), Report(12, seed=1, depths=depths[:12]), config)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    metrics = result.history[-1]
    assert {"val_type_kappa", "val_findings_mean_auc", "val_severity_qwk"} <= set(metrics)
    thresholds = model.config.tasks["findings"].thresholds
    assert thresholds is not None and len(thresholds) == 2  # chosen on the validation data, and saved
    saved = SliceSequenceClassifier.from_pretrained(tmp_path / "best")
    assert saved.config.tasks == model.config.tasks and saved.slice_head is not None
    volumes, _targets, lengths = pad_collate([Report(2, depths=[3, 5])[i] for i in range(2)])
    outputs = saved.eval().forward_outputs(volumes, lengths)
    assert outputs.slices.shape == (2, 5, 1) and torch.all(outputs.slices[0, 3:] == 0)


def test_missing_labels_never_count_as_zero():
    """A scan missing a label trains the other heads; the missing one adds nothing to its head's loss."""
    task = Multilabel(["a", "b"])
    logits = torch.tensor([[5.0, -5.0]], requires_grad=True)
    task.loss(logits, torch.tensor([[NAN, 0.0]])).backward()
    assert logits.grad[0, 0] == 0 and logits.grad[0, 1] != 0


def test_slice_logits_pooled_into_a_scan_head():
    for pool in ("max", "attention"):
        model = create_model(
            "test_plain_cnn",
            "gru",
            task=Multilabel(["lesion"]),
            slice_supervision=SliceSupervision(("lesion",), pool_into="target", pool=pool),
            aggregator_kwargs={"hidden_size": 8},
        ).eval()
        volumes, lengths = torch.rand(2, 1, 5, 32, 32), torch.tensor([5, 2])
        outputs = model.forward_outputs(volumes, lengths)
        if pool == "max":
            assert torch.allclose(outputs.tasks["target"][1], outputs.slices[1, :2].max(0).values)
        single = model.forward_outputs(volumes[1:, :, :2])
        assert torch.allclose(outputs.tasks["target"][1], single.tasks["target"][0], atol=1e-5)
    with pytest.raises(ConfigError, match="pool_into"):
        create_model(
            "test_plain_cnn", "gru", task=Multiclass(2), slice_supervision=SliceSupervision(pool_into="target")
        )


def test_monitor_chooses_the_kept_epoch(tmp_path):
    data = Report(18)
    config = TrainConfig(
        epochs=3, batch_size=6, optimizer="adam", lr=3e-3, progress=False, monitor="val_findings_mean_auc"
    )
    model = create_model("test_plain_cnn", "mean", tasks=HEADS)
    result = fit(model, data, Report(9, seed=2), config)
    scores = [row["val_findings_mean_auc"] for row in result.history]
    assert result.best_epoch == 1 + int(np.argmax(scores))
    with pytest.raises(ConfigError, match="monitor 'val_kappa' is not a validation value"):
        fit(
            create_model("test_plain_cnn", "mean", tasks=HEADS),
            data,
            data,
            TrainConfig(epochs=1, progress=False, monitor="val_kappa"),
        )


def test_regression_and_evaluate_report():
    class Scores(Dataset):
        def __len__(self):
            return 12

        def __getitem__(self, index):
            value = index / 12
            return torch.full((1, 2, 32, 32), value), torch.tensor(value)

    model = create_model("test_plain_cnn", "mean", task=Regression("volume"))
    fit(model, Scores(), None, TrainConfig(epochs=3, batch_size=4, optimizer="adam", lr=1e-2, progress=False))
    report = evaluate(model, Scores(), progress=False).report
    assert isinstance(report, RegressionReport) and report.count == 12 and not math.isnan(report.mae)


def test_old_single_task_checkpoint_loads(tmp_path):
    """A format-2 config (no tasks) still loads, as one classifier with its class names."""
    import json

    model = create_model("compact_cnn", "mean", 3, class_names=("a", "b", "c"), encoder_kwargs={"widths": (4, 8)})
    model.save_pretrained(tmp_path)
    values = {  # what slicevid 0.2 before tasks wrote: flat, no tasks
        "format_version": 2,
        "encoder": "compact_cnn",
        "aggregator": "mean",
        "num_classes": 3,
        "in_channels": 1,
        "adapter": "conv",
        "head_hidden": 1024,
        "encoder_kwargs": {"widths": [4, 8]},
        "aggregator_kwargs": {},
        "class_names": ["a", "b", "c"],
        "input_size": None,
        "input_range": [0.0, 1.0],
        "preprocessing": None,
    }
    (tmp_path / "config.json").write_text(json.dumps(values))
    loaded = SliceSequenceClassifier.from_pretrained(tmp_path)
    assert loaded.class_names == ("a", "b", "c") and isinstance(loaded.config.tasks["target"], Multiclass)


def test_several_heads_and_slice_targets_from_the_cli(tmp_path):
    import csv

    from slicevid.cli import main
    from slicevid.data.synthetic import write_report_phantoms

    labels = write_report_phantoms(tmp_path / "scans", count=30, shape=(6, 32, 32))
    run = tmp_path / "run"
    heads = [  # the split is stratified by the first class or level head
        "--head", "severity=ordinal:Severity:low,medium,high",
        "--head", "findings=multilabel:Infiltrative,Focal,RightLung,LeftLung",
        "--head", "type=multiclass:TypeOfTB:Infiltrative,Focal,Tuberculoma,Miliary,Fibro-cavernous",
    ]  # fmt: skip
    small = ["--encoder", "test_plain_cnn", "--depth", "6", "--size", "32", "--epochs", "1", "--no-progress"]
    data = ["--scans", str(labels.parent), "--labels-csv", str(labels), "--val-fraction", "0.34"]
    slices = ["--slice-targets", str(labels.parent / "slices.csv"), "--slice-weight", "0.5"]
    assert main(["finetune", *data, *heads, *slices, *small, "--batch-size", "4", "--out", str(run)]) == 0
    model = SliceSequenceClassifier.from_pretrained(run / "best")
    assert list(model.tasks) == ["severity", "findings", "type"]
    assert model.tasks["severity"].names == ("low", "medium", "high") and model.config.slice_supervision is not None
    out = tmp_path / "results.csv"
    assert main(["predict", "--checkpoint", str(run / "best"), str(labels.parent), "--out", str(out)]) == 0
    header = next(csv.reader(out.open()))
    for column in ("findings.p_Focal", "findings.Focal", "severity.predicted", "severity.p_high", "type.p_Miliary"):
        assert column in header, header
