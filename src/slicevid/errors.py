"""Exception types users can catch.

Every problem with input *data* (a missing scan, a corrupt file, an unknown label, a
NaN volume, an undecodable video) raises :class:`DataError`, whose message names the
file and what was expected. It subclasses ``ValueError`` so generic handlers still work.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence


class DataError(ValueError):
    """A data file or label is missing, unreadable or not what slicevid expects."""


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were asked for but are not available locally."""


class TrainingDivergedError(RuntimeError):
    """The training or validation loss became NaN or infinite, or exploded."""


def warn_skipped(what: str, reasons: Sequence[str], stacklevel: int = 3) -> None:
    """One warning listing (up to five of) the reasons ``what`` items were skipped."""
    if reasons:
        more = f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
        warnings.warn(f"Skipped {len(reasons)} {what}: " + "; ".join(reasons[:5]) + more, stacklevel=stacklevel)
