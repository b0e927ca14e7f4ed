"""Which replay core runs: the compiled one (Cython, ``_replay_core``) or the pure-Python
reference (:mod:`cartforensics.model.cart`), and how to choose.

>>> engine_info()["engine"] in ("compiled", "reference")
True

``replay(..., engine="reference")`` or the environment variable
``CARTFORENSICS_ENGINE=reference`` forces the reference core; the default is the compiled one
when it is importable. When it is not, the package warns once and runs on the reference.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Literal

Engine = Literal["compiled", "reference"]
ENGINES = ("compiled", "reference")

try:
    from cartforensics.model import _replay_core as core
except ImportError as exc:  # not built (no compiler at install time) or broken
    core = None
    _WHY = f"{type(exc).__name__}: {exc}"
else:
    _WHY = ""
    if not hasattr(core, "Replayer"):  # a build of an older .pyx: its interface is gone
        core = None
        _WHY = ("the built cartforensics.model._replay_core is older than its source: rebuild it "
                "(python setup.py build_ext --inplace, or pip install -e .)")

_warned = False


def engine_info() -> dict[str, Any]:
    """Which core :func:`~cartforensics.model.replay` uses by default, and why.

    ``scan`` says which line scan ``read_events`` uses (the compiled
    ``_fastpath_core``, or msgspec and numpy when it is not built).

    >>> sorted(engine_info())
    ['compiled_available', 'engine', 'module', 'reason', 'scan']
    """
    from cartforensics.go.writer_shape import CORE_WHY
    from cartforensics.go.writer_shape import core as scan_core

    forced = os.environ.get("CARTFORENSICS_ENGINE", "").strip()
    if core is None:
        engine, reason = "reference", f"compiled core not importable ({_WHY})"
    elif forced == "reference":
        engine, reason = "reference", "CARTFORENSICS_ENGINE=reference"
    else:
        engine, reason = "compiled", "compiled core imported"
    return {
        "engine": engine,
        "compiled_available": core is not None,
        "module": getattr(core, "__file__", None),
        "reason": reason,
        "scan": "compiled" if scan_core is not None else f"reference ({CORE_WHY})",
    }


def engine_text() -> str:
    """Two lines for ``cartforensics --version``."""
    info = engine_info()
    return f"replay core: {info['engine']} ({info['reason']})\nline scan: {info['scan']}"


def resolve(engine: str | None) -> Engine:
    """The core to run for a ``replay(engine=...)`` argument (None: the default)."""
    global _warned
    if engine is None:
        forced = os.environ.get("CARTFORENSICS_ENGINE", "").strip() or None
        if forced is not None and forced not in ENGINES:
            raise ValueError(
                f"CARTFORENSICS_ENGINE must be 'compiled' or 'reference', not {forced!r}"
            )
        engine = forced or "compiled"
        if engine == "compiled" and core is None:
            if not _warned:
                _warned = True
                warnings.warn(
                    f"cartforensics: the compiled replay core is not available ({_WHY}); "
                    "running on the pure-Python reference core (same results, slower). "
                    "Reinstall with a C compiler: pip install -e .",
                    RuntimeWarning,
                    stacklevel=3,
                )
            return "reference"
        return engine  # type: ignore[return-value]
    if engine not in ENGINES:
        raise ValueError(f"engine must be 'compiled' or 'reference', not {engine!r}")
    if engine == "compiled" and core is None:
        raise ValueError(f"engine='compiled' asked for, but it is not available ({_WHY}): "
                         "reinstall with a C compiler (pip install -e .) or drop engine=")
    return engine  # type: ignore[return-value]
