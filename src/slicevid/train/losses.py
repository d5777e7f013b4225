"""The class-weighted cross-entropy of the ViPTT-Net recipe, in Keras's and in PyTorch's sense.

Every task's loss lives with the task (`slicevid.tasks`); this module keeps the name the
training side has always offered for the single-label one.
"""

from ..tasks import CLASS_WEIGHT_MODES, class_weighted_cross_entropy

__all__ = ["CLASS_WEIGHT_MODES", "class_weighted_cross_entropy"]
