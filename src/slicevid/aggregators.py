"""Aggregators: read a sequence of slice features ``(B, D, F)`` into one vector ``(B, out_features)``.

``"lstm"`` and ``"gru"`` are recurrent (the paper uses an LSTM with 256 units reading out
the last step). ``"mean"`` averages over slices with no sequence model at all: an
order-blind ablation that shows what the recurrence adds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._registry import Registry

_AGGREGATORS: Registry[nn.Module] = Registry("aggregator")
READOUTS = ("last", "mean")
_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")


class RecurrentAggregator(nn.Module):
    """An LSTM or GRU over slice features, kept in float32 even under autocast.

    Args:
        in_features: width of each slice feature.
        cell: ``"lstm"`` or ``"gru"``.
        hidden_size: units per direction (256 in the paper).
        num_layers: stacked recurrent layers.
        bidirectional: also read the slices in reverse.
        dropout: dropout between stacked layers (needs ``num_layers > 1``).
        readout: ``"last"`` (final hidden state of the top layer, both directions) or ``"mean"``
            (average of the outputs over all steps).
    """

    def __init__(
        self,
        in_features: int,
        *,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        readout: str = "last",
    ) -> None:
        super().__init__()
        rnn_types = {"lstm": nn.LSTM, "gru": nn.GRU}
        if cell not in rnn_types:
            raise ValueError(f"cell must be one of {sorted(rnn_types)}, got {cell!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.rnn = rnn_types[cell](
            in_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.readout = readout
        self.num_directions = 2 if bidirectional else 1
        self.out_features = hidden_size * self.num_directions

    def forward(self, sequence: Tensor) -> Tensor:
        # cuDNN RNNs under bf16/fp16 lose accuracy over long sequences: run them in float32.
        device_type = sequence.device.type if sequence.device.type in _AUTOCAST_DEVICES else "cpu"
        with torch.autocast(device_type=device_type, enabled=False):
            outputs, state = self.rnn(sequence.float())
        if self.readout == "mean":
            return outputs.mean(dim=1)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        top = hidden[-self.num_directions :]  # (directions, B, H) of the last layer
        return top.transpose(0, 1).reshape(sequence.shape[0], self.out_features)


class MeanAggregator(nn.Module):
    """Average slice features over depth: order-blind, no parameters."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.out_features = in_features

    def forward(self, sequence: Tensor) -> Tensor:
        return sequence.mean(dim=1)


def register_aggregator(name: str, builder: Callable[..., nn.Module] | None = None):
    """Register an aggregator builder ``builder(in_features, **kwargs)`` under ``name``.

    The module it returns maps ``(B, D, in_features)`` to ``(B, out_features)`` and exposes
    ``out_features``.
    """
    return _AGGREGATORS.register(name, builder)


def list_aggregators(pattern: str = "*") -> list[str]:
    """Registered aggregator names matching ``pattern``."""
    return _AGGREGATORS.names(pattern)


def create_aggregator(aggregator: str | nn.Module, in_features: int, **kwargs) -> nn.Module:
    """Build an aggregator by name for ``in_features``-wide slice features, or validate a module."""
    module = aggregator if isinstance(aggregator, nn.Module) else _AGGREGATORS.get(aggregator)(in_features, **kwargs)
    if not isinstance(getattr(module, "out_features", None), int):
        raise TypeError(f"Aggregator {type(module).__name__} must expose an integer `out_features`.")
    return module


register_aggregator("lstm", lambda in_features, **kw: RecurrentAggregator(in_features, cell="lstm", **kw))
register_aggregator("gru", lambda in_features, **kw: RecurrentAggregator(in_features, cell="gru", **kw))
register_aggregator("mean", MeanAggregator)
