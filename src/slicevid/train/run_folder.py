"""A training run's folder: refused when it holds another run, locked while in use, never lost.

* A folder that already holds a run is not overwritten silently: ``resume`` continues it,
  ``overwrite`` replaces it, anything else is an error that says which. ``resume`` on a folder
  without a run is an error too, not a silent fresh start.
* ``overwrite`` never destroys the old run before its replacement exists: the old run's files
  move aside (into ``.replaced-run/``) and are deleted only once the new run has written its
  first checkpoint. If the new run fails, or is killed, before that, the old run is put back
  (at once, or by the next run that opens the folder).
* Only files ``fit`` writes (`RUN_FILES`) are ever moved or deleted; anything else in the
  folder is left alone.
* A lock (``fcntl.flock`` on ``.lock``, released by the kernel even when the process is
  killed) keeps two runs from writing into one folder at once; the lock file is removed when
  the run ends.
* Temporary files a killed write left behind (``.<name>.<random>.slicevid-tmp<suffix>``) are removed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .._io import TEMP_GLOB
from ..errors import RunFolderError
from .checkpoint import LAST_CHECKPOINT

LOCK_NAME = ".lock"
REPLACED = ".replaced-run"
RUN_FILES = (
    LAST_CHECKPOINT,
    "best",
    "metrics.csv",
    "config.yaml",
    "report.json",
    "curves.png",
    "confusion.png",
    "montage.png",
)
"""What ``fit`` writes into every run folder."""
OPTIONAL_RUN_FILES = ("tensorboard", "roc*.png", "reliability*.png", "confusion-*.png")
"""What ``fit`` writes for some runs (patterns; ``overwrite`` moves these aside too, and nothing else)."""


def run_entries(path: Path) -> list[str]:
    """The names in ``path`` that a run wrote (`RUN_FILES` and matches of `OPTIONAL_RUN_FILES`)."""
    present = {entry.name for entry in path.iterdir()} if path.is_dir() else set()
    patterns = RUN_FILES + OPTIONAL_RUN_FILES
    return sorted(name for name in present if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))


def check_run_folder(path: str | os.PathLike, *, resume: bool, overwrite: bool) -> Path:
    """Fail early, before any training, if ``path`` cannot take this run. Returns it as a ``Path``.

    Raises:
        RunFolderError: ``path`` is a file, holds another run (without ``resume``/``overwrite``),
            or holds no run to resume.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"--out {path} is an existing file; expected a folder for the run")
    existing = [name for name in RUN_FILES if (path / name).exists()]
    checkpoint = (path / LAST_CHECKPOINT).is_file() or (path / REPLACED / LAST_CHECKPOINT).is_file()
    if existing and not (resume or overwrite):
        if not checkpoint:
            raise RunFolderError(
                f"--out {path} holds a run that stopped before its first checkpoint ({', '.join(existing)}): "
                "there is nothing to resume; pass --overwrite to start it again"
            )
        raise RunFolderError(
            f"--out {path} already holds a run ({', '.join(existing)}); pass --resume to continue "
            "it or --overwrite to replace it"
        )
    if resume and not checkpoint:
        stopped = " (it stopped before its first checkpoint; pass --overwrite instead)" if existing else ""
        raise RunFolderError(f"--resume: {path} holds no run to resume ({LAST_CHECKPOINT} not found){stopped}")
    return path


class RunFolder:
    """An open run folder; `commit()` is called once the new run has its first checkpoint."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaced = path / REPLACED

    def set_aside(self) -> None:
        """Move the files of the run this one replaces into ``.replaced-run/``."""
        self.replaced.mkdir()
        for name in run_entries(self.path):
            os.replace(self.path / name, self.replaced / name)

    def commit(self) -> None:
        """The new run exists: delete the replaced one."""
        if self.replaced.exists():
            shutil.rmtree(self.replaced)

    def restore(self) -> None:
        """The new run failed before its first checkpoint: remove what it wrote, put the old run back."""
        if not self.replaced.exists():
            return
        for name in run_entries(self.path):
            _remove(self.path / name)
        for name in run_entries(self.replaced):
            os.replace(self.replaced / name, self.path / name)
        self.replaced.rmdir()

    def recover(self) -> None:
        """Settle what a killed run left: a replacement with a checkpoint stays, one without is undone."""
        if not self.replaced.exists():
            return
        if (self.path / LAST_CHECKPOINT).is_file():
            self.commit()
        else:
            self.restore()


def _remove(target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)


@contextlib.contextmanager
def open_run_folder(path: str | os.PathLike, *, resume: bool, overwrite: bool) -> Iterator[RunFolder]:
    """Check, create, lock and tidy the run folder for the duration of the block.

    With ``overwrite`` the old run is set aside; leaving the block with an exception before
    `RunFolder.commit()` puts it back.
    """
    path = check_run_folder(path, resume=resume, overwrite=overwrite)
    path.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        folder = RunFolder(path)
        folder.recover()
        remove_orphaned_temp_files(path)
        if overwrite and run_entries(path):
            folder.set_aside()
        try:
            yield folder
        except BaseException:
            folder.restore()
            raise
        folder.commit()


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
    lock = path / LOCK_NAME
    handle = open(lock, "a+")  # noqa: SIM115 - held open for the lock's lifetime
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
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # still holding the lock, so no other run sees a half-removed one
    finally:
        handle.close()
