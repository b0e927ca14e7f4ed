"""``cartforensics verify DIR [--against SRC]``: recompute the hashes of an output's
``provenance.json`` (one library call, :func:`cartforensics.io.provenance.verify`).

    cartforensics verify report_out --against sample_data
"""

from __future__ import annotations

import argparse
from typing import Any

from cartforensics.cli.args import one_line_errors, path_arg, say
from cartforensics.io.provenance import PROVENANCE, verify

__all__ = ["add_subcommand"]


def _cmd_verify(args: argparse.Namespace) -> int:
    v = verify(args.dir, against=args.against)
    for p in v.problems:
        say(str(p))
    if v.ok:
        say(f"verified: {v.checked} files match {PROVENANCE}")
        return 0
    say(f"FAILED: {len(v.problems)} of {v.checked} recorded files differ from {PROVENANCE}")
    return 1


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``verify`` on the ``cartforensics`` parser's subcommands."""
    p = subparsers.add_parser(
        "verify", help=f"check an output directory against its {PROVENANCE}",
        description=(f"Recompute the sha256 of every file recorded in DIR/{PROVENANCE} (and "
                     "of the inputs, with --against); exit 1 naming each file that differs."))
    p.add_argument("dir", type=path_arg, help="a report, convert or repair output directory")
    p.add_argument("--against", metavar="SRC", type=path_arg, help="the source that was analysed")
    p.set_defaults(func=_cmd_verify)
    one_line_errors(p, "verify")
    return p
