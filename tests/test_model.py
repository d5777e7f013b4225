import pytest
import torch
from torch import nn

from slicevid import SliceSequenceClassifier, create_model
from slicevid.errors import CheckpointError, ConfigError
from slicevid.presets import viptt_net

from .helpers import tiny_model

pytestmark = pytest.mark.usefixtures("plain_cnn_encoder")

SHAPE_TABLE = [
    # encoder, aggregator, aggregator kwargs, input shape, expected logits shape
    ("timm:test_resnet", "lstm", {"hidden_size": 8}, (2, 1, 4, 32, 32), (2, 5)),
    ("timm:test_resnet", "lstm", {"hidden_size": 8, "readout": "mean"}, (1, 1, 6, 32, 32), (1, 5)),
    ("timm:test_resnet", "gru", {"hidden_size": 8}, (3, 1, 5, 32, 48), (3, 5)),
    ("timm:test_resnet", "gru", {"hidden_size": 8, "bidirectional": True, "num_layers": 2}, (2, 1, 4, 32, 32), (2, 5)),
    (
        "timm:test_resnet",
        "lstm",
        {"hidden_size": 8, "bidirectional": True, "readout": "mean"},
        (2, 1, 4, 32, 32),
        (2, 5),
    ),
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
    model.reset_head(5, ("a", "b", "c", "d", "e"))
    after = model.state_dict()
    assert model.num_classes == 5 and model.config.num_classes == 5
    assert model.config.class_names == ("a", "b", "c", "d", "e")
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

    with pytest.raises(ConfigError, match="register"):
        create_model(VGG16Encoder()).save_pretrained(tmp_path)


def test_from_pretrained_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="save_pretrained"):
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
    with pytest.raises(ConfigError, match=match):
        model(x)


def test_bad_feature_shape(model):
    with pytest.raises(ConfigError, match=r"\(B, D, "):
        model.forward_head(torch.rand(2, 3, 7))


def test_bad_constructor_arguments():
    with pytest.raises(ConfigError, match="adapter"):
        tiny_model(adapter="rgb")
    with pytest.raises(ConfigError, match="slice_chunk"):
        tiny_model(slice_chunk=0)
    with pytest.raises(ConfigError, match="readout"):
        tiny_model(aggregator_kwargs={"readout": "first"})


def test_lengths_are_checked(model):
    with pytest.raises(ConfigError, match="lengths must lie in 1..4"):
        model(torch.rand(2, 1, 4, 32, 32), torch.tensor([5, 1]))
    with pytest.raises(ConfigError, match="2 integers"):
        model(torch.rand(2, 1, 4, 32, 32), torch.tensor([4]))


@pytest.mark.parametrize("shape", [(0, 1, 4, 32, 32), (1, 1, 0, 32, 32)], ids=["batch 0", "depth 0"])
def test_empty_batch_or_depth(model, shape):
    with pytest.raises(ConfigError, match="at least one sample and one slice"):
        model(torch.rand(shape))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_float_widths_are_cast(model, dtype):
    x = torch.rand(1, 1, 3, 32, 32)
    model.eval()
    assert torch.allclose(model(x.to(dtype)), model(x), atol=1e-2)


def test_unwindowed_input_warns_once(model):
    with pytest.warns(UserWarning, match="raw Hounsfield units"):
        model(torch.rand(1, 1, 3, 32, 32) * 2000 - 1000)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.rand(1, 1, 3, 32, 32) * 2000 - 1000)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, "in_channels must be a positive integer"),
        ({"num_classes": 2.5}, "num_classes must be a positive integer"),
        ({"slice_context": -1}, "slice_context must be a non-negative integer"),
    ],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        tiny_model(**kwargs)


@pytest.mark.parametrize(
    ("encoder", "size", "match"),
    [
        ("timm:vit_tiny_patch16_224", 64, r"takes 224x224 slices.*dynamic_img_size"),
        ("timm:convnext_atto", 16, "cannot take 16x16 slices"),
    ],
)
def test_encoder_that_cannot_take_the_input_size(encoder, size, match):
    model = create_model(encoder, "mean", 2, head_hidden=8).eval()
    with pytest.raises(ConfigError, match=match):
        model(torch.rand(1, 1, 2, size, size))


def test_timm_vit_takes_other_sizes_with_encoder_kwargs():
    model = create_model(
        "timm:vit_tiny_patch16_224", "mean", 2, head_hidden=8, encoder_kwargs={"dynamic_img_size": True}
    ).eval()
    assert model(torch.rand(1, 1, 2, 64, 64)).shape == (1, 2)


def test_names_are_suggested_or_matched():
    from slicevid.encoders import create_encoder

    with pytest.raises(KeyError, match="use 'timm:resnet18'"):
        create_encoder("resnet18")
    with pytest.raises(KeyError, match="Did you mean 'timm:resnet18'"):
        create_encoder("timm:resnet181")
    assert tiny_model(aggregator="LSTM").config.aggregator == "lstm"


def test_slice_context_stacks_neighbours_with_replicated_edges():
    from slicevid.inputs import stack_slice_context

    x = torch.arange(5.0).view(1, 1, 5, 1, 1).expand(2, 1, 5, 1, 1).clone()
    stacked = stack_slice_context(x, 1, torch.tensor([5, 3]))
    assert stacked.shape == (2, 3, 5, 1, 1)
    assert stacked[0, :, 0].flatten().tolist() == [0, 0, 1]  # edge slice repeated
    assert stacked[0, :, 2].flatten().tolist() == [1, 2, 3]
    assert stacked[1, :, 2].flatten().tolist() == [1, 2, 2]  # the last real slice of a 3-slice volume


@pytest.mark.parametrize("encoder", ["vgg16", "timm:test_resnet"])
@pytest.mark.parametrize(("context", "adapter"), [(1, "none"), (2, "none"), (1, "conv")])
def test_slice_context_with_encoders(encoder, context, adapter):
    model = create_model(
        encoder, "gru", 2, slice_context=context, adapter=adapter, head_hidden=8, aggregator_kwargs={"hidden_size": 8}
    ).eval()
    assert model(torch.rand(2, 1, 4, 32, 32)).shape == (2, 2)
    first_conv = next(m for m in model.encoder.modules() if isinstance(m, nn.Conv2d))
    assert first_conv.in_channels == (2 * context + 1 if adapter == "none" else 3)


def test_slice_context_adapts_pretrained_first_layer(tmp_path):
    from timm.models import adapt_input_conv

    from slicevid.encoders import VGG16Encoder

    rgb = VGG16Encoder().state_dict()
    torch.save(rgb, tmp_path / "vgg.pth")
    model = create_model("vgg16", "mean", 2, slice_context=2, adapter="none", encoder_weights=tmp_path / "vgg.pth")
    expected = adapt_input_conv(5, rgb["features.0.weight"])
    assert torch.equal(model.encoder.features[0].weight, expected)


def _train_to_find_the_bright_slice(aggregator):
    """A constructed task: label 1 iff one slice (at a random depth) is bright."""
    torch.manual_seed(0)
    model = create_model(
        "test_plain_cnn",
        aggregator,
        2,
        head_hidden=16,
        aggregator_kwargs={"hidden_size": 16} if aggregator in ("lstm", "gru") else {},
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        x = torch.rand(16, 1, 6, 16, 16) * 0.2
        y = torch.arange(16) % 2
        where = torch.randint(0, 6, (16,))
        x[y == 1, :, where[y == 1]] += 0.8
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("aggregator", ["attention", "lstm"])
def test_explain_points_at_the_slice_that_drives_the_label(aggregator):
    model = _train_to_find_the_bright_slice(aggregator)
    x = torch.rand(2, 1, 6, 16, 16) * 0.2
    x[0, :, 4] += 0.8
    x[1, :, 1] += 0.8
    importance = model.explain(x, torch.tensor([6, 3]))
    assert importance.shape == (2, 6)
    assert torch.allclose(importance.sum(1), torch.ones(2))
    assert torch.all(importance[1, 3:] == 0)
    assert importance[0].argmax() == 4 and importance[1].argmax() == 1
