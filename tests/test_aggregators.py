"""Every aggregator reads padded batches exactly as the unpadded volumes (the padding invariant)."""

import pytest
import torch

from slicevid import create_model
from slicevid.aggregators import create_aggregator, list_aggregators
from slicevid.errors import ConfigError

AGGREGATOR_KWARGS = {
    "lstm": [{"hidden_size": 8}, {"hidden_size": 8, "bidirectional": True, "readout": "mean"}],
    "gru": [{"hidden_size": 8, "bidirectional": True}, {"hidden_size": 8, "num_layers": 2, "readout": "mean"}],
    "mean": [{}],
    "attention": [{"attention_size": 8}],
    "transformer": [{"width": 16, "heads": 2, "num_layers": 2}],
}
CASES = [(name, kwargs) for name in sorted(AGGREGATOR_KWARGS) for kwargs in AGGREGATOR_KWARGS[name]]


def test_every_registered_aggregator_is_covered():
    assert set(AGGREGATOR_KWARGS) >= {"lstm", "gru", "mean", "attention", "transformer"}
    assert set(AGGREGATOR_KWARGS) == {n for n in list_aggregators() if not n.endswith("_for_test")}


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("padding", [0.0, 1e3, float("nan")], ids=["zeros", "large", "nan"])
def test_padded_logits_equal_unpadded(name, kwargs, padding):
    torch.manual_seed(0)
    model = create_model("timm:test_resnet", name, 3, aggregator_kwargs=kwargs, head_hidden=16).eval()
    volumes = [torch.rand(1, depth, 32, 32) for depth in (6, 3, 1)]
    batch = torch.full((3, 1, 6, 32, 32), padding)
    for index, volume in enumerate(volumes):
        batch[index, :, : volume.shape[1]] = volume
    lengths = torch.tensor([6, 3, 1])
    with torch.no_grad():
        padded = model(batch, lengths)
        for index, volume in enumerate(volumes):
            alone = model(volume[None])
            assert torch.allclose(padded[index], alone[0], atol=1e-5), (name, index)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=lambda v: str(v))
def test_output_width_and_gradients(name, kwargs):
    aggregator = create_aggregator(name, 12, **kwargs)
    sequence = torch.rand(2, 5, 12, requires_grad=True)
    out = aggregator(sequence, torch.tensor([5, 2]))
    assert out.shape == (2, aggregator.out_features)
    out.sum().backward()
    assert torch.all(sequence.grad[1, 2:] == 0)  # padded steps get no gradient


def test_attention_weights_are_a_distribution_over_real_slices():
    aggregator = create_aggregator("attention", 8)
    weights = aggregator.slice_weights(torch.rand(2, 5, 8), torch.tensor([5, 3]))
    assert torch.allclose(weights.sum(1), torch.ones(2)) and torch.all(weights[1, 3:] == 0)


def test_transformer_sees_slice_order():
    torch.manual_seed(0)
    aggregator = create_aggregator("transformer", 8, width=16, heads=2, dropout=0.0).eval()
    sequence = torch.rand(1, 5, 8)
    assert not torch.allclose(aggregator(sequence), aggregator(sequence.flip(1)), atol=1e-4)


def test_unknown_keyword_is_named():
    with pytest.raises(ConfigError, match="aggregator 'mean' does not take 'hidden_size'"):
        create_aggregator("mean", 8, hidden_size=16)
    with pytest.raises(ConfigError, match="width must be even and divisible by heads"):
        create_aggregator("transformer", 8, width=10, heads=4)
