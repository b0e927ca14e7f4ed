"""The ``cartforensics`` command: each subcommand is one library call.

    cartforensics replay sample_data                 # per-cart table, the headline first
    cartforensics replay sample_data --format jsonl  # one JSON object per line, then per cart
    cartforensics state sample_data --cart cart-1002 --line 3
    cartforensics replay sample_data --go-version 1.27  # as a service built with Go 1.27
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from cartforensics._version import __version__
from cartforensics.analysis.findings import headline
from cartforensics.cli.args import add_go_version_option, one_line_errors
from cartforensics.go.json import marshal
from cartforensics.io.logs import NoLogsError
from cartforensics.io.sources import read_events
from cartforensics.model.engine import engine_text
from cartforensics.model.replay import METRIC_NAMES, Replay, replay

_COMMAND_MODULES = ("present.report", "jobs.convert", "jobs.sample", "jobs.repair")


def replay_records(r: Replay) -> Iterator[dict[str, Any]]:
    """The jsonl contract, cart by cart: one object per physical line, then the cart's own
    object with its final state and the seed's per-cart counters."""
    oc = r.outcomes
    types = oc["type"].tolist()
    errors = oc["error"].tolist()
    lines = oc["line"].tolist()
    outcomes = oc["outcome"].tolist()
    metrics = r.metrics(by_cart=True)
    for cid in r.cart_ids:
        for i in r.rows_of(cid):
            outcome = outcomes[i]
            decoded = outcome not in ("malformed", "too_long", "not_reached")
            t = types[i] if decoded and isinstance(types[i], str) else None
            e = errors[i] if isinstance(errors[i], str) else None
            yield {"cart_id": cid, "line": lines[i], "outcome": outcome, "type": t, "error": e}
        row = metrics.loc[cid]
        yield {
            "cart_id": cid,
            "state": r.final_state(cid),
            "metrics": {k: int(row[k]) for k in METRIC_NAMES},
        }


def _table(r: Replay, lenient: Replay | None, out: Any) -> None:
    head = headline(r.events)
    if head:
        out.write(head + "\n\n")
    summary = r.summary()
    short = {"applied": "applied", "malformed": "malformed", "unknown_type": "unknown",
             "payload_error": "payload_err", "apply_error": "apply_err", "too_long": "too_long",
             "not_reached": "not_reached"}
    summary = summary.rename(columns=short)
    if lenient is not None:
        summary["applied_lenient"] = lenient.summary()["applied"]
    out.write(f"mode: {r.mode}, replayed as {r.semantics.label}\n")
    out.write(summary.to_string() + "\n")
    m = r.metrics()
    out.write("\nmetrics the service would export for this replay:\n")
    for k, v in m.items():
        out.write(f"  {k} {v}\n")


def _cmd_replay(args: argparse.Namespace) -> int:
    events = read_events(args.path, progress=False if args.quiet else None,
                         go_version=args.go_version)
    r = replay(events, mode=args.mode)
    out = sys.stdout
    if args.format == "jsonl":
        buf = out.buffer if hasattr(out, "buffer") else None
        for rec in replay_records(r):
            data = marshal(rec) + b"\n"
            if buf is not None:
                buf.write(data)
            else:
                out.write(data.decode())
        return 0
    lenient = replay(events, mode="lenient") if args.mode == "go" else None
    _table(r, lenient, out)
    return 0


def _cmd_state(args: argparse.Namespace) -> int:
    r = replay(read_events(args.path, progress=False, go_version=args.go_version),
               mode=args.mode)
    if args.cart not in r.cart_ids:
        shown = ", ".join(r.cart_ids[:5]) + (" …" if len(r.cart_ids) > 5 else "")
        sys.stderr.write(f"cartforensics: no cart {args.cart!r} in {args.path} "
                         f"(carts: {shown})\n")
        return 2
    if args.at is not None:
        state = r.state_at(args.cart, ts=args.at)
    elif args.line is not None:
        state = r.state_at(args.cart, line=args.line)
    else:
        state = r.final_state(args.cart)
    sys.stdout.write(marshal(state, indent=True).decode() + "\n")
    return 0


class _Version(argparse.Action):
    """``--version``: the version and which cores run, one per line (argparse's own version
    action would rewrap them into one paragraph)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 help: str | None = None) -> None:  # noqa: A002  (argparse's name)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"cartforensics {__version__}\n{engine_text()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cartforensics",
        description=(
            "Replay Go shopping-cart event logs (<cartId>.events.log) exactly as the service "
            "does, and show what it really rebuilt against what the writer meant."
        ),
    )
    p.add_argument("--version", action=_Version, help="show the version and the cores, and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    rp = sub.add_parser(
        "replay", help="replay logs and summarise outcomes per cart",
        description="Replay every line; print a per-cart table (default) or JSON lines.",
    )
    rp.add_argument("path", nargs="+", help="log files, directories or globs")
    rp.add_argument("--mode", choices=["go", "lenient"], default="go",
                    help="go: the service's reader, bugs and all (default); "
                         "lenient: what the writer meant (numeric ts, long lines)")
    rp.add_argument("--format", choices=["table", "jsonl"], default="table")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_go_version_option(rp)
    rp.set_defaults(func=_cmd_replay)
    one_line_errors(rp, "replay")

    sp = sub.add_parser("state", help="print one cart's state JSON at a line or a time")
    sp.add_argument("path", nargs="+", help="log files, directories or globs")
    sp.add_argument("--cart", required=True, help="cart id (the file name without .events.log)")
    at = sp.add_mutually_exclusive_group()
    at.add_argument("--at", help="a time (RFC 3339, UTC when no offset)")
    at.add_argument("--line", type=int, help="the state after this many lines")
    sp.add_argument("--mode", choices=["go", "lenient"], default="go")
    add_go_version_option(sp)
    sp.set_defaults(func=_cmd_state)
    one_line_errors(sp, "state")

    # Other commands live beside the library call they wrap: each module has
    # ``add_subcommand(subparsers)`` that adds its parser and sets ``func``.
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"cartforensics.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"cartforensics.{name}":
                raise
            continue
        module.add_subcommand(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m cartforensics``."""
    args = build_parser().parse_args(argv)
    if hasattr(args, "path") and len(args.path) == 1:
        args.path = args.path[0]
    try:
        return int(args.func(args))
    except NoLogsError as e:
        sys.stderr.write(f"cartforensics: {e}\n")
        return 2
    except (ValueError, IndexError, KeyError) as e:
        sys.stderr.write(f"cartforensics: {e}\n")
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
