"""Presets: published models as one call.

``viptt_net`` is the model of Zunair et al., "ViPTT-Net: Video pretraining of
spatio-temporal model for tuberculosis type classification from chest CT scans"
(ImageCLEF 2021, 2nd place): a learnable 1x1x1 channel adapter, VGG-16 (global average
pooled, 512 features) on each of 70 axial slices, an LSTM with 256 units read at the last
step, a 1024-unit ReLU layer and a softmax output.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from ._registry import check_choice
from .data.preprocess import CTPreprocessing
from .initializers import keras_init_
from .model import SliceSequenceClassifier, create_model

__all__ = [
    "VIPTT_INPUT_SIZE",
    "viptt_net",
]

VIPTT_INPUT_SIZE = CTPreprocessing().size
"""(depth, height, width) the paper resamples every scan and clip to."""
Init = Literal["pytorch", "keras"]
INITS: tuple[str, ...] = get_args(Init)
"""How the layers not loaded from weights start: PyTorch's defaults, or as the authors' Keras model."""


def viptt_net(
    num_classes: int | None = None,
    *,
    encoder_weights: str | os.PathLike | None = None,
    init: str = "pytorch",
    **overrides: Any,
) -> SliceSequenceClassifier:
    """The paper's ViPTT-Net.

    It has 15,771,467 parameters with 5 classes and 15,776,592 with 10: the Keras model's
    count plus the second LSTM bias vector that PyTorch keeps (1,024).

    Its layers are [`Architecture`][slicevid.model_config.Architecture]'s defaults, the one place they are stated.

    Args:
        num_classes: 5 for TB types (the default), 10 for the UCF50 pretraining subset.
        encoder_weights: ``None`` (random), ``"imagenet"`` (torchvision's VGG-16),
            ``"keras-imagenet"`` (Keras's VGG-16, the authors' start) or a path (``.h5`` too).
        init: ``"pytorch"`` (PyTorch's default initialisation) or ``"keras"`` (Glorot-uniform
            kernels, orthogonal recurrent kernels, zero biases, LSTM forget-gate bias 1: what
            the authors' Keras model started from). Pretrained encoder weights are kept either way.
        **overrides: any [`create_model()`][slicevid.create_model] argument, e.g. ``aggregator="gru"``
            or ``checkpoint_slices=True``.

    Returns:
        The model.
    """
    model = create_model(num_classes=num_classes, encoder_weights=encoder_weights, **overrides)
    return apply_init(model, init, pretrained_encoder=encoder_weights is not None)


def apply_init(model: SliceSequenceClassifier, init: str, *, pretrained_encoder: bool) -> SliceSequenceClassifier:
    """Re-initialise ``model`` as ``init`` says (``"pytorch"`` leaves it); pretrained encoder weights are kept."""
    if check_choice("init", init, INITS) == "keras":
        heads = [module for module in (model.head, model.slice_head) if module is not None]
        for part in (model.adapter, model.aggregator, *heads, *(() if pretrained_encoder else (model.encoder,))):
            keras_init_(part)
    return model
