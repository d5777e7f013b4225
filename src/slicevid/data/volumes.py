"""A map-style dataset of CT scans: preprocess (or read from the cache), return tensors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .cache import VolumeCache
from .preprocess import CTPreprocessing

ON_ERROR = ("raise", "skip")


class CTVolumeDataset(Dataset):
    """Scans and labels -> ``(volume (1, D, H, W) float32 in [0, 1], label)`` pairs.

    Args:
        sources: NIfTI files or DICOM series folders.
        labels: class index per source, or ``None`` for unlabeled scans (label -1).
        preprocessing: how to turn a scan into a fixed-size volume.
        cache_dir: folder for preprocessed volumes; ``None`` preprocesses on every access.
        cache_dtype: storage type in the cache (``"float16"``, ``"uint8"``, ``"float32"``).
        transform: called on each ``(1, D, H, W)`` tensor (e.g. augmentation).
        on_error: ``"raise"`` or ``"skip"``. With ``"skip"`` and a cache, every scan is
            preprocessed up front and unreadable ones are dropped and listed in ``skipped``.
        workers: threads used to fill the cache.
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
    ) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
        self.sources = [Path(s) for s in sources]
        self.labels = np.full(len(self.sources), -1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
        if len(self.labels) != len(self.sources):
            raise ValueError(f"{len(self.sources)} sources but {len(self.labels)} labels")
        self.preprocessing = preprocessing or CTPreprocessing()
        self.cache = VolumeCache(cache_dir, cache_dtype) if cache_dir is not None else None
        self.transform = transform
        self.on_error = on_error
        self.skipped: list[tuple[str, str]] = []
        if on_error == "skip" and self.cache is not None:
            self.fill_cache(workers=workers)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def file_ids(self) -> list[str]:
        """Scan names without ``.nii``/``.nii.gz`` (the challenge's submission ids)."""
        return [s.name.removesuffix(".gz").removesuffix(".nii") for s in self.sources]

    def load_volume(self, index: int) -> np.ndarray:
        """The preprocessed float32 ``(D, H, W)`` volume of scan ``index``."""
        source = self.sources[index]
        if self.cache is None:
            return self.preprocessing(source)
        return self.cache.get(source, self.preprocessing.params(), lambda: self.preprocessing(source))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        volume = torch.from_numpy(self.load_volume(index))[None]
        if self.transform is not None:
            volume = self.transform(volume)
        return volume, int(self.labels[index])

    def fill_cache(self, workers: int = 0, progress: bool = True) -> list[tuple[str, str]]:
        """Preprocess every scan into the cache in parallel; returns ``(file, reason)`` failures.

        With ``on_error="skip"`` failing scans are dropped from the dataset; otherwise the
        first failure is raised.
        """
        if self.cache is None:
            raise ValueError("fill_cache needs a cache_dir")
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
                tqdm(pool.map(attempt, range(len(self))), total=len(self), desc="preprocess",
                     unit="scan", disable=not progress)
            )
        failed = [i for i, reason in enumerate(results) if reason is not None]
        self._drop(failed, [results[i] for i in failed])
        return self.skipped

    def _drop(self, indices: Sequence[int], reasons: Sequence[str]) -> None:
        if not indices:
            return
        self.skipped += [(str(self.sources[i]), r) for i, r in zip(indices, reasons, strict=True)]
        keep = np.setdiff1d(np.arange(len(self.sources)), indices)
        self.sources = [self.sources[i] for i in keep]
        self.labels = self.labels[keep]
        warnings.warn(
            f"Skipped {len(indices)} scan(s): " + "; ".join(reasons[:5]) + (" ..." if len(reasons) > 5 else ""),
            stacklevel=3,
        )
