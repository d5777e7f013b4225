"""ModelConfig: saved with the weights, restored, and old checkpoints still load."""

import json

import pytest
import torch
from safetensors.torch import save_file

from slicevid import SliceSequenceClassifier
from slicevid.data import CTPreprocessing
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
    with pytest.raises(ValueError, match=match):
        SliceSequenceClassifier.from_pretrained(tmp_path)


@pytest.mark.parametrize("size", [0, 100])
def test_truncated_or_empty_weights_name_the_file(tmp_path, size):
    tiny_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:size])
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file"):
        SliceSequenceClassifier.from_pretrained(tmp_path)


def test_with_head_and_architecture_differences():
    config = ModelConfig(encoder="vgg16", num_classes=10)
    five = config.with_head(5, ("a", "b", "c", "d", "e"))
    assert five.num_classes == 5 and config.num_classes == 10  # a new config, the old one untouched
    assert five.architecture_differences(config) == [
        "heads: {'target': ['multiclass', 5]} vs {'target': ['multiclass', 10]}"
    ]
    with pytest.raises(ValueError, match="class_names has 2 names"):
        ModelConfig(num_classes=3, class_names=("a", "b"))
