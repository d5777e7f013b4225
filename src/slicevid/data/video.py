"""Video clips as ``(1, T, H, W)`` grayscale: the dataset behind UCF50 and UCF101 (see ``ucf``).

Videos are decoded with ``pytorchvideo.data``'s ``EncodedVideo`` (PyAV underneath); only
``pytorchvideo.data`` is imported, because ``pytorchvideo.transforms`` is broken with
current torchvision. Grayscale conversion and resizing use ``torchvision.transforms.v2``.

The datasets are map-style (indexable, with a length) rather than pytorchvideo's
iterable ``labeled_video_dataset``: training needs shuffling, ``DistributedSampler``
sharding and stable indices for the frozen-encoder feature cache, and all three need
random access. With ``cache_dir``, each decoded clip is stored once (as the CT cache
stores volumes), so later epochs read small arrays instead of decoding video.

How a video becomes a clip is one [`ClipSettings`][slicevid.data.ClipSettings]. Values are in [0, 1]
by default; ``value_range=(0, 255)`` gives the raw 8-bit values the authors fed their model in
pretraining.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._progress import progress_bar
from .._registry import check_choice
from ..errors import DataError, warn_skipped
from .cache import VolumeCache
from .clips import ClipSettings
from .labels import scan_id
from .provenance import TrainingData

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm")


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
        clip: how a video becomes a clip ([`ClipSettings`][slicevid.data.ClipSettings]: frames, size, range ...).
        on_error: ``"raise"`` or ``"skip"`` undecodable videos (listed in ``skipped``). With
            ``"skip"`` every clip is decoded up front, so a video broken halfway is found
            before training, not in the middle of an epoch.
        classes: class names, in label order.
        cache_dir: store decoded clips here (float16), so each video is decoded once.
        root: the folder the files sit in; ids are paths relative to it.
        **clip_fields: single `ClipSettings` fields (``num_frames=16``), applied to ``clip``.
    """

    def __init__(
        self,
        files: Sequence[str | os.PathLike],
        labels: Sequence[int],
        *,
        clip: ClipSettings | None = None,
        on_error: str = "raise",
        classes: Sequence[str] = (),
        cache_dir: str | os.PathLike | None = None,
        root: str | os.PathLike | None = None,
        **clip_fields: Any,
    ) -> None:
        self.clip = (clip or ClipSettings()).merged(**clip_fields)
        self.on_error = check_choice("on_error", on_error, ("raise", "skip"))
        self.root = Path(root) if root is not None else None
        self.spec = TrainingData(kind="video", root=str(root) if root is not None else None)
        self.classes = tuple(classes)
        self.cache = VolumeCache(cache_dir) if cache_dir is not None else None
        self.skipped: list[tuple[str, str]] = []
        self.files, labels_kept, self.frame_counts, self.fps = [], [], [], []
        pairs = list(zip(files, labels, strict=True))
        check = "decode videos" if on_error == "skip" else "probe videos"
        for path, label in progress_bar(pairs, enabled=len(pairs) >= 200, desc=check, unit="clip", leave=False):
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
        if count < self.clip.num_frames and self.clip.short == "drop":  # the paper dropped clips under 70 frames
            return f"{path}: {count} frames, fewer than num_frames={self.clip.num_frames}"
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

    @property
    def file_ids(self) -> list[str]:
        """Each clip's path relative to ``root`` (its file name without one)."""
        return [scan_id(path, self.root) for path in self.files]

    def input_spec(self) -> dict[str, Any]:
        """How this dataset's inputs are made: recorded in the config of a model trained on them."""
        clip = self.clip
        return {"input_size": (clip.num_frames, clip.size, clip.size), "input_range": clip.value_range}

    def data_spec(self) -> TrainingData:
        """Where the clips come from and how they were split (a video model is not a CT model)."""
        return self.spec

    def frame_indices(self, available: int) -> np.ndarray:
        """Which decoded frames make up the clip (indices may repeat when padding)."""
        if self.clip.frames == "uniform":
            return np.linspace(0, available - 1, self.clip.num_frames).round().astype(np.int64)
        return np.minimum(np.arange(self.clip.num_frames), available - 1)

    def load_clip(self, index: int) -> torch.Tensor:
        """Clip ``index`` as ``(1, num_frames, size, size)`` in [0, 1] (from the cache when there is one)."""
        if self.cache is None:
            return self._decode(index)
        return torch.from_numpy(
            self.cache.get(self.files[index], self.clip.params(), lambda: self._decode(index).numpy())
        )

    def _decode(self, index: int) -> torch.Tensor:
        from pytorchvideo.data.encoded_video import EncodedVideo

        path = self.files[index]
        wanted = min(self.clip.num_frames, self.frame_counts[index])
        try:
            video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
            try:
                duration = float(video.duration)
                # "first" needs only the opening frames: decode up to them, not the whole clip.
                first = self.clip.frames == "first"
                end = min(duration, (self.clip.num_frames + 1) / self.fps[index]) if first else duration
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
        return clip_to_tensor(data, self.frame_indices(data.shape[1]), self.clip.size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        clip = self.load_clip(index)
        high = self.clip.value_range[1]
        return (clip * high if high != 1.0 else clip), int(self.labels[index])

    def split(self, indices: Sequence[int]) -> VideoClipDataset:
        """A view of this dataset restricted to ``indices``."""
        subset = object.__new__(type(self))
        subset.__dict__.update(self.__dict__)
        subset.files = [self.files[i] for i in indices]
        subset.labels = self.labels[np.asarray(indices, dtype=np.int64)]
        subset.frame_counts = [self.frame_counts[i] for i in indices]
        subset.fps = [self.fps[i] for i in indices]
        return subset
