"""Progress bars, drawn on stderr only where someone watches: every bar of the package is made
here, so output piped to a file or another program never has a bar (or its carriage returns)
mixed into it.

>>> bar = progress_bar(range(3), desc="reading logs", unit="file", enabled=False)
>>> list(bar), bar.disable
([0, 1, 2], True)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar", "watched"]


def watched(stream: Any = None) -> bool:
    """True when ``stream`` (None: stderr) is a terminal, or a Jupyter kernel's output where
    the bar is a widget: where a bar is seen rather than written into a file or a pipe."""
    err = sys.stderr if stream is None else stream
    if err is None:
        return False
    if type(err).__module__.startswith("ipykernel"):
        return True
    try:
        return bool(err.isatty())
    except (AttributeError, ValueError):  # a stand-in without isatty, or closed
        return False


def progress_bar(iterable: Iterable[Any] | None = None, total: float | None = None,
                 desc: str = "", unit: str = "it", enabled: bool | None = None,
                 file: Any = None, **options: Any) -> Any:
    """A tqdm bar on ``file`` (None: stderr) over ``iterable`` (or updated by hand up to
    ``total``). ``enabled``: True draws it, False never, None when :func:`watched` (the
    stream is a terminal). A bar not drawn still iterates, updates and closes, drawing
    nothing. ``options`` go to tqdm (``leave=False``, ...)."""
    from tqdm.auto import tqdm  # a widget in a notebook, text on a terminal

    stream = sys.stderr if file is None else file
    on = watched(stream) if enabled is None else bool(enabled)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not on, file=stream,
                dynamic_ncols=True, **options)
