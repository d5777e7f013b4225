"""A tiny name -> builder registry with ``create`` / ``list`` / ``register`` verbs, and choice checks.

Used for encoders and aggregators, and (through :func:`check_choice`) for every argument that
takes one of a fixed set of strings. Unknown names fail with the closest valid names, so a
typo like ``"lstn"`` tells the user what they meant; names are matched case-insensitively
when that is unambiguous (``"LSTM"`` is ``"lstm"``).
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def suggest(name: str, options: Iterable[str], n: int = 3) -> str:
    """``" Did you mean 'x', 'y'?"`` for the options closest to ``name`` (case-insensitive), or ``""``."""
    options = list(options)
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return f" Did you mean {', '.join(repr(lowered[c]) for c in close)}?" if close else ""


def match_case(name: str, options: Iterable[str]) -> str | None:
    """The option equal to ``name`` ignoring case, if exactly one is."""
    found = [option for option in options if option.lower() == name.lower()]
    return found[0] if len(found) == 1 else None


def check_choice(argument: str, value: object, choices: Iterable[object]) -> object:
    """Return ``value`` (case-corrected for strings) if it is one of ``choices``; else a ``ValueError``.

    The error names the argument, lists the valid values and suggests the closest ones.
    """
    choices = list(choices)
    if value in choices:
        return value
    names = [c for c in choices if isinstance(c, str)]
    if isinstance(value, str) and (fixed := match_case(value, names)) is not None:
        return fixed
    hint = suggest(value, names) if isinstance(value, str) else ""
    raise ValueError(f"{argument} must be one of {', '.join(map(repr, choices))}; got {value!r}.{hint}")


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

    def canonical(self, name: str) -> str | None:
        """The registered spelling of ``name`` (exact, else case-insensitive), or ``None``."""
        return name if name in self._builders else match_case(name, self._builders)

    def get(self, name: str, hint: str = "") -> Callable[..., T]:
        """The builder for ``name``; a ``KeyError`` lists close matches otherwise (plus ``hint``)."""
        canonical = self.canonical(name)
        if canonical is not None:
            return self._builders[canonical]
        raise KeyError(
            f"Unknown {self.kind} {name!r}.{suggest(name, self._builders)}{hint} Available: {', '.join(self.names())}."
        )
