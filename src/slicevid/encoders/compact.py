"""``"compact_cnn"``: a CNN small enough to train from scratch on a CPU in minutes (the demo's encoder)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import WeightsNotFoundError
from .registry import register_encoder


class CompactCNN(nn.Module):
    """Conv-BatchNorm-ReLU-max-pool stages, then global average pooling: an encoder sized for CPUs.

    Args:
        in_chans: input channels.
        widths: channels of each stage; every stage halves height and width.
    """

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)


@register_encoder("compact_cnn")
def compact_cnn(weights: str | None = None, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128)) -> CompactCNN:
    """A small CNN trained from scratch (no named pretrained weights exist for it).

    Args:
        weights: must be ``None``; pass a weights file through ``encoder_weights`` instead.
        in_chans: input channels.
        widths: channels of each of the four stages.
    """
    if weights is not None:
        raise WeightsNotFoundError(f"compact_cnn has no {weights!r} weights; pass a weights file or None")
    return CompactCNN(in_chans, widths)
