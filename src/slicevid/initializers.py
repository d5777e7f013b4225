"""Weight initialisation schemes; ``keras_init_`` reproduces what the authors' Keras model started from.

Keras 2 / TF 2.4 defaults, which the ViPTT-Net notebooks used: Glorot-uniform kernels
(convolutions, dense layers, the LSTM's input kernel), orthogonal recurrent kernels, zero
biases, and ``unit_forget_bias``: the LSTM's forget-gate bias starts at 1. PyTorch's own
defaults (uniform in ``1/sqrt(fan_in)``, random biases) differ in every one of these.
"""

from __future__ import annotations

import torch
from torch import nn


def keras_init_(module: nn.Module) -> nn.Module:
    """Re-initialise ``module``'s convolutions, linear layers and LSTM/GRU layers as Keras does, in place."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)  # Keras's glorot_uniform: same fans for (out, in, ...) kernels
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.LSTM, nn.GRU)):
            _keras_rnn_init_(layer)
    return module


@torch.no_grad()
def _keras_rnn_init_(rnn: nn.LSTM | nn.GRU) -> None:
    gates = 4 if isinstance(rnn, nn.LSTM) else 3
    hidden = rnn.hidden_size
    for name, parameter in rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(parameter)  # Keras kernel (in, gates*H) transposed: same fans
        elif name.startswith("weight_hh"):
            # Keras draws the recurrent kernel (H, gates*H) orthogonal; PyTorch stores its transpose.
            kernel = torch.empty(hidden, gates * hidden)
            nn.init.orthogonal_(kernel)
            parameter.copy_(kernel.T)
        elif name.startswith("bias"):
            nn.init.zeros_(parameter)
            if gates == 4 and name.startswith("bias_ih"):
                parameter[hidden : 2 * hidden] = 1.0  # unit_forget_bias (PyTorch gate order: i, f, g, o)
