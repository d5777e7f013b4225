"""slicevid: treat 3D scans as videos.

A 2D encoder reads every slice, a recurrent network reads the slice features in order,
and a small head classifies. [`viptt_net()`][slicevid.presets.viptt_net] builds the paper's model;
`list_encoders()` and `list_aggregators()` name the parts to swap in, and `register_encoder()` /
`register_aggregator()` add your own.
"""

from .aggregators import list_aggregators, register_aggregator
from .encoders import list_encoders, register_encoder
from .errors import DataError, TrainingDivergedError, WeightsNotFoundError
from .model import SliceSequenceClassifier, create_model
from .model_config import ModelConfig
from .presets import viptt_net
from .pretrained import load_weights

__version__ = "0.2.0"
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
