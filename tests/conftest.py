"""Shared fixtures: tiny models with random weights, deterministic seeds, offline weights."""

from __future__ import annotations

import pytest
import torch

from slicevid import create_model

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
