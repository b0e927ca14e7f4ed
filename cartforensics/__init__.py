"""cartforensics: replay Go shopping-cart event logs exactly as the service does.

>>> import cartforensics as cf
>>> df = cf.read_events("sample_data")  # doctest: +SKIP
"""

from .events import NoLogsError, find_logs, read_events
from .registry import Registry, default_registry
from .replay import Replay, compare, diff_states, dropped_lines, replay

__version__ = "0.1.0"
__all__ = [
    "NoLogsError", "Registry", "Replay", "__version__", "compare", "default_registry",
    "diff_states", "dropped_lines", "find_logs", "read_events", "replay",
]
