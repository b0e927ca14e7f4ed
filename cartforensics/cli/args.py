"""Argument helpers shared by the subcommands that live beside their library calls.

>>> positive_int("3")
3
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import TextIO

import pandas as pd

from cartforensics.analysis.metrics import window_width
from cartforensics.go.version import DEFAULT_GO_VERSION, semantics
from cartforensics.present.escaping import visible


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    return count_arg(text, least=1)


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


def one_line_errors(parser: argparse.ArgumentParser, name: str | None) -> None:
    """Make ``parser`` report a bad argument as one line on stderr and exit 2 (argparse's own
    error prints the whole usage first). ``name``: the subcommand, None for the top level."""
    where = f"{name}: " if name else ""
    help_ = f"cartforensics {name} -h" if name else "cartforensics -h"

    def error(message: str) -> None:
        sys.stderr.write(f"cartforensics: {where}{visible(message)} (see {help_})\n")
        raise SystemExit(2)

    parser.error = error  # type: ignore[method-assign]


def path_arg(text: str) -> str:
    """argparse type of a source path: not empty, and never a FIFO, socket or device (reading
    one would block or never end). Checked with stat, which does not open it; a path that does
    not exist passes (it may be a glob; the command names it when nothing matches).

    >>> path_arg("sample_data")
    'sample_data'
    """
    if not text:
        raise argparse.ArgumentTypeError("an empty path: give a log file, a directory or a glob")
    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):
        return text
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise argparse.ArgumentTypeError(
            f"{visible(text)} is not a regular file or a directory (a FIFO, socket or device "
            "is never read): give a log file or a directory of logs")
    return text


def time_arg(text: str) -> str:
    """argparse type of ``--at``: a time a log line can hold (RFC 3339, UTC when no offset),
    between 1677-09-21 and 2262-04-11 (nanoseconds since 1970 in 64 bits).

    >>> time_arg("2024-01-01T00:00:00Z")
    '2024-01-01T00:00:00Z'
    """
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"not a time: {visible(text)!r}; give RFC 3339, e.g. 2024-01-01T12:00:00Z") from None
    if pd.isna(t):
        raise argparse.ArgumentTypeError(f"not a time: {visible(text)!r}; give RFC 3339")
    try:
        t.as_unit("ns")
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{visible(text)} is outside the times a log can hold; give one between "
            f"{pd.Timestamp.min:%Y-%m-%d} and {pd.Timestamp.max:%Y-%m-%d}") from None
    return text


def count_arg(text: str, what: str = "", least: int = 0) -> int:
    """An argparse type: a whole number, ``least`` or more (``what``: how the error names
    it); every count argument of the CLI is read by this one.

    >>> count_arg("0"), count_arg("2", least=1)
    (0, 2)
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {visible(text)!r}") from None
    if value < least:
        bound = "0 or more" if least == 0 else f"at least {least}"
        raise argparse.ArgumentTypeError(
            f"{what + ' ' if what else ''}must be {bound}, not {value}")
    return value


def line_count_arg(text: str) -> int:
    """argparse type of ``state --line``: a number of lines, 0 or more (0: the empty cart).

    >>> line_count_arg("0")
    0
    """
    return count_arg(text, "a number of lines (the line to stop after)")


def freq_arg(text: str) -> str:
    """argparse type of ``report --freq``: a positive time window (``1h``, ``15min``, ``1D``).

    >>> freq_arg("15min")
    '15min'
    """
    try:
        window_width(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def fail(message: str) -> int:
    """Write ``cartforensics: message`` on stderr as one line (non-printing characters escaped,
    newlines too) and return 2, the exit status of a bad argument.

    >>> fail("no cart 'x\\x1b'")
    2
    """
    sys.stderr.write(f"cartforensics: {visible(message)}\n")
    return 2


def say(text: str, out: TextIO | None = None) -> None:
    """Write ``text`` (and a newline) to stdout or ``out`` with every non-printing character
    but the newline escaped: nothing a log holds reaches the terminal raw.

    >>> say("cart \\x1b[2J")
    cart \\x1b[2J
    """
    (out or sys.stdout).write(visible(text, keep_newlines=True) + "\n")
