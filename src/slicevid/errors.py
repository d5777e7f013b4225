"""Exception types users can catch.

Every problem with input *data* (a missing scan, a corrupt file, an unknown label, a
NaN volume, an undecodable video) raises :class:`DataError`, whose message names the
file and what was expected. It subclasses ``ValueError`` so generic handlers still work.
"""

from __future__ import annotations


class DataError(ValueError):
    """A data file or label is missing, unreadable or not what slicevid expects."""


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were asked for but are not available locally."""


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""
