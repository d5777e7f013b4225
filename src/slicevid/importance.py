"""Which slices drove a prediction: the importance of each slice, from attention or from gradients.

Aggregators that weigh slices themselves (``"attention"``, ``"transformer"``) expose
``slice_weights`` and report those. For the others (recurrent, mean) the importance of slice
``d`` is ``|gradient . feature_d|``: how much the explained score moves with that slice's
features, to first order (gradient x input). Either way it is normalised to sum to 1 over
each volume's real slices, and padded slices get 0.

This module works on tensors and callables, not on a model class, so the model can use it
without the two importing each other.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .aggregators import valid_mask


def slice_importance(
    features: Tensor,
    lengths: Tensor | None,
    score: Callable[[Tensor], Tensor],
    slice_weights: Callable[[Tensor, Tensor | None], Tensor] | None = None,
) -> Tensor:
    """``(B, D)`` importance of each slice feature ``(B, D, F)``.

    Args:
        features: slice features, as the aggregator reads them.
        lengths: real depth of each sample of a padded batch, or ``None``.
        score: maps features to one score per sample ``(B,)`` (the predicted class's logit, say).
        slice_weights: the aggregator's own per-slice weights, when it has them.
    """
    if slice_weights is not None:
        with torch.no_grad():
            importance = slice_weights(features, lengths).float()
    else:
        importance = gradient_times_input(features, score)
    importance = importance * valid_mask(lengths, *importance.shape, importance.device)
    return importance / importance.sum(dim=1, keepdim=True).clamp_min(1e-12)


def gradient_times_input(features: Tensor, score: Callable[[Tensor], Tensor]) -> Tensor:
    """``|sum_f grad_f * feature_f|`` per slice, for the summed ``score`` of the batch."""
    features = features.detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(score(features).sum(), features)
    return (gradient * features).sum(dim=-1).abs().detach().float()
