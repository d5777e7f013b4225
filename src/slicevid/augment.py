"""Augmentation of whole volumes: the paper's in-plane rotation, and study-consistent 3D transforms.

* `RandomAxialRotation` is the paper's: rotate the entire volume in the axial plane by
  an angle drawn from ``(-20, -10, -5, 0, 5, 10, 20)`` degrees (0 included, so the model also
  sees unrotated scans) and clip to [0, 1]. The authors' notebook instead skipped augmentation
  with probability 1/4 and otherwise drew one of the six non-zero angles:
  `RandomAxialRotation.notebook_variant()`. Rotation runs through ``affine_grid`` /
  ``grid_sample`` (bilinear, zeros outside), so it works on batches on the GPU; the reference
  used ``scipy.ndimage.rotate`` (cubic spline), a difference of interpolation smoothness only.
* `StudyAugmentation` draws one torchio transform per scan (a small in-plane rotation,
  scaling and shift, a left-right flip, a gamma change and noise) and applies it to the whole
  volume, so every slice of a study moves together, as a 3D scan should.

Both take a batch ``(B, C, D, H, W)`` (or one volume) and, for padded batches of different
depths, the ``lengths``; padding stays zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from ._registry import check_choice
from .errors import ConfigError

PAPER_ANGLES = (-20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0)


def rotate_axial(volumes: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each volume of ``(B, C, D, H, W)`` in the H-W plane by ``degrees[b]`` (counter-clockwise)."""
    batch, channels, depth, height, width = volumes.shape
    radians = degrees.to(volumes.device, torch.float32) * (math.pi / 180.0)
    cos, sin = radians.cos(), radians.sin()
    # Rotation in pixel space expressed in normalized coordinates (corrects for H != W).
    theta = torch.zeros(batch, 2, 3, device=volumes.device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * height / width
    theta[:, 1, 0], theta[:, 1, 1] = sin * width / height, cos
    slices = volumes.permute(0, 2, 1, 3, 4).reshape(batch, depth * channels, height, width)
    grid = F.affine_grid(theta, list(slices.shape), align_corners=False)
    rotated = F.grid_sample(slices.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return rotated.reshape(batch, depth, channels, height, width).permute(0, 2, 1, 3, 4).to(volumes.dtype)


def _batched(volumes: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if volumes.ndim not in (4, 5):
        raise ConfigError("volumes", f"must be (C, D, H, W) or (B, C, D, H, W), got shape {tuple(volumes.shape)}")
    return (volumes[None], True) if volumes.ndim == 4 else (volumes, False)


class RandomAxialRotation:
    """Rotate each volume by a random angle from ``angles`` with probability ``p``, then clip.

    Works on one volume ``(C, D, H, W)`` or a batch ``(B, C, D, H, W)``; each volume in a
    batch draws its own angle.

    Args:
        angles: candidate angles in degrees (the paper's by default).
        p: probability of rotating a volume at all.
        clip: range to clip to afterwards, or ``None``.
    """

    def __init__(
        self,
        angles: Sequence[float] = PAPER_ANGLES,
        p: float = 1.0,
        clip: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        if not angles:
            raise ConfigError("angles", "must not be empty")
        if not 0.0 <= p <= 1.0:
            raise ConfigError("p", f"must be in [0, 1], got {p}")
        self.angles = torch.tensor([float(a) for a in angles])
        self.p, self.clip = p, clip

    @classmethod
    def notebook_variant(cls) -> RandomAxialRotation:
        """The authors' notebook: skip with probability 1/4, else a non-zero paper angle."""
        return cls([a for a in PAPER_ANGLES if a != 0.0], p=0.75)

    def sample_angles(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` angles (0 where the volume is left alone)."""
        picks = self.angles[torch.randint(len(self.angles), (n,), generator=generator)]
        keep = torch.rand(n, generator=generator) < self.p
        return torch.where(keep, picks, torch.zeros_like(picks))

    def __call__(
        self, volumes: torch.Tensor, generator: torch.Generator | None = None, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, single = _batched(volumes)
        angles = self.sample_angles(batch.shape[0], generator)
        out = rotate_axial(batch, angles) if bool((angles != 0).any()) else batch
        if self.clip is not None:
            out = out.clamp(*self.clip)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"RandomAxialRotation(angles={self.angles.tolist()}, p={self.p}, clip={self.clip})"


class StudyAugmentation:
    """One random torchio transform per scan, applied to all its slices at once.

    The transform: rotation in the axial plane up to ``degrees``, in-plane scaling within
    ``1 +- scale``, a shift of up to ``shift`` of the height and width, a left-right flip
    with probability 1/2, a gamma change ``exp(U(-gamma, gamma))`` and Gaussian noise up to
    ``noise``; the result is clipped to [0, 1]. Random draws come from torch's global
    generator (which ``fit`` seeds every epoch), as torchio's do.
    """

    def __init__(
        self, degrees: float = 10.0, scale: float = 0.1, shift: float = 0.05, gamma: float = 0.2, noise: float = 0.02
    ) -> None:
        import torchio as tio

        self.settings = {"degrees": degrees, "scale": scale, "shift": shift, "gamma": gamma, "noise": noise}
        self.intensity = tio.Compose([tio.RandomGamma(log_gamma=(-gamma, gamma)), tio.RandomNoise(std=(0, noise))])
        self.flip = tio.RandomFlip(axes=(2,), flip_probability=0.5)  # W: left-right
        self.tio = tio

    def _transform_one(self, volume: torch.Tensor) -> torch.Tensor:
        """``(C, D, H, W)`` -> the same shape; torchio's spatial axes are our (D, H, W)."""
        _, _, height, width = volume.shape
        s = self.settings
        affine = self.tio.RandomAffine(
            scales=(1, 1, 1 - s["scale"], 1 + s["scale"], 1 - s["scale"], 1 + s["scale"]),
            degrees=(s["degrees"], 0, 0),
            translation=(0, s["shift"] * height, s["shift"] * width),
            default_pad_value=0.0,
        )
        out = self.intensity(self.flip(affine(volume.float().cpu())))
        return torch.as_tensor(out).clamp_(0.0, 1.0).to(volume.device, volume.dtype)

    def __call__(
        self, volumes: torch.Tensor, generator: torch.Generator | None = None, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, single = _batched(volumes)
        out = batch.clone()
        for index in range(batch.shape[0]):
            depth = int(lengths[index]) if lengths is not None else batch.shape[2]
            out[index, :, :depth] = self._transform_one(batch[index, :, :depth])
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"StudyAugmentation({', '.join(f'{k}={v}' for k, v in self.settings.items())})"


Augmentation = Literal["paper", "notebook", "torchio"]
"""The augmentations: the paper's rotations, the authors' notebook variant, torchio's study-consistent ones."""


def make_augmentation(kind: str) -> RandomAxialRotation | StudyAugmentation | None:
    """The augmentation a ``TrainConfig.augment`` value names (``None`` for ``"none"``)."""
    builders = {
        "none": lambda: None,
        "paper": RandomAxialRotation,
        "notebook": RandomAxialRotation.notebook_variant,
        "torchio": StudyAugmentation,
    }
    return builders[check_choice("augment", kind, builders)]()
