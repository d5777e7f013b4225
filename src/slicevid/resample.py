"""Resampling volumes to a fixed depth and size: SIZ and slice selection.

Two ways to make every scan the same shape, both from the authors' earlier work on
uniformizing CT volumes:

* **SIZ** (spline interpolated zoom): zoom all three axes to a fixed size, so every
  slice contributes. ``order=1`` runs as trilinear interpolation in torch (CPU or GPU)
  and equals ``scipy.ndimage.zoom(v, factors, order=1, mode="nearest")``.

  The original pipeline called ``scipy.ndimage.zoom(v, factors, order=1)`` with scipy's
  default ``mode="constant"``: output coordinates that land a rounding error outside the
  input are then filled with 0 instead of the edge value, which with current SciPy zeroes
  the whole last row and last column of every slice (512 -> 224). slicevid uses the edge
  value (``"nearest"``), which equals trilinear interpolation with aligned corners;
  ``mode="constant"`` reproduces the authors' call exactly (through scipy).

* **Slice selection**: keep a subset of slices (spread evenly, or from the start,
  middle or end), leaving each kept slice untouched.

Arrays may be ``(D, H, W)`` or ``(C, D, H, W)``; numpy in gives numpy out, torch in gives
torch out on the same device.
"""

from __future__ import annotations

from typing import Literal, TypeVar, get_args

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
SELECTIONS = ("even", "first", "middle", "last")
PAPER_SIZE = (70, 224, 224)
"""(depth, height, width) the paper resamples every scan and clip to: the one place it is stated."""
ZoomMode = Literal["nearest", "constant"]
ZOOM_MODES: tuple[str, ...] = get_args(ZoomMode)


def _as_float_tensor(volume: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(volume) if isinstance(volume, np.ndarray) else volume
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (3, 4):
        shape = getattr(volume, "shape", None)
        raise ConfigError(f"{name} volume", f"must be a (D, H, W) or (C, D, H, W) array, got shape {shape}")
    return tensor if tensor.is_floating_point() else tensor.float()


def _like(result: torch.Tensor, original: ArrayT) -> ArrayT:
    return result.numpy() if isinstance(original, np.ndarray) else result


def spline_interpolated_zoom(
    volume: ArrayT, size: tuple[int, int, int] = PAPER_SIZE, order: int = 1, mode: str = "nearest"
) -> ArrayT:
    """Zoom ``volume`` so its last three axes have ``size`` (SIZ).

    Args:
        volume: ``(D, H, W)`` or ``(C, D, H, W)``, numpy array or torch tensor.
        size: target ``(depth, height, width)``; the paper's `PAPER_SIZE` by default.
        order: 0 (nearest), 1 (linear, in torch) or 3 (cubic spline, through scipy on CPU).
        mode: ``"nearest"`` (edge values) or ``"constant"``: scipy's default, which the authors
            used, and which zeroes the last row and column of every slice (through scipy on CPU).

    Returns:
        The zoomed volume, of the same kind (numpy or torch) and number of dimensions.
    """
    if len(size) != 3 or any(int(s) < 1 for s in size):
        raise ConfigError("size", f"must be three positive integers (D, H, W), got {size}")
    if mode not in ZOOM_MODES:
        raise ConfigError("mode", f"must be one of {ZOOM_MODES}, got {mode!r}")
    tensor = _as_float_tensor(volume, "spline_interpolated_zoom")
    if min(tensor.shape[-3:]) < 1:
        raise ConfigError("spline_interpolated_zoom volume", f"is empty: shape {tuple(tensor.shape)}")
    size = tuple(int(s) for s in size)
    if mode == "constant":
        if order not in (0, 1, 3):
            raise ConfigError("order", f"must be 0, 1 or 3, got {order}")
        result = _scipy_zoom(tensor, size, order=order, mode="constant")
    elif order == 1:
        batched = tensor.reshape(-1, 1, *tensor.shape[-3:])
        out = F.interpolate(batched, size=size, mode="trilinear", align_corners=True)
        result = out.reshape(*tensor.shape[:-3], *size)
    elif order == 0:
        result = tensor
        for axis, target in zip((-3, -2, -1), size, strict=True):
            result = result.index_select(axis, _aligned_indices(tensor.shape[axis], target, tensor.device))
    elif order == 3:
        result = _scipy_zoom(tensor, size, order=3, mode="nearest")
    else:
        raise ConfigError("order", f"must be 0, 1 or 3, got {order}")
    return _like(result, volume)


def _aligned_indices(length: int, target: int, device: torch.device) -> torch.Tensor:
    """Nearest source index for each output position, corners aligned (scipy's grid)."""
    if target == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    positions = torch.arange(target, dtype=torch.float64, device=device) * (length - 1) / (target - 1)
    return positions.round().long().clamp_(0, length - 1)


def _scipy_zoom(tensor: torch.Tensor, size: tuple[int, int, int], order: int, mode: str) -> torch.Tensor:
    from scipy import ndimage

    array = tensor.detach().cpu().numpy()
    factors = (1,) * (array.ndim - 3) + tuple(t / s for t, s in zip(size, array.shape[-3:], strict=True))
    zoomed = ndimage.zoom(array, factors, order=order, mode=mode, grid_mode=False)
    return torch.from_numpy(np.ascontiguousarray(zoomed)).to(tensor.device)


class SIZ:
    """Transform form of `spline_interpolated_zoom()`, clipping the result to ``clip``.

    Args:
        size: target ``(depth, height, width)``.
        order: interpolation order, 0, 1 or 3.
        clip: ``(low, high)`` to clip to afterwards (the paper clips to [0, 1]), or ``None``.
    """

    def __init__(
        self,
        size: tuple[int, int, int] = PAPER_SIZE,
        order: int = 1,
        clip: tuple[float, float] | None = (0.0, 1.0),
    ) -> None:
        self.size, self.order, self.clip = tuple(size), order, clip

    def __call__(self, volume: ArrayT) -> ArrayT:
        out = spline_interpolated_zoom(volume, self.size, self.order)
        if self.clip is not None:
            out = out.clip(*self.clip)
        return out

    def __repr__(self) -> str:
        return f"SIZ(size={self.size}, order={self.order}, clip={self.clip})"


def select_slices(volume: ArrayT, num_slices: int, how: str = "even") -> ArrayT:
    """Keep ``num_slices`` slices along depth, repeating slices when the scan is shorter.

    Args:
        volume: ``(D, H, W)`` or ``(C, D, H, W)``.
        num_slices: how many slices to keep.
        how: ``"even"`` (spread evenly over the scan), ``"first"``, ``"middle"`` or ``"last"``.
            A short scan is padded by repeating its edge slices (``"even"`` repeats evenly).
    """
    if how not in SELECTIONS:
        raise ConfigError("how", f"must be one of {SELECTIONS}, got {how!r}")
    if num_slices < 1:
        raise ConfigError("num_slices", f"must be >= 1, got {num_slices}")
    tensor = torch.as_tensor(volume) if isinstance(volume, np.ndarray) else volume
    if tensor.ndim not in (3, 4):
        raise ConfigError("select_slices volume", f"must be (D, H, W) or (C, D, H, W), got shape {tuple(tensor.shape)}")
    depth = tensor.shape[-3]
    if how == "even":
        index = torch.from_numpy(np.linspace(0, depth - 1, num_slices).round().astype(np.int64))
    else:
        start = {"first": 0, "middle": (depth - num_slices) // 2, "last": depth - num_slices}[how]
        index = torch.arange(start, start + num_slices).clamp(0, depth - 1)
    return _like(tensor.index_select(-3, index.to(tensor.device)), volume)
