"""What ``cartforensics replay`` shows of a source, replayed a piece of lines at a time: the
per-cart table (:meth:`ReplayStream.summary`) and the JSON lines
(:meth:`ReplayStream.records`), the same as of one :func:`~cartforensics.model.replay.replay`
of the whole source, while holding only a piece of rows and a few counters per cart.

Each piece (:func:`~cartforensics.io.logs.read_event_pieces`) is replayed, and a cart cut
between pieces goes on in the next one from where the last left it
(:meth:`~cartforensics.model.replay.Replay.cart_end`). A converted dataset is read whole (one
piece).

>>> s = replay_stream("sample_data").summary()
>>> s.metrics["cart_event_log_replay_total"] == replay("sample_data").metrics()[
...     "cart_event_log_replay_total"]
np.True_
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cartforensics.analysis.findings import headline_text, numeric_ts_dropped
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.logs import LogList, Source, read_event_pieces
from cartforensics.io.sources import LogSource, Resolved, read_events, resolve_source
from cartforensics.model.replay import (
    METRIC_NAMES,
    CartStart,
    Replay,
    outcome_metrics,
    outcome_summary,
    replay,
)
from cartforensics.vocab import MODES, OUTCOMES, Mode

PIECE_ROWS = 1 << 18  # rows read and replayed at a time (each costs about 300 B while held)


@dataclass(frozen=True)
class ReplaySummary:
    """A source's replay as the ``replay`` command's table shows it: ``summary`` and
    ``metrics`` are the replay's own (:meth:`~cartforensics.model.replay.Replay.summary`,
    :meth:`~cartforensics.model.replay.Replay.metrics`), ``applied_lenient`` the lines each
    cart applies in lenient mode (None when not asked for), ``headline`` the sentence of
    :func:`~cartforensics.analysis.findings.headline`."""

    mode: Mode
    semantics: GoSemantics
    headline: str | None
    summary: pd.DataFrame
    metrics: pd.Series
    applied_lenient: pd.Series | None

    @property
    def cart_ids(self) -> list[str]:
        """Carts in replay order."""
        return self.summary.index.tolist()


def _line_columns(r: Replay) -> tuple[list[Any], ...]:
    oc = r.outcomes
    return (oc["type"].tolist(), oc["error"].tolist(), oc["line"].tolist(),
            oc["outcome"].tolist())


def _line_records(cart_id: str, rows: Sequence[int], columns: tuple[list[Any], ...]
                  ) -> Iterator[dict[str, Any]]:
    """The jsonl contract's object of each of a cart's lines (``rows`` of the replay whose
    :func:`_line_columns` are ``columns``)."""
    types, errors, lines, outcomes = columns
    for i in rows:
        outcome = outcomes[i]
        decoded = outcome not in ("malformed", "too_long", "not_reached")
        t = types[i] if decoded and isinstance(types[i], str) else None
        e = errors[i] if isinstance(errors[i], str) else None
        yield {"cart_id": cart_id, "line": lines[i], "outcome": outcome, "type": t, "error": e}


def _cart_record(cart_id: str, state: dict[str, Any], metrics: pd.Series) -> dict[str, Any]:
    """The jsonl contract's object of a cart: its final state and the seed's counters."""
    return {"cart_id": cart_id, "state": state,
            "metrics": {k: int(metrics[k]) for k in METRIC_NAMES}}


def replay_records(r: Replay, carts: Sequence[str] | None = None
                   ) -> Iterator[dict[str, Any]]:
    """The jsonl contract, cart by cart (``carts``: only those, in replay order): one object
    per physical line, then the cart's own object with its final state and the seed's
    per-cart counters.

    >>> recs = list(replay_records(replay("sample_data/cart-1003.events.log")))
    >>> len(recs), sorted(recs[-1])
    (8, ['cart_id', 'metrics', 'state'])
    """
    columns = _line_columns(r)
    metrics = r.metrics(by_cart=True)
    wanted = None if carts is None else set(carts)
    for cid in r.cart_ids:
        if wanted is None or cid in wanted:
            yield from _line_records(cid, r.rows_of(cid), columns)
            yield _cart_record(cid, r.final_state(cid), metrics.loc[cid])


def _grouped(logs: LogList) -> LogList:
    """The logs with each cart's files together, in order of the cart's first file (and its
    files in their order): a cart's lines then come one after another, as a replay takes
    them (a list of several directories lists a cart once per directory)."""
    order = {cid: k for k, cid in enumerate(dict.fromkeys(log.cart_id for log in logs))}
    return LogList(sorted(logs, key=lambda log: order[log.cart_id]), logs.skipped)


class ReplayStream:
    """A source to replay a piece at a time (see :func:`replay_stream`): ``cart_ids`` (replay
    order, known before a line is read), :meth:`summary`, :meth:`records`."""

    def __init__(self, source: Source | Resolved, mode: Mode = "go",
                 go_version: str | GoSemantics | None = None, progress: bool | None = None,
                 rows: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be 'go' or 'lenient', not {mode!r}")
        self.source = resolve_source(source)
        self.mode: Mode = mode
        self.go_version = go_version
        self.semantics = semantics(go_version)
        self.progress = progress
        self.rows = rows or PIECE_ROWS
        if isinstance(self.source, LogSource):
            self._logs: LogList | None = _grouped(self.source.log_list())
            cart_ids = [log.cart_id for log in self._logs]
        else:
            self._logs = None
            cart_ids = [f["cart_id"] for f in self.source.files()]
        #: the source's carts in replay order (every log's, an empty one's too)
        self.cart_ids: list[str] = list(dict.fromkeys(cart_ids))

    def _pieces(self) -> Iterator[pd.DataFrame]:
        if self._logs is None:  # a dataset: read whole
            frame = read_events(self.source, progress=self.progress, go_version=self.go_version)
            self.semantics = semantics(frame.attrs.get("go_version"))
            yield frame
            return
        yield from read_event_pieces(self._logs, self.progress, self.semantics, self.rows)

    def _replays(self, modes: Sequence[Mode]) -> Iterator[tuple[pd.DataFrame, list[Replay]]]:
        """Each piece and its replay in each of ``modes``; the last cart of a piece, when it
        has more lines, goes on in the next from where that piece left it (a cart's lines
        come one after another)."""
        starts: list[dict[str, CartStart]] = [{} for _ in modes]
        for piece in self._pieces():
            rs = []
            for k, mode in enumerate(modes):
                r = replay(piece, mode=mode, starts=starts[k])
                last = r.cart_ids[-1:] if piece.attrs.get("continued") else []
                starts[k] = {cid: r.cart_end(cid) for cid in last}
                rs.append(r)
            yield piece, rs

    def cart(self, cart_id: str) -> Replay:
        """The replay (in ``mode``) of one of the source's carts, from its lines alone: only
        its logs are read, or its rows of a dataset, so memory is the cart's, not the
        source's. A cart's replay depends on its own lines only, so every state and outcome
        is the one a replay of the whole source gives. Raises KeyError for a cart the source
        does not hold.

        >>> replay_stream("sample_data").cart("cart-1001").final_state("cart-1001")["id"]
        'cart-1001'
        """
        if cart_id not in self.cart_ids:
            raise KeyError(f"no cart {cart_id!r} in this source")
        if self._logs is None:
            events = read_events(self.source, progress=False, carts=[cart_id],
                                 go_version=self.go_version)
        else:
            events = read_events(LogList([log for log in self._logs if log.cart_id == cart_id]),
                                 progress=False, go_version=self.semantics)
        return replay(events, mode=self.mode)

    def summary(self, lenient: bool | None = None) -> ReplaySummary:
        """The replay's per-cart summary, metrics and headline; ``lenient`` (default: when
        the mode is go) also counts each cart's lines applied in lenient mode."""
        if lenient is None:
            lenient = self.mode == "go"
        modes: list[Mode] = [self.mode, "lenient"] if lenient else [self.mode]
        counts: dict[str, np.ndarray] = {}
        items: dict[str, int] = {}
        totals: dict[str, int] = {}
        applied_lenient: dict[str, int] = {}
        lines = dropped = 0
        dropped_carts: set[str] = set()
        for piece, rs in self._replays(modes):
            n, carts = numeric_ts_dropped(piece)
            lines += len(piece)
            dropped += n
            dropped_carts |= carts
            s = rs[0].summary()
            for cid, row, k, t in zip(s.index.tolist(), s[list(OUTCOMES)].to_numpy(),
                                      s["items"].tolist(), s["total_price"].tolist(),
                                      strict=True):
                counts[cid] = counts[cid] + row if cid in counts else row
                items[cid], totals[cid] = k, t
            if lenient:
                applied = rs[1].summary()["applied"]
                for cid, a in zip(applied.index.tolist(), applied.tolist(), strict=True):
                    applied_lenient[cid] = applied_lenient.get(cid, 0) + a
        ids = list(counts)
        frame = pd.DataFrame(np.array([counts[c] for c in ids], dtype=np.int64).reshape(
            len(ids), len(OUTCOMES)), columns=list(OUTCOMES),
            index=pd.Index(ids, name="cart_id"))
        metrics = outcome_metrics(frame)
        summary = outcome_summary(frame, [items[c] for c in ids], [totals[c] for c in ids])
        lenient_col = (pd.Series([applied_lenient[c] for c in ids], index=summary.index,
                                 dtype=np.int64, name="applied") if lenient else None)
        return ReplaySummary(self.mode, self.semantics,
                             headline_text(dropped, lines, len(dropped_carts)), summary,
                             metrics, lenient_col)

    def records(self, carts: Sequence[str] | None = None) -> Iterator[dict[str, Any]]:
        """:func:`replay_records` of the whole source, a piece at a time: each line's object
        as its piece is replayed, each cart's own object once its last line is."""
        wanted = None if carts is None else set(carts)
        open_cart: tuple[str, dict[str, Any], np.ndarray] | None = None

        def closed() -> Iterator[dict[str, Any]]:
            if open_cart is not None and (wanted is None or open_cart[0] in wanted):
                cid, state, counts = open_cart
                m = outcome_metrics(pd.DataFrame([counts], columns=list(OUTCOMES),
                                                 index=[cid]), by_cart=True)
                yield _cart_record(cid, state, m.loc[cid])

        for _piece, (r,) in self._replays([self.mode]):
            columns = _line_columns(r) if wanted is None or wanted & set(r.cart_ids) else None
            codes = r.summary()[list(OUTCOMES)]
            for cid in r.cart_ids:
                counts = codes.loc[cid].to_numpy()
                if open_cart is not None and open_cart[0] == cid:
                    counts = counts + open_cart[2]
                else:
                    yield from closed()
                if columns is not None and (wanted is None or cid in wanted):
                    yield from _line_records(cid, r.rows_of(cid), columns)
                open_cart = (cid, r.final_state(cid), counts)
        yield from closed()


def replay_stream(source: Source | Resolved, mode: Mode = "go",
                  go_version: str | GoSemantics | None = None, progress: bool | None = None,
                  rows: int | None = None) -> ReplayStream:
    """``source`` (logs or a dataset, as :func:`~cartforensics.io.sources.read_events`
    takes it) to replay in ``mode`` a piece of ``rows`` lines (default
    :data:`PIECE_ROWS`) at a time: its ``summary()``
    and ``records()`` are those of :func:`~cartforensics.model.replay.replay` of the whole
    source, held in a piece's memory (plus each cart's counters), not the source's.

    >>> stream = replay_stream("sample_data", mode="go")
    >>> s = stream.summary()
    >>> s.summary.equals(replay("sample_data").summary()), len(stream.cart_ids)
    (True, 300)
    """
    return ReplayStream(source, mode, go_version, progress, rows)


__all__ = ["PIECE_ROWS", "ReplayStream", "ReplaySummary", "replay_records", "replay_stream"]
