"""The encoder registry: ``register_encoder``, ``list_encoders``, ``create_encoder``, ``encoder_weights``.

Names resolve in order: ``"timm:<name>"`` (any timm backbone), then names registered in this
process, then names that installed packages declare as ``slicevid.encoders`` entry points.

An encoder declares the pretrained weights it knows by name (`EncoderWeights`, after timm's
``PretrainedCfg`` and torchvision's ``Weights``): ``encoder_weights="imagenet"`` resolves
through the encoder it is given to, so a plugin names its own weights, and ``slicevid encoders
--weights`` lists them. Anything else given as weights is a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .._registry import Registry
from ..errors import ConfigError, UnknownNameError
from ..weights import WEIGHTS_OPTION, adapt_first_conv, load_into, read_state_dict
from .timm_backbones import create_timm_encoder, timm_weights

TIMM_PREFIX = "timm:"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderWeights:
    """Pretrained weights an encoder knows by name, and the inputs they were trained on.

    Attributes:
        name: what ``encoder_weights=`` (``--encoder-weights``) calls them, e.g. ``"imagenet"``.
        source: where they come from and where slicevid looks for the file (it never downloads).
        mean: the per-channel mean of their training inputs, on a [0, 1] scale, RGB.
        std: the per-channel standard deviation, on the same scale.
    """

    name: str
    source: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def describe(self) -> str:
        """One line: the name, the source, the input convention."""
        numbers = ", ".join(f"{m:.3f}" for m in self.mean), ", ".join(f"{s:.3f}" for s in self.std)
        return f"{self.name}: {self.source}; trained on inputs normalised by mean ({numbers[0]}), std ({numbers[1]})"


_WEIGHTS: dict[str, tuple[EncoderWeights, ...]] = {}
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


def register_encoder(
    name: str, builder: Callable[..., nn.Module] | None = None, *, weights: Sequence[EncoderWeights] = ()
):
    """Register an encoder builder under ``name`` (usable as a decorator).

    The builder returns an ``nn.Module`` with ``num_features``. It receives ``weights`` only
    when a user asks for one of the pretrained weights it declares by name, and ``in_chans``
    only when it is not 3. A module class may define ``read_weights_file(path)`` to read
    checkpoints in a foreign layout (as `VGG16Encoder` reads Keras ``.h5``).

    Args:
        name: the name ``create_model`` and ``--encoder`` will know it by.
        builder: the builder; without it, a decorator that registers the function it wraps.
        weights: the pretrained weights the builder knows by name (`EncoderWeights`).

    Raises:
        ConfigError: ``name`` is taken.
    """
    _WEIGHTS[name] = tuple(weights)
    return _ENCODERS.register(name, builder)


def unregister_encoder(name: str) -> None:
    """Remove a registered encoder (for tests and plugins that register temporarily)."""
    _ENCODERS.unregister(name)
    _WEIGHTS.pop(name, None)


def encoder_weights(name: str) -> tuple[EncoderWeights, ...]:
    """The pretrained weights an encoder knows by name (timm's from its pretrained configuration).

    Args:
        name: a registered encoder name, or ``"timm:<name>"``.

    Raises:
        UnknownNameError: an unknown encoder name.
    """
    if name.startswith(TIMM_PREFIX):
        found = timm_weights(name.removeprefix(TIMM_PREFIX))
        return (EncoderWeights("imagenet", found[0], found[1], found[2]),) if found else ()
    return _WEIGHTS.get(canonical_encoder_name(name), ())


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
        weights: ``None`` (random); a name the encoder declares (`encoder_weights`: ``"imagenet"``;
            ``"keras-imagenet"`` for ``"vgg16"``); or a path to a ``.pth``/``.safetensors`` file (or
            a Keras VGG-16 ``.h5`` for ``"vgg16"``).
        in_chans: input channels; pretrained first-layer weights are adapted as timm does.
        **kwargs: passed to the builder (for timm: to ``timm.create_model``).

    Returns:
        The encoder module, with an integer ``num_features``.

    Raises:
        UnknownNameError: an unknown encoder name (with close matches), or weights named neither as
            the encoder declares nor as a file.
        WeightsNotFoundError: named weights are not in the local caches, or a file is missing.
        CheckpointError: a weights file does not fit the encoder.
    """
    known = {w.name for w in encoder_weights(encoder)} if isinstance(encoder, str) else set()
    is_path = weights is not None and str(weights) not in known
    if is_path and not Path(weights).suffix and not Path(weights).exists():
        label = encoder if isinstance(encoder, str) else type(encoder).__name__
        names = ", ".join(repr(n) for n in sorted(known)) or "none"
        raise UnknownNameError(
            f"encoder {label!r} knows no weights named {weights!r} (it knows {names}; slicevid encoders --weights "
            f"lists them); or pass {WEIGHTS_OPTION}"
        )
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
