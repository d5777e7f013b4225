"""A training run's folder: refused when it holds another run, locked while in use, tidied on entry.

* A folder that already holds a run is not overwritten silently: ``resume`` continues it,
  ``overwrite`` replaces it, anything else is an error that says which.
* A lock (``fcntl.flock`` on ``.lock``, released by the kernel even when the process is
  killed) keeps two runs from writing into one folder at once.
* Temporary files a killed write left behind (``.<name>.<random>.tmp<suffix>``) are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .._io import TEMP_GLOB
from ..errors import RunFolderError

LOCK_NAME = ".lock"
RUN_FILES = (
    "last.safetensors",
    "best",
    "metrics.csv",
    "config.yaml",
    "report.json",
    "curves.png",
    "confusion.png",
    "montage.png",
)
"""What ``fit`` writes into a run folder (``overwrite`` removes exactly these)."""


def check_run_folder(path: str | os.PathLike, *, resume: bool, overwrite: bool) -> Path:
    """Fail early, before any training, if ``path`` cannot take this run. Returns it as a ``Path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path} is an existing file; expected a folder for the run")
    existing = [name for name in RUN_FILES if (path / name).exists()]
    if existing and not (resume or overwrite):
        raise RunFolderError(
            f"--out {path} already holds a run ({', '.join(existing)}); pass --resume to continue "
            "it or --overwrite to replace it"
        )
    return path


@contextlib.contextmanager
def open_run_folder(path: str | os.PathLike, *, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Create, check, tidy and lock the run folder for the duration of the block."""
    path = check_run_folder(path, resume=resume, overwrite=overwrite)
    path.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        remove_orphaned_temp_files(path)
        if overwrite:
            for name in RUN_FILES:
                target = path / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
        yield path


def remove_orphaned_temp_files(path: Path) -> list[Path]:
    """Delete temporary files of interrupted atomic writes in ``path`` and ``path/best``."""
    orphans = [p for folder in (path, path / "best") if folder.is_dir() for p in folder.glob(TEMP_GLOB)]
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the other checks still apply
        yield
        return
    handle = open(path / LOCK_NAME, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise RunFolderError(
                f"--out {path} is in use by another run ({owner}); wait for it or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
