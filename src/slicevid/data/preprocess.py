"""The CT preprocessing pipeline: load -> HU window -> resample -> clip.

Defaults follow the paper: window [-1000, 400] HU, SIZ (linear) to 70 x 224 x 224, clip to
[0, 1]. Every setting is part of `CTPreprocessing.params()`, which keys the cache and is
saved with every model trained on CT, so prediction preprocesses exactly as training did.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Literal, get_args

import numpy as np

from .._registry import check_choice
from ..errors import ConfigError
from ..resample import PAPER_SIZE, SELECTIONS, ZOOM_MODES, ZoomMode, select_slices, spline_interpolated_zoom
from .ct import DEFAULT_HU_WINDOW, NAN_POLICIES, NanPolicy, hu_window, load_ct

Resample = Literal["siz", "even", "first", "middle", "last", "native", "spacing"]
RESAMPLERS: tuple[str, ...] = get_args(Resample)
VARIABLE_DEPTH = ("native", "spacing")
"""Resampling modes that keep a depth of each scan's own (in-plane resize only)."""


@dataclass(frozen=True)
class CTPreprocessing:
    """How a raw scan becomes a model input ``(D, H, W)`` in [0, 1].

    Args:
        size: output ``(depth, height, width)``. Depth is ``None`` for the variable-depth modes.
        window: HU window ``(lo, hi)``.
        resample: how depth is made uniform. ``"siz"`` zooms all three axes (the paper's);
            ``"even"``, ``"first"``, ``"middle"``, ``"last"`` select slices; ``"native"`` keeps every
            slice; ``"spacing"`` resamples depth to ``slice_spacing`` mm between slices. Height
            and width are always zoomed to ``size``.
        order: interpolation order for zooming (0, 1 or 3).
        rotate90: rotate slices 90 degrees in-plane, as the ViPTT-Net reference did (its NIfTI orientation fix).
        zoom_mode: ``"nearest"`` (edge values, slicevid's default) or ``"constant"`` (scipy's
            default, as the authors called it: zeroes the last row and column of every slice).
        slice_spacing: millimetres between output slices for ``resample="spacing"``.
        nan_policy: ``"raise"`` on NaN or infinite voxels, or ``"replace"`` them by the window's
            lower bound with a warning naming the file.
    """

    size: tuple[int | None, int, int] = PAPER_SIZE
    window: tuple[float, float] = DEFAULT_HU_WINDOW
    resample: Resample = "siz"
    order: int = 1
    rotate90: bool = False
    zoom_mode: ZoomMode = "nearest"
    slice_spacing: float | None = None
    nan_policy: NanPolicy = "raise"

    def __post_init__(self) -> None:
        for name, choices in (
            ("resample", RESAMPLERS),
            ("zoom_mode", ZOOM_MODES),
            ("nan_policy", NAN_POLICIES),
            ("order", (0, 1, 3)),
        ):
            object.__setattr__(self, name, check_choice(name, getattr(self, name), choices))
        depth, height, width = self.size
        if self.variable_depth != (depth is None):
            raise ConfigError(
                "depth",
                f"must be None exactly when resample is one of {VARIABLE_DEPTH}; "
                f"got size={self.size} with resample={self.resample!r}",
            )
        if any(s is not None and int(s) < 1 for s in self.size):
            raise ConfigError("size", f"must hold positive integers, got {self.size}")
        if (self.resample == "spacing") != (self.slice_spacing is not None):
            raise ConfigError("slice_spacing", "is needed with resample='spacing', and only then")
        if self.slice_spacing is not None and not self.slice_spacing > 0:
            raise ConfigError("slice_spacing", f"must be positive, got {self.slice_spacing}")
        object.__setattr__(self, "size", (None if depth is None else int(depth), int(height), int(width)))
        object.__setattr__(self, "window", tuple(float(w) for w in self.window))

    @property
    def variable_depth(self) -> bool:
        """True when every scan keeps a depth of its own (batches then need padding and lengths)."""
        return self.resample in VARIABLE_DEPTH

    def params(self) -> dict:
        """A JSON-able description of every setting (part of the cache key, saved with models)."""
        values = asdict(self)
        values["size"], values["window"] = list(self.size), list(self.window)
        return values

    @classmethod
    def from_params(cls, values: dict) -> CTPreprocessing:
        """Rebuild from `params()` output."""
        return cls(**{**values, "size": tuple(values["size"]), "window": tuple(values["window"])})

    def __call__(self, path: str | os.PathLike, series: str | int | None = None) -> np.ndarray:
        """Load and preprocess one scan to float32 ``(D, H, W)`` in [0, 1].

        ``series`` picks one series of a DICOM folder (see [`load_ct()`][slicevid.data.load_ct]).
        """
        volume, spacing = load_ct(
            path, rotate90=self.rotate90, nan_policy=self.nan_policy, nan_value=self.window[0], series=series
        )
        return self.apply(volume, spacing)

    def apply(self, volume_hu: np.ndarray, spacing: tuple[float, float, float] | None = None) -> np.ndarray:
        """Preprocess a volume already in memory (HU, ``(D, H, W)``, ``spacing`` in mm per axis)."""
        volume = self.resample_volume(hu_window(volume_hu, *self.window), spacing)
        return np.clip(volume, 0.0, 1.0, out=volume)

    def resample_volume(
        self, volume: np.ndarray, spacing: tuple[float, float, float] | None, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The geometric step alone: select or zoom depth, zoom height and width (to ``size``, if given)."""
        depth = self.output_depth(volume.shape[0], spacing)
        if self.resample in SELECTIONS:
            volume = select_slices(volume, depth, how=self.resample)
        target = (depth, *(size or self.size[1:]))
        return spline_interpolated_zoom(volume, target, order=self.order, mode=self.zoom_mode)

    def resample_profile(self, profile: np.ndarray, spacing: tuple[float, float, float] | None) -> np.ndarray:
        """A value per slice ``(D,)`` (a slice label, a lesion's share) mapped to the output slices, linearly."""
        column = np.asarray(profile, dtype=np.float32)[:, None, None]
        zoomed = replace(self, order=1, zoom_mode="nearest").resample_volume(column, spacing, size=(1, 1))
        return np.clip(zoomed[:, 0, 0], 0.0, 1.0)

    def output_depth(self, depth: int, spacing: tuple[float, float, float] | None) -> int:
        """The depth a scan of ``depth`` slices at ``spacing`` (mm, depth first) has after preprocessing."""
        if self.resample == "native":
            return depth
        if self.resample == "spacing":
            if spacing is None:
                raise ConfigError("resample='spacing'", "needs the scan's voxel spacing")
            return max(1, round(depth * spacing[0] / self.slice_spacing))
        return self.size[0]


AUTHORS_CT_PREPROCESSING = CTPreprocessing(rotate90=True, zoom_mode="constant")
"""The authors' CT preprocessing: slices rotated by 90 degrees, scipy's ``zoom`` with its default
``mode="constant"`` to 70 x 224 x 224, the paper's HU window."""
