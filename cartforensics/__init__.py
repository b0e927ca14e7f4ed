"""cartforensics: replay Go shopping-cart event logs exactly as the service does.

The subpackages follow the data, one stage each; a stage imports only the stages before it
(``lint-imports`` checks it, docs/architecture.md draws it):

- ``go/``: the port of the Go the service runs (bufio's line cut, encoding/json, time, the
  log envelope, the toolchain rules, the compiled writer-shape scan);
- ``io/``: reading logs and converted datasets; ``read_events`` and ``resolve_source``;
- ``model/``: the cart's handlers, the type registry, the replay cores, ``Replay``, blame;
- ``analysis/``: the service's counters and rates, findings, fleet counts, analyst notes;
- ``present/``: charts, the report, the notebook widgets, escaping;
- ``jobs/``: convert (and restore), repair, the synthetic sample writer;
- ``_runtime/``: process pools, executors, the atomic publish; ``cli/``: the command line;
- ``vocab``: the shared words (outcomes and their codes, modes, ts kinds, labels, colours).

>>> import cartforensics as cf
>>> df = cf.read_events("sample_data")  # doctest: +SKIP
>>> go, lenient = cf.replay(df), cf.replay(df, mode="lenient")  # doctest: +SKIP
"""

from cartforensics._version import __version__
from cartforensics.analysis.findings import Finding, findings, findings_table
from cartforensics.analysis.fleet import fleet_summary
from cartforensics.analysis.metrics import metrics, prometheus_text, rates
from cartforensics.analysis.notes import Notes, NotesError
from cartforensics.analysis.reconcile import ReconcileError, Reconciliation, reconcile
from cartforensics.analysis.sql import sql
from cartforensics.io.dataset import open_dataset
from cartforensics.io.logs import NoLogsError, find_logs
from cartforensics.io.prometheus import PrometheusRecordError, read_record
from cartforensics.io.sources import read_events
from cartforensics.jobs.convert import convert, restore
from cartforensics.jobs.repair import RepairError, RepairResult, repair
from cartforensics.model.engine import engine_info
from cartforensics.model.registry import Registry, default_registry
from cartforensics.model.replay import (
    Replay,
    ReplayWithout,
    compare,
    diff_states,
    dropped_lines,
    replay,
)
from cartforensics.present.report import write_report

__all__ = [
    "Finding", "NoLogsError", "Notes", "NotesError", "Registry", "Replay", "ReplayWithout",
    "__version__",
    "compare", "convert",
    "default_registry", "diff_states", "dropped_lines", "engine_info", "find_logs", "findings",
    "findings_table", "fleet_summary", "metrics", "open_dataset", "prometheus_text", "rates",
    "read_events", "RepairError", "RepairResult", "repair", "replay", "restore", "sql",
    "write_report",
    "TimelineScrubber", "FleetDashboard",
    "PrometheusRecordError", "ReconcileError", "Reconciliation", "read_record", "reconcile",
]


def __getattr__(name: str):  # the widgets load ipywidgets and matplotlib: only when asked
    if name in ("TimelineScrubber", "FleetDashboard"):
        from cartforensics.present import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'cartforensics' has no attribute {name!r}")
