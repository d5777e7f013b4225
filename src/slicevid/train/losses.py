"""Class weights and the class-weighted cross-entropy, in Keras's and in PyTorch's sense.

The two frameworks weight differently. Keras's ``fit(class_weight=w)`` turns the weights
into per-sample weights and averages over the batch: ``mean(w[y] * ce)``. PyTorch's
``CrossEntropyLoss(weight=w)`` divides by ``sum(w[y])`` instead, so the weights only shift
the balance *within* a batch; at the paper's batch size of 2 the weighting vanishes whenever
both scans share a class. The ViPTT-Net numbers came from Keras, so ``"keras"`` is the default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError

CLASS_WEIGHT_MODES = ("keras", "normalized")


def class_weighted_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None, mode: str = "keras"
) -> torch.Tensor:
    """Cross-entropy with per-class weights.

    Args:
        logits: ``(B, K)``.
        targets: ``(B,)`` class indices.
        weights: ``(K,)`` per-class weights, or ``None`` for the plain mean cross-entropy.
        mode: ``"keras"``: ``mean(w[y] * ce)``; ``"normalized"``: ``sum(w[y] * ce) / sum(w[y])``.
    """
    if mode not in CLASS_WEIGHT_MODES:
        raise ConfigError("mode", f"must be one of {CLASS_WEIGHT_MODES}, got {mode!r}")
    if weights is None:
        return F.cross_entropy(logits, targets)
    if mode == "normalized":
        return F.cross_entropy(logits, targets, weight=weights)
    return (F.cross_entropy(logits, targets, reduction="none") * weights[targets]).mean()
