"""Exception types users can catch.

Every error slicevid raises about what it was *given* (a file, a label, a setting, a tensor)
is a `SlicevidError`, with a message that names the file or argument and what was
expected. The command line prints those as one line and exits with status 2; anything else
is a bug and keeps its traceback.

Each type also subclasses the built-in exception a Python user would expect (``ValueError``,
``KeyError``, ``FileNotFoundError`` ...), so generic handlers keep working.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence


class SlicevidError(Exception):
    """Base of every error about slicevid's inputs: files, labels, settings, tensors, run folders."""


class ConfigError(SlicevidError, ValueError):
    """A setting or argument is invalid.

    Args:
        setting: the setting's name as Python spells it (``"lr"``, ``"window"``); the command
            line shows the matching ``--flag`` instead.
        reason: what is wrong, phrased to follow the name (``"must be positive, got -1"``).
    """

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting} {reason}")
        self.setting, self.reason = setting, reason


class DataError(SlicevidError, ValueError):
    """A data file or label is missing, unreadable or not what slicevid expects."""


class UnknownNameError(SlicevidError, KeyError):
    """A name (encoder, aggregator, recipe, column ...) is not known; the message suggests close ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(SlicevidError, FileNotFoundError):
    """Pretrained weights were asked for but are not available locally."""


class CheckpointError(SlicevidError, ValueError):
    """A checkpoint or exported model is unreadable, or does not fit what it is used for."""


class RunFolderError(SlicevidError, ValueError):
    """A run folder cannot be used as asked (a file, another run's, locked, or a refused resume)."""


class OutputError(SlicevidError, OSError):
    """A result could not be written (no permission, a full disk, a folder where a file should go)."""


class TrainingDivergedError(SlicevidError, RuntimeError):
    """The training or validation loss became NaN or infinite, or exploded."""


def warn_skipped(what: str, reasons: Sequence[str], stacklevel: int = 3) -> None:
    """One warning listing (up to five of) the reasons ``what`` items were skipped."""
    if reasons:
        more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
        warnings.warn(f"Skipped {len(reasons)} {what}: " + "; ".join(reasons[:5]) + more, stacklevel=stacklevel)
