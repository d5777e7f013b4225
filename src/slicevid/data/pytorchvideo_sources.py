"""Any ``pytorchvideo.data`` labeled video dataset as a pretraining source (Kinetics, UCF101, HMDB51 ...).

pytorchvideo's readers (``Kinetics``, ``Ucf101``, ``Hmdb51``, ``Charades``, ``SSv2``,
``labeled_video_dataset``) are iterable: they walk their videos in a sampler's order and cut
clips with a clip sampler. Training here needs random access (shuffling, sharding, stable
indices for the feature cache) and a fixed epoch length, so
[`from_pytorchvideo()`][slicevid.data.from_pytorchvideo] draws the clips once, turns each into
the clip slicevid expects ([`ClipSettings`][slicevid.data.ClipSettings]: grayscale,
``num_frames`` frames, ``size`` x ``size``, its value range) and keeps them, as 8-bit frames,
in a map-style `PyTorchVideoClips`. Every epoch then sees the same clips, in a
new order: runs are reproducible, and a validation set drawn apart stays apart.

The map-style ``ucf50`` / ``ucf101`` readers remain the default for UCF folders: they decode a
video only when first needed (or from the cache), split by group, and record their folder.

The helpers `kinetics()`, `ucf101()` (this module's, not ``slicevid.data.ucf101``) and
`hmdb51()` build pytorchvideo's reader for each dataset's published layout and adapt it.
Only ``pytorchvideo.data`` is imported (``pytorchvideo.transforms`` is broken with current
torchvision); videos decode with PyAV.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._progress import progress_bar
from ..errors import DataError
from .clips import ClipSettings
from .provenance import TrainingData
from .video import VIDEO_SUFFIXES, clip_to_tensor

WHOLE_VIDEO = Fraction(10**6)
"""Clip length (seconds) that makes a uniform clip sampler return each video whole, once."""


class PyTorchVideoClips(Dataset):
    """Clips drawn from a pytorchvideo dataset -> ``(clip (1, num_frames, size, size), label)``.

    Build it with [`from_pytorchvideo()`][slicevid.data.from_pytorchvideo].

    Attributes:
        clip: how each video became a clip.
        classes: class names, in label order.
        names: each clip's video name.
    """

    def __init__(self, frames: torch.Tensor, labels: np.ndarray, names: list[str], clip: ClipSettings, classes):
        self.frames, self.labels, self.names = frames, labels, names  # frames: (N, 1, T, H, W) uint8
        self.clip, self.classes = clip, tuple(classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        scale = self.clip.value_range[1] / 255.0
        return self.frames[index].float() * scale, int(self.labels[index])

    @property
    def file_ids(self) -> list[str]:
        return list(self.names)

    def input_spec(self) -> dict[str, Any]:
        """How the inputs were made: recorded in the config of a model trained on them."""
        return {
            "input_size": (self.clip.num_frames, self.clip.size, self.clip.size),
            "input_range": self.clip.value_range,
        }

    def data_spec(self) -> TrainingData:
        return TrainingData(kind="video", train_count=len(self))


def from_pytorchvideo(
    dataset: Iterable[dict[str, Any]],
    *,
    clip: ClipSettings | None = None,
    clips: int | None = None,
    classes: Sequence[str] | None = None,
    progress: bool = True,
    **clip_fields: Any,
) -> PyTorchVideoClips:
    """Adapt a ``pytorchvideo.data`` labeled video dataset into a pretraining source.

    Args:
        dataset: a ``LabeledVideoDataset`` (or any iterable of pytorchvideo's sample dicts,
            ``{"video": (C, T, H, W) in [0, 255], "label": int or name, "video_name": ...}``).
        clip: every clip setting ([`ClipSettings`][slicevid.data.ClipSettings]; the paper's by default).
        clips: clips per epoch; ``None`` takes one pass over the dataset. More than one pass
            holds draws again (a random clip sampler gives new clips).
        classes: class names in label order; by default the names of string labels (sorted),
            or the integers of integer labels.
        progress: show a progress bar while decoding.
        **clip_fields: single [`ClipSettings`][slicevid.data.ClipSettings] fields applied to ``clip``:
            ``num_frames``, ``size``, ``frames`` ("first" or "uniform"), ``short``, ``value_range``.

    Returns:
        A map-style dataset of ``(clip (1, num_frames, size, size), label)``.

    Raises:
        DataError: the dataset yields no clip, a clip without video, fewer frames than
            ``num_frames`` (with ``clip.short="drop"``), or a label outside ``classes``.
    """
    settings = (clip or ClipSettings()).merged(**clip_fields)
    frames, raw_labels, names = [], [], []
    bar = progress_bar(enabled=progress, desc="decode clips", unit="clip", total=clips, leave=False)
    while clips is None or len(frames) < clips:
        drawn = len(frames)
        for sample in dataset:
            name = str(sample.get("video_name", f"clip {len(frames)}"))
            frames.append(_to_clip(sample.get("video"), name, settings))
            raw_labels.append(sample["label"])
            names.append(name)
            bar.update()
            if clips is not None and len(frames) == clips:
                break
        if len(frames) == drawn:
            raise DataError(f"{type(dataset).__name__} yielded no clip: check its path and clip sampler")
        if clips is None:
            break
    bar.close()
    classes, labels = _label_indices(raw_labels, classes)
    return PyTorchVideoClips(torch.stack(frames), labels, names, settings, classes)


def _to_clip(video: torch.Tensor | None, name: str, clip: ClipSettings) -> torch.Tensor:
    """pytorchvideo's ``(C, T, H, W)`` in [0, 255] -> ``(1, num_frames, size, size)`` uint8."""
    if video is None or video.ndim != 4 or video.shape[1] == 0:
        raise DataError(f"{name}: the dataset gave no decodable video frames")
    available = video.shape[1]
    if available < clip.num_frames and clip.short == "drop":
        raise DataError(
            f"{name}: {available} frames, fewer than num_frames={clip.num_frames} "
            "(ClipSettings(short='pad') repeats the last frame instead)"
        )
    if clip.frames == "uniform":
        picked = np.linspace(0, available - 1, clip.num_frames).round().astype(np.int64)
    else:
        picked = np.minimum(np.arange(clip.num_frames), available - 1)
    rgb = video if video.shape[0] == 3 else video[:1].expand(3, -1, -1, -1)
    return (clip_to_tensor(rgb, picked, clip.size) * 255).round().to(torch.uint8)


def _label_indices(raw: list, classes: Sequence[str] | None) -> tuple[tuple[str, ...], np.ndarray]:
    if all(isinstance(label, str) for label in raw):
        names = tuple(classes) if classes is not None else tuple(sorted(set(raw)))
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise DataError(f"labels {unknown} are not among the classes {list(names)}")
        return names, np.asarray([names.index(label) for label in raw], dtype=np.int64)
    labels = np.asarray([int(label) for label in raw], dtype=np.int64)
    names = tuple(classes) if classes is not None else tuple(str(i) for i in range(int(labels.max()) + 1))
    if labels.min() < 0 or labels.max() >= len(names):
        raise DataError(f"labels {sorted(set(labels.tolist()))} do not index the {len(names)} classes {list(names)}")
    return names, labels


# ----------------------------------------------------------------------------- published layouts
def _whole_videos() -> Any:
    from pytorchvideo.data import UniformClipSampler

    return UniformClipSampler(WHOLE_VIDEO)


def _class_folders(root: Path) -> list[str]:
    if not root.is_dir():
        raise DataError(f"{root}: folder not found")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not names:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<video>)")
    return names


def kinetics(
    root: str | os.PathLike, split: str = "train", *, clip_sampler: Any = None, **options: Any
) -> PyTorchVideoClips:
    """Kinetics (400/600/700) in its published layout, ``root/<split>/<class>/<video>.mp4``, through pytorchvideo.

    Args:
        root: the dataset folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (a folder of class folders).
        clip_sampler: pytorchvideo clip sampler (default: each video whole, once).
        **options: [`from_pytorchvideo()`][slicevid.data.from_pytorchvideo] settings
            (``num_frames``, ``size``, ``clips`` ...).
    """
    from pytorchvideo.data import Kinetics

    folder = Path(root) / split
    classes = _class_folders(folder)
    dataset = Kinetics(
        str(folder),
        clip_sampler or _whole_videos(),
        video_sampler=torch.utils.data.SequentialSampler,
        decode_audio=False,
    )
    return from_pytorchvideo(dataset, classes=classes, **options)


def ucf101(
    root: str | os.PathLike,
    split_file: str | os.PathLike | None = None,
    *,
    clip_sampler: Any = None,
    **options: Any,
) -> PyTorchVideoClips:
    """UCF101, ``root/<Class>/v_<Class>_gNN_cNN.avi``, through pytorchvideo.

    Args:
        root: the folder of class folders.
        split_file: an official list (``trainlist01.txt``, ``testlist01.txt``: ``Class/file.avi``
            per line, any label after it ignored); ``None`` takes every video.
        clip_sampler: pytorchvideo clip sampler (default: each video whole, once).
        **options: [`from_pytorchvideo()`][slicevid.data.from_pytorchvideo] settings.
    """
    from pytorchvideo.data import Ucf101

    root = Path(root)
    classes = _class_folders(root)
    if split_file is None:
        return from_pytorchvideo(_ucf101_reader(Ucf101, str(root), clip_sampler), classes=classes, **options)
    lines = Path(split_file).read_text().split()
    listed = [line for line in lines if line.lower().endswith(VIDEO_SUFFIXES)]
    if not listed:
        raise DataError(f"{split_file}: no video listed (expected lines like ApplyEyeMakeup/v_..._g08_c01.avi)")
    with tempfile.TemporaryDirectory() as folder:  # pytorchvideo reads "<path> <label>" lines, labels from 0
        listing = Path(folder) / "videos.txt"
        rows = []
        for entry in listed:
            path = root / entry
            if not path.is_file():
                raise DataError(f"{split_file}: lists {entry}, not found under {root}")
            rows.append(f"{path} {classes.index(path.parent.name)}")
        listing.write_text("\n".join(rows) + "\n")
        return from_pytorchvideo(_ucf101_reader(Ucf101, str(listing), clip_sampler), classes=classes, **options)


def _ucf101_reader(build: Any, data_path: str, clip_sampler: Any) -> Any:
    return build(
        data_path,
        clip_sampler or _whole_videos(),
        video_sampler=torch.utils.data.SequentialSampler,
        decode_audio=False,
    )


def hmdb51(
    root: str | os.PathLike,
    splits: str | os.PathLike,
    *,
    split_id: int = 1,
    split_type: str = "train",
    clip_sampler: Any = None,
    **options: Any,
) -> PyTorchVideoClips:
    """HMDB51, ``root/<class>/<video>.avi`` with its split files, through pytorchvideo.

    Args:
        root: the folder of class folders.
        splits: the folder of ``<class>_test_split<1|2|3>.txt`` files (``<video> <0|1|2>`` per
            line: 1 training, 2 testing, 0 unused).
        split_id: which of the three splits.
        split_type: ``"train"``, ``"test"`` or ``"unused"``.
        clip_sampler: pytorchvideo clip sampler (default: each video whole, once).
        **options: [`from_pytorchvideo()`][slicevid.data.from_pytorchvideo] settings.
    """
    from pytorchvideo.data import Hmdb51

    if not Path(splits).is_dir():
        raise DataError(f"{splits}: split folder not found (expected <class>_test_split<N>.txt files)")
    dataset = Hmdb51(
        Path(splits),
        clip_sampler or _whole_videos(),
        video_sampler=torch.utils.data.SequentialSampler,
        video_path_prefix=str(root),
        split_id=split_id,
        split_type=split_type,
        decode_audio=False,
    )
    return from_pytorchvideo(dataset, classes=_class_folders(Path(root)), **options)
