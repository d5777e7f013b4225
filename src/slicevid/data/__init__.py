"""Data: CT loading and windowing, ImageCLEF TBT, UCF videos, caching, synthetic data."""

from .cache import VolumeCache
from .ct import hu_window, load_ct
from .imageclef import TB_CLASSES, ImageCLEFTBT, balanced_class_weights, read_label_csv
from .preprocess import CTPreprocessing
from .video import UCF50_PAPER_CLASSES, VideoClipDataset, ucf50, ucf101
from .volumes import CTVolumeDataset

__all__ = [
    "TB_CLASSES",
    "UCF50_PAPER_CLASSES",
    "CTPreprocessing",
    "CTVolumeDataset",
    "ImageCLEFTBT",
    "VideoClipDataset",
    "VolumeCache",
    "balanced_class_weights",
    "hu_window",
    "load_ct",
    "read_label_csv",
    "ucf50",
    "ucf101",
]
