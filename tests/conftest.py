"""Shared fixtures: tiny models with random weights, deterministic seeds, offline weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from slicevid import create_model
from slicevid.encoders import register_encoder

TINY_ENCODER = "timm:test_resnet"


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setenv("SLICEVID_OFFLINE", "1")


def tiny_model(num_classes: int = 5, **kwargs):
    """A real but small slice-sequence model (timm's test_resnet + a small LSTM)."""
    kwargs.setdefault("aggregator_kwargs", {"hidden_size": 16})
    kwargs.setdefault("head_hidden", 32)
    return create_model(kwargs.pop("encoder", TINY_ENCODER), kwargs.pop("aggregator", "lstm"), num_classes, **kwargs)


@pytest.fixture
def model():
    return tiny_model()


@register_encoder("test_plain_cnn")
def plain_cnn(**kwargs):
    """A BatchNorm-free encoder, so batch composition cannot change results."""
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 12, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    net.num_features = 12
    return net
