"""Slice encoders: 2D image networks that map ``(N, C, H, W)`` slices to ``(N, F)`` features.

The contract is tiny: an ``nn.Module`` with a ``num_features`` attribute whose forward
returns pooled features. Builders take ``in_chans`` (3 unless the model feeds 2.5D slice
context straight in) and ``weights``. Ways to get one:

* ``"vgg16"``: the paper's encoder (`slicevid.encoders.vgg`);
* ``"compact_cnn"``: a CPU-sized CNN that trains from scratch in minutes (the demo's);
* ``"timm:<name>"``: any timm model, built with ``num_classes=0``;
* your own, via `register_encoder()`, a ``slicevid.encoders`` entry point of your
  package, or any module passed in directly.
"""

from . import compact, vgg
from .compact import CompactCNN
from .registry import (
    TIMM_PREFIX,
    EncoderWeights,
    canonical_encoder_name,
    create_encoder,
    encoder_weights,
    list_encoders,
    register_encoder,
    size_error,
    unregister_encoder,
)
from .timm_backbones import TimmEncoder
from .vgg import VGG16Encoder

__all__ = [
    "TIMM_PREFIX",
    "CompactCNN",
    "EncoderWeights",
    "TimmEncoder",
    "VGG16Encoder",
    "canonical_encoder_name",
    "compact",
    "create_encoder",
    "encoder_weights",
    "list_encoders",
    "register_encoder",
    "size_error",
    "unregister_encoder",
    "vgg",
]
