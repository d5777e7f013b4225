"""Video pretraining data: UCF50 and UCF101 clips as ``(1, T, H, W)`` grayscale.

Videos are decoded with ``pytorchvideo.data``'s ``EncodedVideo`` (PyAV underneath); only
``pytorchvideo.data`` is imported, because ``pytorchvideo.transforms`` is broken with
current torchvision. Grayscale conversion and resizing use ``torchvision.transforms.v2``.

The datasets are map-style (indexable, with a length) rather than pytorchvideo's
iterable ``labeled_video_dataset``: training needs shuffling, ``DistributedSampler``
sharding and stable indices for the frozen-encoder feature cache, and all three need
random access. With ``cache_dir``, each decoded clip is stored once (as the CT cache
stores volumes), so later epochs read small arrays instead of decoding video.

Values are in [0, 1] by default; ``value_range=(0, 255)`` gives the raw 8-bit values the
authors fed their model in pretraining.

Data: UCF50 (crcv.ucf.edu/data/UCF50.php) and UCF101 (crcv.ucf.edu/data/UCF101.php)
must be downloaded by you; put the class folders under one ``root``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._registry import check_choice
from ..errors import DataError, warn_skipped
from .cache import VolumeCache
from .splits import holdout_split, keras_validation_split

UCF50_PAPER_CLASSES = (
    "Mixing", "TennisSwing", "HorseRiding", "JumpRope", "JumpingJack",
    "BaseballPitch", "Rowing", "SkateBoarding", "WalkingWithDog", "Skijet",
)  # fmt: skip
"""The ten UCF50 classes the paper pretrained on (1,366 clips)."""

FRAME_CHOICES = ("first", "uniform")
SHORT_POLICIES = ("drop", "pad")
SPLIT_BY = ("random", "group", "keras")
VIDEO_SPLITS = ("all", "train", "val", "test")
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")
_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


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
    from torchvision.transforms.v2 import functional as TF

    picked = video[:, torch.as_tensor(frames)].float().transpose(0, 1) / 255.0  # (len, 3, H, W)
    gray = TF.rgb_to_grayscale(picked)
    resized = TF.resize(gray, [size, size], antialias=True)
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
        on_error: ``"raise"`` or ``"skip"`` undecodable videos (listed in ``skipped``). With
            ``"skip"`` every clip is decoded up front, so a video broken halfway is found
            before training, not in the middle of an epoch.
        classes: class names, in label order.
        value_range: ``(0, 1)`` or ``(0, 255)`` (the authors' raw frames).
        cache_dir: store decoded clips here (float16), so each video is decoded once.
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
        value_range: tuple[float, float] = (0.0, 1.0),
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.frames = check_choice("frames", frames, FRAME_CHOICES)
        self.short = check_choice("short", short, SHORT_POLICIES)
        self.on_error = check_choice("on_error", on_error, ("raise", "skip"))
        self.value_range = check_choice("value_range", tuple(float(v) for v in value_range), [(0.0, 1.0), (0.0, 255.0)])
        self.num_frames, self.size = num_frames, size
        self.classes = tuple(classes)
        self.cache = VolumeCache(cache_dir) if cache_dir is not None else None
        self.skipped: list[tuple[str, str]] = []
        from tqdm.auto import tqdm

        self.files, labels_kept, self.frame_counts, self.fps = [], [], [], []
        pairs = list(zip(files, labels, strict=True))
        check = "decode videos" if on_error == "skip" else "probe videos"
        for path, label in tqdm(pairs, desc=check, unit="clip", leave=False, disable=len(pairs) < 200):
            reason = self._admit(Path(path), int(label), labels_kept)
            if reason is not None:
                self.skipped.append((str(path), reason))
        self.labels = np.asarray(labels_kept, dtype=np.int64)
        warn_skipped("video(s)", [reason for _, reason in self.skipped])

    def _admit(self, path: Path, label: int, labels_kept: list[int]) -> str | None:
        """Add one video, or return why it is skipped (raising instead under ``on_error="raise"``)."""
        try:
            count, rate = probe_video(path)
            if count == 0:
                raise DataError(f"{path}: video has no frames")
        except DataError as err:
            if self.on_error == "raise":
                raise
            return str(err)
        if count < self.num_frames and self.short == "drop":  # the paper dropped clips shorter than 70 frames
            return f"{path}: {count} frames, fewer than num_frames={self.num_frames}"
        self.files.append(path)
        labels_kept.append(label)
        self.frame_counts.append(count)
        self.fps.append(rate)
        if self.on_error == "skip":
            try:
                self.load_clip(len(self.files) - 1)
            except DataError as err:
                for kept in (self.files, labels_kept, self.frame_counts, self.fps):
                    kept.pop()
                return str(err)
        return None

    def __len__(self) -> int:
        return len(self.files)

    def input_spec(self) -> dict[str, Any]:
        """How this dataset's inputs are made: recorded in the config of a model trained on them."""
        return {"input_size": (self.num_frames, self.size, self.size), "input_range": self.value_range}

    def frame_indices(self, available: int) -> np.ndarray:
        """Which decoded frames make up the clip (indices may repeat when padding)."""
        if self.frames == "uniform":
            return np.linspace(0, available - 1, self.num_frames).round().astype(np.int64)
        return np.minimum(np.arange(self.num_frames), available - 1)

    def load_clip(self, index: int) -> torch.Tensor:
        """Clip ``index`` as ``(1, num_frames, size, size)`` in [0, 1] (from the cache when there is one)."""
        if self.cache is None:
            return self._decode(index)
        params = {"num_frames": self.num_frames, "size": self.size, "frames": self.frames, "kind": "video clip"}
        return torch.from_numpy(self.cache.get(self.files[index], params, lambda: self._decode(index).numpy()))

    def _decode(self, index: int) -> torch.Tensor:
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
        if data is None or data.shape[1] < wanted:
            got = 0 if data is None else data.shape[1]
            raise DataError(f"{path}: decoded {got} of the {wanted} frames needed; the video is broken or truncated")
        return clip_to_tensor(data, self.frame_indices(data.shape[1]), self.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = self.load_clip(index)
        if self.value_range[1] != 1.0:
            clip = clip * self.value_range[1]
        return clip, int(self.labels[index])

    def split(self, indices: Sequence[int]) -> VideoClipDataset:
        """A view of this dataset restricted to ``indices``."""
        subset = object.__new__(type(self))
        subset.__dict__.update(self.__dict__)
        subset.files = [self.files[i] for i in indices]
        subset.labels = self.labels[np.asarray(indices, dtype=np.int64)]
        subset.frame_counts = [self.frame_counts[i] for i in indices]
        subset.fps = [self.fps[i] for i in indices]
        return subset


def split_indices(dataset: VideoClipDataset, split: str, val_fraction: float, seed: int, split_by: str) -> np.ndarray:
    """The clips of ``split`` (``"all"``, ``"train"``, ``"val"``, ``"test"``) under a splitting scheme.

    ``"random"`` and ``"group"`` (whole UCF groups on one side) make train/val splits;
    ``"keras"`` is the authors' three-way split: 80/20 train/test with ``train_test_split``,
    then Keras's ``validation_split``, the *last* ``val_fraction`` of the training part.
    """
    if split == "all":
        return np.arange(len(dataset))
    if split == "test" and split_by != "keras":
        raise ValueError("split='test' exists with split_by='keras' (the authors' train/val/test split) only")
    groups = [video_group(f) for f in dataset.files] if split_by == "group" else None
    train, held_out = holdout_split(len(dataset), val_fraction, seed, groups=groups)
    if split_by == "keras":
        if split == "test":
            return held_out
        train, val = keras_validation_split(train, val_fraction)
        return train if split == "train" else val
    return np.sort(train if split == "train" else held_out)


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
    value_range: tuple[float, float] = (0.0, 1.0),
    cache_dir: str | os.PathLike | None = None,
) -> VideoClipDataset:
    """UCF50 (folder per class) as a clip dataset.

    Args:
        root: folder holding one sub-folder per class.
        classes: class folders to use, in label order; ``None`` for every folder, sorted.
            The paper's subset is :data:`UCF50_PAPER_CLASSES`.
        num_frames: frames per clip (70 in the paper).
        size: output height and width (224 in the paper).
        frames: ``"first"`` or ``"uniform"`` (see :class:`VideoClipDataset`).
        split: ``"all"``, ``"train"``, ``"val"``, or ``"test"`` (with ``split_by="keras"``).
        val_fraction: held-out share (of everything, then of the training part for ``"keras"``).
        seed: seed of the split (0, as the paper).
        split_by: ``"random"`` clips; ``"group"`` so clips of one ``gNN`` group (one scene)
            never sit on both sides; ``"keras"`` for the authors' train/val/test split
            (1,092 / 274, then 873 / 219 on their 1,366 clips).
        short: ``"drop"`` or ``"pad"`` clips shorter than ``num_frames``.
        on_error: ``"raise"`` or ``"skip"`` undecodable videos.
        value_range: ``(0, 1)`` or ``(0, 255)`` (the authors' raw frames).
        cache_dir: store decoded clips here.

    The label comes from the folder, not the file name (UCF50's ``Billiards/`` holds
    ``v_Billards_*`` files).

    Raises:
        DataError: the root or a class folder is missing, or a class folder holds no video.
    """
    split = check_choice("split", split, VIDEO_SPLITS)
    split_by = check_choice("split_by", split_by, SPLIT_BY)
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
        if not clips:
            raise DataError(
                f"{folder}: class folder holds no videos ({', '.join(VIDEO_SUFFIXES)}); remove it or "
                "choose the classes to use"
            )
        files += clips
        labels += [label] * len(clips)
    dataset = VideoClipDataset(
        files,
        labels,
        num_frames=num_frames,
        size=size,
        frames=frames,
        short=short,
        on_error=on_error,
        classes=classes,
        value_range=value_range,
        cache_dir=cache_dir,
    )
    empty = [classes[k] for k in range(len(classes)) if not (dataset.labels == k).any()]
    if empty:
        raise DataError(f"class(es) {empty} kept no usable video in {root}; every one was skipped")
    return dataset.split(split_indices(dataset, split, val_fraction, seed, split_by))


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
    value_range: tuple[float, float] = (0.0, 1.0),
    cache_dir: str | os.PathLike | None = None,
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
    return VideoClipDataset(
        files,
        labels,
        num_frames=num_frames,
        size=size,
        frames=frames,
        short=short,
        on_error=on_error,
        classes=ordered,
        value_range=value_range,
        cache_dir=cache_dir,
    )
