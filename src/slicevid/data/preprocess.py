"""The CT preprocessing pipeline: load -> HU window -> resample to a fixed size -> clip.

Defaults follow the paper: window [-1000, 400] HU, SIZ (linear) to 70 x 224 x 224, clip
to [0, 1]. Every setting is part of :meth:`CTPreprocessing.params`, which keys the cache.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from ..resample import SELECTIONS, select_slices, spline_interpolated_zoom
from .ct import DEFAULT_HU_WINDOW, hu_window, load_ct

RESAMPLERS = ("siz", *SELECTIONS)


@dataclass(frozen=True)
class CTPreprocessing:
    """How a raw scan becomes a model input ``(D, H, W)`` in [0, 1].

    Args:
        size: output ``(depth, height, width)``.
        window: HU window ``(lo, hi)``.
        resample: ``"siz"`` (zoom all axes) or a slice selection (``"even"``, ``"first"``,
            ``"middle"``, ``"last"``) for depth, followed by an in-plane zoom.
        order: interpolation order for zooming (0, 1 or 3).
        rotate90: rotate slices as the ViPTT-Net reference did (see :func:`load_ct`).
    """

    size: tuple[int, int, int] = (70, 224, 224)
    window: tuple[float, float] = DEFAULT_HU_WINDOW
    resample: str = "siz"
    order: int = 1
    rotate90: bool = False

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLERS:
            raise ValueError(f"resample must be one of {RESAMPLERS}, got {self.resample!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "window", tuple(float(w) for w in self.window))

    def params(self) -> dict:
        """A JSON-able description of every setting (part of the cache key)."""
        return asdict(self)

    def __call__(self, path: str | os.PathLike) -> np.ndarray:
        """Load and preprocess one scan to float32 ``(D, H, W)`` in [0, 1]."""
        volume, _ = load_ct(path, rotate90=self.rotate90)
        return self.apply(volume)

    def apply(self, volume_hu: np.ndarray) -> np.ndarray:
        """Preprocess a volume already in memory (HU, ``(D, H, W)``)."""
        volume = hu_window(volume_hu, *self.window)
        if self.resample != "siz":
            volume = select_slices(volume, self.size[0], how=self.resample)
        volume = spline_interpolated_zoom(volume, self.size, order=self.order)
        return np.clip(volume, 0.0, 1.0, out=volume)
