"""A disk cache of preprocessed volumes (and decoded clips, and slice targets).

Loading a 512 x 512 x N NIfTI and resampling it costs far more than reading the result,
so each scan is preprocessed once and stored (float16 or uint8). The key hashes the source's
identity (absolute path, size, modification time; for a DICOM folder, those of every file in
it) and every preprocessing parameter, so editing a scan or a setting invalidates exactly its
entries.

An entry is never trusted blindly: it stores its own key and a CRC-32 of its values, and one
whose key or checksum does not match (a file replaced by another entry, truncated, corrupted)
is rebuilt from the source, with a warning that names it. Writes are atomic: a killed run
leaves no half-written entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ..errors import ConfigError, DataError

CACHE_VERSION = 2
_DTYPES = {"float16": np.float16, "uint8": np.uint8, "float32": np.float32}
CACHE_DTYPES = tuple(_DTYPES)
"""Storage types of cached volumes, the default first."""


def source_identity(path: str | os.PathLike) -> list:
    """What identifies a source's content cheaply: path, size and mtime of its file(s)."""
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def check_cache_dir(root: str | os.PathLike | None) -> None:
    """A ``DataError`` when ``root`` exists but is not a folder (checked before any work)."""
    if root is not None and Path(root).exists() and not Path(root).is_dir():
        raise DataError(f"--cache-dir {root} is an existing file; expected a folder for the cache")


def checksum(array: np.ndarray) -> int:
    """CRC-32 of an array's bytes."""
    return zlib.crc32(np.ascontiguousarray(array).view(np.uint8).reshape(-1)) & 0xFFFFFFFF


class VolumeCache:
    """Preprocessed arrays on disk, keyed by source identity and preprocessing parameters.

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
        self.hits = self.misses = self.rebuilt = 0

    def key(self, source: str | os.PathLike, params: dict) -> str:
        blob = json.dumps(
            {"v": CACHE_VERSION, "source": source_identity(source), "params": params, "dtype": self.dtype},
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def path_for(self, source: str | os.PathLike, params: dict) -> Path:
        return self.root / f"{self.key(source, params)}.npz"

    def get(self, source: str | os.PathLike, params: dict, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached float32 array for ``source``, computing and storing it on a miss or a bad entry."""
        key = self.key(source, params)
        entry = self.root / f"{key}.npz"
        if entry.is_file():
            stored = self._read(entry, key)
            if stored is not None:
                self.hits += 1
                return self._decode(stored)
            self.rebuilt += 1
        self.misses += 1
        encoded = self._encode(np.asarray(compute(), dtype=np.float32))
        atomic_write(entry, lambda tmp: _save_entry(tmp, encoded, key))
        return self._decode(encoded)

    def _read(self, entry: Path, key: str) -> np.ndarray | None:
        """The stored array, or ``None`` (with a warning) when the entry is unreadable or not this key's."""
        try:
            with np.load(entry, allow_pickle=False) as stored:
                values, stored_key, stored_crc = stored["values"], str(stored["key"]), int(stored["crc"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            reason = f"unreadable ({type(err).__name__}: {err})"
        else:
            if stored_key != key:
                reason = "holds another entry's data"
            elif checksum(values) != stored_crc:
                reason = "fails its checksum"
            else:
                return values
        warnings.warn(f"cache entry {entry} {reason}; rebuilding it from the source", stacklevel=4)
        return None

    def _encode(self, volume: np.ndarray) -> np.ndarray:
        if self.dtype == "uint8":
            return np.round(np.clip(volume, 0.0, 1.0) * 255.0).astype(np.uint8)
        return volume.astype(_DTYPES[self.dtype])

    def _decode(self, stored: np.ndarray) -> np.ndarray:
        if stored.dtype == np.uint8:
            return stored.astype(np.float32) / 255.0
        return np.array(stored, dtype=np.float32)


def _save_entry(path: Path, values: np.ndarray, key: str) -> None:
    with open(path, "wb") as handle:  # a file handle keeps numpy from appending ".npz"
        np.savez(handle, values=values, key=np.asarray(key), crc=np.asarray(checksum(values), dtype=np.uint64))
