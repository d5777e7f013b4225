"""Slice encoders: 2D image networks that map ``(N, C, H, W)`` slices to ``(N, F)`` features.

The contract is tiny: an ``nn.Module`` with a ``num_features`` attribute whose forward
returns pooled features. Builders take ``in_chans`` (3 unless the model feeds 2.5D slice
context straight in) and ``weights``. Ways to get one:

* ``"vgg16"``: the paper's encoder, VGG-16's 13-conv stack through block5's max-pool,
  then global average pooling (512 features). Its parameter names match torchvision's
  ``vgg16().features`` so torchvision checkpoints load directly; Keras ``.h5`` weights
  (the authors') load too.
* ``"compact_cnn"``: four conv-BatchNorm-ReLU-max-pool stages (128 features, about 0.1 M
  parameters): a CPU-sized encoder that trains from scratch in minutes (the demo's).
* ``"timm:<name>"``: any timm model, built with ``num_classes=0``.
* your own, via :func:`register_encoder`, or any module passed in directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from ._registry import Registry
from .errors import WeightsNotFoundError
from .weights import NAMED_WEIGHTS, adapt_first_conv, load_into, resolve_encoder_weights

TIMM_PREFIX = "timm:"
# Messages of the errors a backbone raises when slices are too small or the wrong size for it.
_SIZE_ERRORS = (
    "Kernel size can't be greater",
    "doesn't match model",
    "Input height",
    "Input width",
    "output size is too small",
    "Expected size",
)
_ENCODERS: Registry[nn.Module] = Registry("encoder")

# VGG-16 configuration "D": conv widths, "M" = 2x2 max-pool ending each block.
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
# Position of each conv in ``VGG16Encoder.features`` (each conv is followed by a ReLU).
VGG16_CONV_INDICES = tuple(
    i + sum(1 for s in _VGG16_LAYOUT[:i] if s != "M") for i, s in enumerate(_VGG16_LAYOUT) if s != "M"
)


class VGG16Encoder(nn.Module):
    """VGG-16 convolutional trunk + global average pooling -> 512 features (the paper's encoder)."""

    num_features = 512

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for spec in _VGG16_LAYOUT:
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                conv = nn.Conv2d(channels, spec, kernel_size=3, padding=1)
                nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(conv.bias)
                layers += [conv, nn.ReLU(inplace=True)]
                channels = spec
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class CompactCNN(nn.Module):
    """Conv-BatchNorm-ReLU-max-pool stages, then global average pooling: an encoder sized for CPUs.

    Args:
        in_chans: input channels.
        widths: channels of each stage; every stage halves height and width.
    """

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


class TimmEncoder(nn.Module):
    """Adapter for any timm backbone, created headless (``num_classes=0``)."""

    def __init__(self, name: str, *, pretrained: bool = False, **kwargs) -> None:
        super().__init__()
        import timm

        if not timm.list_models(name) and not timm.list_models(name, pretrained=True):
            raise KeyError(f"Unknown timm model {name!r}.{_close_timm_names(name)} See timm.list_models().")
        self.name = name
        self.model = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
        # Models with a pre-logits layer report its width separately from the trunk's.
        self.num_features = getattr(self.model, "head_hidden_size", None) or self.model.num_features

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def input_size_hint(self) -> str:
        """What input size this backbone needs, and how to change that."""
        size = getattr(getattr(self.model, "patch_embed", None), "img_size", None)
        if size is not None:
            return (
                f"timm model {self.name!r} takes {size[0]}x{size[1]} slices; pass encoder_kwargs "
                '(CLI: --encoder-kwargs) {"img_size": N} or {"dynamic_img_size": true}'
            )
        size = self.model.pretrained_cfg.get("input_size", (3, 224, 224))[1:]
        return f"timm model {self.name!r} is made for {size[0]}x{size[1]} slices and its downsampling needs larger ones"


def _close_timm_names(name: str) -> str:
    import difflib

    import timm

    close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.7)
    return f" Did you mean {', '.join(repr(TIMM_PREFIX + c) for c in close)}?" if close else ""


def register_encoder(name: str, builder: Callable[..., nn.Module] | None = None):
    """Register an encoder builder under ``name`` (usable as a decorator).

    The builder returns an ``nn.Module`` with ``num_features``. It receives ``weights`` only
    when a user asks for pretrained weights by name (e.g. ``"imagenet"``), and ``in_chans``
    only when it is not 3.
    """
    return _ENCODERS.register(name, builder)


def list_encoders(pattern: str = "*", *, include_timm: bool = False) -> list[str]:
    """Registered encoder names matching ``pattern``; with ``include_timm`` also ``timm:*`` names."""
    names = _ENCODERS.names(pattern)
    if include_timm:
        import timm

        names += [TIMM_PREFIX + n for n in timm.list_models(pattern.removeprefix(TIMM_PREFIX))]
    return names


def canonical_encoder_name(name: str) -> str:
    """The registered spelling of ``name``; a ``KeyError`` that also suggests ``timm:<name>`` otherwise."""
    if name.startswith(TIMM_PREFIX):
        return name
    if _ENCODERS.canonical(name) is None:
        hint = ""
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
    """
    if isinstance(encoder, nn.Module):
        module = encoder
    elif encoder.startswith(TIMM_PREFIX):
        module = _create_timm(encoder.removeprefix(TIMM_PREFIX), weights == "imagenet", in_chans, kwargs)
    else:
        builder = _ENCODERS.get(canonical_encoder_name(encoder))
        named_weights = {} if weights is None or _is_path(weights) else {"weights": weights}
        module = builder(**named_weights, **({"in_chans": in_chans} if in_chans != 3 else {}), **kwargs)
    if not isinstance(getattr(module, "num_features", None), int):
        raise TypeError(f"Encoder {type(module).__name__} must expose an integer `num_features`.")
    if weights is not None and _is_path(weights):
        state = resolve_encoder_weights(weights)
        load_into(module, adapt_first_conv(state, module), source=str(weights))
    return module


def _is_path(weights: str | os.PathLike) -> bool:
    return str(weights) not in NAMED_WEIGHTS


def _create_timm(name: str, pretrained: bool, in_chans: int, kwargs: dict) -> TimmEncoder:
    try:
        return TimmEncoder(name, pretrained=pretrained, **({"in_chans": in_chans} if in_chans != 3 else {}), **kwargs)
    except (OSError, RuntimeError) as err:
        if not pretrained:
            raise
        raise WeightsNotFoundError(
            f"Could not load ImageNet weights for timm model {name!r} ({err}). Offline, put the "
            "model in the Hugging Face cache (HF_HOME) or pass encoder_weights='/path/to/file'."
        ) from err


@register_encoder("vgg16")
def vgg16(weights: str | None = None, in_chans: int = 3) -> VGG16Encoder:
    """The paper's VGG-16 encoder.

    ``weights``: ``"imagenet"`` (torchvision's) or ``"keras-imagenet"`` (Keras's
    ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``, the authors' starting point).
    """
    encoder = VGG16Encoder(in_chans)
    if weights is not None:
        load_into(encoder, adapt_first_conv(resolve_encoder_weights(weights, "vgg16"), encoder), source=str(weights))
    return encoder


@register_encoder("compact_cnn")
def compact_cnn(weights: str | None = None, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128)) -> CompactCNN:
    """A small CNN trained from scratch (no named pretrained weights exist for it)."""
    if weights is not None:
        raise WeightsNotFoundError(f"compact_cnn has no {weights!r} weights; pass a file path or None")
    return CompactCNN(in_chans, widths)


def size_error(encoder: nn.Module, name: str | None, slices: Tensor, error: Exception) -> Exception:
    """A ``ValueError`` saying what input size ``encoder`` needs, when ``error`` is about the slice size.

    Any other error is returned unchanged (for the caller to raise).
    """
    if not any(text in str(error) for text in _SIZE_ERRORS):
        return error
    hint = encoder.input_size_hint() if hasattr(encoder, "input_size_hint") else "use larger slices or another encoder"
    label = name or type(encoder).__name__
    return ValueError(f"Encoder {label!r} cannot take {slices.shape[-2]}x{slices.shape[-1]} slices: {hint}. ({error})")
