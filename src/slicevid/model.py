"""``SliceSequenceClassifier``: channel adapter -> slice encoder -> aggregator -> head.

Input is a batch of volumes or clips ``(B, C, D, H, W)``: channels, then depth (slices or
frames), then height and width, the layout of ``nn.Conv3d`` and of video models. The
encoder sees all real slices of the batch in one call (optionally in chunks, optionally
with activation checkpointing), the aggregator reads the ``(B, D, F)`` feature sequence in
slice order, and the head returns logits ``(B, num_classes)``.

Volumes of different depths go in as one zero-padded batch with their ``lengths``: padding
is never encoded, and every aggregator ignores it, so in ``eval()`` mode each sample's
logits equal those of the volume run alone.
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .aggregators import canonical_aggregator_name, create_aggregator, takes_lengths
from .encoders import canonical_encoder_name, create_encoder, size_error
from .errors import ConfigError
from .importance import slice_importance
from .inputs import make_adapter, stack_slice_context, validate_batch
from .model_config import ModelConfig
from .pretrained import read_model_config, read_pretrained_weights, write_pretrained
from .weights import load_into


class SliceSequenceClassifier(nn.Module):
    """Classify a 3D volume (or a video clip) as a sequence of 2D slices.

    Args:
        encoder: encoder name (``"vgg16"``, ``"compact_cnn"``, ``"timm:resnet18"``, a registered
            name) or module.
        aggregator: aggregator name (``"lstm"``, ``"gru"``, ``"mean"``, ``"attention"``,
            ``"transformer"``) or module.
        num_classes: number of output logits.
        in_channels: channels ``C`` of the input volume (1 for CT, grayscale video).
        adapter: how slices become the encoder's input: ``"conv"`` (learnable 1x1x1 convolution
            to 3 channels, the paper's), ``"repeat"`` (tile one channel) or ``"none"`` (the encoder
            takes ``in_channels * (2 * slice_context + 1)`` channels; pretrained first-layer
            weights are adapted as timm does).
        head_hidden: width of the hidden dense layer of the head (1024 in the paper).
        encoder_weights: ``None``, ``"imagenet"``, ``"keras-imagenet"`` (VGG-16) or a weights file.
        encoder_kwargs: extra keyword arguments for the encoder builder.
        aggregator_kwargs: extra keyword arguments for the aggregator (e.g. ``hidden_size``,
            ``num_layers``, ``bidirectional``, ``dropout``, ``readout`` for the RNNs).
        feature_norm: ``"layernorm"`` normalises each slice's features before the aggregator,
            which helps recurrent aggregators on encoders trained from scratch.
        slice_context: give each slice ``k`` neighbours on each side as extra channels (2.5D).
        class_names: names of the classes, in label order.
        slice_chunk: encode at most this many slices per call (see :meth:`set_slice_execution`).
        checkpoint_slices: recompute encoder activations in the backward pass (same).

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
        feature_norm: str = "none",
        slice_context: int = 0,
        class_names: tuple[str, ...] | None = None,
        slice_chunk: int | None = None,
        checkpoint_slices: bool = False,
    ) -> None:
        super().__init__()
        config = ModelConfig(
            encoder=canonical_encoder_name(encoder) if isinstance(encoder, str) else None,
            aggregator=canonical_aggregator_name(aggregator) if isinstance(aggregator, str) else None,
            num_classes=num_classes,
            in_channels=in_channels,
            adapter=adapter,
            head_hidden=head_hidden,
            encoder_kwargs=dict(encoder_kwargs or {}),
            aggregator_kwargs=dict(aggregator_kwargs or {}),
            feature_norm=feature_norm,
            slice_context=slice_context,
            class_names=tuple(class_names or ()),
        )
        self.config = config
        self.adapter = make_adapter(config.adapter, config.slice_channels)
        encoder_channels = config.slice_channels if config.adapter == "none" else 3
        self.encoder = create_encoder(
            config.encoder or encoder, weights=encoder_weights, in_chans=encoder_channels, **config.encoder_kwargs
        )
        self.feature_norm = (
            nn.LayerNorm(self.encoder.num_features) if config.feature_norm == "layernorm" else nn.Identity()
        )
        self.aggregator = create_aggregator(
            config.aggregator or aggregator, self.encoder.num_features, **config.aggregator_kwargs
        )
        self.head = nn.Sequential(
            OrderedDict(
                hidden=nn.Linear(self.aggregator.out_features, config.head_hidden),
                act=nn.ReLU(inplace=True),
                classifier=nn.Linear(config.head_hidden, config.num_classes),
            )
        )
        self._encoder_frozen = False
        self._adapter_frozen = False
        self._range_checks_left = 3  # the first batches only: checking needs a device sync
        self.slice_chunk: int | None = None
        self.checkpoint_slices = False
        self.channels_last = False
        self.set_slice_execution(chunk=slice_chunk, checkpoint=checkpoint_slices)

    @classmethod
    def from_config(cls, config: ModelConfig, **kwargs: Any) -> SliceSequenceClassifier:
        """Build the architecture ``config`` describes (random weights) and attach ``config``."""
        model = cls(**config.architecture(), class_names=config.class_names, **kwargs)
        model.config = config
        return model

    @property
    def num_classes(self) -> int:
        return self.head.classifier.out_features

    @property
    def num_features(self) -> int:
        """Width of each slice feature (the encoder's ``num_features``)."""
        return self.encoder.num_features

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    # ------------------------------------------------------------------ runtime switches
    def set_slice_execution(
        self, *, chunk: int | None = None, checkpoint: bool = False, channels_last: bool = False
    ) -> SliceSequenceClassifier:
        """How slices run through the encoder; none of it changes results (up to float rounding).

        Args:
            chunk: encode at most this many slices per call, to bound peak memory.
            checkpoint: recompute encoder activations in the backward pass (per chunk) instead
                of storing them: much less memory for about one more forward pass.
            channels_last: run the encoder in channels-last memory format (faster on GPUs).
        """
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ConfigError("slice_chunk", f"must be a positive integer or None, got {chunk!r}")
        self.slice_chunk, self.checkpoint_slices = chunk, bool(checkpoint)
        if channels_last != self.channels_last:
            self.encoder.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            self.channels_last = bool(channels_last)
        return self

    # ------------------------------------------------------------------ forward
    def check_input(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Validate a ``(B, C, D, H, W)`` batch (and ``lengths``); floats of other widths are cast.

        Raises:
            ValueError: wrong type, shape, channel count, dtype, an empty batch or depth, or
                lengths that do not fit the batch.
        """
        x, lengths = validate_batch(x, lengths, self.config.in_channels, next(self.parameters()).dtype)
        self._warn_if_unscaled(x if lengths is None else x[:, :, : int(lengths.min())])
        return x, lengths

    def _warn_if_unscaled(self, x: Tensor) -> None:
        """Warn when the first inputs are clearly not in the model's range (e.g. raw Hounsfield units)."""
        if self._range_checks_left <= 0 or x.device.type == "meta":
            return
        self._range_checks_left -= 1
        low, high = self.config.input_range
        span = high - low
        smallest, largest = (float(v) for v in torch.aminmax(x.detach()))
        if smallest < low - 10 * span or largest > high + 10 * span:
            self._range_checks_left = 0
            warnings.warn(
                f"Input values span [{smallest:g}, {largest:g}], far outside the model's input range "
                f"[{low:g}, {high:g}]: raw Hounsfield units? Window them first (slicevid.data.hu_window).",
                stacklevel=2,
            )

    def forward_features(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Per-slice features ``(B, D, F)`` for a batch ``(B, C, D, H, W)``; zero at padded slices."""
        return self._features(*self.check_input(x, lengths))

    def _features(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        x = self.adapter(stack_slice_context(x, self.config.slice_context, lengths))
        batch, channels, depth, height, width = x.shape
        slices = x.transpose(1, 2).reshape(batch * depth, channels, height, width)
        if lengths is None:
            return self.encode_slices(slices).reshape(batch, depth, -1)
        valid = (torch.arange(depth, device=x.device)[None, :] < lengths[:, None]).reshape(-1)
        encoded = self.encode_slices(slices[valid])
        features = encoded.new_zeros(batch * depth, encoded.shape[1])
        features[valid] = encoded
        return features.reshape(batch, depth, -1)

    def encode_slices(self, slices: Tensor) -> Tensor:
        """Encode ``(N, C, H, W)`` slices to ``(N, F)``, chunked and checkpointed as configured."""
        if self.channels_last:
            slices = slices.contiguous(memory_format=torch.channels_last)
        chunks = slices.split(self.slice_chunk) if self.slice_chunk else (slices,)
        features = [self._encode_chunk(chunk) for chunk in chunks]
        return features[0] if len(features) == 1 else torch.cat(features)

    def _encode_chunk(self, chunk: Tensor) -> Tensor:
        needs_grad = torch.is_grad_enabled() and (
            chunk.requires_grad or any(p.requires_grad for p in self.encoder.parameters())
        )
        try:
            if self.checkpoint_slices and needs_grad:
                return checkpoint(self.encoder, chunk, use_reentrant=False)
            return self.encoder(chunk)
        except (RuntimeError, AssertionError) as err:
            raise size_error(self.encoder, self.config.encoder, chunk, err) from None

    def forward_head(self, features: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits ``(B, num_classes)`` from slice features ``(B, D, F)``."""
        if features.ndim != 3 or features.shape[-1] != self.num_features:
            raise ConfigError("features", f"must have shape (B, D, {self.num_features}), got {tuple(features.shape)}")
        return self.head(self._aggregate(self.feature_norm(features), lengths))

    def _aggregate(self, features: Tensor, lengths: Tensor | None) -> Tensor:
        if lengths is None:
            return self.aggregator(features)
        if not takes_lengths(self.aggregator):
            raise ConfigError(
                f"aggregator {type(self.aggregator).__name__}",
                "does not take lengths, so it cannot read padded batches; give its forward a `lengths` argument",
            )
        return self.aggregator(features, lengths)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Logits ``(B, num_classes)``; ``lengths`` ``(B,)`` gives each padded volume's real depth."""
        x, lengths = self.check_input(x, lengths)
        return self.forward_head(self._features(x, lengths), lengths)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class probabilities ``(B, num_classes)`` (softmax of the logits, no gradients).

        Call ``model.eval()`` first for inference, as with any module.
        """
        return self(x, lengths).float().softmax(dim=-1)

    def explain(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Importance of each slice for the predicted class ``(B, D)``, summing to 1 per sample.

        Aggregators with attention (``"attention"``, ``"transformer"``) report their attention
        weights; for the others it is |gradient x input| of the slice features for the
        predicted class's logit. Padded slices (beyond ``lengths``) get 0. Runs in eval mode.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                x, lengths = self.check_input(x, lengths)
                features = self._features(x, lengths)

            def predicted_logit(f: Tensor) -> Tensor:
                logits = self.forward_head(f, lengths)
                return logits.gather(1, logits.argmax(dim=1, keepdim=True))[:, 0]

            weights = getattr(self.aggregator, "slice_weights", None)
            pooled_weights = (lambda f, n: weights(self.feature_norm(f), n)) if weights is not None else None
            return slice_importance(features, lengths, predicted_logit, pooled_weights)
        finally:
            self.train(was_training)

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
        """True when everything before the feature norm is frozen, so slice features are fixed."""
        return self._encoder_frozen and (self._adapter_frozen or not any(True for _ in self.adapter.parameters()))

    def train(self, mode: bool = True) -> SliceSequenceClassifier:
        super().train(mode)
        if self._encoder_frozen:
            self.encoder.eval()  # keep BatchNorm running statistics fixed
        return self

    # ------------------------------------------------------------------ head
    def reset_head(self, num_classes: int, class_names: tuple[str, ...] | None = None) -> SliceSequenceClassifier:
        """Replace the output layer with a fresh ``num_classes``-way one, keeping all other weights.

        This is the paper's swap from the 10-way video head to the 5-way TB head. The model's
        config gets the new class count and names (``"0"``, ``"1"``, ... when not given).
        """
        self.config = self.config.with_head(num_classes, class_names)
        old = self.head.classifier
        self.head.classifier = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)
        return self

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (the :class:`ModelConfig`) and ``model.safetensors`` atomically."""
        missing = [k for k in ("encoder", "aggregator") if getattr(self.config, k) is None]
        if missing:
            raise ConfigError(
                "save_pretrained",
                f"cannot save a model built from module instances ({', '.join(missing)}): "
                "register them with register_encoder / register_aggregator and build by name",
            )
        return write_pretrained(directory, self.config, self.state_dict())

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> SliceSequenceClassifier:
        """Rebuild a model saved by :meth:`save_pretrained`; ``overrides`` replace config fields.

        Raises:
            FileNotFoundError: the folder or one of its two files is missing.
            ValueError: ``config.json`` is not valid or ``model.safetensors`` is unreadable or
                does not fit the config (the message names the file).
        """
        config = read_model_config(directory)
        if overrides:
            config = config.replace(**overrides)
        model = cls.from_config(config)
        state, source = read_pretrained_weights(directory)
        load_into(model, state, source=source)
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
