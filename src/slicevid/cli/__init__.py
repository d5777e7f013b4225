"""The ``slicevid`` command line.

Every subcommand takes ``--config FILE`` (YAML or JSON): its keys are the subcommand's
option names (``batch_size`` for ``--batch-size``) and act as defaults that explicit
flags override. Errors about input print one line and exit with status 2; set
``SLICEVID_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import DataError, TrainingDivergedError, WeightsNotFoundError
from .parser import REQUIRED, build_parser

__all__ = ["build_parser", "main", "parse_args"]

USER_ERRORS = (DataError, WeightsNotFoundError, TrainingDivergedError, OSError, ValueError, KeyError, TypeError)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``, applying a ``--config`` file as defaults of the chosen subcommand."""
    from ..train.config import read_config_file
    from .options import config_tokens

    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    sub = subparsers[args.command]
    if getattr(args, "config", None):
        try:
            tokens = config_tokens(sub, read_config_file(args.config), args.config)
        except (OSError, ValueError) as err:
            sub.error(str(err))
        at = argv.index(args.command) + 1
        args = parser.parse_args([*argv[:at], *tokens, *argv[at:]])
    missing = [name for name in getattr(args, REQUIRED, []) if getattr(args, name, None) is None]
    if missing:
        flags = {a.dest: a.option_strings[0] for a in sub._actions if a.option_strings}
        sub.error(f"the following arguments are required: {', '.join(flags.get(m, m) for m in missing)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``slicevid`` command."""
    args = parse_args(argv)
    try:
        args.handler(args)
    except USER_ERRORS as err:
        if os.environ.get("SLICEVID_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"slicevid {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
