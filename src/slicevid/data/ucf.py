"""UCF50 and UCF101: action videos in their folder and split-file layouts, as clip datasets.

The label comes from the class folder (UCF50's ``Billiards/`` holds ``v_Billards_*`` files;
UCF101's split files number classes from 1). Splits: random, by UCF group (clips of one
``gNN`` group share a scene and never sit on both sides), or the authors' three-way split.

Data: UCF50 (crcv.ucf.edu/data/UCF50.php) and UCF101 (crcv.ucf.edu/data/UCF101.php)
must be downloaded by you; put the class folders under one ``root``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from .._registry import check_choice
from ..errors import ConfigError, DataError
from .clips import ClipSettings
from .splits import VAL_FRACTION, holdout_split, keras_validation_split
from .video import VIDEO_SUFFIXES, VideoClipDataset

UCF50_PAPER_CLASSES = (
    "Mixing", "TennisSwing", "HorseRiding", "JumpRope", "JumpingJack",
    "BaseballPitch", "Rowing", "SkateBoarding", "WalkingWithDog", "Skijet",
)  # fmt: skip
"""The ten UCF50 classes the paper pretrained on (1,366 clips)."""

SplitBy = Literal["random", "group", "keras"]
SPLIT_BY: tuple[str, ...] = get_args(SplitBy)
"""How clips split into training and validation: at random, by UCF group (scene), or as the authors' Keras did."""
VIDEO_SPLITS = ("all", "train", "val", "test")
_GROUP = re.compile(r"_g(\d+)_c\d+", re.IGNORECASE)


def video_group(path: str | os.PathLike) -> int:
    """The UCF group number ``NN`` of ``v_<Class>_gNN_cNN.avi`` (clips of one group share a scene)."""
    match = _GROUP.search(Path(path).name)
    if match is None:
        raise DataError(f"{path}: file name has no UCF group '_gNN_cNN'")
    return int(match.group(1))


def split_indices(dataset: VideoClipDataset, split: str, val_fraction: float, seed: int, split_by: str) -> np.ndarray:
    """The clips of ``split`` (``"all"``, ``"train"``, ``"val"``, ``"test"``) under a splitting scheme.

    ``"random"`` and ``"group"`` (whole UCF groups on one side) make train/val splits;
    ``"keras"`` is the authors' three-way split: 80/20 train/test with ``train_test_split``,
    then Keras's ``validation_split``, the *last* ``val_fraction`` of the training part.
    """
    if split == "all":
        return np.arange(len(dataset))
    if split == "test" and split_by != "keras":
        raise ConfigError("split='test'", "exists with split_by='keras' (the authors' train/val/test split) only")
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
    num_frames: int | None = None,
    size: int | None = None,
    frames: str | None = None,
    *,
    clip: ClipSettings | None = None,
    split: str = "all",
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    split_by: str = "random",
    short: str | None = None,
    on_error: str = "raise",
    value_range: tuple[float, float] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> VideoClipDataset:
    """UCF50 (folder per class) as a clip dataset.

    Args:
        root: folder holding one sub-folder per class.
        classes: class folders to use, in label order; ``None`` for every folder, sorted.
            The paper's subset is `UCF50_PAPER_CLASSES`.
        num_frames: frames per clip (default: ``clip``'s, 70 as the paper).
        size: output height and width (default: ``clip``'s, 224 as the paper).
        frames: ``"first"`` or ``"uniform"`` (default: ``clip``'s, ``"first"``).
        clip: every clip setting at once ([`ClipSettings`][slicevid.data.ClipSettings]); the single
            settings above override it.
        split: ``"all"``, ``"train"``, ``"val"``, or ``"test"`` (with ``split_by="keras"``).
        val_fraction: held-out share (of everything, then of the training part for ``"keras"``).
        seed: seed of the split (0, as the paper).
        split_by: ``"random"`` clips; ``"group"`` so clips of one ``gNN`` group (one scene)
            never sit on both sides; ``"keras"`` for the authors' train/val/test split
            (1,092 / 274, then 873 / 219 on their 1,366 clips).
        short: ``"drop"`` or ``"pad"`` clips shorter than ``num_frames`` (default: ``clip``'s, ``"drop"``).
        on_error: ``"raise"`` or ``"skip"`` undecodable videos.
        value_range: ``(0, 1)`` or ``(0, 255)`` (the authors' raw frames; default: ``clip``'s).
        cache_dir: store decoded clips here.

    Returns:
        The clips of ``split``.

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
    settings = (clip or ClipSettings()).merged(
        num_frames=num_frames, size=size, frames=frames, short=short, value_range=value_range
    )
    dataset = VideoClipDataset(
        files, labels, clip=settings, classes=classes, on_error=on_error, cache_dir=cache_dir, root=root
    )
    empty = [classes[k] for k in range(len(classes)) if not (dataset.labels == k).any()]
    if empty:
        raise DataError(f"class(es) {empty} kept no usable video in {root}; every one was skipped")
    part = dataset.split(split_indices(dataset, split, val_fraction, seed, split_by))
    part.spec = replace(part.spec, val_fraction=val_fraction, seed=seed, split_by=split_by)
    return part


def ucf101(
    root: str | os.PathLike,
    split_file: str | os.PathLike,
    num_frames: int | None = None,
    size: int | None = None,
    frames: str | None = None,
    *,
    clip: ClipSettings | None = None,
    class_index: str | os.PathLike | None = None,
    short: str | None = None,
    on_error: str = "raise",
    value_range: tuple[float, float] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> VideoClipDataset:
    """UCF101 clips listed in an official split file (``trainlist01.txt`` / ``testlist01.txt``).

    Split-file labels are 1-indexed and only present in train lists, so the label is taken
    from the class folder through ``classInd.txt`` (looked up beside the split file unless
    given), giving 0-indexed labels in ``classInd`` order. Clip settings work as in [`ucf50()`][slicevid.data.ucf50].

    Args:
        root: the folder of class folders.
        split_file: ``trainlistNN.txt`` or ``testlistNN.txt``.
        num_frames: frames per clip (overrides ``clip``).
        size: frame height and width (overrides ``clip``).
        frames: "first" or "uniform" (overrides ``clip``).
        clip: every clip setting (the paper's by default).
        class_index: ``classInd.txt`` (default: beside the split file).
        short: "drop" or "pad" videos shorter than ``num_frames`` (overrides ``clip``).
        on_error: "raise" or "skip" undecodable videos.
        value_range: (0, 1) or (0, 255) (overrides ``clip``).
        cache_dir: keep decoded clips here.
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
    settings = (clip or ClipSettings()).merged(
        num_frames=num_frames, size=size, frames=frames, short=short, value_range=value_range
    )
    names = sorted(classes, key=classes.get)
    return VideoClipDataset(
        files, labels, clip=settings, classes=names, on_error=on_error, cache_dir=cache_dir, root=root
    )
