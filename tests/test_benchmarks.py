"""The benchmark scripts run in their quick modes and print their tables (speed is not asserted).

Their ``--help`` is read in this process; their quick runs, each in a process of its own, are the slow tier.
"""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import write_medmnist_npz

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = [
    "throughput.py",
    "resample.py",
    "data_cache.py",
    "imageclef_table.py",
    "synthetic_table.py",
    "inference.py",
    "vs_keras.py",
    "peers.py",
    "learning_curve.py",
    "report_table.py",
    "medmnist3d.py",
]


def run(script: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the scripts import their shared helpers
    name = f"benchmark_{script[:-3]}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out


@pytest.mark.slow
def test_medmnist3d_quick_writes_a_row_per_method_beside_the_published_ones(tmp_path):
    npz = write_medmnist_npz(tmp_path / "adrenalmnist3d.npz", counts=(40, 16, 16), side=28)  # MedMNIST's size
    rows = ["slicevid compact CNN + attention, PT", "MONAI ResNet-10 (3D)"]
    out = run("medmnist3d.py", "--quick", "--npz", str(npz), "--out", str(tmp_path / "m"), "--rows", *rows)
    results = json.loads((tmp_path / "m" / "medmnist3d.json").read_text())
    assert [row["name"] for row in results["rows"]] == rows
    for row in results["rows"]:
        assert {"test_auc", "test_auc_sd", "test_acc", "seconds_per_epoch", "parameters"} <= set(row)
        assert 0 <= row["test_auc"] <= 1 and row["floor_seconds_per_epoch"] > 0 and len(row["auc_cis"]) == 1
    assert "| MedMNIST v2: ResNet-18 + ACS (published) |  | 0.839 |" in out


@pytest.mark.slow
def test_throughput_quick(tmp_path):
    out = run("throughput.py", "--quick", "--json", str(tmp_path / "t.json"))
    for heading in (
        "1. batched slices",
        "2. precision",
        "3. pretraining epoch",
        "4. training-step memory",
        "5. physical limit",
        "6. slice-sequence options",
    ):
        assert heading in out
    assert "| inference, naive loop |" in out and "n/a (input is not 70x224x224)" in out
    assert "| transformer |" in out and "padded batch" in out
    assert (tmp_path / "t.json").is_file()


@pytest.mark.slow
def test_inference_quick(tmp_path):
    out = run("inference.py", "--quick", "--json", str(tmp_path / "i.json"))
    for path in ("PyTorch eager fp32", "PyTorch eager bf16", "ONNX Runtime fp32", "ONNX Runtime int8"):
        assert out.count(f"| {path} |") == 2  # the demo's model and the preset
    assert "| flip + reverse |" in out and (tmp_path / "i.json").is_file()


@pytest.mark.slow
def test_peers_quick_writes_one_json_row_per_method(tmp_path):
    out = run("peers.py", "--quick", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "peers.json").read_text())["rows"]
    names = [row["name"] for row in rows]
    assert names[:2] == ["slicevid LSTM, No PT", "slicevid LSTM, PT"] and len(names) == 11
    assert {"MONAI DenseNet121-3D", "MONAI ResNet10-3D", "torchvision r3d_18, video PT"} <= set(names)
    for row in rows:
        assert row["parameters"] > 0 and row["seconds_per_epoch"] > 0 and row["inference_ms_per_scan"] > 0
        assert {"kappa_mean", "kappa_sd", "accuracy_mean", "peak_rss_mb"} <= set(row)
    assert "| MONAI MILModel (attention) |" in out


@pytest.mark.slow
def test_learning_curve_quick(tmp_path):
    out = run("learning_curve.py", "--quick", "--out", str(tmp_path))
    for row in ("| No PT |", "| video PT |", "| SSL contrastive, training phantoms |", "| video PT, then SSL order |"):
        assert row in out
    assert "10% of labels" in out and (tmp_path / "results.json").is_file()


@pytest.mark.slow
def test_vs_keras_says_when_tensorflow_is_missing():
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("TensorFlow is installed here: the comparison itself is a benchmark, not a test")
    assert "TensorFlow is not installed" in run("vs_keras.py")


@pytest.mark.slow
def test_resample_and_cache_quick():
    assert "| scipy.ndimage.zoom order=1 |" in run("resample.py", "--quick")
    assert "| cached, later epoch |" in run("data_cache.py", "--quick")


@pytest.mark.slow
def test_imageclef_table_runs_the_reproduction_recipe_and_resumes(tmp_path):
    from slicevid.cli import main

    assert (
        main(
            [
                "synth",
                "--out",
                str(tmp_path / "data"),
                "--phantoms-per-class",
                "5",
                "--phantom-shape",
                "8",
                "32",
                "32",
                "--videos-per-class",
                "2",
                "--frames",
                "6",
                "--video-size",
                "32",
            ]
        )
        == 0
    )
    (tmp_path / "test").mkdir()
    for name in ("TRN_0001.nii.gz", "TRN_0002.nii.gz"):
        (tmp_path / "test" / name.replace("TRN", "TST")).write_bytes(
            (tmp_path / "data" / "phantoms" / name).read_bytes()
        )
    args = [
        "--scans",
        str(tmp_path / "data" / "phantoms"),
        "--labels-csv",
        str(tmp_path / "data" / "phantoms" / "labels.csv"),
        "--ucf50",
        str(tmp_path / "data" / "videos"),
        "--test-scans",
        str(tmp_path / "test"),
        "--out",
        str(tmp_path / "run"),
        "--encoder",
        "timm:test_resnet",
        "--encoder-weights",
        "none",
        "--depth",
        "4",
        "--size",
        "32",
        "--epochs",
        "1",
        "--pretrain-epochs",
        "1",
        "--device",
        "cpu",
    ]
    out = run("imageclef_table.py", *args)
    for method in ("No PT", "No PT (scratch)", "PT", "PT+CW", "PT+CW+AUG"):
        assert f"| {method} |" in out
    assert "authors' code" in out
    submission = (tmp_path / "run" / "PT_CW_AUG" / "submission.csv").read_text().splitlines()
    assert submission[0].startswith("TST_0001.nii.gz,")  # the authors' submission lines
    again = run("imageclef_table.py", *args)
    assert again.count("already done") == 6  # pretraining and the five configurations


@pytest.mark.slow
def test_synthetic_table_quick(tmp_path):
    out = run("imageclef_table.py", "--synthetic", "--quick", "--seeds", "0", "1", "--out", str(tmp_path))
    for method in ("No PT", "PT", "PT+CW", "PT+CW+AUG"):
        assert f"| {method} | " in out and "±" in out
    variants = run("synthetic_table.py", "--table", "variants", "--quick", "--seeds", "0", "--out", str(tmp_path / "v"))
    for row in ("BiGRU", "attention", "transformer", "slice_context=1", "LSTM, native depth", "attention, native"):
        assert row in variants
    ablation = run("synthetic_table.py", "--table", "ablation", "--quick", "--seeds", "0", "--out", str(tmp_path / "a"))
    for row in ("demo recipe", "without the feature LayerNorm", "without precise BatchNorm", "ResNet-18"):
        assert f"| {row}" in ablation
