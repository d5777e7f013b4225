"""Aggregators: read a sequence of slice features ``(B, D, F)`` into one vector ``(B, out_features)``.

Registered names:

* ``"lstm"``, ``"gru"``: recurrent, optionally stacked and bidirectional, read at the last
  step or averaged over steps (the paper: an LSTM with 256 units read at the last step).
* ``"mean"``: an order-blind average over slices, with no parameters (an ablation).
* ``"attention"``: gated attention pooling (Ilse et al., 2018): a learned weight per slice.
* ``"transformer"``: a small transformer encoder over the slices, with sinusoidal
  slice-position encoding, read out through a learned summary token.

Every aggregator takes optional ``lengths`` ``(B,)`` for padded batches of volumes of
different depths and ignores the padding exactly: packed sequences for the recurrent ones,
masks for the others. Aggregators with a ``slice_weights(sequence, lengths)`` method
(attention, transformer) explain which slices they read; see ``SliceSequenceClassifier.explain``.
The built-in ones also return per-slice outputs (``forward_sequence``, ``sequence_features``
wide), which a per-slice head reads for slice-level supervision.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ._registry import Registry, check_choice
from .devices import without_autocast
from .errors import ConfigError

_AGGREGATORS: Registry[nn.Module] = Registry("aggregator", entry_point_group="slicevid.aggregators")
READOUTS = ("last", "mean")


def valid_mask(lengths: Tensor | None, batch: int, depth: int, device: torch.device) -> Tensor:
    """``(B, D)`` booleans, True for real slices and False for padding."""
    if lengths is None:
        return torch.ones(batch, depth, dtype=torch.bool, device=device)
    return torch.arange(depth, device=device)[None, :] < lengths.to(device)[:, None]


def masked_mean(sequence: Tensor, lengths: Tensor | None) -> Tensor:
    """Mean over the real slices of each sample of ``(B, D, F)``."""
    if lengths is None:
        return sequence.mean(dim=1)
    mask = valid_mask(lengths, *sequence.shape[:2], sequence.device).unsqueeze(-1)
    return (sequence * mask).sum(dim=1) / lengths.to(sequence.device, sequence.dtype)[:, None]


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
            (average of the outputs over all real steps).
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
        cell = check_choice("cell", cell, rnn_types)
        self.readout = check_choice("readout", readout, READOUTS)
        self.rnn = rnn_types[cell](
            in_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.num_directions = 2 if bidirectional else 1
        self.out_features = self.sequence_features = hidden_size * self.num_directions
        self.unpacked = False  # set while exporting: see _run_unpacked

    def _run(self, sequence: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Per-step outputs ``(B, D, out)`` (zero at padding) and the readout ``(B, out)``."""
        if self.unpacked:
            return self._run_unpacked(sequence, lengths)
        # cuDNN RNNs under bf16/fp16 lose accuracy over long sequences: run them in float32.
        with without_autocast(sequence.device):
            inputs = sequence.float()
            if lengths is not None:
                inputs = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, state = self.rnn(inputs)
        if lengths is not None:
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=sequence.shape[1])
        if self.readout == "mean":
            return outputs, masked_mean(outputs, lengths)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM returns (h, c)
        top = hidden[-self.num_directions :]  # (directions, B, H) of the last layer, in the original order
        return outputs, top.transpose(0, 1).reshape(sequence.shape[0], self.out_features)

    def _run_unpacked(self, sequence: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """`_run()` without packed sequences, for graph export (ONNX, ``torch.export``).

        The forward direction reads the real slices first, so its outputs there are the packed
        ones: all its layers run as the RNN itself. A bidirectional RNN runs layer by layer,
        its backward direction on each volume's real slices in reverse (padding stays at the
        end), so that it too starts at the volume's last real slice. In eval mode the results
        equal the packed path's up to float rounding.
        """
        steps = torch.ones_like(sequence[..., 0], dtype=torch.long).cumsum(1) - 1  # (B, D): 0 .. D-1
        lengths = lengths.to(steps) if lengths is not None else steps[:, -1] + 1
        valid = steps < lengths[:, None]
        mirror = torch.where(valid, lengths[:, None] - 1 - steps, steps)  # reverses each volume's real slices
        hidden, inputs = self.rnn.hidden_size, sequence.float()
        if self.num_directions == 1:
            per_step = self.rnn(inputs)[0]
        else:
            per_step = inputs
            for layer in range(self.rnn.num_layers):
                forward = _recurrence(self.rnn, _weights(self.rnn, f"_l{layer}"), per_step)
                backward = _recurrence(self.rnn, _weights(self.rnn, f"_l{layer}_reverse"), _reorder(per_step, mirror))
                per_step = torch.cat([forward, _reorder(backward, mirror)], dim=-1)
        per_step = per_step * valid[..., None]
        if self.readout == "mean":
            return per_step, masked_mean(per_step, lengths)
        last = per_step.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, per_step.shape[-1]))[:, 0]
        if self.num_directions == 2:  # the backward direction ends at the first slice
            last = torch.cat([last[:, :hidden], per_step[:, 0, hidden:]], dim=-1)
        return per_step, last

    def forward(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self._run(sequence, lengths)[1]

    def forward_sequence(self, sequence: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(readout, per-step outputs)``: the hidden state at every slice too."""
        outputs, readout = self._run(sequence, lengths)
        return readout, outputs


def _weights(rnn: nn.LSTM | nn.GRU, suffix: str) -> list[Tensor]:
    """One layer's and direction's weights, in the order the recurrence ops take them."""
    return [getattr(rnn, f"{kind}{suffix}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def _recurrence(rnn: nn.LSTM | nn.GRU, weights: list[Tensor], inputs: Tensor) -> Tensor:
    """Per-step outputs of one unidirectional layer with ``weights`` (batch first, zero initial state)."""
    initial = inputs.new_zeros(1, inputs.shape[0], weights[1].shape[1])
    if isinstance(rnn, nn.LSTM):
        return torch._VF.lstm(inputs, (initial, initial), weights, True, 1, 0.0, False, False, True)[0]
    return torch._VF.gru(inputs, initial, weights, True, 1, 0.0, False, False, True)[0]


def _reorder(sequence: Tensor, order: Tensor) -> Tensor:
    """``sequence[b, order[b, d]]`` for every ``b, d``: steps of ``(B, D, F)`` in a per-sample order."""
    return sequence.gather(1, order[..., None].expand(-1, -1, sequence.shape[-1]))


class MeanAggregator(nn.Module):
    """Average slice features over depth: order-blind, no parameters."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.out_features = self.sequence_features = in_features

    def forward(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        return masked_mean(sequence, lengths)

    def forward_sequence(self, sequence: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(mean, the slice features themselves)``."""
        return masked_mean(sequence, lengths), sequence


class GatedAttentionAggregator(nn.Module):
    """Gated attention pooling (Ilse, Tomczak and Welling, 2018): a softmax weight per slice.

    ``a_d = softmax_d(w . (tanh(V h_d) * sigmoid(U h_d)))``; the output is ``sum_d a_d h_d``.
    Order-blind like ``"mean"``, but it learns which slices matter, and says so.

    Args:
        in_features: width of each slice feature (also the output width).
        attention_size: width of the attention's hidden layer.
        dropout: dropout on the attention's hidden layer.
    """

    def __init__(self, in_features: int, *, attention_size: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.value = nn.Linear(in_features, attention_size)
        self.gate = nn.Linear(in_features, attention_size)
        self.score = nn.Linear(attention_size, 1)
        self.dropout = nn.Dropout(dropout)
        self.out_features = self.sequence_features = in_features

    def slice_weights(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Attention weights ``(B, D)``: non-negative, summing to 1 over each sample's real slices."""
        hidden = self.dropout(torch.tanh(self.value(sequence)) * torch.sigmoid(self.gate(sequence)))
        scores = self.score(hidden).squeeze(-1)
        mask = valid_mask(lengths, *sequence.shape[:2], sequence.device)
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=1)

    def forward(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        weights = self.slice_weights(sequence, lengths)
        return torch.einsum("bd,bdf->bf", weights.to(sequence.dtype), sequence)

    def forward_sequence(self, sequence: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(attention-pooled features, the slice features themselves)``."""
        return self(sequence, lengths), sequence


def sinusoidal_positions(depth: int, width: int, device: torch.device) -> Tensor:
    """``(depth, width)`` sine/cosine encodings of slice positions 0..depth-1 (any depth)."""
    position = torch.arange(depth, device=device, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width))
    encoding = torch.zeros(depth, width, device=device)
    encoding[:, 0::2] = torch.sin(position * frequency)
    encoding[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return encoding


class _TransformerBlock(nn.Module):
    """Pre-norm self-attention + feed-forward block that can return its attention weights."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.feedforward = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * width, width)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, padding: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        query = self.norm1(tokens)
        attended, weights = self.attention(
            query, query, query, key_padding_mask=padding, need_weights=need_weights, average_attn_weights=True
        )
        tokens = tokens + self.dropout(attended)
        return tokens + self.dropout(self.feedforward(self.norm2(tokens))), weights


class TransformerAggregator(nn.Module):
    """A small transformer encoder over slices, read through a learned summary token.

    Slice features are projected to ``width``, given sinusoidal slice-position encodings (so
    the order of slices counts, at any depth), and a learned summary token is prepended; its
    final state is the output. Padded slices are masked out of every attention.

    Args:
        in_features: width of each slice feature.
        width: model width (output width too).
        heads: attention heads.
        num_layers: transformer blocks.
        dropout: dropout inside the blocks.
    """

    def __init__(
        self, in_features: int, *, width: int = 128, heads: int = 4, num_layers: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if width % heads or width % 2:
            raise ConfigError("width", f"must be even and divisible by heads; got width={width}, heads={heads}")
        self.project = nn.Linear(in_features, width)
        self.summary = nn.Parameter(torch.zeros(1, 1, width))
        nn.init.normal_(self.summary, std=0.02)
        self.blocks = nn.ModuleList(_TransformerBlock(width, heads, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(width)
        self.out_features = self.sequence_features = width

    def _run(self, sequence: Tensor, lengths: Tensor | None, need_weights: bool) -> tuple[Tensor, Tensor | None]:
        batch, depth, _ = sequence.shape
        tokens = self.project(sequence) + sinusoidal_positions(depth, self.out_features, sequence.device)
        tokens = torch.cat([self.summary.expand(batch, -1, -1).to(tokens.dtype), tokens], dim=1)
        padding = ~valid_mask(lengths, batch, depth, sequence.device)
        padding = torch.cat([torch.zeros(batch, 1, dtype=torch.bool, device=sequence.device), padding], dim=1)
        weights = None
        for index, block in enumerate(self.blocks):
            tokens, weights = block(tokens, padding, need_weights and index == len(self.blocks) - 1)
        return self.norm(tokens), weights

    def slice_weights(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        """How much the summary token attends to each slice in the last block ``(B, D)`` (heads averaged)."""
        weights = self._run(sequence, lengths, need_weights=True)[1]
        slices = weights[:, 0, 1:]
        return slices / slices.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, sequence: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self._run(sequence, lengths, need_weights=False)[0][:, 0]

    def forward_sequence(self, sequence: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(summary token, every slice's token)`` after the last block."""
        tokens = self._run(sequence, lengths, need_weights=False)[0]
        return tokens[:, 0], tokens[:, 1:]


def register_aggregator(name: str, builder: Callable[..., nn.Module] | None = None):
    """Register an aggregator builder ``builder(in_features, **kwargs)`` under ``name``.

    The module it returns maps ``(B, D, in_features)`` to ``(B, out_features)``, exposes
    ``out_features``, and may take ``lengths`` ``(B,)`` as a second argument for padded batches.
    For slice supervision it also needs ``forward_sequence(sequence, lengths)`` returning
    ``(pooled, per_slice)`` and a ``sequence_features`` width.

    Args:
        name: the name ``create_model`` and ``--aggregator`` will know it by.
        builder: the builder; without it, a decorator that registers the function it wraps.

    Raises:
        ConfigError: ``name`` is taken.
    """
    return _AGGREGATORS.register(name, builder)


def unregister_aggregator(name: str) -> None:
    """Remove a registered aggregator (for tests and plugins that register temporarily)."""
    _AGGREGATORS.unregister(name)


def list_aggregators(pattern: str = "*") -> list[str]:
    """Registered aggregator names (entry-point plugins included), sorted.

    Args:
        pattern: a shell-style pattern (``"*gru*"``).
    """
    return _AGGREGATORS.names(pattern)


def canonical_aggregator_name(name: str) -> str:
    """The registered spelling of ``name`` (``"LSTM"`` -> ``"lstm"``); a ``KeyError`` with suggestions otherwise."""
    _AGGREGATORS.get(name)
    return _AGGREGATORS.canonical(name)


def create_aggregator(aggregator: str | nn.Module, in_features: int, **kwargs) -> nn.Module:
    """Build an aggregator by name for ``in_features``-wide slice features, or validate a module.

    Raises:
        UnknownNameError: unknown name (with close matches).
        ConfigError: a keyword argument the aggregator does not take.
    """
    if isinstance(aggregator, nn.Module):
        module = aggregator
    else:
        builder = _AGGREGATORS.get(aggregator)
        _check_kwargs(f"aggregator {aggregator!r}", builder, kwargs)
        module = builder(in_features, **kwargs)
    if not isinstance(getattr(module, "out_features", None), int):
        raise ConfigError(f"aggregator {type(module).__name__}", "must expose an integer `out_features`")
    return module


def _check_kwargs(what: str, builder: Callable, kwargs: dict) -> None:
    """A ``ValueError`` naming any keyword argument ``builder`` does not accept."""
    try:
        parameters = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.POSITIONAL_ONLY][1:]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ConfigError(
            what,
            f"does not take {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(map(repr, accepted)) or 'no keyword arguments'}",
        )


def takes_lengths(module: nn.Module) -> bool:
    """Whether ``module.forward`` accepts ``lengths`` (every built-in aggregator does)."""
    try:
        return "lengths" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


register_aggregator("lstm", partial(RecurrentAggregator, cell="lstm"))
register_aggregator("gru", partial(RecurrentAggregator, cell="gru"))
register_aggregator("mean", MeanAggregator)
register_aggregator("attention", GatedAttentionAggregator)
register_aggregator("transformer", TransformerAggregator)
