"""``ClipSettings``: how a video becomes a model input, the video twin of `CTPreprocessing`.

One dataclass holds every clip setting, so the UCF readers, the pytorchvideo adapter, the
command line (its options are generated from these fields) and recipes share one source of
defaults: the paper's first 70 frames at 224 x 224, grayscale, in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .._registry import check_choice, check_literal_fields
from ..errors import ConfigError
from ..resample import PAPER_SIZE

VALUE_RANGES = ((0.0, 1.0), (0.0, 255.0))


@dataclass(frozen=True)
class ClipSettings:
    """How a video becomes a clip ``(1, num_frames, size, size)``.

    Attributes:
        num_frames: frames per clip (70 in the paper).
        size: frame height and width (224 in the paper).
        frames: "first" (the first num_frames, as the paper) or "uniform" (spread evenly over the video).
        short: videos with fewer frames: "drop" them (the paper) or "pad" by repeating the last frame.
        value_range: frame values in (0, 1), or raw (0, 255) as the authors fed them in pretraining.
    """

    num_frames: int = field(default=PAPER_SIZE[0], metadata={"flags": ("--num-frames", "--depth")})
    size: int = PAPER_SIZE[1]
    frames: Literal["first", "uniform"] = "first"
    short: Literal["drop", "pad"] = "drop"
    value_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("num_frames", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(name, f"must be a positive integer, got {value!r}")
        check_literal_fields(self)
        value_range = tuple(float(v) for v in self.value_range)
        object.__setattr__(self, "value_range", check_choice("value_range", value_range, VALUE_RANGES))

    def merged(self, **overrides: Any) -> ClipSettings:
        """These settings with the given (not ``None``) overrides."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def params(self) -> dict[str, Any]:
        """What a decoded clip depends on (the cache key; the value range is applied after the cache)."""
        return {"num_frames": self.num_frames, "size": self.size, "frames": self.frames, "kind": "video clip"}

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["value_range"] = list(self.value_range)
        return values
