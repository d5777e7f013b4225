"""slicevid: treat 3D scans as videos.

A 2D encoder reads every slice, a recurrent network reads the slice features in order,
and a small head classifies. [`viptt_net()`][slicevid.presets.viptt_net] builds the paper's model;
`list_encoders()` and `list_aggregators()` name the parts to swap in, and `register_encoder()` /
`register_aggregator()` add your own.

The names below are imported when first used, so ``import slicevid`` (and ``slicevid --help``)
costs nothing until a model, a dataset or training is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.3.0"

_EXPORTS = {
    "DataError": "errors",
    "TrainingDivergedError": "errors",
    "WeightsNotFoundError": "errors",
    "SliceSequenceClassifier": "model",
    "create_model": "model",
    "ModelConfig": "model_config",
    "viptt_net": "presets",
    "load_weights": "pretrained",
    "list_aggregators": "aggregators",
    "register_aggregator": "aggregators",
    "list_encoders": "encoders",
    "register_encoder": "encoders",
}
"""Each public name and the module of slicevid that defines it."""
__all__ = [
    "DataError",
    "ModelConfig",
    "SliceSequenceClassifier",
    "TrainingDivergedError",
    "WeightsNotFoundError",
    "__version__",
    "create_model",
    "list_aggregators",
    "list_encoders",
    "load_weights",
    "register_aggregator",
    "register_encoder",
    "viptt_net",
]

if TYPE_CHECKING:
    from .aggregators import list_aggregators, register_aggregator
    from .encoders import list_encoders, register_encoder
    from .errors import DataError, TrainingDivergedError, WeightsNotFoundError
    from .model import SliceSequenceClassifier, create_model
    from .model_config import ModelConfig
    from .presets import viptt_net
    from .pretrained import load_weights


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'slicevid' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
