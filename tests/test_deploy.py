"""Deployment: ONNX export of every aggregator and head, parity with PyTorch, the embedded description,
prediction from the .onnx file alone, int8, torch.export, batched and test-time-augmented prediction."""

import csv

import pytest
import torch

from slicevid import create_model
from slicevid.cli import main
from slicevid.data import CTPreprocessing, ImageCLEFTBT
from slicevid.data.synthetic import write_tb_phantoms
from slicevid.deploy import OnnxModel, export_onnx, export_program, quantize_onnx, read_onnx_config
from slicevid.errors import ConfigError, DataError
from slicevid.predict import predict_scans
from slicevid.tasks import Multiclass, Multilabel, Ordinal, Regression, SliceSupervision
from slicevid.train import TrainConfig, fit

AGGREGATORS = {  # name: (aggregator, its settings)
    "lstm": ("lstm", {"hidden_size": 8}),
    "gru": ("gru", {"hidden_size": 8}),
    "lstm-2": ("lstm", {"hidden_size": 8, "num_layers": 2}),
    "bigru-2": ("gru", {"hidden_size": 8, "bidirectional": True, "num_layers": 2}),
    "bilstm-mean": ("lstm", {"hidden_size": 8, "bidirectional": True, "readout": "mean"}),
    "attention": ("attention", {}),
    "transformer": ("transformer", {"width": 16, "heads": 2, "num_layers": 1}),
    "mean": ("mean", {}),
}
HEADS = {"type": Multiclass(3), "findings": Multilabel(["a", "b"]), "severity": Ordinal(3), "score": Regression()}


def small(aggregator: str, **kwargs):
    torch.manual_seed(0)
    name, settings = AGGREGATORS[aggregator]
    model = create_model(
        "compact_cnn",
        name,
        encoder_kwargs={"widths": (4, 8)},
        aggregator_kwargs=settings,
        head_hidden=8,
        **kwargs,
    ).eval()
    model.config = model.config.replace(input_size=(6, 32, 32))
    return model


@pytest.mark.parametrize("aggregator", list(AGGREGATORS))
def test_onnx_runtime_equals_pytorch_for_every_aggregator(tmp_path, aggregator):
    model = small(aggregator, tasks=HEADS, feature_norm="layernorm", slice_context=1)
    session = OnnxModel(export_onnx(model, tmp_path / "m.onnx"))
    assert session.depth is None  # any depth
    for depth, lengths in ((5, [5, 3, 2]), (11, [11, 11, 7])):  # two depths in one session, padded batches
        volumes, lengths = torch.rand(3, 1, depth, 32, 32), torch.tensor(lengths)
        with torch.no_grad():
            expected = model.forward_outputs(volumes, lengths).tasks
        got = session(volumes, lengths).tasks
        for name in HEADS:
            assert torch.allclose(got[name], expected[name], atol=1e-4), (aggregator, name, depth)
    with torch.no_grad():
        single = model.forward_outputs(volumes[2:, :, : lengths[2]]).tasks  # the padded scan alone equals its row
    assert torch.allclose(got["type"][2], single["type"][0], atol=1e-4)


def test_the_embedded_description_round_trips(tmp_path):
    model = small("lstm", task=Multilabel(["left", "right"], thresholds=[0.3, 0.7]), class_names=None)
    model.config = model.config.replace(preprocessing=CTPreprocessing(size=(6, 32, 32)))
    path = export_onnx(model, tmp_path / "m.onnx")
    assert read_onnx_config(path) == model.config
    session = OnnxModel(path)
    assert [o.name for o in session.session.get_inputs()] == ["volumes", "lengths"]
    assert [o.name for o in session.session.get_outputs()] == ["logits"]


def test_slice_heads_export_too(tmp_path):
    model = small(
        "gru",
        task=Multilabel(["lesion"]),
        slice_supervision=SliceSupervision(("lesion",), pool_into="target", pool="attention"),
    )
    session = OnnxModel(export_onnx(model, tmp_path / "m.onnx"))
    volumes, lengths = torch.rand(2, 1, 6, 32, 32), torch.tensor([6, 4])
    with torch.no_grad():
        assert torch.allclose(session(volumes, lengths).tasks["target"], model(volumes, lengths), atol=1e-4)


def test_int8_and_torch_export(tmp_path):
    model = small("attention", num_classes=4)
    path = export_onnx(model, tmp_path / "m.onnx")
    quantized = OnnxModel(quantize_onnx(path, tmp_path / "int8.onnx"))
    assert quantized.config == model.config and (tmp_path / "int8.onnx").stat().st_size < path.stat().st_size
    volumes = torch.rand(2, 1, 6, 32, 32)
    with torch.no_grad():
        expected = model(volumes)
    assert (quantized(volumes).tasks["target"].softmax(-1) - expected.softmax(-1)).abs().max() < 0.05


@pytest.mark.parametrize("aggregator", ["lstm", "bigru-2", "transformer"])
def test_torch_export_programs_take_any_depth(tmp_path, aggregator):
    model = small(aggregator, num_classes=4)
    program = torch.export.load(str(export_program(model, tmp_path / "m.pt2"))).module()
    for depth, lengths in ((6, [6, 6]), (10, [10, 3])):
        volumes, lengths = torch.rand(2, 1, depth, 32, 32), torch.tensor(lengths)
        with torch.no_grad():
            assert torch.allclose(program(volumes, lengths)[0], model(volumes, lengths), atol=1e-5)


def test_a_graph_of_fixed_depth_refuses_other_depths(tmp_path):
    import onnx

    path = export_onnx(small("mean", num_classes=2), tmp_path / "m.onnx")
    graph = onnx.load(str(path))  # as PyTorch releases without dynamic recurrent export write it
    graph.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 6
    onnx.save(graph, str(path))
    session = OnnxModel(path)
    assert session.depth == 6 and session(torch.rand(1, 1, 6, 32, 32)).tasks["target"].shape == (1, 2)
    with pytest.raises(DataError, match="takes volumes of depth 6 only"):
        session(torch.rand(1, 1, 7, 32, 32))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on phantoms of different depths (native depth), and the phantoms."""
    root = tmp_path_factory.mktemp("deploy")
    labels = write_tb_phantoms(root / "scans", n_per_class=3, shape=(8, 32, 32), depths=(5, 9), seed=0)
    native = CTPreprocessing(size=(None, 32, 32), resample="native")
    data = ImageCLEFTBT(labels.parent, labels, "all", preprocessing=native)
    model = create_model(
        "compact_cnn", "lstm", 5, encoder_kwargs={"widths": (4, 8)}, aggregator_kwargs={"hidden_size": 8}
    )
    fit(model, data, None, TrainConfig(epochs=1, batch_size=4, out_dir=str(root / "run"), progress=False))
    return root


def test_predict_from_the_onnx_file_gives_the_checkpoints_csv(trained, capsys):
    checkpoint, scans = trained / "run" / "best", trained / "scans"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(trained / "m.onnx")]) == 0
    rows = {}
    for source in (checkpoint, trained / "m.onnx"):
        out = trained / f"{source.name}.csv"
        args = ["predict", "--checkpoint", str(source), str(scans), "--out", str(out), "--batch-size", "8"]
        assert main([*args, "--tta", "flip", "--device", "cpu"]) == 0
        rows[source.suffix] = list(csv.reader(out.open()))
    assert rows[""][0] == rows[".onnx"][0] and len(rows[""]) == 16  # header, then 15 scans of mixed depths
    for ours, theirs in zip(rows[""][1:], rows[".onnx"][1:], strict=True):
        assert ours[:3] == theirs[:3]  # id, file, predicted class
        assert all(abs(float(a) - float(b)) < 1e-4 for a, b in zip(ours[3:], theirs[3:], strict=True))


def test_batching_does_not_change_predictions(trained):
    one = predict_scans(trained / "run" / "best", [trained / "scans"], batch_size=1)
    eight = predict_scans(trained / "run" / "best", [trained / "scans"], batch_size=8, num_workers=2)
    for a, b in zip(one, eight, strict=True):
        assert a.file_id == b.file_id and a.label == b.label
        assert max(abs(x - y) for x, y in zip(a.probabilities["target"], b.probabilities["target"], strict=True)) < 1e-5


def test_flip_is_refused_for_sided_labels_without_pairs(trained):
    model = small("mean", task=Multilabel(["left_lung", "right_lung"]))
    model.config = model.config.replace(preprocessing=CTPreprocessing(size=(6, 32, 32)))
    with pytest.raises(ConfigError, match="'flip' would swap left and right"):
        predict_scans(model, [trained / "scans" / "TRN_0001.nii.gz"], tta=["flip"])
    paired = small("mean", task=Multilabel(["left_lung", "right_lung"], flip_pairs=[("left_lung", "right_lung")]))
    paired.config = paired.config.replace(preprocessing=CTPreprocessing(size=(6, 32, 32)))
    flipped = predict_scans(paired, [trained / "scans" / "TRN_0001.nii.gz"], tta=["flip", "reverse"])
    assert len(flipped[0].probabilities["target"]) == 2
