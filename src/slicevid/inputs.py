"""From input volumes to encoder inputs: validation, channel adapters and 2.5D slice context.

A volume ``(B, C, D, H, W)`` reaches the 2D encoder as ``B * D`` slices. Two steps shape
their channels: `stack_slice_context()` gives each slice its neighbours as extra
channels (2.5D input), and an adapter (`make_adapter()`) turns those channels into what
the encoder takes: the paper's learnable 1x1x1 convolution to 3 channels, a tiling of one
channel, or nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import ConfigError


class RepeatChannels(nn.Module):
    """Tile a single channel to ``channels`` copies (a pseudo-RGB image)."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return x.expand(-1, self.channels, *x.shape[2:])


def make_adapter(kind: str, channels: int) -> nn.Module:
    """The adapter ``kind`` for slices of ``channels`` channels (``"none"`` leaves them as they are)."""
    if kind == "conv":  # the paper's learnable 1x1x1 convolution with bias
        return nn.Conv3d(channels, 3, kernel_size=1, bias=True)
    if kind == "repeat":
        if channels != 1:
            raise ConfigError("adapter='repeat'", f"needs one input channel per slice, got {channels}")
        return RepeatChannels(3)
    return nn.Identity()


def stack_slice_context(x: Tensor, context: int, lengths: Tensor | None = None) -> Tensor:
    """``(B, C, D, H, W)`` -> ``(B, C * (2k + 1), D, H, W)``: each slice with ``k`` neighbours per side.

    Neighbours beyond a volume's first or last real slice repeat that edge slice, so padding
    never leaks in. Channels are ordered by input channel, then by offset ``-k .. k``.
    """
    if context == 0:
        return x
    batch, channels, depth = x.shape[:3]
    offsets = torch.arange(-context, context + 1, device=x.device)
    last = (lengths.to(x.device) - 1) if lengths is not None else torch.full((batch,), depth - 1, device=x.device)
    index = torch.arange(depth, device=x.device)[None, :, None] + offsets[None, None, :]  # (1, D, 2k+1)
    index = torch.minimum(index.clamp(min=0), last[:, None, None]).reshape(batch, -1)  # (B, D * (2k+1))
    gathered = x[torch.arange(batch, device=x.device)[:, None], :, index]  # (B, D*(2k+1), C, H, W)
    gathered = gathered.reshape(batch, depth, 2 * context + 1, channels, *x.shape[3:])
    return gathered.permute(0, 3, 2, 1, 4, 5).reshape(batch, channels * (2 * context + 1), depth, *x.shape[3:])


def validate_batch(
    x: Tensor, lengths: Tensor | None, channels: int, dtype: torch.dtype
) -> tuple[Tensor, Tensor | None]:
    """``x`` as a ``(B, C, D, H, W)`` batch of ``dtype`` (other float widths are cast), ``lengths`` as a tensor.

    Raises:
        ValueError: wrong type, shape, channel count or dtype; an empty batch or depth; lengths
            that do not fit the batch. The message names the layout expected.
    """
    expected = f"must be a float tensor of shape (B, C={channels}, D, H, W)"
    if not isinstance(x, Tensor):
        raise ConfigError("input", f"{expected}, got {type(x).__name__}")
    if x.ndim != 5:
        hint = " (add a batch dimension with x[None])" if x.ndim == 4 else ""
        raise ConfigError("input", f"{expected}, got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise ConfigError("input", f"{expected}, got {x.shape[1]} channels in shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ConfigError("input", f"{expected}, got dtype {x.dtype}; scale intensities to [0, 1] floats")
    if 0 in x.shape:
        raise ConfigError("input", f"{expected} with at least one sample and one slice, got shape {tuple(x.shape)}")
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=x.device)
        if lengths.shape != (x.shape[0],) or lengths.is_floating_point():
            raise ConfigError("lengths", f"must be {x.shape[0]} integers, one per sample; got {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[2]:
            raise ConfigError("lengths", f"must lie in 1..{x.shape[2]} (the padded depth), got {lengths.tolist()}")
    return x.to(dtype), lengths
