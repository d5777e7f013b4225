"""The ``slicevid`` command line.

Every subcommand takes ``--config FILE`` (YAML or JSON): its keys are the subcommand's
option names (``batch_size`` for ``--batch-size``) and act as defaults that explicit
flags override. Errors about what the user gave (slicevid's own exception types) print one
line, in command-line terms, and exit with status 2; ``--debug`` (or ``SLICEVID_DEBUG=1``)
shows their traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError, SlicevidError
from .parser import COMMANDS, REQUIRED, build_parser

__all__ = ["build_parser", "main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``, applying a ``--config`` file as defaults of the chosen subcommand.

    Only the chosen subcommand's options are built (``slicevid --help`` builds none).
    """
    from .commands import HANDLERS
    from .options import config_tokens, explicit_settings

    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((token for token in argv if token in COMMANDS), None)  # the first positional
    parser, subparsers = build_parser(only={chosen} if chosen else set())
    args = parser.parse_args(argv)
    sub = subparsers[args.command]
    settings: dict = {}
    if getattr(args, "config", None):
        from ..train.config import read_config_file

        try:
            settings = read_config_file(args.config)
            tokens = config_tokens(sub, settings, args.config)
        except SlicevidError as err:
            sub.error(str(err))
        at = argv.index(args.command) + 1
        args = parser.parse_args([*argv[:at], *tokens, *argv[at:]])
    missing = [name for name in getattr(args, REQUIRED, []) if getattr(args, name, None) is None]
    if missing:
        sub.error(f"the following arguments are required: {', '.join(flag_of(sub, m) for m in missing)}")
    args.parser = sub
    args.explicit = explicit_settings(sub, argv, settings)
    args.handler = HANDLERS[args.command]
    return args


def flag_of(parser: argparse.ArgumentParser, setting: str) -> str:
    """The command-line flag of a setting (``"batch_size"`` -> ``"--batch-size"``), or the setting itself."""
    for action in parser._actions:
        if action.dest == setting and action.option_strings:
            return action.option_strings[0]
    return setting


def user_message(err: SlicevidError, parser: argparse.ArgumentParser) -> str:
    """The error's message, with a setting named as the command line spells it."""
    if isinstance(err, ConfigError):
        flag = flag_of(parser, err.setting)
        return f"{flag} {err.reason}" if flag != err.setting else str(err)
    return str(err)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slicevid`` command."""
    args = parse_args(argv)
    try:
        args.handler(args)
    except SlicevidError as err:
        if args.debug or os.environ.get("SLICEVID_DEBUG"):
            raise
        print(f"slicevid {args.command}: error: {user_message(err, args.parser)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
