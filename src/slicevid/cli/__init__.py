"""The ``slicevid`` command line.

Every subcommand takes ``--config FILE`` (YAML or JSON): its keys are the subcommand's
option names (``batch_size`` for ``--batch-size``) and act as defaults that explicit
flags override. Errors about input print one line; set ``SLICEVID_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import DataError, TrainingDivergedError, WeightsNotFoundError
from .parser import build_parser

__all__ = ["build_parser", "main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``, applying a ``--config`` file as defaults of the chosen subcommand."""
    from ..train.config import read_config_file

    parser, subparsers = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        sub = subparsers[args.command]
        values = read_config_file(args.config)
        valid = {action.dest for action in sub._actions} - {"help", "config"}
        unknown = sorted(set(values) - valid)
        if unknown:
            parser.error(f"{args.config}: unknown option(s) {unknown} for '{args.command}'")
        sub.set_defaults(**values)
        args = parser.parse_args(argv)
    return args


USER_ERRORS = (DataError, WeightsNotFoundError, TrainingDivergedError, FileNotFoundError, ValueError, KeyError)


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
