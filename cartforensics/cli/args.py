"""Argument helpers shared by the subcommands that live beside their library calls.

>>> positive_int("3")
3
"""

from __future__ import annotations

import argparse
import sys

from cartforensics.go.version import DEFAULT_GO_VERSION, semantics


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def go_version_arg(text: str) -> str:
    """argparse type of ``--go-version``: a go_version :func:`semantics` accepts."""
    try:
        return semantics(text).spec
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_go_version_option(p: argparse.ArgumentParser) -> None:
    """``--go-version`` on a subcommand that decodes logs."""
    p.add_argument("--go-version", type=go_version_arg, default=DEFAULT_GO_VERSION,
                   metavar="VERSION",
                   help="the Go that built the service: 1.25 (default), 1.26, 1.27; "
                        "+jsonv2 / +nojsonv2 as GOEXPERIMENT sets it (1.27 decodes JSON "
                        "with json v2: escaped ts values are unescaped, error texts differ)")


def one_line_errors(parser: argparse.ArgumentParser, name: str) -> None:
    """Make ``parser`` report a bad argument as one line on stderr and exit 2 (argparse's own
    error prints the whole usage first)."""

    def error(message: str) -> None:
        sys.stderr.write(f"cartforensics: {name}: {message} (see cartforensics {name} -h)\n")
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]
