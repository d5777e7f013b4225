import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from slicevid import WeightsNotFoundError, create_model
from slicevid.aggregators import create_aggregator, list_aggregators
from slicevid.encoders import VGG16Encoder, create_encoder, list_encoders, register_encoder
from slicevid.errors import CheckpointError, ConfigError

from .helpers import registered


def test_registry_lists_and_patterns():
    assert "vgg16" in list_encoders()
    assert list_aggregators() == sorted(list_aggregators()) and {"lstm", "gru", "mean"} <= set(list_aggregators())
    assert "timm:test_resnet" in list_encoders("test_res*", include_timm=True)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(KeyError, match="Did you mean 'vgg16'"):
        create_encoder("vgg61")
    with pytest.raises(KeyError, match="Did you mean 'lstm'"):
        create_aggregator("lstn", 8)
    with pytest.raises(KeyError, match="timm model"):
        create_encoder("timm:not_a_real_model_xyz")


def test_register_encoder_in_three_lines():
    def tiny_cnn(**kwargs):
        net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        net.num_features = 6
        return net

    with registered("encoder", "tiny_cnn_for_test", tiny_cnn):
        model = create_model("tiny_cnn_for_test", "gru", num_classes=2)
        assert model(torch.rand(2, 1, 3, 16, 16)).shape == (2, 2)
        with pytest.raises(ConfigError, match="already registered"):
            register_encoder("tiny_cnn_for_test", tiny_cnn)
    assert "tiny_cnn_for_test" not in list_encoders()


def test_register_aggregator():
    class LastStep(nn.Module):
        def __init__(self, in_features):
            super().__init__()
            self.out_features = in_features

        def forward(self, seq):
            return seq[:, -1]

    with registered("aggregator", "last_step_for_test", LastStep):
        model = create_model("timm:test_resnet", "last_step_for_test", num_classes=3)
        assert model(torch.rand(1, 1, 2, 32, 32)).shape == (1, 3)


def test_module_without_num_features_is_rejected():
    with pytest.raises(ConfigError, match="num_features"):
        create_encoder(nn.Conv2d(3, 3, 1))


def test_vgg16_matches_torchvision_layout():
    import torchvision

    ours = VGG16Encoder()
    theirs = torchvision.models.vgg16().features
    assert list(ours.features.state_dict()) == list(theirs.state_dict())
    assert ours(torch.rand(1, 3, 32, 32)).shape == (1, 512)


def test_timm_encoder_reports_num_features():
    enc = create_encoder("timm:test_resnet")
    assert enc(torch.rand(2, 3, 32, 32)).shape == (2, enc.num_features)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_encoder_weights_from_local_file(tmp_path, suffix):
    import torchvision

    full = torchvision.models.vgg16()  # a full torchvision checkpoint, classifier included
    path = tmp_path / f"vgg16{suffix}"
    state = {k: v.contiguous() for k, v in full.state_dict().items()}
    torch.save(state, path) if suffix == ".pth" else save_file(state, str(path))
    enc = create_encoder("vgg16", weights=path)
    assert torch.equal(enc.features[0].weight, full.features[0].weight)


def test_encoder_weights_with_wrong_shapes_name_the_keys(tmp_path):
    state = VGG16Encoder().state_dict()
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    del state["features.2.bias"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"features\.0\.weight.*\(64, 1, 3, 3\)") as err:
        create_encoder("vgg16", weights=path)
    assert "features.2.bias" in str(err.value)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"model": nn.Linear(2, 2)}, path)  # a module object, not tensors
    with pytest.raises(CheckpointError, match="weights_only"):
        create_encoder("vgg16", weights=path)


def test_imagenet_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"vgg16-397923af\.pth") as err:
        create_encoder("vgg16", weights="imagenet")
    assert str(tmp_path) in str(err.value)


def test_imagenet_weights_load_from_local_cache(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    full = torchvision.models.vgg16()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(full.state_dict(), tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth")
    enc = create_encoder("vgg16", weights="imagenet")
    assert torch.equal(enc.features[28].weight, full.features[28].weight)


def test_timm_imagenet_weights_offline_fail_at_once_and_name_the_cli_flag(tmp_path, monkeypatch):
    import time

    from slicevid.weights import hugging_face_cache_dir

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    started = time.perf_counter()
    with pytest.raises(WeightsNotFoundError, match=r"--encoder-weights FILE") as err:
        create_model("timm:resnet18", "lstm", 2, encoder_weights="imagenet")
    assert time.perf_counter() - started < 5  # no hub retries
    assert "'resnet18'" in str(err.value) and hugging_face_cache_dir() in str(err.value)
