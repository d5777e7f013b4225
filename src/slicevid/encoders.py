"""Slice encoders: 2D image networks that map ``(N, 3, H, W)`` slices to ``(N, F)`` features.

The contract is tiny: an ``nn.Module`` with a ``num_features`` attribute whose forward
returns pooled features. Three ways to get one:

* ``"vgg16"``: the paper's encoder, VGG-16's 13-conv stack through block5's max-pool,
  then global average pooling (512 features). Its parameter names match torchvision's
  ``vgg16().features`` so torchvision checkpoints load directly.
* ``"timm:<name>"``: any timm model, built with ``num_classes=0``.
* your own, via :func:`register_encoder`, or any module passed in directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ._registry import Registry
from .errors import WeightsNotFoundError
from .weights import load_into, read_state_dict, vgg16_imagenet_state

TIMM_PREFIX = "timm:"
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

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
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


class TimmEncoder(nn.Module):
    """Adapter for any timm backbone, created headless (``num_classes=0``)."""

    def __init__(self, name: str, *, pretrained: bool = False, **kwargs) -> None:
        super().__init__()
        import timm

        try:
            self.model = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs)
        except RuntimeError as err:
            if "Unknown model" in str(err):
                raise KeyError(f"Unknown timm model {name!r}; see timm.list_models().") from err
            raise
        # Models with a pre-logits layer report its width separately from the trunk's.
        self.num_features = getattr(self.model, "head_hidden_size", None) or self.model.num_features

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def register_encoder(name: str, builder: Callable[..., nn.Module] | None = None):
    """Register an encoder builder under ``name`` (usable as a decorator).

    The builder returns an ``nn.Module`` with ``num_features``; it receives
    ``weights="imagenet"`` only when a user asks for ImageNet weights.
    """
    return _ENCODERS.register(name, builder)


def list_encoders(pattern: str = "*", *, include_timm: bool = False) -> list[str]:
    """Registered encoder names matching ``pattern``; with ``include_timm`` also ``timm:*`` names."""
    names = _ENCODERS.names(pattern)
    if include_timm:
        import timm

        names += [TIMM_PREFIX + n for n in timm.list_models(pattern.removeprefix(TIMM_PREFIX))]
    return names


def create_encoder(
    encoder: str | nn.Module, *, weights: str | os.PathLike | None = None, **kwargs: Any
) -> nn.Module:
    """Build an encoder from a name, or validate a ready module.

    Args:
        encoder: a registered name, ``"timm:<model>"``, or an ``nn.Module`` with ``num_features``.
        weights: ``None`` (random), ``"imagenet"``, or a path to a ``.pth``/``.safetensors`` file.
        **kwargs: passed to the builder (for timm: to ``timm.create_model``).
    """
    if isinstance(encoder, nn.Module):
        module = encoder
    elif encoder.startswith(TIMM_PREFIX):
        module = _create_timm(encoder.removeprefix(TIMM_PREFIX), weights == "imagenet", kwargs)
    else:
        builder = _ENCODERS.get(encoder)
        module = builder(weights="imagenet", **kwargs) if weights == "imagenet" else builder(**kwargs)
    if not isinstance(getattr(module, "num_features", None), int):
        raise TypeError(f"Encoder {type(module).__name__} must expose an integer `num_features`.")
    if weights is not None and weights != "imagenet":
        load_into(module, read_state_dict(weights), source=str(weights))
    return module


def _create_timm(name: str, pretrained: bool, kwargs: dict) -> TimmEncoder:
    try:
        return TimmEncoder(name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError) as err:
        if not pretrained:
            raise
        raise WeightsNotFoundError(
            f"Could not load ImageNet weights for timm model {name!r} ({err}). Offline, put the "
            "model in the Hugging Face cache (HF_HOME) or pass encoder_weights='/path/to/file'."
        ) from err


@register_encoder("vgg16")
def vgg16(weights: str | None = None) -> VGG16Encoder:
    """The paper's VGG-16 encoder; ``weights="imagenet"`` loads torchvision's weights."""
    encoder = VGG16Encoder()
    if weights == "imagenet":
        load_into(encoder, vgg16_imagenet_state(), source="torchvision vgg16 ImageNet")
    return encoder
