"""``SliceSequenceClassifier``: channel adapter -> slice encoder -> aggregator -> heads.

Input is a batch of volumes or clips ``(B, C, D, H, W)``: channels, then depth (slices or
frames), then height and width, the layout of ``nn.Conv3d`` and of video models. The
encoder sees all real slices of the batch in one call (optionally in chunks, optionally
with activation checkpointing), the aggregator reads the ``(B, D, F)`` feature sequence in
slice order, and each head returns logits: ``(B, outputs)`` for a one-task model, a dict
from task name to logits for a model with several (see `slicevid.tasks`).

Volumes of different depths go in as one zero-padded batch with their ``lengths``: padding
is never encoded, and every aggregator ignores it, so in ``eval()`` mode each sample's
outputs equal those of the volume run alone.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ._registry import suggest
from .aggregators import canonical_aggregator_name, create_aggregator, takes_lengths, valid_mask
from .encoders import canonical_encoder_name, create_encoder, size_error
from .errors import CheckpointError, ConfigError
from .heads import SliceHead, TaskHeads
from .importance import slice_importance
from .inputs import make_adapter, stack_slice_context, validate_batch
from .keys import TARGET
from .model_config import FLAT_FIELDS, ModelConfig, SliceExecution
from .outputs import Outputs
from .pretrained import read_model_config, read_pretrained_weights, write_pretrained
from .tasks import SliceSupervision, Task
from .weights import load_into


def _execution_field(name: str) -> property:
    """A read-only model attribute for one `SliceExecution` field (as ``model.slice_chunk`` read in 0.2)."""
    return property(lambda self: getattr(self.execution, name), doc=f"``execution.{name}``: see `SliceExecution`.")


class SliceSequenceClassifier(nn.Module):
    """Classify a 3D volume (or a video clip) as a sequence of 2D slices.

    Build one with `create_model()` or [`slicevid.presets.viptt_net()`][slicevid.presets.viptt_net]; this constructor
    takes the whole description as a [`ModelConfig`][slicevid.ModelConfig].

    Args:
        config: the architecture and tasks (the paper's ViPTT-Net by default).
        encoder: an encoder module, used instead of building ``config.encoder`` by name.
        aggregator: an aggregator module, used instead of building ``config.aggregator``.
        encoder_weights: ``None``, ``"imagenet"``, ``"keras-imagenet"`` (VGG-16) or a weights file.
        execution: how slices run through the encoder (`set_slice_execution()`).

    Note:
        With an encoder that has BatchNorm, training-mode statistics are computed per
        chunk, so ``slice_chunk`` changes results in ``train()`` mode (not in ``eval()``).
    """

    def __init__(
        self,
        config: ModelConfig | None = None,
        *,
        encoder: nn.Module | None = None,
        aggregator: nn.Module | None = None,
        encoder_weights: str | os.PathLike | None = None,
        execution: SliceExecution | None = None,
    ) -> None:
        super().__init__()
        config = config or ModelConfig()
        if encoder is not None or aggregator is not None:
            config = config.replace(
                encoder=None if encoder is not None else config.encoder,
                aggregator=None if aggregator is not None else config.aggregator,
            )
        self.config = config
        self.adapter = make_adapter(config.adapter, config.slice_channels)
        encoder_channels = config.slice_channels if config.adapter == "none" else 3
        self.encoder = create_encoder(
            encoder if encoder is not None else config.encoder,
            weights=encoder_weights,
            in_chans=encoder_channels,
            **config.encoder_kwargs,
        )
        self.feature_norm = (
            nn.LayerNorm(self.encoder.num_features) if config.feature_norm == "layernorm" else nn.Identity()
        )
        self.aggregator = create_aggregator(
            aggregator if aggregator is not None else config.aggregator,
            self.encoder.num_features,
            **config.aggregator_kwargs,
        )
        self._build_heads()
        self._encoder_frozen = False
        self._adapter_frozen = False
        self._range_checks_left = 3  # the first batches only: checking needs a device sync
        self._exporting = False
        self.execution = SliceExecution(channels_last=False)  # as built
        self.set_slice_execution(execution or SliceExecution())

    def _build_heads(self) -> None:
        config = self.config
        supervision = config.slice_supervision
        pooled = supervision.pool_into if supervision else None
        own = {name: task for name, task in config.tasks.items() if name != pooled}
        self.head = TaskHeads(self.aggregator.out_features, config.head_hidden, own) if own else None
        self.slice_head = None
        if supervision is not None:
            width = getattr(self.aggregator, "sequence_features", None)
            if not isinstance(width, int) or not hasattr(self.aggregator, "forward_sequence"):
                raise ConfigError(
                    "slice_supervision",
                    f"needs per-slice outputs, which aggregator {type(self.aggregator).__name__} does not give "
                    "(it needs forward_sequence and sequence_features)",
                )
            self.slice_head = SliceHead(width, supervision)

    @classmethod
    def from_config(cls, config: ModelConfig, **kwargs: Any) -> SliceSequenceClassifier:
        """Build the architecture ``config`` describes (random weights)."""
        return cls(config, **kwargs)

    @property
    def num_classes(self) -> int:
        """Names the heads predict: the classes of a one-head classifier."""
        return self.config.num_classes

    @property
    def num_features(self) -> int:
        """Width of each slice feature (the encoder's ``num_features``)."""
        return self.encoder.num_features

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.config.class_names

    @property
    def tasks(self) -> dict[str, Task]:
        return dict(self.config.tasks)

    # ------------------------------------------------------------------ runtime switches
    def set_slice_execution(self, execution: SliceExecution | None = None, **changes: Any) -> SliceSequenceClassifier:
        """How slices run through the encoder; none of it changes results (up to float rounding).

        Give a [`SliceExecution`][slicevid.model_config.SliceExecution] (``slice_chunk``: encode at most
        this many slices per call; ``checkpoint_slices``: recompute encoder activations in the
        backward pass instead of storing them; ``channels_last``), or change some of the current
        settings by name: ``model.set_slice_execution(slice_chunk=16, checkpoint_slices=True)``.
        Without arguments, the defaults return.

        Args:
            execution: the settings, whole.
            **changes: ``SliceExecution`` fields to change (``chunk=`` and ``checkpoint=`` are
                accepted, with a warning, as the 0.2 names of ``slice_chunk`` and ``checkpoint_slices``).
        """
        for old, new in (("chunk", "slice_chunk"), ("checkpoint", "checkpoint_slices")):
            if old in changes:
                warnings.warn(f"set_slice_execution({old}=...) is now {new}=...", DeprecationWarning, stacklevel=2)
                changes[new] = changes.pop(old)
        if execution is None:
            execution = replace(self.execution if changes else SliceExecution(), **changes)
        elif changes:
            raise ConfigError("set_slice_execution", "takes a SliceExecution or field changes, not both")
        if execution.channels_last != self.execution.channels_last:
            self.encoder.to(memory_format=torch.channels_last if execution.channels_last else torch.contiguous_format)
        self.execution = execution
        return self

    slice_chunk = _execution_field("slice_chunk")
    checkpoint_slices = _execution_field("checkpoint_slices")
    channels_last = _execution_field("channels_last")

    @contextlib.contextmanager
    def exporting(self) -> Iterator[SliceSequenceClassifier]:
        """A forward pass a graph exporter (ONNX, ``torch.export``) can trace, for the ``with`` block.

        Padded slices are encoded and then zeroed instead of selected out, recurrent aggregators
        run without packed sequences, and checks that read tensor values are skipped. In eval
        mode every output equals the normal forward's up to float rounding.
        """
        recurrent = [m for m in self.modules() if hasattr(m, "unpacked")]
        self._exporting = True
        for module in recurrent:
            module.unpacked = True
        try:
            yield self
        finally:
            self._exporting = False
            for module in recurrent:
                module.unpacked = False

    # ------------------------------------------------------------------ forward
    def check_input(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Validate a ``(B, C, D, H, W)`` batch (and ``lengths``); floats of other widths are cast.

        Raises:
            ConfigError: wrong type, shape, channel count, dtype, an empty batch or depth, or
                lengths that do not fit the batch.
        """
        if self._exporting:  # the checks read tensor values, which a traced graph cannot
            return x.to(next(self.parameters()).dtype), lengths
        x, lengths = validate_batch(x, lengths, self.config.in_channels, next(self.parameters()).dtype)
        self._warn_if_unscaled(x if lengths is None else x[:, :, : int(lengths.min())])
        return x, lengths

    def _warn_if_unscaled(self, x: Tensor) -> None:
        """Warn when the first inputs are clearly not in the model's range (e.g. raw Hounsfield units)."""
        if self._range_checks_left <= 0 or x.device.type == "meta" or torch.jit.is_tracing():
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
                stacklevel=3,
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
        if self._exporting:  # no data-dependent selection: encode padding too, then zero it
            features = self.encode_slices(slices).reshape(batch, depth, -1)
            return features * valid_mask(lengths, batch, depth, x.device)[..., None]
        valid = valid_mask(lengths, batch, depth, x.device).reshape(-1)
        encoded = self.encode_slices(slices[valid])
        features = encoded.new_zeros(batch * depth, encoded.shape[1])
        features[valid] = encoded
        return features.reshape(batch, depth, -1)

    def encode_slices(self, slices: Tensor) -> Tensor:
        """Encode ``(N, C, H, W)`` slices to ``(N, F)``, chunked and checkpointed as configured."""
        if self.execution.channels_last:
            slices = slices.contiguous(memory_format=torch.channels_last)
        chunk = self.execution.slice_chunk
        features = [self._encode_chunk(part) for part in (slices.split(chunk) if chunk else (slices,))]
        return features[0] if len(features) == 1 else torch.cat(features)

    def _encode_chunk(self, chunk: Tensor) -> Tensor:
        needs_grad = torch.is_grad_enabled() and (
            chunk.requires_grad or any(p.requires_grad for p in self.encoder.parameters())
        )
        try:
            if self.execution.checkpoint_slices and needs_grad:
                return checkpoint(self.encoder, chunk, use_reentrant=False)
            return self.encoder(chunk)
        except (RuntimeError, AssertionError, ValueError) as err:
            raise size_error(self.encoder, self.config.encoder, chunk, err) from None

    def outputs_from_features(self, features: Tensor, lengths: Tensor | None = None) -> Outputs:
        """Every head's logits from slice features ``(B, D, F)``, and the slice head's per-slice logits."""
        if features.ndim != 3 or features.shape[-1] != self.num_features:
            raise ConfigError("features", f"must have shape (B, D, {self.num_features}), got {tuple(features.shape)}")
        features = self.feature_norm(features)
        if self.slice_head is None:
            return Outputs(self.head(self._aggregate(features, lengths)))
        pooled, sequence = self._aggregate(features, lengths, per_slice=True)
        valid = valid_mask(lengths, *features.shape[:2], features.device)
        slice_logits = self.slice_head(sequence, valid)
        outputs = self.head(pooled) if self.head is not None else {}
        if self.slice_head.pool_into is not None:
            outputs[self.slice_head.pool_into] = self.slice_head.pool(slice_logits, sequence, valid)
        return Outputs({name: outputs[name] for name in self.config.tasks}, slice_logits)

    def _aggregate(self, features: Tensor, lengths: Tensor | None, per_slice: bool = False):
        if lengths is not None and not takes_lengths(self.aggregator):
            raise ConfigError(
                f"aggregator {type(self.aggregator).__name__}",
                "does not take lengths, so it cannot read padded batches; give its forward a `lengths` argument",
            )
        arguments = (features,) if lengths is None else (features, lengths)
        return self.aggregator.forward_sequence(*arguments) if per_slice else self.aggregator(*arguments)

    def forward_embedding(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The aggregator's readout ``(B, out_features)``: what the heads read, one vector per scan."""
        x, lengths = self.check_input(x, lengths)
        return self._aggregate(self.feature_norm(self._features(x, lengths)), lengths)

    def forward_outputs(self, x: Tensor, lengths: Tensor | None = None) -> Outputs:
        """Every head's logits by task name, and per-slice logits (with slice supervision)."""
        x, lengths = self.check_input(x, lengths)
        return self.outputs_from_features(self._features(x, lengths), lengths)

    def public_outputs(self, outputs: dict[str, Tensor]) -> Tensor | dict[str, Tensor]:
        """What ``forward`` returns from the tasks' outputs: one task's tensor, or the dict of them."""
        if len(self.config.tasks) == 1:
            return outputs[next(iter(self.config.tasks))]
        return dict(outputs)

    def forward_head(self, features: Tensor, lengths: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        """Logits from slice features ``(B, D, F)``, in the form `forward()` returns them."""
        return self.public_outputs(self.outputs_from_features(features, lengths).tasks)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        """Logits ``(B, outputs)`` (a dict by task name with several tasks); ``lengths`` ``(B,)`` gives each
        padded volume's real depth."""
        return self.public_outputs(self.forward_outputs(x, lengths).tasks)

    @torch.no_grad()
    def predict_proba(self, x: Tensor, lengths: Tensor | None = None) -> Tensor | dict[str, Tensor]:
        """What each task means, without gradients: softmax rows, independent sigmoids, level
        probabilities or scores (a dict by task name with several tasks).

        Call ``model.eval()`` first for inference, as with any module.
        """
        logits = self.forward_outputs(x, lengths).tasks
        return self.public_outputs({name: task.activate(logits[name]) for name, task in self.config.tasks.items()})

    def explain(self, x: Tensor, lengths: Tensor | None = None, task: str | None = None) -> Tensor:
        """Importance of each slice for a task's decision ``(B, D)``, summing to 1 per sample.

        Aggregators with attention (``"attention"``, ``"transformer"``) report their attention
        weights; for the others it is |gradient x input| of the slice features for the task's
        decision (the predicted class's logit, the positive labels' logits, the cumulative level
        logits or the score). Padded slices (beyond ``lengths``) get 0. Runs in eval mode.

        Args:
            x: a batch ``(B, C, D, H, W)``.
            lengths: real depths of a padded batch.
            task: the task to explain (the first by default).
        """
        name = task or next(iter(self.config.tasks))
        if name not in self.config.tasks:
            raise ConfigError("task", f"must be one of {list(self.config.tasks)}, got {name!r}")
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                x, lengths = self.check_input(x, lengths)
                features = self._features(x, lengths)

            def score(f: Tensor) -> Tensor:
                return self.config.tasks[name].explained_score(self.outputs_from_features(f, lengths).tasks[name])

            weights = getattr(self.aggregator, "slice_weights", None)
            pooled_weights = (lambda f, n: weights(self.feature_norm(f), n)) if weights is not None else None
            return slice_importance(features, lengths, score, pooled_weights)
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

    # ------------------------------------------------------------------ heads
    def reset_head(
        self,
        num_classes: int | None = None,
        class_names: tuple[str, ...] | None = None,
        *,
        task: Task | None = None,
        tasks: dict[str, Task] | None = None,
        slice_supervision: SliceSupervision | None = None,
    ) -> SliceSequenceClassifier:
        """Replace the output layers with fresh ones for new tasks, keeping every other weight.

        This is the paper's swap from the 10-way video head to the 5-way TB head. Give
        ``num_classes`` (and ``class_names``) for one classification head, ``task`` for one head
        of any kind, or ``tasks`` for several. The hidden layer is kept; so is a slice head,
        unless ``slice_supervision`` asks for another one.
        """
        if tasks is None:
            tasks = {TARGET: task} if task is not None else dict(self.config.with_head(num_classes, class_names).tasks)
        reference = next(self.parameters())
        hidden = self.head.hidden if self.head is not None else None
        keep_slices = slice_supervision is None or slice_supervision == self.config.slice_supervision
        slice_head = self.slice_head if keep_slices else None
        config = self.config.with_tasks(tasks)
        self.config = config if keep_slices else config.replace(slice_supervision=slice_supervision)
        self._build_heads()
        if hidden is not None and self.head is not None:
            self.head.hidden = hidden
        if slice_head is not None and self.slice_head is not None:
            self.slice_head = slice_head
        self.to(reference.device, reference.dtype)
        return self

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (the [`ModelConfig`][slicevid.ModelConfig]) and ``model.safetensors`` atomically."""
        missing = [k for k in ("encoder", "aggregator") if getattr(self.config, k) is None]
        if missing:
            raise ConfigError(
                "save_pretrained",
                f"cannot save a model built from module instances ({', '.join(missing)}): "
                "register them with register_encoder / register_aggregator and build by name",
            )
        return write_pretrained(directory, self.config, self.state_dict())

    @classmethod
    def from_pretrained(
        cls, directory: str | os.PathLike, *, execution: SliceExecution | None = None, **overrides: Any
    ) -> SliceSequenceClassifier:
        """Rebuild a model saved by `save_pretrained()`; ``overrides`` replace config fields.

        Args:
            directory: the folder ``save_pretrained`` wrote (a run's ``best/``).
            execution: how slices run through the encoder (the defaults when not given).
            **overrides: `ModelConfig` fields to change.

        Raises:
            CheckpointError: the folder or one of its two files is missing, ``config.json`` is
                not valid, ``model.safetensors`` is unreadable or does not fit the config (the
                message names the file), or the folder holds a plain module's weights.
            UnknownNameError: the encoder or aggregator is not registered (a plugin's; load it
                with ``--import`` or install its package).
        """
        config = read_model_config(directory)
        if config.encoder is None or config.aggregator is None:
            raise CheckpointError(
                f"{directory} holds the weights of a plain module, not of a slicevid model: build that "
                "module and load them with slicevid.load_weights(module, folder)"
            )
        if overrides:
            config = config.replace(**overrides)
        model = cls.from_config(config, execution=execution)
        state, source = read_pretrained_weights(directory)
        load_into(model, state, source=source)
        return model


def create_model(
    encoder: str | nn.Module | None = None,
    aggregator: str | nn.Module | None = None,
    num_classes: int | None = None,
    *,
    task: Task | None = None,
    tasks: dict[str, Task] | None = None,
    encoder_weights: str | os.PathLike | None = None,
    slice_chunk: int | None = None,
    checkpoint_slices: bool = False,
    channels_last: bool = True,
    **config: Any,
) -> SliceSequenceClassifier:
    """Build a [`SliceSequenceClassifier`][slicevid.SliceSequenceClassifier]; what is not given is the paper's.

    Args:
        encoder: encoder name (``"vgg16"``, ``"compact_cnn"``, ``"timm:resnet18"``, a registered
            name) or module; ``None`` is the paper's VGG-16.
        aggregator: ``"lstm"``, ``"gru"``, ``"mean"``, ``"attention"``, ``"transformer"``, a
            registered name or a module; ``None`` is the paper's LSTM.
        num_classes: classes of a one-head classifier (5 by default); see ``task``/``tasks`` otherwise.
        task: one head of any kind (``Multilabel([...])``, ``Ordinal(3)`` ...).
        tasks: several heads by name, e.g. ``{"type": Multiclass(5), "findings": Multilabel([...])}``.
        encoder_weights: ``None`` (random), ``"imagenet"``, ``"keras-imagenet"`` (VGG-16) or a file.
        slice_chunk: encode at most this many slices per call (memory only).
        checkpoint_slices: activation checkpointing in the encoder (memory only).
        channels_last: channels-last memory format for the encoder (speed only; on by default).
        **config: any other [`ModelConfig`][slicevid.ModelConfig] field (``in_channels``, ``adapter``,
            ``head_hidden``, ``aggregator_kwargs``, ``feature_norm``, ``slice_context``,
            ``class_names``, ``slice_supervision`` ...); ``None`` values are dropped.

    Returns:
        The model, with ``model.config`` describing it.

    Raises:
        UnknownNameError: an unknown encoder or aggregator name (with close matches).
        ConfigError: an invalid setting (named in the message).
        WeightsNotFoundError: pretrained weights that are not available locally.

    Example:
        >>> model = create_model("timm:resnet18", "gru", num_classes=3)
        >>> model = create_model("compact_cnn", "attention", task=Multilabel(["left", "right"]))
    """
    if task is not None and tasks is not None:
        raise ConfigError("task", "and tasks exclude each other: give one head or several")
    fields = {k: v for k, v in config.items() if v is not None}
    if task is not None or tasks is not None:
        fields["tasks"] = tasks if tasks is not None else {TARGET: task}
    elif num_classes is not None:
        fields["num_classes"] = num_classes
    modules = {}
    for name, value in (("encoder", encoder), ("aggregator", aggregator)):
        if isinstance(value, nn.Module):
            modules[name] = value
        elif value is not None:
            fields[name] = canonical_encoder_name(value) if name == "encoder" else canonical_aggregator_name(value)
    unknown = sorted(set(fields) - set(FLAT_FIELDS))
    if unknown:
        raise ConfigError("create_model", f"got unknown setting(s) {unknown}{suggest(unknown[0], FLAT_FIELDS)}")
    return SliceSequenceClassifier(
        ModelConfig(**fields),
        encoder_weights=encoder_weights,
        execution=SliceExecution(slice_chunk, checkpoint_slices, channels_last),
        **modules,
    )
