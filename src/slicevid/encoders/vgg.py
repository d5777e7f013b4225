"""The paper's encoder: VGG-16's 13-conv stack through block5's max-pool, then global average pooling.

Its parameter names match torchvision's ``vgg16().features``, so torchvision checkpoints load
directly. This file also owns the conversion of Keras's VGG-16 weights (the authors' start)
into that layout, as timm's model files own their checkpoint filters.

Named weights, from local caches only (see `slicevid.weights`):

* ``"imagenet"``: torchvision's ``VGG16_Weights.IMAGENET1K_V1`` in the torch hub cache;
* ``"keras-imagenet"``: Keras's ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` in the
  Keras cache (``$KERAS_HOME/models`` or ``~/.keras/models``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CheckpointError, WeightsNotFoundError
from ..weights import adapt_first_conv, keras_cache_file, load_into, read_h5_datasets, read_state_dict, torch_hub_file
from .registry import EncoderWeights, register_encoder

TORCHVISION_VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
KERAS_VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG16_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/vgg16/{KERAS_VGG16_NOTOP}"
# VGG-16 configuration "D": conv widths, "M" = 2x2 max-pool ending each block.
_VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG16_CONV_INDICES = tuple(
    i + sum(1 for s in _VGG16_LAYOUT[:i] if s != "M") for i, s in enumerate(_VGG16_LAYOUT) if s != "M"
)
"""Position of each conv in ``VGG16Encoder.features`` (each conv is followed by a ReLU)."""
VGG16_BLOCKS = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 1), (4, 2), (4, 3), (5, 1), (5, 2), (5, 3))
"""Keras's ``block{b}_conv{n}`` name of each conv, in order."""
_KERAS_CONV = re.compile(r"block(\d)_conv(\d)")


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

    @staticmethod
    def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
        """A state dict from a ``.pth``/``.safetensors`` file or a Keras VGG-16 ``.h5`` (no-top or whole model)."""
        path = Path(path)
        return keras_vgg16_state(path) if path.suffix in (".h5", ".hdf5") else read_state_dict(path)


def keras_vgg16_conv_weights(datasets: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """The 13 VGG-16 convolutions as ``features.N.weight`` / ``.bias`` (our layout) from Keras datasets.

    Each ``block{b}_conv{n}`` layer is found by its group name, wherever it sits, and its kernel
    and bias by shape (4D and 1D), so both Keras naming styles work: ``.../kernel:0`` and
    ``.../bias:0``, or the older ``<layer>_W_1:0`` and ``<layer>_b_1:0``. Kernels are Keras's
    ``(kh, kw, in, out)``.

    Raises:
        CheckpointError: a convolution is missing, ambiguous or mis-shaped (named in the message).
    """
    found: dict[tuple[int, int, int], list[tuple[str, np.ndarray]]] = {}
    for name, value in datasets.items():
        match = _KERAS_CONV.search(name)
        if match and value.ndim in (1, 4):
            found.setdefault((int(match.group(1)), int(match.group(2)), value.ndim), []).append((name, value))
    state: dict[str, np.ndarray] = {}
    channels = 3
    for index, (block, number) in zip(VGG16_CONV_INDICES, VGG16_BLOCKS, strict=True):
        out = 64 * 2 ** min(block - 1, 3)
        for ndim, part, shape in ((4, "kernel", (3, 3, channels, out)), (1, "bias", (out,))):
            matches = found.get((block, number, ndim), [])
            if len(matches) != 1:
                what = "missing" if not matches else f"ambiguous ({[n for n, _ in matches]})"
                raise CheckpointError(f"{path}: weight block{block}_conv{number}/{part} {what}")
            name, value = matches[0]
            if value.shape != shape:
                raise CheckpointError(f"{path}: weight {name} has shape {value.shape}, expected {shape}")
            state[f"features.{index}.{'weight' if ndim == 4 else 'bias'}"] = (
                value.transpose(3, 2, 0, 1) if ndim == 4 else value
            )
        channels = out
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def keras_vgg16_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """VGG-16 convolution weights from a Keras ``.h5`` (no-top weights, or a whole model) as our state dict."""
    path = Path(path)
    return {k: torch.from_numpy(v) for k, v in keras_vgg16_conv_weights(read_h5_datasets(path), path).items()}


def named_vgg16_state(weights: str) -> dict[str, torch.Tensor]:
    """The state dict of named VGG-16 weights (``"imagenet"`` or ``"keras-imagenet"``), from local caches."""
    if weights == "imagenet":
        return read_state_dict(torch_hub_file(TORCHVISION_VGG16_URL, "ImageNet VGG-16 (torchvision)"))
    if weights == "keras-imagenet":
        return keras_vgg16_state(keras_cache_file(KERAS_VGG16_NOTOP, KERAS_VGG16_URL, "Keras ImageNet VGG-16"))
    raise WeightsNotFoundError(f"vgg16 has no weights named {weights!r}; expected 'imagenet' or 'keras-imagenet'")


VGG16_WEIGHTS = (
    EncoderWeights("imagenet", "torchvision's VGG16_Weights.IMAGENET1K_V1: vgg16-397923af.pth in the torch hub cache"),
    EncoderWeights(
        "keras-imagenet",
        f"Keras's {KERAS_VGG16_NOTOP} in $KERAS_HOME/models or ~/.keras/models (the authors' start)",
        mean=(123.68 / 255, 116.779 / 255, 103.939 / 255),  # Keras's "caffe" convention: mean subtracted, not scaled
        std=(1 / 255, 1 / 255, 1 / 255),
    ),
)
"""The weights vgg16 knows by name, with their input conventions."""


@register_encoder("vgg16", weights=VGG16_WEIGHTS)
def vgg16(weights: str | None = None, in_chans: int = 3) -> VGG16Encoder:
    """The paper's VGG-16 encoder.

    Args:
        weights: ``"imagenet"`` (torchvision's) or ``"keras-imagenet"`` (Keras's
            ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``, the authors' starting point).
        in_chans: input channels (pretrained first-layer kernels are adapted).
    """
    encoder = VGG16Encoder(in_chans)
    if weights is not None:
        load_into(encoder, adapt_first_conv(named_vgg16_state(weights), encoder), source=str(weights))
    return encoder
