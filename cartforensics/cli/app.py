"""The ``cartforensics`` command: each subcommand is one library call.

    cartforensics replay sample_data                 # per-cart table, the headline first
    cartforensics replay sample_data --format jsonl  # one JSON object per line, then per cart
    cartforensics state sample_data --cart cart-1002 --line 3
    cartforensics replay sample_data --go-version 1.27  # as a service built with Go 1.27
    cartforensics replay sample_data --cart cart-1164 --cart cart-1002  # those carts' rows
"""

from __future__ import annotations

import argparse
import difflib
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cartforensics._version import __version__
from cartforensics.analysis.streaming import (
    ReplayStream,
    ReplaySummary,
    replay_stream,
)
from cartforensics.cli import reconcile as reconcile_command
from cartforensics.cli import sql as sql_command
from cartforensics.cli import verify as verify_command
from cartforensics.cli.args import (
    add_go_version_option,
    count_arg,
    fail,
    freq_arg,
    line_count_arg,
    one_line_errors,
    path_arg,
    positive_int,
    say,
    time_arg,
)
from cartforensics.go.json import marshal
from cartforensics.go.version import DEFAULT_GO_VERSION
from cartforensics.io.dataset import DatasetError
from cartforensics.io.logs import NoLogsError
from cartforensics.jobs.convert import ConvertError, convert, restore
from cartforensics.jobs.repair import REPORT_JSON, REPORT_MD, RepairError, repair
from cartforensics.jobs.sample import (
    ALL_INCIDENTS,
    CATALOG_NAME,
    DEFAULT_DAYS,
    DEFAULT_START,
    MANIFEST_NAME,
    SampleError,
    write_sample,
)
from cartforensics.model.engine import engine_text
from cartforensics.present.escaping import visible
from cartforensics.present.report import ReportError, write_report
from cartforensics.present.report_chunks import TIMELINE_CARTS
from cartforensics.vocab import MODES


def _unknown_carts(r: ReplayStream, carts: Sequence[str]) -> str | None:
    """One line naming the ``carts`` the replay does not hold and the closest ids it does."""
    have = set(r.cart_ids)
    missing = [c for c in dict.fromkeys(carts) if c not in have]
    if not missing:
        return None
    close = list(dict.fromkeys(m for c in missing
                               for m in difflib.get_close_matches(c, r.cart_ids, n=3)))
    hint = f"closest: {', '.join(close)}" if close else f"{len(have)} carts, none close"
    return (f"replay: no cart {', '.join(repr(c) for c in missing)} in the source ({hint}); "
            "give --cart an id the source holds (a log's file name without .events.log)")


def _table(r: ReplaySummary, out: Any, carts: Sequence[str] | None = None) -> None:
    """The per-cart table (``carts``: only those rows; the headline and the metrics stay over
    the whole source); every cart id and log text in it escaped (:func:`say`)."""
    text: list[str] = []
    if r.headline:
        text.append(r.headline + "\n")
    summary = r.summary.copy()
    short = {"applied": "applied", "malformed": "malformed", "unknown_type": "unknown",
             "payload_error": "payload_err", "apply_error": "apply_err", "too_long": "too_long",
             "not_reached": "not_reached"}
    summary = summary.rename(columns=short)
    if r.applied_lenient is not None:
        summary["applied_lenient"] = r.applied_lenient
    if carts is not None:
        wanted = set(carts)
        shown = [c for c in r.cart_ids if c in wanted]
        text.append(f"carts shown: {len(shown)} of {len(summary)} (--cart); the headline and "
                    f"the metrics are over all {len(summary)}")
        summary = summary.loc[shown]
    summary.index = summary.index.map(visible)  # escaped before the columns are aligned
    text.append(f"mode: {r.mode}, replayed as {r.semantics.label}")
    text.append(summary.to_string())
    m = r.metrics
    text.append("\nmetrics the service would export for this replay:")
    text += [f"  {k} {v}" for k, v in m.items()]
    say("\n".join(text), out)


def _add_progress(p: argparse.ArgumentParser) -> None:
    """``--progress/--no-progress`` (a bar on stderr; default: only on a terminal)."""
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw a progress bar on stderr (default: for large inputs, and only "
                        "when stderr is a terminal; --quiet is --no-progress)")


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else args.progress


def _cmd_replay(args: argparse.Namespace) -> int:
    r = replay_stream(args.path, mode=args.mode, go_version=args.go_version,
                      progress=_progress(args))
    if args.cart is not None and (unknown := _unknown_carts(r, args.cart)):
        return fail(unknown)
    out = sys.stdout
    if args.format == "jsonl":
        buf = out.buffer if hasattr(out, "buffer") else None
        for rec in r.records(args.cart):
            data = marshal(rec) + b"\n"
            if buf is not None:
                buf.write(data)
            else:
                out.write(data.decode())
        return 0
    _table(r.summary(), out, args.cart)
    return 0


def _cmd_state(args: argparse.Namespace) -> int:
    source = replay_stream(args.path, mode=args.mode, go_version=args.go_version)
    if args.cart not in source.cart_ids:
        ids = source.cart_ids
        shown = ", ".join(ids[:5]) + (" …" if len(ids) > 5 else "")
        return fail(f"no cart {args.cart!r} in {args.path} (carts: {shown}): give one of them "
                    "to --cart")
    r = source.cart(args.cart)  # only its lines are read
    if args.at is not None:
        state = r.state_at(args.cart, ts=args.at)
    elif args.line is not None:
        state = r.state_at(args.cart, line=args.line)
    else:
        state = r.final_state(args.cart)
    sys.stdout.write(marshal(state, indent=True).decode() + "\n")  # JSON: controls escaped
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
    rp.add_argument("path", nargs="+", type=path_arg, help="log files, directories or globs")
    rp.add_argument("--mode", choices=MODES, default="go",
                    help="go: the service's reader, bugs and all (default); "
                         "lenient: what the writer meant (numeric ts, long lines)")
    rp.add_argument("--format", choices=["table", "jsonl"], default="table")
    rp.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_progress(rp)
    rp.add_argument("--cart", action="append", metavar="ID",
                    help="only this cart's rows (repeatable); the headline and the metrics stay "
                         "over the whole source")
    add_go_version_option(rp)
    rp.set_defaults(func=_cmd_replay)
    one_line_errors(rp, "replay")

    sp = sub.add_parser("state", help="print one cart's state JSON at a line or a time")
    sp.add_argument("path", nargs="+", type=path_arg, help="log files, directories or globs")
    sp.add_argument("--cart", required=True, help="cart id (the file name without .events.log)")
    at = sp.add_mutually_exclusive_group()
    at.add_argument("--at", type=time_arg, help="a time (RFC 3339, UTC when no offset)")
    at.add_argument("--line", type=line_count_arg,
                    help="the state after this many lines (0: the empty cart)")
    sp.add_argument("--mode", choices=MODES, default="go")
    add_go_version_option(sp)
    sp.set_defaults(func=_cmd_state)
    one_line_errors(sp, "state")

    _add_report(sub)
    _add_convert_and_restore(sub)
    _add_sample(sub)
    _add_repair(sub)
    verify_command.add_subcommand(sub)
    reconcile_command.add_subcommand(sub)
    sql_command.add_subcommand(sub)
    return p


def _cmd_report(args: argparse.Namespace) -> int:
    src = args.path  # one path, or a list of them (main unwraps a single one)
    try:
        opts = dict(progress=_progress(args), freq=args.freq, notes=args.notes,
                    go_version=args.go_version, prometheus=args.prometheus,
                    timelines=args.timelines)
        if args.scheduler is not None:
            from cartforensics._runtime.cluster import dask_executor

            with dask_executor(args.scheduler) as executor:
                res = write_report(src, args.out, executor=executor, **opts)  # type: ignore
        else:
            res = write_report(src, args.out, workers=args.workers, **opts)  # type: ignore
    except (ReportError, NoLogsError, ValueError) as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.filename or args.out}: {e.strerror or e}")
    say(res.summary())
    return 0


def _add_report(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``cartforensics report SRC --out DIR [--quiet]`` to the CLI."""
    p = subparsers.add_parser(
        "report", help="replay in both modes and write an HTML/Markdown report with charts",
        description=(
            "Replay the logs as the service does (go mode) and as the writer meant them "
            "(lenient mode); write DIR/report.html (self-contained), DIR/report.md, the "
            "charts as PNG and DIR/outcomes.parquet; print the headline finding and the top "
            "findings."
        ),
    )
    p.add_argument("path", nargs="+", metavar="SRC", type=path_arg,
                   help="log files (<cartId>.events.log[.gz]), directories or globs")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="directory of the report: new, empty or a previous report's; "
                        "replaced whole in one step when the report is done")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_progress(p)
    p.add_argument("--freq", default=None, type=freq_arg,
                   help="time window of the charts, e.g. 1h or 1D (default: from the span; "
                        "at most 100,000 windows over it)")
    p.add_argument("--notes", default=None, metavar="NOTES.json",
                   help="an analyst's notes file (cartforensics.Notes): adds an 'Analyst "
                        "notes' section")
    p.add_argument("--prometheus", default=None, metavar="RECORD",
                   help="a Prometheus record of the service's counters (query JSON, scrapes "
                        "directory or promtool tsdb dump): adds a section reconciling it")
    p.add_argument("--timelines", type=count_arg, default=TIMELINE_CARTS, metavar="N",
                   help=f"embed the timelines of the N most affected carts in report.html "
                        f"(default {TIMELINE_CARTS}; 0: only carts with a note)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="worker processes for the chunks of carts (default: one per core)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the chunks on a Dask cluster: tcp://HOST:PORT, or local:N "
                            "(needs the dask extra; the workers must see SRC and --out)")
    add_go_version_option(p)
    one_line_errors(p, "report")
    p.set_defaults(func=_cmd_report)
    return p


def _cmd_convert(args: argparse.Namespace) -> int:
    progress = _progress(args)
    try:
        if args.scheduler is not None:
            from cartforensics._runtime.cluster import dask_executor

            with dask_executor(args.scheduler) as executor:
                summary = convert(args.src, args.dst, incremental=args.incremental,
                                  progress=progress, go_version=args.go_version,
                                  executor=executor)
        else:
            summary = convert(args.src, args.dst, workers=args.workers,
                              incremental=args.incremental, progress=progress,
                              go_version=args.go_version)
    except (NoLogsError, DatasetError, ValueError) as e:
        return fail(str(e))
    except (ConvertError, OSError) as e:
        fail(f"convert failed, nothing was changed: {e}")
        return 1
    say(str(summary))
    if not summary.ok:
        fail(f"{len(summary.problems)} problem(s) with input files (listed above); the other "
             "files were converted")
        return 1
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    try:
        summary = restore(args.dataset, args.out)
    except (DatasetError, ValueError) as e:
        return fail(str(e))
    except OSError as e:
        fail(f"restore failed: {e}")
        return 1
    say(str(summary))
    if not summary.ok:
        fail(f"{len(summary.mismatches)} file(s) do not match the manifest")
        return 1
    return 0


def _add_convert_and_restore(subparsers: Any) -> None:
    """``cartforensics convert SRC DST`` and ``cartforensics restore DATASET OUT``."""
    cp = subparsers.add_parser(
        "convert", help="convert a log directory into a Parquet dataset",
        description=(
            "Convert every <cartId>.events.log(.gz) in SRC into the Parquet dataset DST: "
            "events/ (one row per physical line, outcomes in both modes, raw bytes; "
            "partitioned by date), carts/ (one row per file) and manifest.json. DST is "
            "replaced only when it is a cartforensics dataset. Exit status 1 when an input "
            "file had a problem (the others are converted), 2 for bad arguments."
        ),
    )
    cp.add_argument("src", metavar="SRC", help="directory of *.events.log / *.events.log.gz")
    cp.add_argument("dst", metavar="DST", help="dataset directory to write (or update)")
    where = cp.add_mutually_exclusive_group()
    where.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="processes (default: the number of CPUs)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the batches on a Dask cluster: tcp://HOST:PORT, or local:N "
                            "to start N local worker processes (needs cartforensics[dask]; "
                            "the workers must see SRC and DST: docs/scale.md)")
    cp.add_argument("--incremental", action="store_true",
                    help="convert only new files and new tails of grown files")
    cp.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_progress(cp)
    add_go_version_option(cp)
    cp.set_defaults(func=_cmd_convert)
    one_line_errors(cp, "convert")

    rp = subparsers.add_parser(
        "restore", help="write the logs back from a dataset, byte for byte",
        description=(
            "Write the log files of DATASET back into the new directory OUT and check each "
            "against the sha256 in the manifest (.gz logs: their decompressed content). "
            "Exit status 1 on any mismatch."
        ),
    )
    rp.add_argument("dataset", metavar="DATASET", help="a dataset written by convert")
    rp.add_argument("out", metavar="OUT", help="a new (or empty) directory")
    rp.set_defaults(func=_cmd_restore)
    one_line_errors(rp, "restore")


def _cmd_sample(args: argparse.Namespace) -> int:
    incidents: tuple[str, ...]
    if args.no_incidents:
        if args.incident:
            return fail("--no-incidents and --incident exclude each other: give one of them")
        incidents = ()
    else:
        incidents = tuple(args.incident) if args.incident else ALL_INCIDENTS
    began = time.perf_counter()
    try:
        m = write_sample(args.out, carts=args.carts, seed=args.seed, incidents=incidents,
                         start=args.start, days=args.days, events=args.events,
                         visits=args.visits)
    except SampleError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.filename or args.out}: {e.strerror or e}")
    took = time.perf_counter() - began
    out = [f"wrote {m.carts:,} carts, {m.lines:,} lines, {m.bytes_written:,} bytes to "
           f"{args.out} in {took:.1f} s (seed {m.seed})"]
    for name in ALL_INCIDENTS:
        if name not in m.incidents:
            out.append(f"  {name}: off")
            continue
        per = m.lines_by_incident.get(name, {})
        n_lines = sum(len(v) for v in per.values())
        out.append(f"  {name}: {n_lines:,} lines in {len(per):,} carts")
    out.append(f"planted lines: {Path(args.out) / MANIFEST_NAME}")
    say("\n".join(out))
    return 0


def _seed(text: str) -> int:
    return count_arg(text, "the seed")


def _add_sample(subparsers: Any) -> argparse.ArgumentParser:
    """``cartforensics sample OUT --carts N --seed S [--incident NAME ...]``."""
    p = subparsers.add_parser(
        "sample", help="write a synthetic corpus of cart logs with planted incidents",
        description=(
            "Write realistic cart sessions as <cartId>.events.log files in the seed writer's "
            "exact bytes, with incidents planted (all by default): "
            + ", ".join(ALL_INCIDENTS) + ". The same arguments write the same bytes. "
            f"OUT gets {MANIFEST_NAME} (every planted line) and {CATALOG_NAME}."),
    )
    p.add_argument("out", metavar="OUT",
                   help="a new or empty directory, or a previous sample to overwrite")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--carts", type=positive_int, default=300, help="number of carts (300)")
    size.add_argument("--events", type=positive_int, default=None,
                      help="write exactly this many lines instead (carts as needed)")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (0)")
    p.add_argument("--incident", action="append", choices=ALL_INCIDENTS, metavar="NAME",
                   help="plant only this incident (repeat for more); default: all of "
                        + ", ".join(ALL_INCIDENTS))
    p.add_argument("--no-incidents", action="store_true", help="plant nothing")
    p.add_argument("--start", default=DEFAULT_START.strftime("%Y-%m-%d"),
                   help="first day of the window, UTC (2025-10-27)")
    p.add_argument("--days", type=positive_int, default=DEFAULT_DAYS,
                   help=f"length of the window in days ({DEFAULT_DAYS})")
    p.add_argument("--visits", type=positive_int, default=1,
                   help="visits per cart (1); more make long-lived carts: fewer, longer files")
    p.set_defaults(func=_cmd_sample)
    one_line_errors(p, "sample")
    return p


def _cmd_repair(args: argparse.Namespace) -> int:
    try:
        result = repair(args.src, args.out, go_version=args.go_version, force=args.force,
                        progress=_progress(args))
    except (RepairError, NoLogsError) as e:
        return fail(str(e))
    except OSError as e:  # a write without a file name (disk full) is one into OUT
        return fail(f"repair: {e.filename or args.out}: {e.strerror or e}")
    say(result.summary())
    say(f"report: {Path(args.out) / REPORT_MD}, {Path(args.out) / REPORT_JSON}")
    failed = any(r["verified"] is False and r["status"] == "unrepairable"
                 and str(r["reason"]).startswith("verification failed")
                 for r in result.report["carts"].values())
    return 1 if failed else 0


def _add_repair(subparsers: Any) -> argparse.ArgumentParser:
    """``cartforensics repair SRC OUT [--go-version V] [--force]``."""
    p = subparsers.add_parser(
        "repair", help="rewrite logs so that the service's reader rebuilds what the writer meant",
        description=(
            "Write OUT/<cartId>.events.log for every cart log in SRC so that the service's "
            "reader (go mode) rebuilds the cart the writer meant (lenient mode): numeric ts "
            "written as RFC 3339, missing final newlines added, lines no reader can use moved "
            "to OUT/rejected/, long lines re-encoded shorter. OUT is replayed to verify every "
            f"cart; OUT/{REPORT_JSON} and OUT/{REPORT_MD} say what changed. SRC is only read."),
    )
    p.add_argument("src", metavar="SRC", type=path_arg,
                   help="a directory of cart logs (or one log file)")
    p.add_argument("out", metavar="OUT", type=path_arg,
                   help="a new or empty directory, or a previous repair output (with --force)")
    p.add_argument("--go-version", default=DEFAULT_GO_VERSION, metavar="V",
                   help=f"the service's Go toolchain, whose reader is modelled "
                        f"({DEFAULT_GO_VERSION})")
    p.add_argument("--force", action="store_true",
                   help="replace OUT when it holds a previous repair output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_progress(p)
    p.set_defaults(func=_cmd_repair)
    one_line_errors(p, "repair")
    return p


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """Python's warning, with what a log or a file name put in it escaped."""
    text = warnings.formatwarning(message, category, filename, lineno, line)
    (file or sys.stderr).write(visible(text, keep_newlines=True))


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM as an exit: the commands' cleanup (temporary outputs removed) runs."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and ``python -m cartforensics``."""
    parser = build_parser()
    one_line_errors(parser, None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # one line naming the command, as its own parser's errors do
        raise SystemExit(fail(f"{args.command}: unrecognized arguments: {' '.join(unknown)} "
                              f"(see cartforensics {args.command} -h)"))
    if hasattr(args, "path") and len(args.path) == 1:
        args.path = args.path[0]
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: SIGTERM keeps its handler
        pass
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args))
    except NoLogsError as e:
        return fail(str(e))
    except (ValueError, IndexError, KeyError) as e:
        return fail(str(e))
    except BrokenPipeError:
        return 0
    finally:
        warnings.showwarning = shown
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
