"""A tiny name -> builder registry with ``create`` / ``list`` / ``register`` verbs.

Used for encoders and aggregators. Unknown names fail with the closest valid names,
so a typo like ``"lstn"`` tells the user what they meant.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builder callables for one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str, builder: Callable[..., T] | None = None):
        """Register ``builder`` under ``name``; usable as a decorator."""

        def add(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = fn
            return fn

        return add(builder) if builder is not None else add

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        return sorted(n for n in self._builders if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> Callable[..., T]:
        """The builder for ``name``; a ``KeyError`` lists close matches otherwise."""
        try:
            return self._builders[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._builders), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise KeyError(
                f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names())}."
            ) from None
