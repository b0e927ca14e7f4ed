"""cartforensics: replay Go shopping-cart event logs exactly as the service does.

>>> import cartforensics as cf
>>> df = cf.read_events("sample_data")  # doctest: +SKIP
"""

from .events import NoLogsError, find_logs, read_events

__version__ = "0.1.0"
__all__ = ["NoLogsError", "find_logs", "read_events", "__version__"]
