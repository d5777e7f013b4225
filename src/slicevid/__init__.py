"""slicevid: treat 3D scans as videos.

A 2D encoder reads every slice, a recurrent network reads the slice features in order,
and a small head classifies. See :func:`slicevid.presets.viptt_net` for the paper's model.
"""

from .errors import DataError, TrainingDivergedError, WeightsNotFoundError
from .model import SliceSequenceClassifier, create_model
from .model_config import ModelConfig
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
    "load_weights",
]
