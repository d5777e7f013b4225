"""Training: ``fit`` / ``evaluate``, the two ViPTT-Net stages, the config, the feature cache."""

from .config import TrainConfig
from .engine import FitResult, fit
from .evaluation import Evaluation, evaluate
from .features import FeatureDataset, extract_features
from .stages import finetune, pretrain

__all__ = [
    "Evaluation",
    "FeatureDataset",
    "FitResult",
    "TrainConfig",
    "evaluate",
    "extract_features",
    "finetune",
    "fit",
    "pretrain",
]
