"""Data: CT loading and windowing, ImageCLEF TBT, UCF videos, batching, caching, synthetic data."""

from .batching import LengthBucketSampler, pad_collate
from .cache import VolumeCache
from .ct import hu_window, load_ct
from .imageclef import TB_CLASSES, ImageCLEFTBT, read_label_csv
from .preprocess import CTPreprocessing
from .ucf import UCF50_PAPER_CLASSES, ucf50, ucf101
from .video import VideoClipDataset
from .volumes import CTVolumeDataset

__all__ = [
    "TB_CLASSES",
    "UCF50_PAPER_CLASSES",
    "CTPreprocessing",
    "CTVolumeDataset",
    "ImageCLEFTBT",
    "LengthBucketSampler",
    "VideoClipDataset",
    "VolumeCache",
    "hu_window",
    "load_ct",
    "pad_collate",
    "read_label_csv",
    "ucf50",
    "ucf101",
]
