"""Which slices drove a prediction: the importance of each slice, from attention or from gradients.

Aggregators that weigh slices themselves (``"attention"``, ``"transformer"``) expose
``slice_weights`` and report those. For the others (recurrent, mean) the importance of slice
``d`` is ``|gradient . feature_d|``: how much the predicted class's logit moves with that
slice's features, to first order (gradient x input). Either way it is normalised to sum to 1
over each volume's real slices, and padded slices get 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .aggregators import valid_mask

if TYPE_CHECKING:
    from .model import SliceSequenceClassifier


def slice_importance(model: SliceSequenceClassifier, features: Tensor, lengths: Tensor | None = None) -> Tensor:
    """``(B, D)`` importance of each slice feature ``(B, D, F)`` for ``model``'s predicted class."""
    if hasattr(model.aggregator, "slice_weights"):
        with torch.no_grad():
            importance = model.aggregator.slice_weights(model.feature_norm(features), lengths).float()
    else:
        importance = gradient_times_input(model, features, lengths)
    importance = importance * valid_mask(lengths, *importance.shape, importance.device)
    return importance / importance.sum(dim=1, keepdim=True).clamp_min(1e-12)


def gradient_times_input(model: SliceSequenceClassifier, features: Tensor, lengths: Tensor | None = None) -> Tensor:
    """``|sum_f grad_f * feature_f|`` per slice, for the logit of the predicted class."""
    features = features.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model.forward_head(features, lengths)
        score = logits.gather(1, logits.argmax(dim=1, keepdim=True)).sum()
        (gradient,) = torch.autograd.grad(score, features)
    return (gradient * features).sum(dim=-1).abs().detach().float()
