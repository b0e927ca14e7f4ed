"""``cartforensics reconcile SRC RECORD --out DIR``: what Prometheus recorded against the
counters rebuilt from the logs (:func:`cartforensics.analysis.reconcile.reconcile_logs`).

    cartforensics reconcile sample_data/prometheus/logs sample_data/prometheus/record.json \\
        --out reconciled

RECORD: a saved ``/api/v1/query_range`` or ``/api/v1/query`` answer (JSON), a directory of
``<unix_seconds>.prom`` scrapes, or ``promtool tsdb dump`` output. Writes DIR/reconcile.csv
(the explanations, one row per window, counter and kind), DIR/windows.csv, DIR/findings.md and
DIR/reconcile.png (the chart); prints the counts and the findings. A record or logs that
cannot be read: one line ``cartforensics: ...``, exit 2.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path
from typing import Any

from cartforensics._runtime.publish import write_atomic
from cartforensics.analysis.reconcile import ReconcileError, Reconciliation, reconcile_logs
from cartforensics.cli.args import add_go_version_option, one_line_errors
from cartforensics.io.logs import NoLogsError
from cartforensics.present.escaping import visible


def _write(res: Reconciliation, out: Path) -> list[Path]:
    from cartforensics.present.plots import plot_reconcile  # matplotlib: only when writing

    out.mkdir(parents=True, exist_ok=True)
    written = []
    said = [res.summary().splitlines()[0], *res.findings]
    md = "# Reconciled with the Prometheus record\n\n" + "".join(
        f"- {html.escape(visible(f), quote=False)}\n" for f in said)
    for name, data in (
        ("reconcile.csv", res.explanations.to_csv(index=False).encode()),
        ("windows.csv", res.windows.to_csv(index=False).encode()),
        ("findings.md", md.encode()),
    ):
        write_atomic(out / name, data)
        written.append(out / name)
    fig = plot_reconcile(res)
    write_atomic(out / "reconcile.png", lambda fh: fig.savefig(fh, format="png"))
    written.append(out / "reconcile.png")
    return written


def _cmd_reconcile(args: argparse.Namespace) -> int:
    try:
        res = reconcile_logs(args.path, args.record, target=args.target,
                             go_version=args.go_version)
        _write(res, Path(args.out))
    except (ReconcileError, NoLogsError, ValueError) as e:
        sys.stderr.write(f"cartforensics: {visible(str(e))}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"cartforensics: {visible(str(e.filename or args.out))}: "
                         f"{e.strerror or e}\n")
        return 2
    sys.stdout.write(visible(res.summary(), keep_newlines=True) + "\n")
    return 0


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``cartforensics reconcile SRC RECORD --out DIR`` to the CLI."""
    p = subparsers.add_parser(
        "reconcile", help="explain the service's exported counters (a Prometheus record) "
                          "against the logs",
        description=(
            "Split the record at the service's restarts and explain, per window, every "
            "difference between each exported cart_event_log_* counter and the same counter "
            "rebuilt from the logs; write DIR/reconcile.csv, windows.csv, findings.md and "
            "reconcile.png."
        ),
    )
    p.add_argument("path", metavar="SRC", help="the logs: a directory, a file or a glob")
    p.add_argument("record", metavar="RECORD",
                   help="query_range / query JSON, a directory of <unix_seconds>.prom "
                        "scrapes, or promtool tsdb dump output")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="directory to write into (created if missing)")
    p.add_argument("--target", default=None,
                   help="a part of the labels choosing one target when the record holds "
                        "several (e.g. its instance)")
    add_go_version_option(p)
    one_line_errors(p, "reconcile")
    p.set_defaults(func=_cmd_reconcile)
    return p
