"""Which replay core runs: the compiled one (Cython, ``_replay_core``) or the pure-Python
reference (:mod:`cartforensics.model.cart`), and how to choose.

>>> engine_info()["engine"] in ("compiled", "reference")
True

``replay(..., engine="reference")`` or the environment variable
``CARTFORENSICS_ENGINE=reference`` forces the reference core; the default is the compiled one
when it is importable. When it is not, the package warns once and runs on the reference.

A replay asks its :class:`Engine` which core runs a cart: the compiled one while it can
replay the cart exactly (a cart it cannot, and every cart of a payload column that is not
text, runs on the reference and is listed in ``carts_on_reference``), and afterwards the core
that replayed the cart rebuilds its states, history and skip-a-line tails.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from cartforensics.model.cart import CartState

EngineName = Literal["compiled", "reference"]
ENGINES = ("compiled", "reference")
T = TypeVar("T")

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
    ``go._writer_shape_core``, or msgspec and numpy when it is not built).

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


def resolve(engine: str | None) -> EngineName:
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


class Engine:
    """Which core replays each cart of one replay. ``name`` is the core asked for (after
    :func:`resolve`); ``compiled`` the compiled core bound to the replay's columns once
    :meth:`bind` made it (None: every cart runs on the reference); ``carts_on_reference``
    the carts the compiled core handed to the reference. The reference core's own code is the
    replay's: each method that may run it takes it as a function."""

    def __init__(self, engine: str | None) -> None:
        self.name: EngineName = resolve(engine)
        self.compiled: CompiledCore | None = None
        self.carts_on_reference: list[str] = []

    def bind(self, payload: pd.Series, types: pd.Series, registry: Any, errors: pd.Series,
             too_long: np.ndarray, lines: np.ndarray, decoders: Any, catalog: Any,
             codes: np.ndarray, error_ids: np.ndarray, last_applied: np.ndarray,
             changed: np.ndarray, every: int,
             inputs: tuple[Any, np.ndarray] | None = None) -> CompiledCore | None:
        """The compiled core on these events' columns (see ``core.Replayer``), when it was
        asked for and the payload column is text; else None, and the reference runs every
        cart. ``inputs``: (payload buffers, row kinds) a core bound to the same payload and
        type columns and registry already made (its ``payload_buffers``, ``row_kind``)."""
        if self.name != "compiled":
            return None
        if inputs is None:
            try:
                buffers = _utf8_buffers(payload)
            except (pa.ArrowException, TypeError, ValueError):  # not a string column
                return None
            inputs = (buffers, _row_kinds(types, registry))
        self.compiled = CompiledCore(inputs[0], inputs[1], _is_text(errors),
                                     too_long, lines, decoders, catalog, codes, error_ids,
                                     last_applied, changed, every)
        return self.compiled

    def run_cart(self, cart_id: str, rows: np.ndarray,
                 reference: Callable[[str, np.ndarray], T], start: CartState | None = None,
                 stop_line: int | None = None) -> tuple[EngineName, T]:
        """(the core that ran it, what it returned): a cart's lines from ``start`` (None: the
        empty cart; ``stop_line``: the too-long line that already stopped the scanner) on
        the compiled core, else (not bound, or anything it does not model)
        ``reference(cart_id, rows)``, which starts there too."""
        if self.compiled is not None:
            try:
                return "compiled", self.compiled.run(cart_id, rows, start, stop_line)
            except Exception:  # noqa: BLE001 - anything unmodelled: the reference decides
                self.carts_on_reference.append(cart_id)
        elif self.name == "compiled":
            self.carts_on_reference.append(cart_id)
        return "reference", reference(cart_id, rows)

    def compiled_for(self, ran_on: EngineName) -> CompiledCore | None:
        """The compiled core when a cart ran on it (``ran_on``, as :meth:`run_cart` said):
        then it rebuilds the cart's states; None: the reference does."""
        return self.compiled if ran_on == "compiled" else None

    def run_tail(self, ran_on: EngineName, compiled: Callable[..., T | None],
                 reference: Callable[..., T], *args: Any) -> tuple[EngineName, T]:
        """(the core that ran it, what it returned): part of a cart replayed again from a
        kept state (:class:`~cartforensics.model.replay.ReplayWithout`) on ``ran_on``'s core,
        ``compiled(core, *args)``, else ``reference(*args)`` when that is the reference or
        the compiled core hands the part over (returns None)."""
        core_ = self.compiled_for(ran_on)
        if core_ is not None:
            out = compiled(core_, *args)
            if out is not None:
                return ran_on, out
        return "reference", reference(*args)


class CompiledCore:
    """The compiled core bound to one replay's columns: its :class:`~_replay_core.Replayer`
    (which fills the replay's per-row arrays), the string pool of its carts, and what the
    per-call entry points read (payload buffers, row kinds, decoders, catalog)."""

    def __init__(self, payload_buffers: tuple[np.ndarray, np.ndarray, np.ndarray],
                 row_kind: np.ndarray, is_error: np.ndarray, too_long: np.ndarray,
                 lines: np.ndarray, decoders: Any, catalog: Any, codes: np.ndarray,
                 error_ids: np.ndarray, last_applied: np.ndarray, changed: np.ndarray,
                 every: int) -> None:
        self.payload_buffers = payload_buffers  # views on the events' Arrow buffers
        self.row_kind = row_kind
        self.decoders = decoders
        self.catalog = catalog
        self.codes = codes
        self.every = every
        self.pool = core.Pool(catalog)
        self._inputs = (is_error, too_long, lines, decoders, self.pool)
        self.replayer = self._replayer(codes, error_ids, last_applied, changed)
        self._released = False

    def _replayer(self, *outputs: np.ndarray | None) -> Any:
        return core.Replayer(self.payload_buffers, self.row_kind, *self._inputs, *outputs,
                             self.every)

    def release_run(self) -> None:
        """Every cart has run and the replay has taken what it keeps of the per-row outputs:
        hold none of them (the error ids, 8 bytes a line, are let go). A later :meth:`run`
        fills scratch ones."""
        self.replayer = self._replayer(None, None, None, None)
        self._released = True

    def run(self, cart_id: str, rows: np.ndarray, start: CartState | None = None,
            stop_line: int | None = None) -> tuple[Any, Any, Any]:
        """(checkpoint lines, checkpoints, final) of a cart's rows from ``start`` (None: the
        empty cart), the scanner stopped at ``stop_line`` already when given; raises what it
        cannot replay exactly."""
        if self._released:
            n = len(self.codes)
            self.replayer = self._replayer(np.zeros(n, np.int8), np.zeros(n, np.int64),
                                           np.full(n, -1, np.int64), np.zeros(n, np.uint8))
            self._released = False
        if start is None and stop_line is None:
            return self.replayer.run(cart_id, rows)
        return self.replayer.run_from(start, cart_id, rows, None,
                                      -1 if stop_line is None else stop_line)

    def advance(self, snapshot: Any, rows: np.ndarray) -> Any:
        """The CartState after also applying ``rows`` (each known to apply) to a kept
        snapshot."""
        return self.replayer.advance(snapshot, np.ascontiguousarray(rows, dtype=np.int64))

    def apply_applied(self, snapshot: Any, rows: np.ndarray, cart_id: str) -> Any:
        """The CartState after also applying ``rows`` (each known to apply) to ``snapshot``
        (a snapshot or CartState; None: the empty cart)."""
        if snapshot is None:
            snapshot = core.empty(cart_id, self.pool)
        if not len(rows):
            return core.to_state(snapshot) if not isinstance(snapshot, CartState) else snapshot
        return core.advance(snapshot, rows.tolist(), self.row_kind, self.payload_buffers,
                            self.decoders, self.catalog, self.pool)

    def summaries(self, cart_id: str, rows: np.ndarray, codes: np.ndarray
                  ) -> tuple[list[int], list[int], list[int], list[int]]:
        """(items, quantity, deliveries, total_price) after each of ``rows`` (a cart's lines,
        in order, from the empty cart) whose outcomes are ``codes``."""
        by_row = self.codes
        if not np.array_equal(by_row[rows], codes):
            by_row = by_row.copy()
            by_row[rows] = codes
        return core.summaries(cart_id, rows.tolist(), self.row_kind, self.payload_buffers,
                              by_row, self.decoders, self.catalog, self.pool)

    def run_tail(self, cart_id: str, columns: dict[str, Any], start: Any, rows: np.ndarray,
                 at: np.ndarray, stop_line: int | None, last: int, first: int, total: int
                 ) -> tuple[Any, ...] | None:
        """The kept lines ``rows`` (the cart's positions ``at`` in ``columns``, the replay's
        per-line inputs of the cart) replayed from ``start``: (codes, errors, last applied,
        changed, checkpoint lines, checkpoints, final); None when the core hands them to the
        reference."""
        m = len(rows)
        codes = np.zeros(m, dtype=np.int8)
        errors: list[str | None] = [None] * m
        last_applied = np.full(m, -1, dtype=np.int64)
        changed = np.zeros(m, dtype=np.uint8)
        cols = columns
        if "types_array" not in cols:  # the same objects, to be taken many at a time
            for name in ("types", "errs"):
                cols[name + "_array"] = np.empty(len(cols[name]), dtype=object)
                cols[name + "_array"][:] = cols[name]
        try:
            cp, states, final = core.run_from(
                start, cart_id, rows.tolist(), np.ascontiguousarray(cols["kinds"][at]),
                cols["types_array"][at].tolist(), self.payload_buffers,
                cols["errs_array"][at].tolist(),
                np.ascontiguousarray(cols["too_long"][at]),
                np.ascontiguousarray(cols["lines"][at]), self.decoders, self.catalog, codes,
                errors, last_applied, changed, -1 if stop_line is None else stop_line, last,
                first, total, self.every, self.pool,
            )
        except Exception:  # noqa: BLE001 - anything unmodelled: the reference decides
            return None
        return codes, errors, last_applied, changed, cp, states, final


def _row_kinds(types: pd.Series, registry: Any) -> np.ndarray:
    """Per row, the compiled core's kind of its ``type`` (core.kind_of), as int8."""
    if isinstance(types.dtype, pd.CategoricalDtype):  # its own codes: no array per row
        codes, uniques = np.asarray(types.cat.codes.to_numpy()), types.cat.categories
    else:
        codes, uniques = pd.factorize(types, use_na_sentinel=True)
    table = np.array([core.kind_of(registry, u) for u in uniques] + [core.KIND_UNKNOWN],
                     dtype=np.int8)
    return np.ascontiguousarray(table[codes])  # code -1 (a missing type) takes the last


def _utf8_buffers(col: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets, valid as uint8) of a string column, without a Python
    str per row: the compiled core reads payloads straight from the Arrow buffers."""
    chunks = pa.chunked_array(pa.array(col.array, from_pandas=True)
                              if not hasattr(col.array, "__arrow_array__")
                              else col.array.__arrow_array__())
    # one chunk is read in place (combine_chunks would copy every payload byte)
    arr = chunks.chunk(0) if chunks.num_chunks == 1 else chunks.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise TypeError("payload is not a string column")
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(1, np.uint8)
    valid = np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not n:
        offsets = np.zeros(1, dtype=np.int64)
    return data, np.ascontiguousarray(offsets), valid.view(np.uint8)


def _is_text(col: pd.Series) -> np.ndarray:
    """Per row, as uint8: the value is a ``str`` (an envelope error text), as the reference
    core tests it; from the categories' codes when the column is categorical."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = col.cat.categories
        is_str = np.array([isinstance(c, str) for c in cats] + [False], dtype=bool)
        out = is_str[np.asarray(col.cat.codes.to_numpy(), dtype=np.intp)]  # -1: the last
    else:
        out = np.fromiter((isinstance(x, str) for x in col.tolist()), dtype=bool,
                          count=len(col))
    return np.ascontiguousarray(out, dtype=bool).view(np.uint8)
