"""ModelConfig: saved with the weights, restored, and old checkpoints still load."""

import json

import pytest
import torch
from safetensors.torch import save_file

from slicevid import SliceSequenceClassifier
from slicevid.data import CTPreprocessing
from slicevid.errors import CheckpointError, ConfigError
from slicevid.model_config import FORMAT_VERSION, ModelConfig

from .helpers import tiny_model


def test_round_trip_keeps_class_names_and_preprocessing(tmp_path):
    model = tiny_model(num_classes=3, class_names=("cat", "dog", "fox"))
    model.config = model.config.replace(input_size=(6, 32, 32), preprocessing=CTPreprocessing(size=(6, 32, 32)))
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["format_version"] == FORMAT_VERSION and "slice_chunk" not in saved
    loaded = SliceSequenceClassifier.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert loaded.config.class_names == ("cat", "dog", "fox") and loaded.config.preprocessing.size == (6, 32, 32)


def test_runtime_switches_are_not_saved(tmp_path):
    model = tiny_model(slice_chunk=2, checkpoint_slices=True)
    model.save_pretrained(tmp_path)
    loaded = SliceSequenceClassifier.from_pretrained(tmp_path)
    assert (loaded.slice_chunk, loaded.checkpoint_slices) == (None, False)
    loaded.set_slice_execution(chunk=3, checkpoint=True, channels_last=True)
    assert loaded.slice_chunk == 3 and loaded.channels_last
    assert loaded.config == model.config


def test_version_1_checkpoint_loads_with_a_warning(tmp_path):
    model = tiny_model()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "model.safetensors"))
    legacy = {
        "encoder": "timm:test_resnet",
        "aggregator": "lstm",
        "num_classes": 5,
        "in_channels": 1,
        "adapter": "conv",
        "head_hidden": 32,
        "encoder_kwargs": {},
        "aggregator_kwargs": {"hidden_size": 16},
        "slice_chunk": None,
        "checkpoint_slices": False,
    }
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    with pytest.warns(UserWarning, match="older slicevid"):
        loaded = SliceSequenceClassifier.from_pretrained(tmp_path)
    x = torch.rand(1, 1, 3, 32, 32)
    assert torch.equal(loaded.eval()(x), model.eval()(x))
    assert loaded.config.class_names == ("0", "1", "2", "3", "4") and loaded.config.preprocessing is None


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"encoder": "vgg16", "colour": "red"}', r"unknown key\(s\) \['colour'\]"),
        ('{"format_version": 2, "num_classes": 2.5}', "num_classes must be a positive integer"),
    ],
)
def test_bad_config_json_is_one_clear_error(tmp_path, content, match):
    tiny_model().save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(CheckpointError, match=match):
        SliceSequenceClassifier.from_pretrained(tmp_path)


@pytest.mark.parametrize("size", [0, 100])
def test_truncated_or_empty_weights_name_the_file(tmp_path, size):
    tiny_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:size])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        SliceSequenceClassifier.from_pretrained(tmp_path)


def test_with_head_and_architecture_differences():
    config = ModelConfig(encoder="vgg16", num_classes=10)
    five = config.with_head(5, ("a", "b", "c", "d", "e"))
    assert five.num_classes == 5 and config.num_classes == 10  # a new config, the old one untouched
    assert five.architecture_differences(config) == [
        "heads: {'target': ['multiclass', 5]} vs {'target': ['multiclass', 10]}"
    ]
    with pytest.raises(ConfigError, match="class_names has 2 names"):
        ModelConfig(num_classes=3, class_names=("a", "b"))


def test_a_checkpoint_of_the_previous_release_loads_and_predicts_as_it_did():
    """tests/data/round3-checkpoint was saved by slicevid 0.2 (a flat, format-3 config.json) with two heads."""
    from pathlib import Path

    from slicevid.tasks import Multilabel

    folder = Path(__file__).parent / "data" / "round3-checkpoint"
    assert json.loads((folder / "config.json").read_text())["format_version"] == 3
    model = SliceSequenceClassifier.from_pretrained(folder).eval()
    config = model.config
    assert config.architecture.encoder == "compact_cnn" and config.heads.tasks["type"].classes == ("cat", "dog", "fox")
    assert config.tasks["findings"] == Multilabel(
        ["left", "right"], thresholds=[0.4, 0.6], flip_pairs=[("left", "right")]
    )
    assert config.inputs.preprocessing.size == (6, 16, 16) and config.provenance.training_data.val_ids == ("a", "b")
    x = torch.rand(2, 1, 6, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
    expected = {  # what slicevid 0.2 computed for this input
        "type": [[0.334686, -0.550535, -0.164439], [0.339274, -0.545635, -0.150376]],
        "findings": [[0.025053, -0.490595], [0.014161, -0.491920]],
    }
    for name, values in expected.items():
        assert torch.allclose(out[name], torch.tensor(values), atol=1e-5), name
    resaved = ModelConfig.from_dict(config.to_dict())
    assert resaved == config and config.to_dict()["format_version"] == FORMAT_VERSION
