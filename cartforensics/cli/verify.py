"""``cartforensics verify [DIR] [--against SRC] [--notes FILE]``: recompute the hashes of an
output's ``provenance.json`` and check the hash chain of its notes files (one library call,
:func:`cartforensics.io.provenance.verify`).

    cartforensics verify report_out --against sample_data
    cartforensics verify --notes notes.json
"""

from __future__ import annotations

import argparse
from typing import Any

from cartforensics.cli.args import fail, one_line_errors, path_arg, say
from cartforensics.io.provenance import PROVENANCE, verify

__all__ = ["add_subcommand"]


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.dir is None and not args.notes:
        return fail("verify: give an output directory DIR, or a notes file with --notes FILE "
                    "(see cartforensics verify -h)")
    v = verify(args.dir, against=args.against, notes=args.notes or ())
    for p in v.problems:
        say(str(p))
    if args.dir is None:  # notes files only
        say(f"verified: every link of {v.checked} notes files' hash chains holds" if v.ok else
            f"FAILED: {len(v.problems)} of {v.checked} notes files break their hash chain")
        return 0 if v.ok else 1
    if v.ok:
        say(f"verified: {v.checked} files match {PROVENANCE}")
        return 0
    say(f"FAILED: {len(v.problems)} of {v.checked} recorded files differ from {PROVENANCE} "
        "or break a notes hash chain")
    return 1


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``verify`` on the ``cartforensics`` parser's subcommands."""
    p = subparsers.add_parser(
        "verify", help=f"check an output directory against its {PROVENANCE}",
        description=(f"Recompute the sha256 of every file recorded in DIR/{PROVENANCE} (and "
                     "of the inputs, with --against) and check the hash chain of every notes "
                     "file among the inputs (or given with --notes); exit 1 naming each file "
                     "that differs and each note edited by hand."))
    p.add_argument("dir", nargs="?", type=path_arg,
                   help="a report, convert or repair output directory")
    p.add_argument("--against", metavar="SRC", type=path_arg, help="the source that was analysed")
    p.add_argument("--notes", metavar="FILE", type=path_arg, action="append",
                   help="a notes file whose hash chain to check (repeatable; alone or with DIR)")
    p.set_defaults(func=_cmd_verify)
    one_line_errors(p, "verify")
    return p
