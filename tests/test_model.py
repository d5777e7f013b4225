import pytest
import torch
from torch import nn

from slicevid import SliceSequenceClassifier, create_model
from slicevid.presets import viptt_net

from .conftest import tiny_model

SHAPE_TABLE = [
    # encoder, aggregator, aggregator kwargs, input shape, expected logits shape
    ("timm:test_resnet", "lstm", {"hidden_size": 8}, (2, 1, 4, 32, 32), (2, 5)),
    ("timm:test_resnet", "lstm", {"hidden_size": 8, "readout": "mean"}, (1, 1, 6, 32, 32), (1, 5)),
    ("timm:test_resnet", "gru", {"hidden_size": 8}, (3, 1, 5, 32, 48), (3, 5)),
    ("timm:test_resnet", "gru", {"hidden_size": 8, "bidirectional": True, "num_layers": 2}, (2, 1, 4, 32, 32), (2, 5)),
    ("timm:test_resnet", "lstm", {"hidden_size": 8, "bidirectional": True, "readout": "mean"}, (2, 1, 4, 32, 32),
     (2, 5)),
    ("timm:test_resnet", "mean", {}, (2, 1, 4, 32, 32), (2, 5)),
    ("timm:test_vit", "lstm", {"hidden_size": 8}, (1, 1, 3, 160, 160), (1, 5)),
    ("vgg16", "lstm", {}, (1, 1, 2, 32, 32), (1, 5)),
    ("vgg16", "gru", {"readout": "mean"}, (1, 1, 3, 32, 32), (1, 5)),
]


@pytest.mark.parametrize(("encoder", "aggregator", "agg_kwargs", "shape", "expected"), SHAPE_TABLE)
def test_shape_table(encoder, aggregator, agg_kwargs, shape, expected):
    model = create_model(encoder, aggregator, num_classes=expected[1], aggregator_kwargs=agg_kwargs).eval()
    x = torch.rand(shape)
    assert model.forward_features(x).shape == (shape[0], shape[2], model.num_features)
    assert model(x).shape == expected
    probs = model.predict_proba(x)
    assert torch.allclose(probs.sum(-1), torch.ones(shape[0]))


@pytest.mark.parametrize("adapter", ["conv", "repeat"])
def test_adapters(adapter):
    model = tiny_model(adapter=adapter)
    assert model(torch.rand(1, 1, 3, 32, 32)).shape == (1, 5)


def test_adapter_none_feeds_channels_directly():
    model = tiny_model(adapter="none", in_channels=3)
    assert model(torch.rand(1, 3, 3, 32, 32)).shape == (1, 5)


def test_last_readout_equals_final_lstm_output():
    model = tiny_model().eval()
    feats = torch.rand(2, 5, model.num_features)
    outputs, _ = model.aggregator.rnn(feats)
    assert torch.allclose(model.aggregator(feats), outputs[:, -1], atol=1e-6)


@pytest.mark.parametrize(("num_classes", "expected"), [(5, 15_771_467), (10, 15_776_592)])
def test_viptt_parameter_counts(num_classes, expected):
    model = viptt_net(num_classes)
    assert sum(p.numel() for p in model.parameters()) == expected
    # layer by layer, as REFERENCE.md tabulates (LSTM: Keras count + 1,024 for PyTorch's second bias)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.adapter) == 6
    assert count(model.encoder) == 14_714_688
    assert count(model.aggregator) == 787_456 + 1_024
    assert count(model.head.hidden) == 263_168


def test_viptt_full_size_shape():
    with torch.device("meta"):
        model = viptt_net()
        assert model(torch.empty(2, 1, 70, 224, 224)).shape == (2, 5)


def test_viptt_gru_override_in_one_line():
    assert isinstance(viptt_net(aggregator="gru").aggregator.rnn, nn.GRU)


def test_freeze_and_unfreeze_hold_batchnorm_statistics(model):
    model.freeze_encoder()
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.adapter.parameters())
    model.train()
    assert not model.encoder.training and model.head.training
    bn = next(m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model(torch.rand(2, 1, 3, 32, 32)).sum().backward()
    assert torch.equal(bn.running_mean, before)
    assert model.adapter.weight.grad is not None
    assert not model.features_frozen
    model.freeze_encoder(include_adapter=True)
    assert model.features_frozen and not model.adapter.weight.requires_grad
    model.unfreeze_encoder()
    assert model.encoder.training
    assert all(p.requires_grad for p in model.parameters())
    model(torch.rand(2, 1, 3, 32, 32))
    assert not torch.equal(bn.running_mean, before)


def test_reset_head_keeps_other_weights():
    model = tiny_model(num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_head(5)
    after = model.state_dict()
    assert model.num_classes == 5 and model.config["num_classes"] == 5
    for key, value in before.items():
        if key.startswith("head.classifier"):
            assert after[key].shape[0] == 5
        else:
            assert torch.equal(after[key], value), key


def test_save_pretrained_round_trip(tmp_path):
    model = tiny_model(aggregator="gru", aggregator_kwargs={"hidden_size": 8, "bidirectional": True}).eval()
    x = torch.rand(2, 1, 4, 32, 32)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SliceSequenceClassifier.from_pretrained(tmp_path).eval()
    assert torch.equal(model(x), loaded(x))


def test_save_pretrained_rejects_anonymous_modules(tmp_path):
    from slicevid.encoders import VGG16Encoder

    with pytest.raises(ValueError, match="register"):
        create_model(VGG16Encoder()).save_pretrained(tmp_path)


def test_from_pretrained_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        SliceSequenceClassifier.from_pretrained(tmp_path / "nope")


@pytest.mark.parametrize("encoder", ["vgg16", "timm:test_resnet"])
def test_chunked_and_checkpointed_paths_match(encoder):
    x = torch.rand(2, 1, 5, 32, 32)
    results = []
    for chunk, ckpt in [(None, False), (3, False), (3, True), (None, True)]:
        torch.manual_seed(0)
        model = create_model(encoder, aggregator_kwargs={"hidden_size": 8}, slice_chunk=chunk, checkpoint_slices=ckpt)
        if encoder != "vgg16":
            model.eval()  # BatchNorm in train mode would see per-chunk statistics
        out = model(x)
        out.square().sum().backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results.append((out.detach(), grads))
    ref_out, ref_grads = results[0]
    for out, grads in results[1:]:
        assert torch.allclose(out, ref_out, atol=1e-5)
        for g, ref in zip(grads, ref_grads, strict=True):
            assert torch.allclose(g, ref, atol=1e-5, rtol=1e-4)


def test_rnn_stays_float32_under_autocast(model):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = model.forward_features(torch.rand(1, 1, 3, 32, 32))
        assert model.aggregator(feats).dtype == torch.float32


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(1, 4, 32, 32), r"\(B, C=1, D, H, W\).*batch dimension"),
        (torch.rand(1, 3, 4, 32, 32), "3 channels"),
        (torch.zeros(1, 1, 4, 32, 32, dtype=torch.uint8), "dtype"),
        ([[1.0]], "list"),
    ],
)
def test_bad_input_names_layout(model, x, match):
    with pytest.raises(ValueError, match=match):
        model(x)


def test_bad_feature_shape(model):
    with pytest.raises(ValueError, match=r"\(B, D, "):
        model.forward_head(torch.rand(2, 3, 7))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="adapter"):
        tiny_model(adapter="rgb")
    with pytest.raises(ValueError, match="slice_chunk"):
        tiny_model(slice_chunk=0)
    with pytest.raises(ValueError, match="readout"):
        tiny_model(aggregator_kwargs={"readout": "first"})
