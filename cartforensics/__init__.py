"""cartforensics: replay Go shopping-cart event logs exactly as the service does.

>>> import cartforensics as cf
>>> df = cf.read_events("sample_data")  # doctest: +SKIP
"""

from .convert import convert, restore
from .dataset import open_dataset
from .engine import engine_info
from .events import NoLogsError, find_logs
from .findings import Finding, findings, findings_table
from .fleet import fleet_summary
from .metrics import metrics, prometheus_text, rates
from .notes import Notes, NotesError
from .registry import Registry, default_registry
from .repair import RepairError, RepairResult, repair
from .replay import Replay, ReplayWithout, compare, diff_states, dropped_lines, replay
from .report import write_report
from .sources import read_events

__version__ = "0.1.0"
__all__ = [
    "Finding", "NoLogsError", "Notes", "NotesError", "Registry", "Replay", "ReplayWithout",
    "__version__",
    "compare", "convert",
    "default_registry", "diff_states", "dropped_lines", "engine_info", "find_logs", "findings",
    "findings_table", "fleet_summary", "metrics", "open_dataset", "prometheus_text", "rates",
    "read_events", "RepairError", "RepairResult", "repair", "replay", "restore", "write_report",
    "TimelineScrubber", "FleetDashboard",
]


def __getattr__(name: str):  # the widgets load ipywidgets and matplotlib: only when asked
    if name in ("TimelineScrubber", "FleetDashboard"):
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module 'cartforensics' has no attribute {name!r}")
