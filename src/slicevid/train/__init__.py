"""Training: ``fit`` and ``evaluate`` for any model, the two ViPTT-Net stages, the settings, the feature cache."""

from .config import TrainConfig
from .engine import fit
from .evaluation import Evaluation, evaluate
from .features import extract_features
from .ssl import pretrain_ssl
from .stages import finetune, pretrain
from .state import FitResult

__all__ = [
    "Evaluation",
    "FitResult",
    "TrainConfig",
    "evaluate",
    "extract_features",
    "finetune",
    "fit",
    "pretrain",
    "pretrain_ssl",
]
