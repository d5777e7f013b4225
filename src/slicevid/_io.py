"""Atomic file writes: write to a temporary file beside the target, then rename.

A run killed mid-write leaves either the old file or the new one, never half of one; the
temporary file it may leave (``.<name>.<random>.slicevid-tmp<suffix>``) is recognisable by
`TEMP_GLOB` and cleaned up by the next run in that folder. Written files get the
permissions the process's umask gives new files (``tempfile`` alone would make them 0600).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputError

TEMP_MARKER = ".slicevid-tmp"
TEMP_GLOB = f".*{TEMP_MARKER}*"


@functools.cache
def _file_mode() -> int:
    """``0o666`` less the umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success it is fsynced and renamed onto ``target``.

    Raises:
        OutputError: ``target`` is a folder, or its folder cannot be written (a full disk, no
            permission); ``target`` is untouched.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target} is a folder; expected a file name to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Keep the target's suffixes so writers that pick a format by extension still work.
        suffix = TEMP_MARKER + "".join(target.suffixes)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
        os.close(fd)
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err}") from err
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, _file_mode())
        os.replace(tmp_path, target)
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write {target}: {err.strerror or err}") from err
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(target: str | os.PathLike, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target) as tmp:
        write(tmp)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Atomically replace ``target`` with ``text`` (UTF-8)."""
    atomic_write(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))
