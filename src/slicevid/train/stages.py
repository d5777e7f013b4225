"""The paper's two stages: pretrain on video with the encoder frozen, then fine-tune on CT.

* ``pretrain``: VGG-16 (the encoder) is frozen, the adapter, LSTM and head train on action
  clips (10 classes for the paper's UCF50 subset). With ``config.feature_cache`` the adapter
  is frozen too and slice features are computed once (see :mod:`slicevid.train.features`).
* ``finetune``: start from a pretrained model (or from scratch: the paper's "No PT"),
  replace the output layer with a ``num_classes``-way one, unfreeze every layer, train.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from ..model import SliceSequenceClassifier
from .config import TrainConfig
from .datasets import class_names_for
from .engine import fit
from .state import FitResult


def pretrain(
    model: SliceSequenceClassifier,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    freeze_encoder: bool = True,
    class_names: Sequence[str] | None = None,
) -> FitResult:
    """Video pretraining: freeze the encoder (and the adapter when caching features), train the rest.

    ``freeze_encoder=False`` trains the encoder too, for encoders without pretrained
    weights (the feature cache then cannot be used).
    """
    config = config or TrainConfig()
    if freeze_encoder:
        model.freeze_encoder(include_adapter=config.feature_cache)
    else:
        model.unfreeze_encoder()
    return fit(model, train_data, val_data, config, class_names=class_names)


def finetune(
    model: SliceSequenceClassifier | str | os.PathLike,
    train_data: Dataset,
    val_data: Dataset | None = None,
    config: TrainConfig | None = None,
    *,
    num_classes: int = 5,
    class_names: Sequence[str] | None = None,
    freeze_encoder: bool = False,
) -> tuple[SliceSequenceClassifier, FitResult]:
    """Fine-tune every layer for ``num_classes`` classes.

    Args:
        model: a model, or a folder written by ``save_pretrained`` (e.g. a pretraining run's ``best/``).
        num_classes: output classes of the new head (5 TB types).
        class_names: their names (default: the training data's ``classes``).
        freeze_encoder: keep the encoder frozen (the authors' "No PT" froze ImageNet VGG-16);
            by default every layer trains, as the paper's fine-tuning.

    Returns:
        The fine-tuned model (with its best weights) and the fit result.
    """
    config = config or TrainConfig()
    if not isinstance(model, SliceSequenceClassifier):
        model = SliceSequenceClassifier.from_pretrained(model)
    if model.num_classes != num_classes:
        torch.manual_seed(config.seed)  # the new head's initialisation follows the seed too
        model.reset_head(num_classes, class_names_for(num_classes, train_data, class_names))
    model.unfreeze_encoder()
    if freeze_encoder:
        model.freeze_encoder()
    return model, fit(model, train_data, val_data, config, class_names=class_names)
