"""Temperature scaling: one scalar that divides a classifier's logits, fitted on validation scans.

Networks trained with cross-entropy are often over-confident: their top probability exceeds
their accuracy. Dividing the logits by a temperature ``T > 1`` softens every softmax without
changing its order, so accuracy and AUC stay as they were while the probabilities become
honest (Guo et al., "On calibration of modern neural networks", 2017). ``T`` minimises the
negative log-likelihood of the validation targets, found by L-BFGS on ``log T``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The temperature that minimises the cross-entropy of ``logits / T`` on ``targets``.

    Args:
        logits: ``(N, classes)`` validation logits.
        targets: ``(N,)`` class indices (``-1``: missing, left out).

    Raises:
        DataError: no sample has a target.
    """
    known = targets >= 0
    if not bool(known.any()):
        raise DataError("temperature scaling needs validation scans with targets; none has one")
    logits, targets = logits[known].double(), targets[known].long()
    log_temperature = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_temperature], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_temperature.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_temperature.detach().exp().clamp(1e-2, 1e2))
