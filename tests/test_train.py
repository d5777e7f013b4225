import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from slicevid import SliceSequenceClassifier, TrainingDivergedError
from slicevid.errors import CheckpointError, ConfigError
from slicevid.metrics import classification_report, format_table
from slicevid.train import TrainConfig, evaluate, extract_features, finetune, fit, pretrain
from slicevid.train.checkpoint import load_checkpoint
from slicevid.train.run_folder import RUN_FILES

from .helpers import plain_model, tiny_model, toy_data

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")

QUIET = {"progress": False, "batch_size": 4, "lr": 0.05}


def test_fit_writes_run_folder_and_restores_best(tmp_path):
    model = tiny_model(num_classes=3)
    result = fit(
        model, toy_data(noise=0.5), toy_data(seed=1, noise=0.5), TrainConfig(epochs=3, out_dir=str(tmp_path), **QUIET)
    )
    assert set(RUN_FILES) <= {p.name for p in tmp_path.iterdir()}
    assert len(result.history) == 3 and result.best_epoch in (1, 2, 3)
    assert result.best_val_loss == min(row["val_loss"] for row in result.history)
    best = SliceSequenceClassifier.from_pretrained(tmp_path / "best")
    for key, value in best.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    assert math.isclose(result.evaluation.loss, result.best_val_loss, rel_tol=1e-5)
    assert TrainConfig.load(tmp_path / "config.yaml").epochs == 3
    assert json.loads((tmp_path / "report.json").read_text())["class_names"] == ["0", "1", "2"]


def test_same_seed_same_weights():
    states = []
    for _ in range(2):
        model = plain_model()
        fit(model, toy_data(noise=0.5), None, TrainConfig(epochs=2, augment="paper", **QUIET))
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_gradient_accumulation_matches_bigger_batch():
    a, b = plain_model(), plain_model()
    fit(a, toy_data(noise=0.5), None, TrainConfig(epochs=1, batch_size=4, lr=0.05, progress=False))
    fit(b, toy_data(noise=0.5), None, TrainConfig(epochs=1, batch_size=2, grad_accum=2, lr=0.05, progress=False))
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), key


def test_class_weights_change_training():
    unbalanced = TensorDataset(torch.rand(10, 1, 3, 32, 32), torch.tensor([0] * 8 + [1, 2]))
    plain, weighted = plain_model(), plain_model()
    fit(plain, unbalanced, None, TrainConfig(epochs=1, **QUIET))
    fit(weighted, unbalanced, None, TrainConfig(epochs=1, class_weights=True, **QUIET))
    assert not torch.equal(plain.head.classifier.bias, weighted.head.classifier.bias)


def test_feature_cache_matches_uncached_training():
    cached, uncached = plain_model(), plain_model()
    for model in (cached, uncached):
        model.freeze_encoder(include_adapter=True)
    data, val = toy_data(noise=0.5), toy_data(seed=1, noise=0.5)
    r1 = fit(cached, data, val, TrainConfig(epochs=3, feature_cache=True, **QUIET))
    r2 = fit(uncached, data, val, TrainConfig(epochs=3, **QUIET))
    for key, value in cached.state_dict().items():
        assert torch.allclose(value, uncached.state_dict()[key], atol=1e-5), key
    for a, b in zip(r1.history, r2.history, strict=True):
        assert math.isclose(a["val_loss"], b["val_loss"], rel_tol=1e-5)


def test_feature_cache_needs_frozen_features_and_no_augmentation():
    model = plain_model()
    model.freeze_encoder()  # the adapter still trains, as in the paper: features are not fixed
    with pytest.raises(ConfigError, match="include_adapter=True"):
        extract_features(model, toy_data(noise=0.5))
    model.freeze_encoder(include_adapter=True)
    with pytest.raises(ConfigError, match="augment='none'"):
        fit(model, toy_data(noise=0.5), None, TrainConfig(epochs=1, feature_cache=True, augment="paper", **QUIET))


def test_pretrain_then_finetune_end_to_end(tmp_path):
    video = tiny_model(num_classes=10)
    clips = TensorDataset(torch.rand(20, 1, 3, 32, 32), torch.arange(20) % 10)
    result = pretrain(
        video, clips, clips, TrainConfig(epochs=2, out_dir=str(tmp_path / "pt"), feature_cache=True, **QUIET)
    )
    assert video.encoder_frozen and result.evaluation.report.num_samples == 20
    encoder_before = {k: v.clone() for k, v in video.encoder.state_dict().items()}
    model, ft = finetune(
        tmp_path / "pt" / "best",
        toy_data(classes=5, n=10, noise=0.5),
        toy_data(classes=5, n=10, seed=2, noise=0.5),
        TrainConfig(epochs=2, out_dir=str(tmp_path / "ft"), **QUIET),
        num_classes=5,
    )
    assert model.num_classes == 5 and not model.encoder_frozen
    changed = [not torch.equal(v, model.encoder.state_dict()[k]) for k, v in encoder_before.items()]
    assert any(changed)  # the encoder trained during fine-tuning
    assert len(ft.evaluation.report.f1) == 5


def test_evaluate_and_metrics_against_sklearn():
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    model = tiny_model(num_classes=3).eval()
    data = toy_data(noise=0.5)
    evaluation = evaluate(model, data, progress=False)
    preds, labels = evaluation.predictions.numpy(), data.tensors[1].numpy()
    report = evaluation.report
    assert report.accuracy == pytest.approx(accuracy_score(labels, preds))
    if len(set(preds) | set(labels)) > 1:
        assert report.kappa == pytest.approx(cohen_kappa_score(labels, preds))
    assert report.f1 == pytest.approx(tuple(f1_score(labels, preds, average=None, labels=[0, 1, 2], zero_division=0)))


def test_classification_report_values():
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    y_true = [0, 0, 1, 1, 2, 2, 2, 3, 4, 4]
    y_pred = [0, 1, 1, 1, 2, 0, 2, 3, 4, 2]
    report = classification_report(y_true, y_pred, ["a", "b", "c", "d", "e"])
    assert report.kappa == pytest.approx(cohen_kappa_score(y_true, y_pred))
    assert report.accuracy == pytest.approx(0.7)
    assert np.array_equal(report.confusion, confusion_matrix(y_true, y_pred))
    assert report.support == (2, 2, 3, 1, 2)
    table = format_table({"PT": report, "No PT": None}, report.class_names, reference={"PT": {"kappa": 0.35}})
    assert f"| PT | {report.kappa:.2f} (0.35) |" in table and "not run" in table
    assert classification_report([1, 1], [1, 1]).kappa == 0.0
    with pytest.raises(ConfigError, match="equal-length"):
        classification_report([0, 1], [0])


class NaNFromSecondEpoch(TensorDataset):
    """Clean for one pass (plus the read fit makes to learn the input size), then NaN: epoch 2 diverges."""

    calls = 0

    def __getitem__(self, index):
        self.calls += 1
        volume, label = super().__getitem__(index)
        return (torch.full_like(volume, float("nan")) if self.calls > len(self) + 1 else volume), label


def test_nan_loss_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    model = plain_model()
    poisoned = NaNFromSecondEpoch(*toy_data(noise=0.5).tensors)
    expected = r"loss became nan at epoch 2, batch 1.*last\.safetensors \(epoch 1\)"
    with pytest.raises(TrainingDivergedError, match=expected):
        fit(model, poisoned, toy_data(seed=1, noise=0.5), TrainConfig(epochs=3, out_dir=str(tmp_path), **QUIET))
    kept = load_checkpoint(tmp_path / "last.safetensors")
    assert kept["state"].epoch == 1
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    with pytest.raises(TrainingDivergedError, match="none written by this run yet"):
        nan_volumes = TensorDataset(torch.full((4, 1, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
        fit(plain_model(), nan_volumes, None, TrainConfig(epochs=2, out_dir=str(tmp_path / "fresh"), **QUIET))


RESUME_SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from pathlib import Path
    from torch.utils.data import TensorDataset
    from slicevid import create_model
    from slicevid.train import TrainConfig, fit

    class SlowData(TensorDataset):
        def __getitem__(self, index):
            time.sleep(0.01)
            return super().__getitem__(index)

    gen = torch.Generator().manual_seed(0)
    data = SlowData(torch.rand(16, 1, 3, 32, 32, generator=gen), torch.arange(16) % 4)
    torch.manual_seed(0)
    model = create_model("timm:test_resnet", num_classes=4, aggregator_kwargs={"hidden_size": 8}, head_hidden=16)
    resume = Path(sys.argv[1], "last.safetensors").is_file()  # resuming a folder without a run is refused
    config = TrainConfig(epochs=8, batch_size=4, lr=0.05, momentum=0.9, augment="paper", out_dir=sys.argv[1],
                         resume=resume, progress=False)
    fit(model, data, data, config)
    torch.save(model.state_dict(), sys.argv[2])
    """
)


def _run_script(script: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.Popen(
        [sys.executable, str(script), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.slow
def test_resume_after_kill_reaches_the_same_weights(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    whole = _run_script(script, str(tmp_path / "whole"), str(tmp_path / "whole.pt"))
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()

    run_dir = tmp_path / "killed"
    victim = _run_script(script, str(run_dir), str(tmp_path / "unused.pt"))
    deadline = time.time() + 240
    while time.time() < deadline:
        checkpoint = run_dir / "last.safetensors"
        if checkpoint.is_file() and load_checkpoint(checkpoint)["state"].epoch >= 2:
            break
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=60) == -signal.SIGKILL
    epoch_at_kill = load_checkpoint(run_dir / "last.safetensors")["state"].epoch
    assert 2 <= epoch_at_kill < 8

    resumed = _run_script(script, str(run_dir), str(tmp_path / "resumed.pt"))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()
    expected = torch.load(tmp_path / "whole.pt", weights_only=True)
    actual = torch.load(tmp_path / "resumed.pt", weights_only=True)
    for key, value in expected.items():
        assert torch.equal(value, actual[key]), key


DDP_SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from torch.utils.data import TensorDataset
    from slicevid import create_model
    from slicevid.train import TrainConfig, fit

    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(10, 1, 3, 32, 32, generator=gen), torch.arange(10) % 3)
    torch.manual_seed(0)
    model = create_model("timm:test_resnet", num_classes=3, aggregator_kwargs={"hidden_size": 8}, head_hidden=16)
    result = fit(model, data, data, TrainConfig(epochs=2, batch_size=2, lr=0.05, out_dir=sys.argv[1], progress=False))
    rank = int(os.environ["RANK"])
    torch.save({"state": model.state_dict(), "n": result.evaluation.report.num_samples}, f"{sys.argv[1]}/rank{rank}.pt")
    """
)


@pytest.mark.slow
def test_two_process_ddp_ends_with_identical_weights(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(tmp_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["n"] == rank1["n"] == 10  # metrics saw every sample once, gathered from both ranks
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), key
    assert (tmp_path / "last.safetensors").is_file()  # written by rank 0 only


def test_train_config_files(tmp_path):
    config = TrainConfig(epochs=7, augment="notebook", class_weights=True)
    for name in ("c.yaml", "c.json"):
        config.save(tmp_path / name)
        assert TrainConfig.load(tmp_path / name) == config
    (tmp_path / "bad.yaml").write_text("epochs: 3\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.load(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="augment"):
        TrainConfig(augment="flip")


def test_finetune_seeds_the_new_head(tmp_path):
    """Two fine-tunes from one pretrained folder, in one process, end with the same weights."""
    video = plain_model(classes=10)
    video.save_pretrained(tmp_path / "pt")
    states = []
    for _ in range(2):
        torch.rand(7)  # whatever ran before must not matter
        model, _ = finetune(tmp_path / "pt", toy_data(classes=5, n=10, noise=0.5), None, TrainConfig(epochs=1, **QUIET))
        states.append(model.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_resume_from_a_truncated_checkpoint_is_one_clear_error(tmp_path):
    fit(plain_model(), toy_data(noise=0.5), None, TrainConfig(epochs=1, out_dir=str(tmp_path), **QUIET))
    checkpoint = tmp_path / "last.safetensors"
    checkpoint.write_bytes(checkpoint.read_bytes()[:64])
    with pytest.raises(CheckpointError, match=r"last\.safetensors: not a readable slicevid checkpoint"):
        fit(
            plain_model(), toy_data(noise=0.5), None, TrainConfig(epochs=2, out_dir=str(tmp_path), resume=True, **QUIET)
        )


def test_a_plain_3d_module_goes_through_fit_save_evaluate_predict(tmp_path):
    """Any volume-to-logits module trains, saves, evaluates and predicts on scans like a slicevid model."""
    from slicevid import load_weights
    from slicevid.data import CTPreprocessing, ImageCLEFTBT
    from slicevid.data.synthetic import write_tb_phantoms
    from slicevid.errors import CheckpointError
    from slicevid.predict import predict_scans

    def cnn3d() -> torch.nn.Module:
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Conv3d(1, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool3d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(4, 5),
        )

    labels = write_tb_phantoms(tmp_path / "scans", 5, (8, 24, 24), seed=0)
    preprocessing = CTPreprocessing(size=(8, 24, 24))
    train, val = (ImageCLEFTBT(labels.parent, labels, split, preprocessing=preprocessing) for split in ("train", "val"))
    trained = cnn3d()
    fit(trained, train, val, TrainConfig(epochs=2, out_dir=str(tmp_path / "run"), **QUIET))
    with pytest.raises(CheckpointError, match="plain module.*slicevid.load_weights"):
        SliceSequenceClassifier.from_pretrained(tmp_path / "run" / "best")
    loaded = cnn3d()
    torch.nn.init.zeros_(loaded[-1].weight)
    config = load_weights(loaded, tmp_path / "run" / "best")
    assert config.class_names == ("Infiltrative", "Focal", "Tuberculoma", "Miliary", "Fibro-cavernous")
    assert config.preprocessing == preprocessing
    before, after = (evaluate(m, val, progress=False) for m in (trained, loaded))
    assert torch.equal(before.probabilities, after.probabilities) and before.report.kappa == after.report.kappa
    rows = predict_scans(loaded, [labels.parent], preprocessing=config.preprocessing, class_names=config.class_names)
    assert len(rows) == 25 and {row.class_name for row in rows} <= set(config.class_names)
    assert all(abs(sum(row.probabilities["target"]) - 1) < 1e-5 for row in rows)
    with pytest.raises(CheckpointError, match=r"do not fit Sequential: unexpected keys \[4.bias, 4.weight\]"):
        load_weights(
            torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU()), tmp_path / "run" / "best"
        )


def test_a_batch_of_one_that_batchnorm_cannot_train_on_is_named_and_drop_last_avoids_it(tmp_path):
    model = torch.nn.Sequential(
        torch.nn.Conv3d(1, 4, 3, padding=1),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.BatchNorm3d(4),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 2),
    )
    data = TensorDataset(torch.rand(5, 1, 4, 8, 8), torch.tensor([0, 1, 0, 1, 0]))
    from slicevid.errors import ConfigError

    with pytest.raises(ConfigError, match="batch of one scan.*5 samples in batches of 4.*drop_last"):
        fit(model, data, None, TrainConfig(epochs=1, **QUIET))
    fit(model, data, None, TrainConfig(epochs=1, drop_last=True, **QUIET))
