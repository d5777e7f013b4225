"""A map-style dataset of CT scans: preprocess (or read from the cache), return tensors and targets."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .._progress import progress_bar
from .._registry import check_choice
from ..errors import ConfigError, DataError, warn_skipped
from .batching import SLICES
from .cache import VolumeCache
from .ct import scan_depth_and_spacing
from .labels import TARGET, scan_id
from .preprocess import CTPreprocessing
from .slices import SliceTargets

ON_ERROR = ("raise", "skip")


class CTVolumeDataset(Dataset):
    """Scans and their targets -> ``(volume (1, D, H, W) float32 in [0, 1], target)`` samples.

    The target is a class index (``labels``) for a one-head classifier, or a dict from head name
    to value (``targets``) for any other task or several heads; with ``slice_targets`` the dict
    also holds ``"slices"``, a ``(D, 1)`` target per slice of the model's input.

    Args:
        sources: NIfTI files or DICOM series folders.
        labels: class index per source (-1: missing), or ``None``.
        targets: head name -> one target per source (``(N,)`` or ``(N, labels)``), instead of ``labels``.
        preprocessing: how to turn a scan into a model input (fixed or native depth).
        cache_dir: folder for preprocessed volumes; ``None`` preprocesses on every access.
        cache_dtype: storage type in the cache (``"float16"``, ``"uint8"``, ``"float32"``).
        transform: called on each ``(1, D, H, W)`` tensor (e.g. augmentation).
        on_error: ``"raise"`` or ``"skip"``. With ``"skip"`` every scan is read up front (into
            the cache, when there is one), and those that cannot be read are dropped and listed
            in ``skipped``.
        workers: threads used to fill the cache.
        classes: class names of ``labels``, in label order.
        root: the folder the sources sit in; ids are paths relative to it (``P1/ct``), else file names.
        ids: each source's id, given outright (instead of ``root``).
        series: in DICOM folders that hold several series, the one to read (its UID, or its
            number in the error that lists them).
        slice_targets: where per-slice targets come from.
    """

    def __init__(
        self,
        sources: Sequence[str | os.PathLike],
        labels: Sequence[int] | None = None,
        *,
        targets: Mapping[str, np.ndarray] | None = None,
        preprocessing: CTPreprocessing | None = None,
        cache_dir: str | os.PathLike | None = None,
        cache_dtype: str = "float16",
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        on_error: str = "raise",
        workers: int = 0,
        classes: Sequence[str] | None = None,
        root: str | os.PathLike | None = None,
        slice_targets: SliceTargets | None = None,
        ids: Sequence[str] | None = None,
        series: str | int | None = None,
    ) -> None:
        self.on_error = check_choice("on_error", on_error, ON_ERROR)
        self.sources = [Path(s) for s in sources]
        self.root = Path(root) if root is not None else None
        self._ids = list(ids) if ids is not None else None
        self.series = series
        if labels is not None and targets is not None:
            raise ConfigError("labels", "and targets exclude each other")
        self.labels = np.full(len(self.sources), -1, dtype=np.int64) if labels is None else np.asarray(labels, np.int64)
        self.targets = {name: np.asarray(values) for name, values in targets.items()} if targets else None
        for name, values in [("labels", self.labels), *(self.targets or {}).items()]:
            if len(values) != len(self.sources):
                raise ConfigError(name, f"has {len(values)} entries for {len(self.sources)} sources")
        self.preprocessing = preprocessing or CTPreprocessing()
        self.cache = VolumeCache(cache_dir, cache_dtype) if cache_dir is not None else None
        self.transform = transform
        self.classes = tuple(classes) if classes is not None else None
        self.slice_targets = slice_targets
        self.skipped: list[tuple[str, str]] = []
        self._depths: dict[int, int] = {}
        self._check_unique_ids()
        if on_error == "skip":
            self.fill_cache(workers=workers)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def file_ids(self) -> list[str]:
        """Each scan's id: its path relative to ``root`` without ``.nii``/``.nii.gz`` (the submission id)."""
        if self._ids is not None:
            return list(self._ids)
        return [scan_id(source, self.root) for source in self.sources]

    def _check_unique_ids(self) -> None:
        seen: dict[str, Path] = {}
        for source, key in zip(self.sources, self.file_ids, strict=True):
            if key in seen and seen[key] != source:
                raise DataError(
                    f"two scans have the id {key!r}: {seen[key]} and {source}; ids must be unique "
                    "(give one scan folder, whose relative paths tell the scans apart)"
                )
            seen[key] = source

    def input_spec(self) -> dict[str, Any]:
        """How this dataset's inputs are made: recorded in the config of a model trained on them."""
        return {"input_size": self.preprocessing.size, "input_range": (0.0, 1.0), "preprocessing": self.preprocessing}

    def depths(self) -> list[int]:
        """Each scan's depth after preprocessing, from its header where the format allows (no pixels are read:
        the depth sampler asks before the first batch)."""
        if not self.preprocessing.variable_depth:
            return [self.preprocessing.size[0]] * len(self)
        for index in range(len(self)):
            if index not in self._depths:
                depth, spacing = scan_depth_and_spacing(self.sources[index])
                self._depths[index] = self.preprocessing.output_depth(depth, spacing)
        return [self._depths[index] for index in range(len(self))]

    def load_volume(self, index: int) -> np.ndarray:
        """The preprocessed float32 ``(D, H, W)`` volume of scan ``index``."""
        source = self.sources[index]
        if self.cache is None:
            volume = self.preprocessing(source, self.series)
        else:
            params = {**self.preprocessing.params(), "series": self.series}
            volume = self.cache.get(source, params, lambda: self.preprocessing(source, self.series))
        self._depths[index] = volume.shape[0]
        return volume

    def load_slice_targets(self, index: int) -> np.ndarray:
        """The per-slice targets ``(D, 1)`` of scan ``index`` at the model's input depth (NaN when it has none)."""
        source, key = self.sources[index], self.file_ids[index]

        def compute() -> np.ndarray:
            depth, spacing = scan_depth_and_spacing(source)
            profile = self.slice_targets.profile(key, depth)
            if profile is None:
                return np.full(self._output_depth(index), np.nan, dtype=np.float32)
            return self.preprocessing.resample_profile(profile, spacing)

        if self.cache is None:
            return compute()[:, None]
        params = {"kind": "slice targets", "preprocessing": self.preprocessing.params(), **self.slice_targets.key(key)}
        return self.cache.get(source, params, compute)[:, None]

    def _output_depth(self, index: int) -> int:
        return self.preprocessing.size[0] or self.depths()[index]

    def target(self, index: int) -> Any:
        """Scan ``index``'s target: a class index, or a dict by head (with ``"slices"``)."""
        if self.targets is None and self.slice_targets is None:
            return int(self.labels[index])
        values = dict(self.targets) if self.targets is not None else {TARGET: self.labels}
        target: dict[str, Any] = {name: torch.as_tensor(array[index]) for name, array in values.items()}
        if self.slice_targets is not None:
            target[SLICES] = torch.from_numpy(np.ascontiguousarray(self.load_slice_targets(index)))
        return target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        volume = torch.from_numpy(np.ascontiguousarray(self.load_volume(index)))[None]
        if self.transform is not None:
            volume = self.transform(volume)
        return volume, self.target(index)

    def fill_cache(self, workers: int = 0, progress: bool = True) -> list[tuple[str, str]]:
        """Preprocess every scan into the cache in parallel (or just check it, without a cache).

        With ``on_error="skip"`` failing scans are dropped from the dataset; otherwise the
        first failure is raised.

        Returns:
            ``(file, reason)`` of every scan skipped so far.
        """

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
                progress_bar(
                    pool.map(attempt, range(len(self))),
                    enabled=progress,
                    total=len(self),
                    desc="preprocess",
                    unit="scan",
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
        self._ids = [self._ids[i] for i in keep] if self._ids is not None else None
        self.labels = self.labels[keep]
        if self.targets is not None:
            self.targets = {name: values[keep] for name, values in self.targets.items()}
        self._depths = {}
        warn_skipped("scan(s)", list(reasons))
