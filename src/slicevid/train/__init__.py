"""Training: ``fit`` / ``evaluate``, the two ViPTT-Net stages, the config, the feature cache."""

from .config import TrainConfig
from .engine import fit
from .evaluation import Evaluation, evaluate
from .features import FeatureDataset, extract_features
from .stages import finetune, pretrain
from .state import FitResult, TrainState

__all__ = [
    "Evaluation",
    "FeatureDataset",
    "FitResult",
    "TrainConfig",
    "TrainState",
    "evaluate",
    "extract_features",
    "finetune",
    "fit",
    "pretrain",
]
