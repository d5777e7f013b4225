"""Video pretraining data: UCF50 and UCF101 clips as ``(1, T, H, W)`` grayscale in [0, 1].

Videos are decoded with ``pytorchvideo.data``'s ``EncodedVideo`` (PyAV underneath); only
``pytorchvideo.data`` is imported, because ``pytorchvideo.transforms`` is broken with
current torchvision. The clip transform (frame choice, grayscale, resize) is our own.

The datasets are map-style (indexable, with a length) rather than pytorchvideo's
iterable ``labeled_video_dataset``: training needs shuffling, ``DistributedSampler``
sharding and stable indices for the frozen-encoder feature cache, and all three need
random access.

Data: UCF50 (crcv.ucf.edu/data/UCF50.php) and UCF101 (crcv.ucf.edu/data/UCF101.php)
must be downloaded by you; put the class folders under one ``root``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import DataError

UCF50_PAPER_CLASSES = (
    "Mixing", "TennisSwing", "HorseRiding", "JumpRope", "JumpingJack",
    "BaseballPitch", "Rowing", "SkateBoarding", "WalkingWithDog", "Skijet",
)  # fmt: skip
"""The ten UCF50 classes the paper pretrained on (1,366 clips)."""

FRAME_CHOICES = ("first", "uniform")
SHORT_POLICIES = ("drop", "pad")
SPLIT_BY = ("random", "group")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")
_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)
_GRAY = torch.tensor([0.299, 0.587, 0.114])


def video_group(path: str | os.PathLike) -> int:
    """The UCF group number ``NN`` of ``v_<Class>_gNN_cNN.avi`` (clips of one group share a scene)."""
    match = _GROUP.search(Path(path).name)
    if match is None:
        raise DataError(f"{path}: file name has no UCF group '_gNN_cNN'")
    return int(match.group(1))


def probe_video(path: str | os.PathLike) -> tuple[int, float]:
    """``(frames, frames per second)`` from the container header (decoding only if the count is absent)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 25)
            return stream.frames or sum(1 for _ in container.decode(stream)), rate
    except (av.error.FFmpegError, IndexError, OSError) as err:
        raise DataError(f"{path}: undecodable video ({err})") from err


def clip_to_tensor(video: torch.Tensor, frames: np.ndarray, size: int) -> torch.Tensor:
    """``(3, T, H, W)`` in [0, 255] -> frames picked by index, grayscale, ``(1, len, size, size)`` in [0, 1]."""
    picked = video[:, torch.as_tensor(frames)].float() / 255.0
    gray = torch.einsum("c,cthw->thw", _GRAY, picked)[:, None]
    resized = F.interpolate(gray, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp_(0.0, 1.0).transpose(0, 1).contiguous()


class VideoClipDataset(Dataset):
    """Labelled video files -> ``(clip (1, num_frames, size, size), label)``.

    Args:
        files: video paths.
        labels: class index per file.
        num_frames: frames per clip (70 in the paper).
        size: output height and width (224 in the paper).
        frames: ``"first"`` (the first ``num_frames``, as the paper) or ``"uniform"``
            (spread evenly over the whole video).
        short: for videos with fewer frames, ``"drop"`` them (the paper) or ``"pad"`` by
            repeating the last frame.
        on_error: ``"raise"`` or ``"skip"`` undecodable videos (listed in ``skipped``).
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        labels: Sequence[int],
        *,
        num_frames: int = 70,
        size: int = 224,
        frames: str = "first",
        short: str = "drop",
        on_error: str = "raise",
        classes: Sequence[str] = (),
    ) -> None:
        for name, value, options in (("frames", frames, FRAME_CHOICES), ("short", short, SHORT_POLICIES),
                                     ("on_error", on_error, ("raise", "skip"))):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        self.num_frames, self.size, self.frames, self.short = num_frames, size, frames, short
        self.classes = tuple(classes)
        self.skipped: list[tuple[str, str]] = []
        from tqdm.auto import tqdm

        kept_files, kept_labels, self.frame_counts, self.fps = [], [], [], []
        pairs = list(zip(files, labels, strict=True))
        for path, label in tqdm(pairs, desc="probe videos", unit="clip", leave=False, disable=len(pairs) < 200):
            try:
                count, rate = probe_video(path)
                if count == 0:
                    raise DataError(f"{path}: video has no frames")
            except DataError as err:
                if on_error == "raise":
                    raise
                self.skipped.append((str(path), str(err)))
                continue
            if count < num_frames and short == "drop":  # the paper dropped clips shorter than 70 frames
                self.skipped.append((str(path), f"{path}: {count} frames, fewer than num_frames={num_frames}"))
                continue
            kept_files.append(Path(path))
            kept_labels.append(int(label))
            self.frame_counts.append(count)
            self.fps.append(rate)
        self.files, self.labels = kept_files, np.asarray(kept_labels, dtype=np.int64)
        if self.skipped:
            warnings.warn(f"Skipped {len(self.skipped)} video(s), e.g. {self.skipped[0][1]}", stacklevel=2)

    def __len__(self) -> int:
        return len(self.files)

    def frame_indices(self, available: int) -> np.ndarray:
        """Which decoded frames make up the clip (indices may repeat when padding)."""
        if self.frames == "uniform":
            return np.linspace(0, available - 1, self.num_frames).round().astype(np.int64)
        return np.minimum(np.arange(self.num_frames), available - 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from pytorchvideo.data.encoded_video import EncodedVideo

        path = self.files[index]
        wanted = min(self.num_frames, self.frame_counts[index])
        try:
            video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
            try:
                duration = float(video.duration)
                # "first" needs only the opening frames: decode up to them, not the whole clip.
                end = min(duration, (self.num_frames + 1) / self.fps[index]) if self.frames == "first" else duration
                data = video.get_clip(0, end)["video"]  # (3, T, H, W) in [0, 255]
                if data is not None and data.shape[1] < wanted and end < duration:
                    data = video.get_clip(0, duration)["video"]  # timestamps were off: decode it all
            finally:
                video.close()
        except Exception as err:  # PyAV and pytorchvideo raise many types for broken files
            raise DataError(f"{path}: could not decode video ({err})") from err
        if data is None or data.shape[1] == 0:
            raise DataError(f"{path}: no frames decoded")
        return clip_to_tensor(data, self.frame_indices(data.shape[1]), self.size), int(self.labels[index])

    def split(self, indices: Sequence[int]) -> VideoClipDataset:
        """A view of this dataset restricted to ``indices``."""
        subset = object.__new__(type(self))
        subset.__dict__.update(self.__dict__)
        subset.files = [self.files[i] for i in indices]
        subset.labels = self.labels[np.asarray(indices, dtype=np.int64)]
        subset.frame_counts = [self.frame_counts[i] for i in indices]
        subset.fps = [self.fps[i] for i in indices]
        return subset


def _split_indices(ds: VideoClipDataset, split: str, val_fraction: float, seed: int, split_by: str):
    if split == "all":
        return np.arange(len(ds))
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    indices = np.arange(len(ds))
    if split_by == "group":
        groups = [video_group(f) for f in ds.files]
        train, val = next(GroupShuffleSplit(1, test_size=val_fraction, random_state=seed).split(indices, groups=groups))
    else:
        train, val = train_test_split(indices, test_size=val_fraction, random_state=seed)
    return np.sort(train if split == "train" else val)


def ucf50(
    root: str | os.PathLike,
    classes: Sequence[str] | None = None,
    num_frames: int = 70,
    size: int = 224,
    frames: str = "first",
    *,
    split: str = "all",
    val_fraction: float = 0.2,
    seed: int = 0,
    split_by: str = "random",
    short: str = "drop",
    on_error: str = "raise",
) -> VideoClipDataset:
    """UCF50 (folder per class) as a clip dataset.

    Args:
        root: folder holding one sub-folder per class.
        classes: class folders to use, in label order; ``None`` for every folder, sorted.
            The paper's subset is :data:`UCF50_PAPER_CLASSES`.
        num_frames: frames per clip (70 in the paper).
        size: output height and width (224 in the paper).
        frames: ``"first"`` or ``"uniform"`` (see :class:`VideoClipDataset`).
        split: ``"all"``, ``"train"`` or ``"val"``.
        val_fraction: validation share of the 80/20 split.
        seed: seed of the split (0, as the paper).
        split_by: ``"random"`` clips, or ``"group"`` so clips of one ``gNN`` group (one
            scene) never sit on both sides.
        short: ``"drop"`` or ``"pad"`` clips shorter than ``num_frames``.
        on_error: ``"raise"`` or ``"skip"`` undecodable videos.

    The label comes from the folder, not the file name (UCF50's ``Billiards/`` holds
    ``v_Billards_*`` files).
    """
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: UCF50 folder not found (download UCF50 and unpack it there)")
    classes = list(classes) if classes is not None else sorted(p.name for p in root.iterdir() if p.is_dir())
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise DataError(f"{folder}: class folder not found in {root}")
        clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        files += clips
        labels += [label] * len(clips)
    dataset = VideoClipDataset(files, labels, num_frames=num_frames, size=size, frames=frames, short=short,
                               on_error=on_error, classes=classes)
    return dataset.split(_split_indices(dataset, split, val_fraction, seed, split_by))


def ucf101(
    root: str | os.PathLike,
    split_file: str | os.PathLike,
    num_frames: int = 70,
    size: int = 224,
    frames: str = "first",
    *,
    class_index: str | os.PathLike | None = None,
    short: str = "drop",
    on_error: str = "raise",
) -> VideoClipDataset:
    """UCF101 clips listed in an official split file (``trainlist01.txt`` / ``testlist01.txt``).

    Split-file labels are 1-indexed and only present in train lists, so the label is taken
    from the class folder through ``classInd.txt`` (looked up beside the split file unless
    given), giving 0-indexed labels in ``classInd`` order.
    """
    split_file = Path(split_file)
    class_index = Path(class_index) if class_index else split_file.with_name("classInd.txt")
    for path in (split_file, class_index):
        if not path.is_file():
            raise DataError(f"{path}: UCF101 split file not found")
    classes = {}
    for line in class_index.read_text().split("\n"):
        if line.strip():
            number, name = line.split()
            classes[name] = int(number) - 1
    files, labels = [], []
    for line in split_file.read_text().split("\n"):
        if not line.strip():
            continue
        relative = line.split()[0]
        folder = relative.split("/")[0]
        if folder not in classes:
            raise DataError(f"{split_file}: class {folder!r} of {relative} is not in {class_index.name}")
        files.append(Path(root) / relative)
        labels.append(classes[folder])
    ordered = sorted(classes, key=classes.get)
    return VideoClipDataset(files, labels, num_frames=num_frames, size=size, frames=frames, short=short,
                            on_error=on_error, classes=ordered)
