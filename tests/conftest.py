"""Shared fixtures: deterministic seeds, and the plain CNN encoder registered for one test at a time."""

from __future__ import annotations

import pytest
import torch

from .helpers import PLAIN_CNN, plain_cnn, registered


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def plain_cnn_encoder():
    """Registers ``"test_plain_cnn"`` (a BatchNorm-free encoder) for the test, and removes it after."""
    with registered("encoder", PLAIN_CNN, plain_cnn):
        yield PLAIN_CNN


@pytest.fixture
def model():
    from .helpers import tiny_model

    return tiny_model()
