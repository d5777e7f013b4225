"""The training loader: which samples form each batch, per epoch and per process.

Three cases, in order: samples of different depths are batched by similar depth
(`LengthBucketSampler`, sharded across processes); under torchrun a
``DistributedSampler`` shards the data; otherwise a seeded shuffle. Every case reshuffles
from ``seed`` and the epoch, so a resumed run sees the same batches.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from ..data.batching import LengthBucketSampler, feature_collate, pad_collate, sample_depths
from .datasets import unwrap
from .distributed import DistributedContext
from .features import FeatureDataset


def collate_for(dataset: Dataset):
    """Padding collate for volumes, or for cached slice features."""
    return feature_collate if isinstance(dataset, FeatureDataset) else pad_collate


def training_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    seed: int,
    epoch: int,
    context: DistributedContext,
    num_workers: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> DataLoader:
    """The loader of one epoch (see the module docs for how batches are formed)."""
    common = {"num_workers": num_workers, "collate_fn": collate_for(dataset)}
    depths = sample_depths(dataset) if unwrap(dataset) is dataset else None
    if depths is not None and len(set(depths)) > 1:
        sampler = LengthBucketSampler(
            depths,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            rank=context.rank,
            world_size=context.world_size,
            drop_last=drop_last,
        )
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_sampler=sampler, **common)
    if context.enabled:
        sampler = DistributedSampler(dataset, context.world_size, context.rank, shuffle=shuffle, seed=seed)
        sampler.set_epoch(epoch)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common)
    generator = torch.Generator().manual_seed(seed + epoch)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last, **common
    )
