"""Notebook widgets: a time-travel scrubber over one cart's lines, and a fleet dashboard.

:class:`TimelineScrubber` steps through a cart's lines the way a time-travel debugger steps
through actions: at every position the line itself (pretty-printed, or its raw bytes escaped
when it is not JSON), its outcome and error in ``go`` mode (what the service rebuilt) and in
``lenient`` mode (what the writer meant), the cart after it on both sides, and what changed.
A line can be skipped (the cart is replayed without it, like Redux DevTools skipping an
action) and the skips reset.

:class:`FleetDashboard` filters every line of a replay by date, type and outcome, draws a rate
chart and an outcome chart on one time axis from line counts it sends once
(``static/dashboard.js``: a filter redraws them in the page), ranks the worst carts and opens
the chosen one in a scrubber below, at the first line the filters match.

Both are anywidgets (JupyterLab, Notebook 7, VS Code, Voila, marimo). The scrubber: the kernel
sends plain data (:mod:`~cartforensics.present.widgets.frames`), one ES module
(``static/timeline.js``) draws it, and draws it again without a kernel from data embedded in
an HTML page (:mod:`~cartforensics.present.widgets.static`: what an HTML export of a notebook
shows). Everything taken from the logs (skus, names, types, errors, cart ids, raw bytes, notes)
is set as text (``textContent``), never as HTML: a sku ``<img src=x onerror=alert(1)>`` shows
as that text.

>>> ev = cf.read_events("sample_data")                             # doctest: +SKIP
>>> TimelineScrubber(cf.replay(ev), cart_id="cart-1003")           # doctest: +SKIP
>>> FleetDashboard(cf.replay(ev))                                  # doctest: +SKIP
"""

from cartforensics.present.widgets.common import escape_bytes, pretty_line
from cartforensics.present.widgets.dashboard import FleetDashboard
from cartforensics.present.widgets.frames import line_segments, money_text
from cartforensics.present.widgets.scrubber import TimelineScrubber
from cartforensics.present.widgets.static import static_html
from cartforensics.present.widgets.strip import (
           STRIP_MARKS,
           strip_bins,
           strip_cursor_html,
           strip_edges,
           strip_html,
)

__all__ = ["STRIP_MARKS", "FleetDashboard", "TimelineScrubber", "escape_bytes", "line_segments",
           "money_text", "pretty_line", "static_html", "strip_bins", "strip_cursor_html",
           "strip_edges", "strip_html"]
