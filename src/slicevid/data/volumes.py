"""A map-style dataset of CT scans: preprocess (or read from the cache), return tensors."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._registry import check_choice
from ..errors import ConfigError, DataError, warn_skipped
from .cache import VolumeCache
from .preprocess import CTPreprocessing

ON_ERROR = ("raise", "skip")


def scan_id(path: str | os.PathLike) -> str:
    """A scan's name without ``.nii``/``.nii.gz``: the challenge's submission id."""
    return Path(path).name.removesuffix(".gz").removesuffix(".nii")


class CTVolumeDataset(Dataset):
    """Scans and labels -> ``(volume (1, D, H, W) float32 in [0, 1], label)`` pairs.

    Args:
        sources: NIfTI files or DICOM series folders.
        labels: class index per source, or ``None`` for unlabeled scans (label -1).
        preprocessing: how to turn a scan into a model input (fixed or native depth).
        cache_dir: folder for preprocessed volumes; ``None`` preprocesses on every access.
        cache_dtype: storage type in the cache (``"float16"``, ``"uint8"``, ``"float32"``).
        transform: called on each ``(1, D, H, W)`` tensor (e.g. augmentation).
        on_error: ``"raise"`` or ``"skip"``. With ``"skip"`` and a cache, every scan is
            preprocessed up front and unreadable ones are dropped and listed in ``skipped``.
        workers: threads used to fill the cache.
        classes: class names, in label order.
    """

    def __init__(
        self,
        sources: Sequence[str | os.PathLike],
        labels: Sequence[int] | None = None,
        *,
        preprocessing: CTPreprocessing | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_dtype: str = "float16",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        on_error: str = "raise",
        workers: int = 0,
        classes: Sequence[str] | None = None,
    ) -> None:
        self.on_error = check_choice("on_error", on_error, ON_ERROR)
        self.sources = [Path(s) for s in sources]
        self.labels = np.full(len(self.sources), -1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
        if len(self.labels) != len(self.sources):
            raise ConfigError("labels", f"has {len(self.labels)} entries for {len(self.sources)} sources")
        self.preprocessing = preprocessing or CTPreprocessing()
        self.cache = VolumeCache(cache_dir, cache_dtype) if cache_dir is not None else None
        self.transform = transform
        self.classes = tuple(classes) if classes is not None else None
        self.skipped: list[tuple[str, str]] = []
        self._depths: dict[int, int] = {}
        if on_error == "skip" and self.cache is not None:
            self.fill_cache(workers=workers)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def file_ids(self) -> list[str]:
        """Scan names without ``.nii``/``.nii.gz`` (the challenge's submission ids)."""
        return [scan_id(s) for s in self.sources]

    def input_spec(self) -> dict[str, Any]:
        """How this dataset's inputs are made: recorded in the config of a model trained on them."""
        return {"input_size": self.preprocessing.size, "input_range": (0.0, 1.0), "preprocessing": self.preprocessing}

    def depths(self) -> list[int]:
        """Each scan's depth after preprocessing (preprocessing what is not cached yet)."""
        if not self.preprocessing.variable_depth:
            return [self.preprocessing.size[0]] * len(self)
        return [self._depths.get(i) or self.load_volume(i).shape[0] for i in range(len(self))]

    def load_volume(self, index: int) -> np.ndarray:
        """The preprocessed float32 ``(D, H, W)`` volume of scan ``index``."""
        source = self.sources[index]
        if self.cache is None:
            volume = self.preprocessing(source)
        else:
            volume = self.cache.get(source, self.preprocessing.params(), lambda: self.preprocessing(source))
        self._depths[index] = volume.shape[0]
        return volume

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        volume = torch.from_numpy(np.ascontiguousarray(self.load_volume(index)))[None]
        if self.transform is not None:
            volume = self.transform(volume)
        return volume, int(self.labels[index])

    def fill_cache(self, workers: int = 0, progress: bool = True) -> list[tuple[str, str]]:
        """Preprocess every scan into the cache in parallel; returns ``(file, reason)`` failures.

        With ``on_error="skip"`` failing scans are dropped from the dataset; otherwise the
        first failure is raised.
        """
        if self.cache is None:
            raise ConfigError("fill_cache", "needs a cache_dir")
        from tqdm.auto import tqdm

        def attempt(index: int) -> str | None:
            try:
                self.load_volume(index)
            except DataError as err:
                if self.on_error == "raise":
                    raise
                return str(err)
            return None

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(
                tqdm(
                    pool.map(attempt, range(len(self))),
                    total=len(self),
                    desc="preprocess",
                    unit="scan",
                    disable=not progress,
                )
            )
        failed = [i for i, reason in enumerate(results) if reason is not None]
        self.drop(failed, [results[i] for i in failed])
        return self.skipped

    def drop(self, indices: Sequence[int], reasons: Sequence[str]) -> None:
        """Remove scans ``indices`` from the dataset, listing them in ``skipped`` with a warning."""
        if not indices:
            return
        self.skipped += [(str(self.sources[i]), r) for i, r in zip(indices, reasons, strict=True)]
        keep = np.setdiff1d(np.arange(len(self.sources)), indices)
        self.sources = [self.sources[i] for i in keep]
        self.labels = self.labels[keep]
        self._depths = {}
        warn_skipped("scan(s)", list(reasons))
