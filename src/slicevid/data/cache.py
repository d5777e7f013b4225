"""A disk cache of preprocessed volumes.

Loading a 512 x 512 x N NIfTI and resampling it costs far more than reading the result,
so each scan is preprocessed once and stored as a ``.npy`` file (float16 or uint8),
memory-mapped on read. The key hashes the source's identity (absolute path, size,
modification time; for a DICOM folder, those of every file in it) and every
preprocessing parameter, so editing a scan or a setting invalidates exactly its entries.
Writes are atomic: a killed run leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..errors import ConfigError, DataError

CACHE_VERSION = 1
_DTYPES = {"float16": np.float16, "uint8": np.uint8, "float32": np.float32}


def source_identity(path: str | os.PathLike) -> list:
    """What identifies a source's content cheaply: path, size and mtime of its file(s)."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def check_cache_dir(root: str | os.PathLike | None) -> None:
    """A ``DataError`` when ``root`` exists but is not a folder (checked before any work)."""
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise DataError(f"--cache-dir {root} is an existing file; expected a folder for the cache")


class VolumeCache:
    """Preprocessed volumes on disk, keyed by source identity and preprocessing parameters.

    Args:
        root: cache folder (created if needed).
        dtype: storage type, ``"float16"`` (default, ~1e-3 precision), ``"uint8"`` (1/255
            steps, half the size) or ``"float32"`` (exact).
    """

    def __init__(self, root: str | os.PathLike, dtype: str = "float16") -> None:
        if dtype not in _DTYPES:
            raise ConfigError("dtype", f"must be one of {sorted(_DTYPES)}, got {dtype!r}")
        check_cache_dir(root)
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype
        self.hits = self.misses = 0

    def key(self, source: str | os.PathLike, params: dict) -> str:
        blob = json.dumps(
            {"v": CACHE_VERSION, "source": source_identity(source), "params": params, "dtype": self.dtype},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def path_for(self, source: str | os.PathLike, params: dict) -> Path:
        return self.root / f"{self.key(source, params)}.npy"

    def get(self, source: str | os.PathLike, params: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached float32 volume for ``source``, computing and storing it on a miss."""
        entry = self.path_for(source, params)
        if entry.is_file():
            self.hits += 1
            return self._decode(np.load(entry, mmap_mode="r"))
        self.misses += 1
        volume = np.asarray(compute(), dtype=np.float32)
        encoded = self._encode(volume)
        atomic_write(entry, lambda tmp: _save_npy(tmp, encoded))
        return self._decode(encoded)

    def _encode(self, volume: np.ndarray) -> np.ndarray:
        if self.dtype == "uint8":
            return np.round(np.clip(volume, 0.0, 1.0) * 255.0).astype(np.uint8)
        return volume.astype(_DTYPES[self.dtype])

    def _decode(self, stored: np.ndarray) -> np.ndarray:
        if stored.dtype == np.uint8:
            return stored.astype(np.float32) / 255.0
        return np.array(stored, dtype=np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a file handle keeps np.save from appending ".npy"
        np.save(handle, array)
