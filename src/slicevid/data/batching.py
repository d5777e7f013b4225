"""Batching volumes of different depths: a padding collate function and a length-bucketing sampler.

Scans kept at their own depth (``CTPreprocessing(resample="native")``) cannot be stacked.
`pad_collate()` zero-pads them to the deepest in the batch and returns each one's real
depth; `LengthBucketSampler` batches scans of similar depth together, so little
padding is computed at all (the model never encodes padded slices anyway).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler, default_collate

from ..keys import SLICES


def pad_to(tensors: Sequence[torch.Tensor], dim: int, value: float = 0.0) -> torch.Tensor:
    """Stack tensors that differ only along ``dim``, padding each to the longest with ``value``."""
    longest = max(t.shape[dim] for t in tensors)
    shape = (len(tensors), *tensors[0].shape[:dim], longest, *tensors[0].shape[dim + 1 :])
    padded = tensors[0].new_full(shape, value)
    for index, tensor in enumerate(tensors):
        padded[index].narrow(dim, 0, tensor.shape[dim]).copy_(tensor)
    return padded


def collate_targets(targets: Sequence[Any]) -> Any:
    """Targets of a batch: class indices and values stacked; per-slice targets padded with NaN (missing)."""
    if isinstance(targets[0], dict) and SLICES in targets[0]:
        slices = pad_to([torch.as_tensor(t[SLICES], dtype=torch.float32) for t in targets], dim=0, value=float("nan"))
        return {**default_collate([{k: v for k, v in t.items() if k != SLICES} for t in targets]), SLICES: slices}
    return default_collate(list(targets))


def pad_collate(samples: Sequence[tuple], depth_dim: int = 1) -> tuple:
    """``[(volume, target, *extra), ...]`` -> ``(volumes, targets, lengths, *extra)``.

    Volumes are padded with zeros along ``depth_dim`` (1 for ``(C, D, H, W)``, 0 for slice
    features ``(D, F)``). ``lengths`` is ``None`` when every sample has the same depth, so
    fixed-depth batches take the plain path.

    Args:
        samples: what the dataset returns, one tuple per sample.
        depth_dim: the depth axis of each sample's first element.
    """
    volumes = [sample[0] for sample in samples]
    targets = collate_targets([sample[1] for sample in samples])
    rest = [default_collate([sample[i] for sample in samples]) for i in range(2, len(samples[0]))]
    depths = [v.shape[depth_dim] for v in volumes]
    if len(set(depths)) == 1:
        return (torch.stack(volumes), targets, None, *rest)
    return (pad_to(volumes, depth_dim), targets, torch.tensor(depths), *rest)


def feature_collate(samples: Sequence[tuple]) -> tuple:
    """`pad_collate()` for slice features ``(D, F)``."""
    return pad_collate(samples, depth_dim=0)


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of samples of similar depth, shuffled per epoch, sharded across processes.

    Samples are sorted by depth (ties broken at random), cut into consecutive batches, and
    the batches shuffled: each batch mixes similar depths, every epoch differs, and the
    padding per batch stays small.

    Args:
        depths: depth of every sample.
        batch_size: samples per batch.
        shuffle: shuffle within equal depths and the order of batches (per epoch, from ``seed``).
        seed: base seed; call `set_epoch()` each epoch.
        rank: this process's rank under torchrun.
        world_size: number of processes; each takes every ``world_size``-th batch.
        drop_last: leave out the one batch smaller than ``batch_size`` (a different sample each epoch).
    """

    def __init__(
        self,
        depths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        self.depths = np.asarray(depths, dtype=np.int64)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        tiebreak = rng.random(len(self.depths)) if self.shuffle else np.arange(len(self.depths))
        order = np.lexsort((tiebreak, self.depths))
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        if self.drop_last and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        total = math.ceil(len(batches) / self.world_size) * self.world_size
        batches += batches[: total - len(batches)]  # every rank gets as many batches (as DistributedSampler)
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        rounding = math.floor if self.drop_last else math.ceil
        return math.ceil(rounding(len(self.depths) / self.batch_size) / self.world_size)


def sample_depths(dataset: Any) -> list[int] | None:
    """Each sample's depth, if ``dataset`` can tell without loading (``depths()``), else ``None``."""
    depths = getattr(dataset, "depths", None)
    return list(depths()) if callable(depths) else None
