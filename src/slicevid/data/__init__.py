"""Data: CT loading and windowing, ImageCLEF TBT, MedMNIST 3D, UCF videos, batching, caching, synthetic data."""

from .batching import LengthBucketSampler, pad_collate
from .cache import VolumeCache
from .clips import ClipSettings
from .ct import hu_window, load_ct
from .imageclef import TB_CLASSES, ImageCLEFTBT, read_label_csv
from .labelled import LabelledScans, find_scans
from .labels import HeadColumns, read_label_table, scan_id
from .medmnist import MEDMNIST_3D, MedMNIST3D
from .preprocess import CTPreprocessing
from .pytorchvideo_sources import PyTorchVideoClips, from_pytorchvideo, hmdb51, kinetics
from .slices import SliceTargets, read_slice_indices
from .ucf import UCF50_PAPER_CLASSES, ucf50, ucf101
from .video import VideoClipDataset
from .volumes import CTVolumeDataset

__all__ = [
    "MEDMNIST_3D",
    "TB_CLASSES",
    "UCF50_PAPER_CLASSES",
    "CTPreprocessing",
    "CTVolumeDataset",
    "ClipSettings",
    "HeadColumns",
    "ImageCLEFTBT",
    "LabelledScans",
    "LengthBucketSampler",
    "MedMNIST3D",
    "PyTorchVideoClips",
    "SliceTargets",
    "VideoClipDataset",
    "VolumeCache",
    "find_scans",
    "from_pytorchvideo",
    "hmdb51",
    "hu_window",
    "kinetics",
    "load_ct",
    "pad_collate",
    "read_label_csv",
    "read_label_table",
    "read_slice_indices",
    "scan_id",
    "ucf50",
    "ucf101",
]
