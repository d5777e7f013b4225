"""A newcomer's path: their own classes from the CLI, their plugins (a file or an installed package),
a run folder they can rerun, a results CSV, complete --help, and an API reference with Args sections."""

import argparse
import csv
import importlib
import inspect
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import slicevid
from slicevid.cli import build_parser, main
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.encoders import list_encoders, unregister_encoder
from slicevid.encoders.registry import _ENCODERS

FAST = ["--epochs", "1", "--batch-size", "4", "--no-progress", "--device", "cpu", "--depth", "6", "--size", "32"]
SMALL = ["--encoder", "compact_cnn", "--hidden-size", "8", "--head-hidden", "8"]


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """Phantoms relabelled as a binary task with the user's own class names."""
    root = tmp_path_factory.mktemp("binary")
    labels = write_tb_phantoms(root / "scans", 4, (8, 32, 32), seed=0)
    rows = list(csv.DictReader(labels.open()))
    with (root / "findings.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scan", "Finding"])
        for row in rows:
            writer.writerow([row["FileName"], "normal" if row["TypeOfTB"] in ("1", "2") else "abnormal"])
    return root


def test_a_binary_task_with_its_own_class_names_from_the_cli(binary, tmp_path):
    data = ["--scans", str(binary / "scans"), "--labels-csv", str(binary / "findings.csv"), "--file-column", "scan"]
    run = tmp_path / "run"
    assert main(["finetune", *data, "--label-column", "Finding", "--out", str(run), *SMALL, *FAST]) == 0
    assert slicevid.SliceSequenceClassifier.from_pretrained(run / "best").class_names == ("abnormal", "normal")
    results = tmp_path / "results.csv"
    assert main(["predict", "--checkpoint", str(run / "best"), str(binary / "scans"), "--out", str(results)]) == 0
    rows = list(csv.DictReader(results.open()))
    assert len(rows) == 20 and list(rows[0]) == ["file_id", "file", "predicted", "p_abnormal", "p_normal"]
    assert all(row["predicted"] in ("abnormal", "normal") for row in rows)
    assert all(abs(float(r["p_abnormal"]) + float(r["p_normal"]) - 1) < 1e-3 for r in rows)
    # the saved run reruns from its own folder, and evaluate scores the run's validation scans by default
    assert main(["finetune", "--config", str(run / "config.yaml"), "--out", str(tmp_path / "again")]) == 0
    first, again = (load_file(str(folder / "best" / "model.safetensors")) for folder in (run, tmp_path / "again"))
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    assert main(["evaluate", "--checkpoint", str(run / "best")]) == 0


PLUGIN = """
    from torch import nn
    from slicevid.encoders import register_encoder

    @register_encoder("{name}")
    def build(in_chans=3, **kwargs):
        net = nn.Sequential(nn.Conv2d(in_chans, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        net.num_features = 4
        return net
"""


def test_a_plugin_file_reaches_the_cli_and_a_checkpoint_names_what_it_misses(binary, tmp_path, capsys):
    plugin = tmp_path / "my_encoders.py"
    plugin.write_text(textwrap.dedent(PLUGIN.format(name="file_cnn")))
    data = ["--scans", str(binary / "scans"), "--labels-csv", str(binary / "findings.csv"), "--file-column", "scan"]
    run = tmp_path / "run"
    try:
        common = ["--label-column", "Finding", "--out", str(run), "--hidden-size", "8", *FAST]
        assert main(["finetune", *data, "--encoder", "file_cnn", "--import", str(plugin), *common]) == 0
        unregister_encoder("file_cnn")
        assert main(["predict", "--checkpoint", str(run / "best"), str(binary / "scans")]) == 2
        assert "Unknown encoder 'file_cnn'" in capsys.readouterr().err
        assert main(["predict", "--checkpoint", str(run / "best"), str(binary / "scans"), "--import", str(plugin)]) == 0
    finally:
        unregister_encoder("file_cnn")


def test_an_installed_package_registers_through_entry_points(tmp_path, monkeypatch):
    (tmp_path / "pkg_encoders.py").write_text(textwrap.dedent(PLUGIN.format(name="pkg_cnn")))
    info = tmp_path / "pkg_encoders-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg-encoders\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[slicevid.encoders]\npkg_cnn = pkg_encoders\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(_ENCODERS, "_plugins_loaded", False)
    try:
        assert "pkg_cnn" in list_encoders()  # found without any import by the user
        model = slicevid.create_model("pkg_cnn", "mean", 2)
        assert model(torch.rand(1, 1, 3, 32, 32)).shape == (1, 2)
    finally:
        unregister_encoder("pkg_cnn")
        sys.modules.pop("pkg_encoders", None)


def test_tensorboard_logs_every_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.data import TensorDataset

    from slicevid.train import TrainConfig, fit

    data = TensorDataset(torch.rand(8, 1, 3, 16, 16), torch.tensor([0, 1] * 4))
    model = slicevid.create_model("compact_cnn", "mean", 2, encoder_kwargs={"widths": (4,)})
    fit(model, data, data, TrainConfig(epochs=2, batch_size=4, progress=False, tensorboard=True, out_dir=str(tmp_path)))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train_loss", "val/loss", "val/kappa", "lr"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("val/loss")) == 2


def test_only_rank_zero_prints(monkeypatch, capsys):
    from slicevid.cli.commands import say

    monkeypatch.setenv("RANK", "1")
    say("from rank one")
    monkeypatch.setenv("RANK", "0")
    say("from rank zero")
    assert capsys.readouterr().out == "from rank zero\n"


def _every_option():
    _, commands = build_parser()
    for name, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                yield name, action


@pytest.mark.parametrize("python_ism", ["None", "True", "False", "`", ":class:", "kwargs", "()"])
def test_every_option_has_help_in_cli_terms(python_ism):
    for command, action in _every_option():
        text = action.help or ""
        if text == argparse.SUPPRESS:
            continue
        assert text.strip(), f"{command} {action.option_strings[0]} has no help"
        assert python_ism not in text, f"{command} {action.option_strings[0]}: {text!r}"


PUBLIC = {
    "slicevid": slicevid,
    "slicevid.train": importlib.import_module("slicevid.train"),
    "slicevid.data": importlib.import_module("slicevid.data"),
    "slicevid.predict": importlib.import_module("slicevid.predict"),
    "slicevid.deploy": importlib.import_module("slicevid.deploy"),
    "slicevid.tasks": importlib.import_module("slicevid.tasks"),
    "slicevid.recipes": importlib.import_module("slicevid.recipes"),
    "slicevid.presets": importlib.import_module("slicevid.presets"),
}


def _public_functions():
    for module_name, module in PUBLIC.items():
        names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            value = getattr(module, name)
            if inspect.isfunction(value) and value.__module__.startswith("slicevid"):
                yield f"{module_name}.{name}", value


@pytest.mark.parametrize(
    "qualified, function", list(_public_functions()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_functions_document_their_arguments(qualified, function):
    arguments = [p for p in inspect.signature(function).parameters if p not in ("self", "cls")]
    doc = inspect.getdoc(function) or ""
    assert doc, f"{qualified} has no docstring"
    if arguments:
        assert "Args:" in doc, f"{qualified} documents none of {arguments}"
    assert ":class:" not in doc and ":func:" not in doc and ":meth:" not in doc, f"{qualified}: Sphinx roles"
