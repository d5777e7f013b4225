"""``SliceSequenceClassifier``: channel adapter -> slice encoder -> aggregator -> head.

Input is a batch of volumes or clips ``(B, C, D, H, W)``: channels, then depth (slices or
frames), then height and width, the layout of ``nn.Conv3d`` and of video models. The
encoder sees all ``B * D`` slices in one batched call (optionally in chunks, optionally
with activation checkpointing), the aggregator reads the ``(B, D, F)`` feature sequence in
slice order, and the head returns logits ``(B, num_classes)``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ._io import atomic_write, atomic_write_text
from .aggregators import create_aggregator
from .encoders import create_encoder
from .weights import load_into

ADAPTERS = ("conv", "repeat", "none")
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class RepeatChannels(nn.Module):
    """Tile a single channel to ``channels`` copies (a pseudo-RGB image)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return x.expand(-1, self.channels, *x.shape[2:])


def _make_adapter(kind: str, in_channels: int) -> nn.Module:
    if kind == "conv":  # the paper's learnable 1x1x1 convolution with bias
        return nn.Conv3d(in_channels, 3, kernel_size=1, bias=True)
    if kind == "repeat":
        if in_channels != 1:
            raise ValueError(f"adapter='repeat' needs in_channels=1, got {in_channels}")
        return RepeatChannels(3)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"adapter must be one of {ADAPTERS}, got {kind!r}")


class SliceSequenceClassifier(nn.Module):
    """Classify a 3D volume (or a video clip) as a sequence of 2D slices.

    Args:
        encoder: encoder name (``"vgg16"``, ``"timm:resnet18"``, a registered name) or module.
        aggregator: aggregator name (``"lstm"``, ``"gru"``, ``"mean"``) or module.
        num_classes: number of output logits.
        in_channels: channels ``C`` of the input volume (1 for CT, grayscale video).
        adapter: how ``C`` channels become the encoder's 3: ``"conv"`` (learnable 1x1x1
            convolution with bias, the paper's), ``"repeat"`` (tile one channel) or ``"none"``.
        head_hidden: width of the hidden dense layer of the head (1024 in the paper).
        encoder_weights: ``None``, ``"imagenet"`` or a path to a weights file.
        encoder_kwargs: extra keyword arguments for the encoder builder.
        aggregator_kwargs: extra keyword arguments for the aggregator (``hidden_size``,
            ``num_layers``, ``bidirectional``, ``dropout``, ``readout``).
        slice_chunk: encode at most this many slices per call, to bound peak memory.
        checkpoint_slices: recompute encoder activations in the backward pass (per chunk)
            instead of storing them: much less memory for about one more forward pass.

    Note:
        With an encoder that has BatchNorm, training-mode statistics are computed per
        chunk, so ``slice_chunk`` changes results in ``train()`` mode (not in ``eval()``).
    """

    def __init__(
        self,
        encoder: str | nn.Module = "vgg16",
        aggregator: str | nn.Module = "lstm",
        num_classes: int = 5,
        *,
        in_channels: int = 1,
        adapter: str = "conv",
        head_hidden: int = 1024,
        encoder_weights: str | os.PathLike | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        aggregator_kwargs: dict[str, Any] | None = None,
        slice_chunk: int | None = None,
        checkpoint_slices: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if slice_chunk is not None and slice_chunk < 1:
            raise ValueError(f"slice_chunk must be a positive integer or None, got {slice_chunk}")
        self.in_channels = in_channels
        self.slice_chunk = slice_chunk
        self.checkpoint_slices = checkpoint_slices
        self.channels_last = False
        self.adapter = _make_adapter(adapter, in_channels)
        self.encoder = create_encoder(encoder, weights=encoder_weights, **(encoder_kwargs or {}))
        self.aggregator = create_aggregator(aggregator, self.encoder.num_features, **(aggregator_kwargs or {}))
        self.head = nn.Sequential(
            OrderedDict(
                hidden=nn.Linear(self.aggregator.out_features, head_hidden),
                act=nn.ReLU(inplace=True),
                classifier=nn.Linear(head_hidden, num_classes),
            )
        )
        self._encoder_frozen = False
        self._adapter_frozen = False
        # Enough to rebuild the architecture; weights travel separately in safetensors.
        self.config: dict[str, Any] = {
            "encoder": encoder if isinstance(encoder, str) else None,
            "aggregator": aggregator if isinstance(aggregator, str) else None,
            "num_classes": num_classes,
            "in_channels": in_channels,
            "adapter": adapter,
            "head_hidden": head_hidden,
            "encoder_kwargs": dict(encoder_kwargs or {}),
            "aggregator_kwargs": dict(aggregator_kwargs or {}),
            "slice_chunk": slice_chunk,
            "checkpoint_slices": checkpoint_slices,
        }

    @property
    def num_classes(self) -> int:
        return self.head.classifier.out_features

    @property
    def num_features(self) -> int:
        """Width of each slice feature (the encoder's ``num_features``)."""
        return self.encoder.num_features

    # ------------------------------------------------------------------ forward
    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a float ``(B, C, D, H, W)`` batch."""
        expected = f"a float tensor of shape (B, C={self.in_channels}, D, H, W)"
        if not isinstance(x, Tensor):
            raise ValueError(f"Expected {expected}, got {type(x).__name__}")
        if x.ndim != 5:
            hint = " (add a batch dimension with x[None])" if x.ndim == 4 else ""
            raise ValueError(f"Expected {expected}, got shape {tuple(x.shape)}{hint}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Expected {expected}, got {x.shape[1]} channels in shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"Expected {expected}, got dtype {x.dtype}; scale intensities to [0, 1] floats")

    def forward_features(self, x: Tensor) -> Tensor:
        """Per-slice features ``(B, D, F)`` for a batch ``(B, C, D, H, W)``."""
        self.check_input(x)
        x = self.adapter(x)
        batch, channels, depth, height, width = x.shape
        slices = x.transpose(1, 2).reshape(batch * depth, channels, height, width)
        if self.channels_last:
            slices = slices.contiguous(memory_format=torch.channels_last)
        return self.encode_slices(slices).reshape(batch, depth, -1)

    def encode_slices(self, slices: Tensor) -> Tensor:
        """Encode ``(N, 3, H, W)`` slices to ``(N, F)``, chunked and checkpointed as configured."""
        chunks = slices.split(self.slice_chunk) if self.slice_chunk else (slices,)
        features = [self._encode_chunk(chunk) for chunk in chunks]
        return features[0] if len(features) == 1 else torch.cat(features)

    def _encode_chunk(self, chunk: Tensor) -> Tensor:
        needs_grad = torch.is_grad_enabled() and (
            chunk.requires_grad or any(p.requires_grad for p in self.encoder.parameters())
        )
        if self.checkpoint_slices and needs_grad:
            return checkpoint(self.encoder, chunk, use_reentrant=False)
        return self.encoder(chunk)

    def forward_head(self, features: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` from slice features ``(B, D, F)``."""
        if features.ndim != 3 or features.shape[-1] != self.num_features:
            raise ValueError(
                f"Expected slice features of shape (B, D, {self.num_features}), got {tuple(features.shape)}"
            )
        return self.head(self.aggregator(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities ``(B, num_classes)`` (softmax of the logits, no gradients).

        Call ``model.eval()`` first for inference, as with any module.
        """
        return self(x).float().softmax(dim=-1)

    # ------------------------------------------------------------------ freezing
    def freeze_encoder(self, *, include_adapter: bool = False) -> SliceSequenceClassifier:
        """Stop training the encoder: no gradients, BatchNorm statistics held (eval mode).

        The paper freezes VGG-16 during video pretraining but keeps training the 1x1x1
        adapter; pass ``include_adapter=True`` to freeze it too (needed for the feature cache).
        """
        self._encoder_frozen = True
        self._adapter_frozen = include_adapter
        for module, frozen in ((self.encoder, True), (self.adapter, include_adapter)):
            for param in module.parameters():
                param.requires_grad_(not frozen)
        return self.train(self.training)

    def unfreeze_encoder(self) -> SliceSequenceClassifier:
        """Make the adapter and encoder trainable again."""
        self._encoder_frozen = self._adapter_frozen = False
        for param in [*self.encoder.parameters(), *self.adapter.parameters()]:
            param.requires_grad_(True)
        return self.train(self.training)

    @property
    def encoder_frozen(self) -> bool:
        return self._encoder_frozen

    @property
    def features_frozen(self) -> bool:
        """True when everything before the aggregator is frozen, so slice features are fixed."""
        return self._encoder_frozen and (
            self._adapter_frozen or not any(True for _ in self.adapter.parameters())
        )

    def train(self, mode: bool = True) -> SliceSequenceClassifier:
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()  # keep BatchNorm running statistics fixed
        return self

    # ------------------------------------------------------------------ head
    def reset_head(self, num_classes: int) -> SliceSequenceClassifier:
        """Replace the output layer with a fresh ``num_classes``-way one, keeping all other weights.

        This is the paper's swap from the 10-way video head to the 5-way TB head.
        """
        old = self.head.classifier
        self.head.classifier = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
        self.config["num_classes"] = num_classes
        return self

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` to ``directory`` (atomically)."""
        from safetensors.torch import save_file

        missing = [k for k in ("encoder", "aggregator") if self.config[k] is None]
        if missing:
            raise ValueError(
                f"Cannot save a model built from module instances ({', '.join(missing)}): "
                "register them with register_encoder / register_aggregator and build by name."
            )
        directory = Path(directory)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
        atomic_write_text(directory / CONFIG_NAME, json.dumps(self.config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> SliceSequenceClassifier:
        """Rebuild a model saved by :meth:`save_pretrained`; ``overrides`` replace config entries."""
        from safetensors.torch import load_file

        directory = Path(directory)
        config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
        for path in (config_path, weights_path):
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: expected a folder written by save_pretrained()")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        model = cls(**{**config, **overrides})
        load_into(model, load_file(str(weights_path)), source=str(weights_path))
        return model


def create_model(
    encoder: str | nn.Module = "vgg16",
    aggregator: str | nn.Module = "lstm",
    num_classes: int = 5,
    *,
    in_channels: int = 1,
    **kwargs: Any,
) -> SliceSequenceClassifier:
    """Build a :class:`SliceSequenceClassifier`; keyword arguments left as ``None`` are dropped.

    Example:
        >>> model = create_model("timm:resnet18", "gru", num_classes=3)
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return SliceSequenceClassifier(encoder, aggregator, num_classes, in_channels=in_channels, **kwargs)
