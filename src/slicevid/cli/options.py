"""Command-line options generated from dataclasses, and ``--config`` files read through them.

Every field of a settings dataclass (``TrainConfig``, ``Architecture``, ``CTPreprocessing``,
``SplitSettings``, ``LabelSettings`` ...) becomes an option: the flag from the field name
(``plateau_factor`` -> ``--plateau-factor``, or the field's ``metadata["flags"]``), the default
from the field, the choices from its ``Literal`` type (or ``metadata["choices"]``), a repeatable
option where ``metadata["action"]`` is ``"append"``, and the help from the ``Attributes:``/``Args:``
section of the class docstring. Nothing is copied by hand, so nothing drifts, and every field
is reachable.

A ``--config`` file (YAML or JSON) maps option names (``batch_size``) to values; it is turned
into command-line tokens placed before the explicit ones, so argparse checks types and
choices the same way, and explicit flags win. A repeatable option's list becomes the flag
once per value, so a run's saved ``config.yaml`` reruns it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ..errors import ConfigError


def json_object(text: str) -> dict:
    """An argparse type: a JSON object such as ``'{"img_size": 64}'``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"key\": 1}}', got {text!r}")
    return value


def field_docs(cls: type) -> dict[str, str]:
    """``name -> help`` from the ``Attributes:`` (or ``Args:``) section of ``cls``'s docstring."""
    docs: dict[str, str] = {}
    section = re.split(r"\n\s*(?:Attributes|Args):\s*\n", inspect.getdoc(cls) or "", maxsplit=1)
    if len(section) < 2:
        return docs
    name = None
    for line in section[1].splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            name, docs[match.group(1)] = match.group(1), match.group(2).strip()
        elif name and line.startswith("        "):
            docs[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return {k: _plain(v) for k, v in docs.items()}


def _plain(text: str) -> str:
    """Docstring markup as plain help text (``code`` and [`name`][ref] lose their marks; % escaped)."""
    text = re.sub(r"\[([^\]]+)\]\[[^\]]+\]", r"\1", text)  # mkdocstrings cross-references
    return text.replace("`", "").replace("%", "%%")


def _unwrap_optional(kind: Any) -> Any:
    if get_origin(kind) in (typing.Union, types.UnionType):
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        return options[0] if len(options) == 1 else str
    return kind


def _argument_settings(kind: Any) -> dict[str, Any]:
    kind = _unwrap_optional(kind)
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        return {"choices": choices, "type": type(choices[0])}
    if get_origin(kind) is tuple:
        element = _unwrap_optional(get_args(kind)[0])
        return {"nargs": len(get_args(kind)), "type": element}
    if kind is dict or get_origin(kind) is dict:
        return {"type": json_object, "metavar": "JSON"}
    return {"type": kind if kind in (int, float) else str}


def add_dataclass_options(
    group,
    cls: type,
    *,
    only: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
) -> list[str]:
    """Add one option per field of ``cls`` to ``group``; returns their destinations (field names).

    Each option's help is its field's line in the class docstring, or the field's ``help``
    metadata where the docstring speaks Python (``None`` for a module instance ...).
    """
    hints, docs, added = get_type_hints(cls), field_docs(cls), []
    for item in fields(cls):
        if item.name in exclude or (only is not None and item.name not in only):
            continue
        if defaults and item.name in defaults:
            default = defaults[item.name]
        else:
            default = item.default if item.default is not MISSING else item.default_factory()
        flags = item.metadata.get("flags", (f"--{item.name.replace('_', '-')}",))
        settings = _argument_settings(hints[item.name])
        if item.metadata.get("action") == "append":
            settings = {"action": "append", "type": str, "metavar": item.metadata.get("metavar")}
            default = None  # argparse appends to a copy of a list default; None keeps "not given" visible
        if "choices" in item.metadata:
            settings["choices"] = item.metadata["choices"]
        group.add_argument(
            *flags,
            dest=item.name,
            default=default,
            help=item.metadata.get("help", docs.get(item.name, "")),
            **settings,
        )
        added.append(item.name)
    return added


def dataclass_from_args(cls: type, args: argparse.Namespace, **extra: Any):
    """An instance of ``cls`` from the parsed options of its fields (plus ``extra``)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    for item in fields(cls):
        if item.metadata.get("action") == "append" and values.get(item.name) is None:
            values.pop(item.name, None)  # not given: the field's default
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**{**values, **extra})


def config_tokens(parser: argparse.ArgumentParser, values: dict[str, Any], source: str) -> list[str]:
    """Command-line tokens equivalent to a ``--config`` mapping, checked against ``parser``'s options.

    Raises:
        ValueError: an unknown setting, a positional argument, or a list where one value is expected.
    """
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    unknown = sorted(set(values) - set(actions) - {"help", "config"})
    if unknown:
        positional = [a.dest for a in parser._actions if not a.option_strings]
        extra = f"; give {positional} on the command line" if set(unknown) & set(positional) else ""
        valid = sorted(set(actions) - {"help"})
        raise ConfigError(f"{source}:", f"unknown setting(s) {unknown}{extra}; valid: {valid}")
    tokens: list[str] = []
    for name, value in values.items():
        action = actions[name]
        flag = action.option_strings[0]
        if value is None:
            continue
        if (
            isinstance(action.nargs, int)
            and action.nargs > 0
            and not (isinstance(value, list) and len(value) == action.nargs)
        ):
            raise ConfigError(f"{source}:", f"setting {name!r} ({flag}) takes {action.nargs} values, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
            if not isinstance(value, bool):
                raise ConfigError(f"{source}:", f"setting {name!r} takes true or false, got {value!r}")
            if value or isinstance(action, argparse.BooleanOptionalAction):
                tokens.append(flag if value else f"--no-{flag.removeprefix('--')}")
        elif isinstance(value, list) and isinstance(action, argparse._AppendAction):
            tokens += [token for item in value for token in (flag, str(item))]  # a repeatable option, once per value
        elif isinstance(value, list):
            if action.nargs in (None, "?"):
                raise ConfigError(f"{source}:", f"setting {name!r} takes one value, got the list {value}")
            tokens += [flag, *map(str, value)]
        elif isinstance(value, dict):
            if action.type is not json_object:
                raise ConfigError(f"{source}:", f"setting {name!r} takes one value, got a mapping {value}")
            tokens += [flag, json.dumps(value)]
        else:
            tokens += [flag, str(value)]
    return tokens


def explicit_settings(parser: argparse.ArgumentParser, argv: list[str], config: dict[str, Any]) -> set[str]:
    """The destinations of the options given on the command line (``--flag``, ``--flag=x``) or in a config file."""
    by_flag = {flag: action.dest for action in parser._actions for flag in action.option_strings}
    given = {by_flag[token.split("=", 1)[0]] for token in argv if token.split("=", 1)[0] in by_flag}
    return given | set(config)
