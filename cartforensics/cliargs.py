"""Argument helpers shared by the subcommands that live beside their library calls.

>>> positive_int("3")
3
"""

from __future__ import annotations

import argparse
import sys


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def one_line_errors(parser: argparse.ArgumentParser, name: str) -> None:
    """Make ``parser`` report a bad argument as one line on stderr and exit 2 (argparse's own
    error prints the whole usage first)."""

    def error(message: str) -> None:
        sys.stderr.write(f"cartforensics: {name}: {message} (see cartforensics {name} -h)\n")
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
