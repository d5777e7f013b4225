"""A tiny name -> builder registry with ``create`` / ``list`` / ``register`` verbs, and choice checks.

Used for encoders and aggregators, and (through `check_choice()`) for every argument that
takes one of a fixed set of strings. Unknown names fail with the closest valid names, so a
typo like ``"lstn"`` tells the user what they meant; names are matched case-insensitively
when that is unambiguous (``"LSTM"`` is ``"lstm"``).

Plugins: a package can register components by declaring an entry point in the registry's
group (``slicevid.encoders``, ``slicevid.aggregators``) that names a module or a callable;
a registry loads its group's entry points the first time a name is looked up.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from .errors import ConfigError, UnknownNameError

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
    """Return ``value`` (case-corrected for strings) if it is one of ``choices``; else a ``ConfigError``.

    The error names the argument, lists the valid values and suggests the closest ones.
    """
    choices = list(choices)
    if value in choices:
        return value
    names = [c for c in choices if isinstance(c, str)]
    if isinstance(value, str) and (fixed := match_case(value, names)) is not None:
        return fixed
    hint = suggest(value, names) if isinstance(value, str) else ""
    raise ConfigError(argument, f"must be one of {', '.join(map(repr, choices))}; got {value!r}.{hint}")


def check_literal_fields(instance: object) -> None:
    """Check (and case-correct) every string ``Literal`` field of a frozen or plain dataclass instance."""
    from dataclasses import fields
    from typing import get_args, get_type_hints

    hints = get_type_hints(type(instance))
    for item in fields(instance):
        choices = get_args(hints[item.name])
        if choices and all(isinstance(c, str) for c in choices):
            object.__setattr__(instance, item.name, check_choice(item.name, getattr(instance, item.name), choices))


class Registry(Generic[T]):
    """Maps names to builder callables for one kind of component.

    Args:
        kind: what the registry holds, for messages (``"encoder"``).
        entry_point_group: the entry-point group plugins register through, if any.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._builders: dict[str, Callable[..., T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, builder: Callable[..., T] | None = None):
        """Register ``builder`` under ``name``; usable as a decorator."""

        def add(fn: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ConfigError(f"{self.kind} name {name!r}", "is already registered; choose another name")
            self._builders[name] = fn
            return fn

        return add(builder) if builder is not None else add

    def unregister(self, name: str) -> None:
        """Remove ``name`` (a plugin or test that registered it temporarily)."""
        self._builders.pop(name, None)

    def _load_plugins(self) -> None:
        """Import every entry point of the group once; a broken plugin warns instead of failing."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.entry_point_group):
            try:
                loaded = point.load()
                if callable(loaded) and point.name not in self._builders:  # else a module that registers on import
                    self.register(point.name, loaded)
            except Exception as err:  # a plugin's own bug must not break slicevid
                warnings.warn(f"{self.kind} plugin {point.name!r} ({point.value}) failed to load: {err}", stacklevel=3)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching a shell-style ``pattern``."""
        self._load_plugins()
        return sorted(n for n in self._builders if fnmatch.fnmatch(n, pattern))

    def canonical(self, name: str) -> str | None:
        """The registered spelling of ``name`` (exact, else case-insensitive), or ``None``."""
        self._load_plugins()
        return name if name in self._builders else match_case(name, self._builders)

    def get(self, name: str, hint: str = "") -> Callable[..., T]:
        """The builder for ``name``; an ``UnknownNameError`` lists close matches otherwise (plus ``hint``)."""
        canonical = self.canonical(name)
        if canonical is not None:
            return self._builders[canonical]
        raise UnknownNameError(
            f"Unknown {self.kind} {name!r}.{suggest(name, self._builders)}{hint} Available: {', '.join(self.names())}."
        )
