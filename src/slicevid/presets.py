"""Presets: published models as one call.

``viptt_net`` is the model of Zunair et al., "ViPTT-Net: Video pretraining of
spatio-temporal model for tuberculosis type classification from chest CT scans"
(ImageCLEF 2021, 2nd place): a learnable 1x1x1 channel adapter, VGG-16 (global average
pooled, 512 features) on each of 70 axial slices, an LSTM with 256 units read at the last
step, a 1024-unit ReLU layer and a softmax output.
"""

from __future__ import annotations

import os
from typing import Any

from ._registry import check_choice
from .initializers import keras_init_
from .model import SliceSequenceClassifier, create_model

VIPTT_INPUT_SIZE = (70, 224, 224)
"""(depth, height, width) the paper resamples every scan and clip to."""
INITS = ("pytorch", "keras")


def viptt_net(
    num_classes: int = 5,
    *,
    encoder_weights: str | os.PathLike | None = None,
    init: str = "pytorch",
    **overrides: Any,
) -> SliceSequenceClassifier:
    """The paper's ViPTT-Net.

    It has 15,771,467 parameters with 5 classes and 15,776,592 with 10: the Keras model's
    count plus the second LSTM bias vector that PyTorch keeps (1,024).

    Args:
        num_classes: 5 for TB types, 10 for the UCF50 pretraining subset.
        encoder_weights: ``None`` (random), ``"imagenet"`` (torchvision's VGG-16),
            ``"keras-imagenet"`` (Keras's VGG-16, the authors' start) or a path (``.h5`` too).
        init: ``"pytorch"`` (PyTorch's default initialisation) or ``"keras"`` (Glorot-uniform
            kernels, orthogonal recurrent kernels, zero biases, LSTM forget-gate bias 1: what
            the authors' Keras model started from). Pretrained encoder weights are kept either way.
        **overrides: any :class:`SliceSequenceClassifier` argument, e.g. ``aggregator="gru"``
            or ``checkpoint_slices=True``.
    """
    init = check_choice("init", init, INITS)
    settings: dict[str, Any] = {
        "encoder": "vgg16",
        "aggregator": "lstm",
        "adapter": "conv",
        "head_hidden": 1024,
        "aggregator_kwargs": {"hidden_size": 256, "readout": "last"},
    }
    settings.update(overrides)
    model = create_model(num_classes=num_classes, encoder_weights=encoder_weights, **settings)
    if init == "keras":
        for part in (model.adapter, model.aggregator, model.head, *(() if encoder_weights else (model.encoder,))):
            keras_init_(part)
    return model
