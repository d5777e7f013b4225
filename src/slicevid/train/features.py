"""The frozen-encoder feature cache.

When the channel adapter and the encoder are both frozen and the inputs are not
augmented, a clip's slice features never change during training. They are computed
once, kept in memory as float32 ``(D, F)`` tensors (of each sample's own depth), and the
aggregator and head train on them: an epoch then costs a recurrent pass instead of ``D``
CNN passes per sample.

The paper's video pretraining freezes VGG-16 but keeps training the 1x1x1 adapter, so the
cache is exact only with the adapter frozen too (``freeze_encoder(include_adapter=True)``).
That is the fast path; the exact uncached recipe stays the default. Under torchrun every
process extracts the features of the whole dataset once, then trains on its shard of them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._progress import progress_bar
from ..data.batching import pad_collate
from ..devices import autocast
from ..errors import ConfigError
from ..keys import SLICES
from ..model import SliceSequenceClassifier
from ..outputs import Outputs


class HeadOnly(nn.Module):
    """Routes cached features through the model's feature norm, aggregator and head (what DDP wraps then)."""

    def __init__(self, model: SliceSequenceClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> Outputs:
        return self.model.outputs_from_features(features, lengths)


class FeatureDataset(Dataset):
    """Precomputed slice features ``(D, F)`` with the targets of their samples (and the source's class names)."""

    def __init__(self, features: list[torch.Tensor], targets: list, classes: tuple[str, ...] | None = None) -> None:
        self.features, self.sample_targets, self.classes = features, targets, classes

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int):
        return self.features[index], self.sample_targets[index]

    def depths(self) -> list[int]:
        return [f.shape[0] for f in self.features]


def uncollate(targets, depths: list[int]) -> list:
    """One target per sample from a collated batch (per-slice targets cut to each sample's depth)."""
    if isinstance(targets, dict):
        return [
            {k: (v[i, :depth] if k == SLICES else v[i]) for k, v in targets.items()} for i, depth in enumerate(depths)
        ]
    return [value.item() if value.ndim == 0 else value for value in targets]


@torch.no_grad()
def extract_features(
    model: SliceSequenceClassifier,
    dataset: Dataset,
    *,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    num_workers: int = 0,
    progress: bool = False,
) -> FeatureDataset:
    """Encode every sample of ``dataset`` once with the (frozen) adapter and encoder.

    Args:
        model: a slicevid model; its adapter and encoder run, frozen.
        dataset: ``(volume, target)`` samples.
        batch_size: samples per forward pass.
        device: where the encoder runs.
        autocast_dtype: the autocast precision (``None``: float32).
        num_workers: DataLoader worker processes.
        progress: show a progress bar.
    """
    if not model.features_frozen:
        raise ConfigError(
            "feature_cache",
            "is exact only when the adapter and encoder are frozen (model.freeze_encoder(include_adapter=True))",
        )
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=pad_collate)
    features, targets = [], []
    for volumes, batch_targets, lengths in progress_bar(loader, enabled=progress, desc="features", unit="batch"):
        with autocast(device, autocast_dtype):
            batch = model.forward_features(volumes.to(device), lengths).float().cpu()
        depths = lengths.tolist() if lengths is not None else [batch.shape[1]] * len(batch)
        features += [sample[:depth].clone() for sample, depth in zip(batch, depths, strict=True)]
        targets += uncollate(batch_targets, depths)
    model.train(was_training)
    return FeatureDataset(features, targets, getattr(dataset, "classes", None))
