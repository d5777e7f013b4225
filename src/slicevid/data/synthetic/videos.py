"""Action-like videos in the UCF50 layout, built from the phantoms' lesion primitives.

Each of the ten classes is one way a primitive (a blob, a ring, a cluster of dots or a
textured patch) appears, grows, moves or vanishes over time. Five of them are what the
phantom lesions look like when their slices are played as frames: a blob that appears,
swells and vanishes (a sphere crossing the slices), a blob that does so three times (a
column of nodules), a ring that does so (a cavity), many dots each seen briefly (miliary
nodules), a textured patch fading in and out (consolidation). The other five are motion:
sliding, a ring sliding, growing, shrinking (the exact time reversal of growing, so only
the order of frames tells the two apart) and splitting.

Position, size, timing and colours are random per clip; clips of one group ``gNN`` share
a background, as UCF groups share a scene.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..._io import atomic_write
from ...errors import ConfigError
from ..ucf import UCF50_PAPER_CLASSES

Frame = Callable[[float], list[tuple[str, float, float, float, float]]]
"""A scene: time in [0, 1] -> primitives ``(shape, x, y, radius, strength)`` (strength 1 = foreground colour)."""


def _window(t: float, start: float, duration: float) -> float:
    """Cross-section factor of a sphere crossed between ``start`` and ``start + duration``: 0 outside."""
    u = (t - start) / duration * 2 - 1
    return float(np.sqrt(1 - u * u)) if abs(u) < 1 else 0.0


def _direction(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def _radius(rng, kind: str) -> float:
    """Blobs 12-25% of the half-frame across; rings larger, so their hole stays visible."""
    return rng.uniform(0.18, 0.3) if kind == "ring" else rng.uniform(0.12, 0.25)


def _pass(rng, kind="blob"):
    (x, y), radius = rng.uniform(-0.5, 0.5, 2), _radius(rng, kind)
    duration = rng.uniform(0.35, 0.6)
    start = rng.uniform(0, 1 - duration)
    return lambda t: [(kind, x, y, radius * _window(t, start, duration), 1.0)]


def _blink(rng):
    (x, y), radius = rng.uniform(-0.5, 0.5, 2), _radius(rng, "blob")
    duration, gap = rng.uniform(0.13, 0.17), rng.uniform(0.1, 0.13)
    start = rng.uniform(0, 1 - 3 * duration - 2 * gap)
    starts = [start + k * (duration + gap) for k in range(3)]
    return lambda t: [("blob", x, y, radius * max(_window(t, s, duration) for s in starts), 1.0)]


def _twinkle(rng):
    count = rng.integers(15, 30)
    points, radii = rng.uniform(-0.8, 0.8, (count, 2)), rng.uniform(0.05, 0.08, count)
    durations = rng.uniform(0.12, 0.25, count)
    starts = rng.uniform(0, 1, count) * (1 - durations)
    return lambda t: [
        ("blob", px, py, r * _window(t, s, d), 1.0)
        for (px, py), r, s, d in zip(points, radii, starts, durations, strict=True)
    ]


def _patch(rng):
    """Constant size, fading strength: the other "appear and vanish" classes grow and shrink instead."""
    (x, y), radius = rng.uniform(-0.4, 0.4, 2), rng.uniform(0.35, 0.5)
    duration = rng.uniform(0.5, 0.8)
    start = rng.uniform(0, 1 - duration)
    return lambda t: [("patch", x, y, radius, _window(t, start, duration))]


def _slide(rng, kind="blob"):
    radius, heading = _radius(rng, kind), _direction(rng)
    origin = -heading * 0.7 + rng.uniform(-0.2, 0.2, 2)
    return lambda t: [(kind, *(origin + heading * 1.4 * t), radius, 1.0)]


def _grow(rng, reverse=False):
    (x, y), radius = rng.uniform(-0.4, 0.4, 2), rng.uniform(0.2, 0.32)
    return lambda t: [("blob", x, y, radius * (0.15 + 0.85 * ((1 - t) if reverse else t)), 1.0)]


def _split(rng):
    (x, y), radius, heading = rng.uniform(-0.3, 0.3, 2), rng.uniform(0.1, 0.18), _direction(rng)
    return lambda t: [
        ("blob", x + sign * heading[0] * 0.55 * t, y + sign * heading[1] * 0.55 * t, radius, 1.0) for sign in (-1, 1)
    ]


MOTIONS: tuple[tuple[str, Callable[[np.random.Generator], Frame]], ...] = (
    ("a blob appears, swells and vanishes", _pass),
    ("a blob appears and vanishes three times", _blink),
    ("a ring appears, swells and vanishes", lambda rng: _pass(rng, "ring")),
    ("many small dots, each seen briefly", _twinkle),
    ("a textured patch fades in and out", _patch),
    ("a blob slides across", _slide),
    ("a ring slides across", lambda rng: _slide(rng, "ring")),
    ("a blob grows", _grow),
    ("a blob shrinks", lambda rng: _grow(rng, reverse=True)),
    ("a blob splits in two", _split),
)
"""What each class shows, in class order (class ``k`` of ``write_action_videos`` is ``MOTIONS[k]``)."""


def make_action_clip(
    kind: int, frames: int, size: int, rng: np.random.Generator, background: Sequence[float] = (60, 60, 60)
) -> np.ndarray:
    """One clip of motion class ``kind`` (0..9): ``(frames, size, size, 3)`` uint8 RGB."""
    if kind not in range(len(MOTIONS)):
        raise ConfigError("kind", f"must be 0..{len(MOTIONS) - 1}, got {kind}")
    from scipy.ndimage import gaussian_filter

    scene = MOTIONS[kind][1](rng)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    foreground = rng.uniform(170, 255, size=3)
    texture = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 24) > 0
    noise = rng.normal(0, 6, size=(size, size, 3))
    clip = np.empty((frames, size, size, 3), np.float32)
    for index in range(frames):
        frame = np.empty((size, size, 3), np.float32)
        frame[:] = background
        for shape, cx, cy, radius, strength in scene(index / max(frames - 1, 1)):
            if radius <= 0 or strength <= 0:
                continue
            distance = np.hypot(xx - cx, yy - cy)
            mask = distance < radius
            if shape == "ring":
                mask &= distance >= radius * 0.55
            elif shape == "patch":
                mask &= texture
            frame[mask] = strength * foreground + (1 - strength) * frame[mask]
        clip[index] = frame + noise
    return np.clip(clip, 0, 255).astype(np.uint8)


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 25) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames as an MPEG-4 AVI with PyAV (atomically)."""
    import av

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="avi") as container:
            stream = container.add_stream("mpeg4", rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = 4_000_000
            for image in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())

    atomic_write(path, encode)


def write_action_videos(
    root: str | os.PathLike,
    classes: Sequence[str] = UCF50_PAPER_CLASSES,
    n_per_class: int = 4,
    frames: int = 40,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Write encoded clips in the UCF50 layout: ``root/<Class>/v_<Class>_gNN_cNN.avi``.

    Class ``k`` (up to 10) shows `MOTIONS` ``[k]``; the names only label the folders.
    Two clips per group ``gNN``; groups share a background colour.

    Returns:
        ``root``.
    """
    if len(classes) > len(MOTIONS):
        raise ConfigError("classes", f"must name {len(MOTIONS)} classes (one per motion), got {len(classes)}")
    if size % 2:
        raise ConfigError("size", f"must be even for MPEG-4, got {size}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind, name in enumerate(classes):
        for clip in range(n_per_class):
            group = clip // 2 + 1
            background = np.random.default_rng([seed, group]).uniform(20, 90, size=3)
            images = make_action_clip(kind, frames, size, rng, background)
            write_video(root / name / f"v_{name}_g{group:02d}_c{clip % 2 + 1:02d}.avi", images)
    return root
