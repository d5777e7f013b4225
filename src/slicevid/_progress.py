"""Progress bars that stay out of logs: shown on a terminal when asked, never written into a captured log.

Every bar slicevid draws goes through `progress_bar()`: ``enabled=False`` (``--no-progress``,
``progress: false`` in a recipe) hides it, and so does an output that is not a terminal (a
log file, a pipe, CI), which would otherwise fill with carriage-return updates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any):
    """A ``tqdm`` bar over ``iterable`` (``options`` are tqdm's), drawn only when enabled and on a terminal."""
    from tqdm import tqdm  # not tqdm.auto: its asyncio base starts a DataLoader an extra time

    return tqdm(iterable, disable=None if enabled else True, **options)  # None: off when stderr is not a TTY
