"""The encoder registry: ``register_encoder``, ``list_encoders``, ``create_encoder``.

Names resolve in order: ``"timm:<name>"`` (any timm backbone), then names registered in this
process, then names that installed packages declare as ``slicevid.encoders`` entry points.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .._registry import Registry
from ..errors import ConfigError
from ..weights import adapt_first_conv, load_into, read_state_dict
from .timm_backbones import create_timm_encoder

TIMM_PREFIX = "timm:"
NAMED_WEIGHTS = ("imagenet", "keras-imagenet")
"""Weight names (not paths) an encoder builder may understand."""
# Messages of the errors a backbone raises when slices are too small or the wrong size for it.
_SIZE_ERRORS = (
    "Kernel size can't be greater",
    "doesn't match model",
    "Input height",
    "Input width",
    "output size is too small",
    "Expected size",
)
_ENCODERS: Registry[nn.Module] = Registry("encoder", entry_point_group="slicevid.encoders")


def register_encoder(name: str, builder: Callable[..., nn.Module] | None = None):
    """Register an encoder builder under ``name`` (usable as a decorator).

    The builder returns an ``nn.Module`` with ``num_features``. It receives ``weights`` only
    when a user asks for pretrained weights by name (e.g. ``"imagenet"``), and ``in_chans``
    only when it is not 3. A module class may define ``read_weights_file(path)`` to read
    checkpoints in a foreign layout (as `VGG16Encoder` reads Keras ``.h5``).

    Args:
        name: the name ``create_model`` and ``--encoder`` will know it by.
        builder: the builder; without it, a decorator that registers the function it wraps.

    Raises:
        ConfigError: ``name`` is taken.
    """
    return _ENCODERS.register(name, builder)


def unregister_encoder(name: str) -> None:
    """Remove a registered encoder (for tests and plugins that register temporarily)."""
    _ENCODERS.unregister(name)


def list_encoders(pattern: str = "*", *, include_timm: bool = False) -> list[str]:
    """Registered encoder names (entry-point plugins included), sorted.

    Args:
        pattern: a shell-style pattern (``"*net*"``).
        include_timm: also every matching timm model, as ``timm:<name>``.
    """
    names = _ENCODERS.names(pattern)
    if include_timm:
        import timm

        names += [TIMM_PREFIX + n for n in timm.list_models(pattern.removeprefix(TIMM_PREFIX))]
    return names


def canonical_encoder_name(name: str) -> str:
    """The registered spelling of ``name``; an ``UnknownNameError`` that also suggests ``timm:<name>`` otherwise."""
    if name.startswith(TIMM_PREFIX):
        return name
    if _ENCODERS.canonical(name) is None:
        hint = " Load your own with --import MODULE (or an entry point of your package)."
        try:
            import timm

            if timm.list_models(name):
                hint = f" {name!r} is a timm model: use 'timm:{name}'."
        except ImportError:
            pass
        _ENCODERS.get(name, hint)
    return _ENCODERS.canonical(name)


def create_encoder(
    encoder: str | nn.Module, *, weights: str | os.PathLike | None = None, in_chans: int = 3, **kwargs: Any
) -> nn.Module:
    """Build an encoder from a name, or validate a ready module.

    Args:
        encoder: a registered name, ``"timm:<model>"``, or an ``nn.Module`` with ``num_features``.
        weights: ``None`` (random); a name the builder knows (``"imagenet"``; ``"keras-imagenet"``
            for ``"vgg16"``); or a path to a ``.pth``/``.safetensors`` file (or a Keras VGG-16
            ``.h5`` for ``"vgg16"``).
        in_chans: input channels; pretrained first-layer weights are adapted as timm does.
        **kwargs: passed to the builder (for timm: to ``timm.create_model``).

    Returns:
        The encoder module, with an integer ``num_features``.

    Raises:
        UnknownNameError: an unknown encoder name (with close matches).
        WeightsNotFoundError: named weights are not in the local caches, or a file is missing.
        CheckpointError: a weights file does not fit the encoder.
    """
    is_path = weights is not None and str(weights) not in NAMED_WEIGHTS
    if isinstance(encoder, nn.Module):
        module = encoder
    elif encoder.startswith(TIMM_PREFIX):
        module = create_timm_encoder(encoder.removeprefix(TIMM_PREFIX), None if is_path else weights, in_chans, kwargs)
    else:
        builder = _ENCODERS.get(canonical_encoder_name(encoder))
        named_weights = {} if weights is None or is_path else {"weights": weights}
        module = builder(**named_weights, **({"in_chans": in_chans} if in_chans != 3 else {}), **kwargs)
    if not isinstance(getattr(module, "num_features", None), int):
        raise ConfigError(f"encoder {type(module).__name__}", "must expose an integer `num_features`")
    if is_path:
        reader = getattr(type(module), "read_weights_file", read_state_dict)
        load_into(module, adapt_first_conv(reader(weights), module), source=str(weights))
    return module


def size_error(encoder: nn.Module, name: str | None, slices: Tensor, error: Exception) -> Exception:
    """A ``ConfigError`` saying what input size ``encoder`` needs, when ``error`` is about the slice size.

    Any other error is returned unchanged (for the caller to raise).
    """
    if not any(text.lower() in str(error).lower() for text in _SIZE_ERRORS):
        return error
    hint = encoder.input_size_hint() if hasattr(encoder, "input_size_hint") else "use larger slices or another encoder"
    label = name or type(encoder).__name__
    return ConfigError(
        f"encoder {label!r}", f"cannot take {slices.shape[-2]}x{slices.shape[-1]} slices: {hint}. ({error})"
    )
