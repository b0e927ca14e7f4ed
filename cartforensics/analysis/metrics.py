"""The seed's Prometheus metrics rebuilt from the logs, and failure rates over time.

Reader side (what ``ReplayCartEvents`` would have counted replaying every cart once) comes from a
``go``-mode :class:`~cartforensics.model.replay.Replay`; writer side (what ``AppendCartEvent``
counted
writing the files) comes from the lines themselves. Both as a DataFrame and as Prometheus text
exposition format, written the way the Go client writes it, to hold against a real scrape.

>>> r = replay("sample_data")                         # doctest: +SKIP
>>> metrics(r)[["value", "note"]]                     # doctest: +SKIP
>>> print(prometheus_text(r))                         # doctest: +SKIP
>>> rates(r, freq="1D", by="type")                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from cartforensics.analysis.findings import OutcomeColumns
from cartforensics.io.logs import LOG_SUFFIX, Source, find_logs
from cartforensics.model.protocol import ReplayLike, ReplayOfEvents
from cartforensics.model.replay import Replay
from cartforensics.vocab import (
    FAILURE_OUTCOMES,
    MUTATION_ERROR_OUTCOMES,
    OUTCOMES,
    PROMISED_UNKNOWN_METRIC,
)

# name → (type, help text), exactly as the seed registers them
SEED_METRICS: dict[str, tuple[str, str]] = {
    "cart_event_log_appends_total": (
        "counter", "Total number of cart mutation events appended to event logs."),
    "cart_event_log_replay_total": (
        "counter", "Total number of successful event log replays (per cart)."),
    "cart_event_log_replay_failures_total": (
        "counter", "Total number of failed event log replay operations."),
    "cart_event_log_bytes_written_total": (
        "counter", "Cumulative number of bytes written to all cart event logs."),
    "cart_event_log_files_existing": (
        "gauge", "Number of cart event log files currently existing on disk."),
    "cart_event_log_last_append_unix": (
        "gauge", "Unix timestamp of the last append to any cart event log."),
    "cart_event_log_replay_duration_seconds": (
        "histogram", "Duration of replay operations per cart in seconds."),
    "cart_event_log_unknown_types_total": (
        "counter", "Total number of unknown event types encountered during replay (skipped)."),
    "cart_event_log_mutation_errors_total": (
        "counter", "Total number of errors applying mutation events during replay."),
}
READER_METRICS = (
    "cart_event_log_replay_total",
    "cart_event_log_replay_failures_total",
    "cart_event_log_mutation_errors_total",
    "cart_event_log_unknown_types_total",
)
WRITER_METRICS = (
    "cart_event_log_appends_total",
    "cart_event_log_bytes_written_total",
    "cart_event_log_files_existing",
    "cart_event_log_last_append_unix",
)
# Not the service's: the unknown-type count the seed's comments promise ("Missing / unknown
# event types are skipped (metric incremented)") and its code never increments.
PROMISED_UNKNOWN_HELP = (
    "cart_event_log_unknown_types_total as the seed's comments promise it: unknown event types "
    "skipped during replay (the service's code never increments the real one)."
)

METRIC_NOTES = {
    "cart_event_log_replay_total": "carts whose scanner did not stop (no line over 256 KiB); "
    "a cart whose every line failed still counts",
    "cart_event_log_replay_failures_total": "malformed + unknown_type + too_long lines",
    "cart_event_log_mutation_errors_total": "payload_error + apply_error lines",
    "cart_event_log_unknown_types_total": "as exported: the seed never increments it",
    PROMISED_UNKNOWN_METRIC: "unknown_type lines: what the seed's comments promise",
    "cart_event_log_appends_total": "'\\n'-terminated lines (a final line without it was "
    "never counted)",
    "cart_event_log_bytes_written_total": "bytes of those lines plus their newlines",
    "cart_event_log_files_existing": "*.events.log files (the seed's glob; .gz not counted)",
    "cart_event_log_last_append_unix": "largest ts of any line (numeric or RFC 3339)",
}


# -- metrics -------------------------------------------------------------------------------
def _outcome_counts(replay: ReplayLike) -> pd.DataFrame:
    """Lines per outcome per cart, every cart of the replay (empty files too)."""
    oc = replay.outcomes
    cart = oc["cart_id"].astype(str)
    counts = pd.crosstab(cart, oc["outcome"].astype(str))
    counts = counts.reindex(columns=list(OUTCOMES), fill_value=0)
    carts = list(dict.fromkeys([*replay.cart_ids, *counts.index]))
    return counts.reindex(carts, fill_value=0).astype("int64")


def _reader_by_cart(replay: ReplayLike) -> pd.DataFrame:
    c = _outcome_counts(replay)
    m = pd.DataFrame(index=c.index)
    m["cart_event_log_replay_total"] = (c["too_long"] == 0).astype("int64")
    m["cart_event_log_replay_failures_total"] = c[list(FAILURE_OUTCOMES)].sum(axis=1)
    m["cart_event_log_mutation_errors_total"] = c[list(MUTATION_ERROR_OUTCOMES)].sum(axis=1)
    m["cart_event_log_unknown_types_total"] = 0
    m[PROMISED_UNKNOWN_METRIC] = c["unknown_type"]
    return m.astype("int64")


def _log_files(events: pd.DataFrame, source: Source | None) -> list[tuple[str, str]] | None:
    """(cart_id, file name) of every file read, when known."""
    files = events.attrs.get("files")
    if files:
        return [(str(f["cart_id"]), os.path.basename(str(f["path"]))) for f in files]
    if source is not None:
        return [(f.cart_id, f.path.name) for f in find_logs(source)]
    return None


def _writer_by_cart(
    events: pd.DataFrame, carts: list[str], source: Source | None
) -> pd.DataFrame:
    cart = events["cart_id"].astype(str)
    nl = events["newline"].to_numpy(dtype=bool)
    length = events["length"].to_numpy(dtype=np.int64)
    frame = pd.DataFrame({
        "cart": cart.to_numpy(),
        "appends": nl.astype(np.int64),
        "bytes": np.where(nl, length + 1, 0),
        "ts": events["ts"],
    })
    g = frame.groupby("cart", sort=False)
    order = list(dict.fromkeys([*carts, *frame["cart"].unique().tolist()]))
    m = pd.DataFrame(index=pd.Index(order, name="cart_id"))
    m["cart_event_log_appends_total"] = g["appends"].sum().reindex(order, fill_value=0)
    m["cart_event_log_bytes_written_total"] = g["bytes"].sum().reindex(order, fill_value=0)
    files = _log_files(events, source)
    if files is not None:
        plain = pd.Series([c for c, name in files if name.endswith(LOG_SUFFIX)], dtype=object)
        m["cart_event_log_files_existing"] = (
            plain.value_counts().reindex(order, fill_value=0).astype("int64")
        )
    else:  # unknown: one file per cart
        m["cart_event_log_files_existing"] = 1
    last = g["ts"].max().reindex(order)
    m["cart_event_log_last_append_unix"] = _unix_seconds(last)
    return m


def _unix_seconds(ts: pd.Series) -> np.ndarray:
    ns = ts.dt.as_unit("ns").array.asi8.astype(np.float64)
    ns[ts.isna().to_numpy()] = np.nan
    return ns / 1e9


def metrics(
    replay: ReplayOfEvents, source: Source | None = None, by_cart: bool = False
) -> pd.DataFrame:
    """The seed's metrics as the service would have exported them after replaying every cart
    once (reader side, from ``replay``, a ``go``-mode replay), and as its writer counted them
    appending the lines (writer side, from the lines themselves).

    One row per metric, indexed by name: ``side`` (reader/writer), ``type`` (counter/gauge),
    ``value``, ``help`` (the seed's help text) and ``note`` (how it was rebuilt). Also the row
    ``cartforensics_promised_unknown_types_total``: the unknown-type count the seed's comments
    promise, which its code never increments (the exported one is always 0).

    ``files_existing`` counts ``*.events.log`` files as the seed's glob does (``.gz`` not
    counted); the file list comes from ``read_events`` or from ``source``; without either it
    is the number of carts. ``last_append_unix`` is the largest ts of any line (0 when no line
    has one, as the gauge starts). The replay-duration histogram depends on wall-clock time
    and cannot be rebuilt; its count equals ``replay_total``.

    ``by_cart=True``: one row per cart, one column per metric instead.
    """
    if by_cart:
        reader, writer = _by_cart(replay, source)
        out = reader.join(writer, how="outer")
        out = out.reindex(list(dict.fromkeys([*reader.index, *writer.index])))
        out.index.name = "cart_id"
        ints = [c for c in out.columns if c != "cart_event_log_last_append_unix"]
        out[ints] = out[ints].fillna(0).astype("int64")
        return out
    return metrics_frame(metric_values(replay, source), replay.mode)


def _by_cart(replay: ReplayOfEvents, source: Source | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    reader = _reader_by_cart(replay)
    files = _log_files(replay.events, source)
    missing = [c for c in dict.fromkeys(c for c, _ in files or []) if c not in reader.index]
    if missing:  # files with no lines the replay never saw: each replays successfully
        extra = pd.DataFrame(0, index=pd.Index(missing), columns=reader.columns, dtype="int64")
        extra["cart_event_log_replay_total"] = 1
        reader = pd.concat([reader, extra])
    writer = _writer_by_cart(replay.events, list(reader.index), source)
    return reader, writer


def metric_values(replay: ReplayOfEvents, source: Source | None = None) -> dict[str, Any]:
    """The metrics' values (name -> value) of :func:`metrics`; the values of disjoint sets of
    carts add up (:func:`combine_metric_values`)."""
    ev = replay.events
    cols = OutcomeColumns(replay)  # two columns, not the outcomes frame
    outcome = cols["outcome"]
    per = outcome.value_counts()
    count = {o: int(per.get(o, 0)) for o in OUTCOMES}
    cart = cols["cart_id"]
    long_carts = set(map(str, pd.unique(cart[(outcome == "too_long").to_numpy()])))
    files = _log_files(ev, source)
    carts = set(replay.cart_ids) | set(map(str, pd.unique(cart)))  # (no str per line)
    carts |= {c for c, _ in files or []}
    nl = ev["newline"].to_numpy(dtype=bool)
    length = ev["length"].to_numpy(dtype=np.int64)
    ts = pd.to_datetime(ev["ts"], utc=True)
    last = ts.max() if len(ts) else pd.NaT
    values: dict[str, Any] = {
        "cart_event_log_replay_total": len(carts) - len(long_carts),
        "cart_event_log_replay_failures_total": sum(count[o] for o in FAILURE_OUTCOMES),
        "cart_event_log_mutation_errors_total": sum(count[o] for o in MUTATION_ERROR_OUTCOMES),
        "cart_event_log_unknown_types_total": 0,
        PROMISED_UNKNOWN_METRIC: count["unknown_type"],
        "cart_event_log_appends_total": int(nl.sum()),
        "cart_event_log_bytes_written_total": int((length[nl] + 1).sum()),
        "cart_event_log_files_existing": len(carts) if files is None else
        sum(1 for _, name in files if name.endswith(LOG_SUFFIX)),
        "cart_event_log_last_append_unix":
            0.0 if pd.isna(last) else float(last.as_unit("ns").value) / 1e9,
    }
    return values


def combine_metric_values(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The values of disjoint sets of carts as one: counters add, the last append is the
    largest."""
    out: dict[str, Any] = {}
    for p in parts:
        for k, v in p.items():
            if k not in out:
                out[k] = v
            elif k == "cart_event_log_last_append_unix":
                out[k] = max(out[k], v)
            else:
                out[k] = out[k] + v
    return out


def metrics_frame(values: dict[str, Any], mode: str = "go") -> pd.DataFrame:
    """:func:`metrics`' table from its values."""
    rows = []
    for name in (*READER_METRICS, PROMISED_UNKNOWN_METRIC, *WRITER_METRICS):
        if name == PROMISED_UNKNOWN_METRIC:
            typ, help_text = "counter", PROMISED_UNKNOWN_HELP
        else:
            typ, help_text = SEED_METRICS[name]
        rows.append({
            "metric": name,
            "side": "reader" if name in READER_METRICS or name == PROMISED_UNKNOWN_METRIC
            else "writer",
            "type": typ,
            "value": values[name],
            "help": help_text,
            "note": METRIC_NOTES[name],
        })
    out = pd.DataFrame(rows).set_index("metric")
    out["value"] = pd.Series([r["value"] for r in rows], index=out.index, dtype=object)
    out.attrs["mode"] = mode
    return out


# -- Prometheus text exposition ------------------------------------------------------------
def go_float(v: float) -> str:
    """A float as the Go client's text exposition writes it (``strconv.FormatFloat(v, 'g', -1,
    64)``, with 0, 1 and -1 short): 27 → ``27``, 1762161707 → ``1.762161707e+09``."""
    f = float(v)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digits, exp = Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    nd = len(ds)
    dp = nd + int(exp)  # position of the decimal point in the digit string
    neg = "-" if sign else ""
    e = dp - 1
    if e < -4 or e >= 6:  # Go's shortest %g switches to %e at exponent 6
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{neg}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if dp <= 0:
        return f"{neg}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return f"{neg}{ds}{'0' * (dp - nd)}"
    return f"{neg}{ds[:dp]}.{ds[dp:]}"


def _help_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def prometheus_text(
    m: Replay | pd.DataFrame, source: Source | None = None, promised: bool = True
) -> str:
    """The rebuilt metrics in Prometheus text exposition format (version 0.0.4), families
    sorted by name with the seed's ``# HELP`` and ``# TYPE`` lines, values formatted as the Go
    client formats them.

    ``m``: a go-mode :class:`Replay` or the DataFrame of :func:`metrics`. ``promised`` adds
    ``cartforensics_promised_unknown_types_total`` (not a metric the service has: what its
    comments promise). The duration histogram cannot be rebuilt and is left out (a comment
    says so).
    """
    df = metrics(m, source) if isinstance(m, Replay) else m
    lines: list[str] = []
    for name in sorted(df.index):
        if name == PROMISED_UNKNOWN_METRIC and not promised:
            continue
        row = df.loc[name]
        lines.append(f"# HELP {name} {_help_escape(str(row['help']))}")
        lines.append(f"# TYPE {name} {row['type']}")
        lines.append(f"{name} {go_float(row['value'])}")
    lines.append(
        "# cartforensics: cart_event_log_replay_duration_seconds (histogram) depends on "
        "wall-clock time and is not rebuilt; its _count would be cart_event_log_replay_total "
        f"= {go_float(df.loc['cart_event_log_replay_total', 'value'])}"
    )
    return "\n".join(lines) + "\n"


# -- rates ---------------------------------------------------------------------------------
_BY = {None: None, "type": "type", "cart": "cart_id", "cart_id": "cart_id"}


def rates(replay: ReplayLike, freq: str = "1h", by: str | None = None) -> pd.DataFrame:
    """Lines per outcome and failure rates per time window, the windows laid on the lines' own
    ts (UTC; Unix seconds and RFC 3339 alike).

    Columns: ``window`` (the window's start, UTC), then ``type`` or ``cart_id`` when
    ``by="type"`` / ``by="cart"``, ``lines``, one count per outcome, ``failure_rate``
    ((malformed + unknown_type + too_long) / lines: the lines ``replay_failures_total`` counts),
    ``unknown_type_rate``, ``mutation_error_rate`` ((payload_error + apply_error) / lines).
    Without ``by`` every window between the first and the last is there (empty ones with 0
    lines and NaN rates); with ``by`` only windows that hold lines. Lines without a readable
    ts are left out and counted apart: ``df.attrs["no_ts"]`` (and per outcome in
    ``df.attrs["no_ts_outcomes"]``).
    """
    if by not in _BY:
        raise ValueError(f"by must be None, 'type' or 'cart', not {by!r}")
    key = _BY[by]
    oc = replay.outcomes
    outcome = oc["outcome"].astype(str).to_numpy()
    ts = oc["ts"]
    has = ts.notna().to_numpy()
    # the extension array keeps the datetimes vectorised (to_numpy() would box every one)
    frame = pd.DataFrame({"window": ts.array[has] if len(ts) else ts.array})
    frame["window"] = pd.to_datetime(frame["window"], utc=True)
    for o in OUTCOMES:
        frame[o] = (outcome[has] == o).astype(np.int64)
    if key == "type":
        frame["type"] = oc["type"].astype(object).to_numpy()[has]
        frame["type"] = frame["type"].where(frame["type"].map(_is_str), "(none)").astype(str)
    elif key == "cart_id":
        frame["cart_id"] = oc["cart_id"].astype(str).to_numpy()[has]
    no_ts = ~has
    no_ts_outcomes = {o: int(n) for o in OUTCOMES if (n := (outcome[no_ts] == o).sum())}
    return rates_from_counts(frame, freq, key, replay.mode, no_ts_outcomes)


def rates_from_counts(frame: pd.DataFrame, freq: str, key: str | None, mode: str,
                      no_ts_outcomes: dict[str, int]) -> pd.DataFrame:
    """:func:`rates` from lines counted per outcome: ``frame`` has ``window`` (a time the
    counted lines share their window with), ``key`` (``type`` or ``cart_id``, or None) and
    one count column per outcome; rows of the same window and key add up. ValueError when
    ``freq`` is no positive window or makes more than :data:`MAX_WINDOWS` windows."""
    check_windows(freq, frame["window"].max() - frame["window"].min() if len(frame)
                  else pd.Timedelta(0))
    if key is None:
        if len(frame):
            g = frame.set_index("window")[list(OUTCOMES)].resample(freq).sum()
        else:
            g = frame.set_index("window")[list(OUTCOMES)]
        out = g.reset_index()
    else:
        out = (
            frame.groupby([pd.Grouper(key="window", freq=freq), key], sort=True)[list(OUTCOMES)]
            .sum()
            .reset_index()
        )
    out[list(OUTCOMES)] = out[list(OUTCOMES)].astype("int64")
    out.insert(1 if key is None else 2, "lines", out[list(OUTCOMES)].sum(axis=1))
    lines = out["lines"].where(out["lines"] > 0).astype(float)
    out["failure_rate"] = out[list(FAILURE_OUTCOMES)].sum(axis=1) / lines
    out["unknown_type_rate"] = out["unknown_type"] / lines
    out["mutation_error_rate"] = out[list(MUTATION_ERROR_OUTCOMES)].sum(axis=1) / lines
    out.attrs["freq"] = freq
    out.attrs["mode"] = mode
    out.attrs["no_ts"] = int(sum(no_ts_outcomes.values()))
    out.attrs["no_ts_outcomes"] = dict(no_ts_outcomes)
    return out


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


# the windows of the charts (cartforensics.present.plots): here, so that choosing one needs no
# matplotlib (the report's worker processes never import it)
_FREQS = [
    ("1min", pd.Timedelta(minutes=1)), ("5min", pd.Timedelta(minutes=5)),
    ("15min", pd.Timedelta(minutes=15)), ("1h", pd.Timedelta(hours=1)),
    ("6h", pd.Timedelta(hours=6)), ("1D", pd.Timedelta(days=1)),
    ("7D", pd.Timedelta(days=7)), ("30D", pd.Timedelta(days=30)),
]


MAX_WINDOWS = 100_000  # time windows a chart or a rates frame is cut into, at most
_CALENDAR_START = pd.Timestamp("2000-01-03 09:00")  # a Monday, 9:00: a business hour's start


def window_width(freq: str) -> pd.Timedelta:
    """The width of the time window ``freq`` (``"1h"``, ``"15min"``, ``"1D"``; a calendar one
    such as ``"MS"`` by its step from a Monday 9:00). ValueError, saying what to give, unless
    ``freq`` is a window of positive width.

    >>> window_width("15min")
    Timedelta('0 days 00:15:00')
    """
    if not isinstance(freq, str) or not freq.strip():
        raise ValueError(f"freq {freq!r} is not a time window: give one such as 1h, 15min or 1D")
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        raise ValueError(f"freq {freq!r} is not a time window: give one such as 1h, 15min "
                         "or 1D") from None
    if offset.n <= 0:
        raise ValueError(f"freq {freq!r} is not a positive time window: give one such as 1h, "
                         "15min or 1D")
    try:
        width = pd.Timedelta(offset)
    except (ValueError, TypeError):  # a calendar window (weeks, months, business days)
        width = (_CALENDAR_START + offset) - _CALENDAR_START
    if width <= pd.Timedelta(0):
        raise ValueError(f"freq {freq!r} is not a positive time window: give one such as 1h")
    return width


def check_windows(freq: str, span: pd.Timedelta) -> None:
    """ValueError unless ``freq`` is a positive window (:func:`window_width`) that cuts
    ``span`` (the time from the first line to the last) into at most :data:`MAX_WINDOWS`
    windows; the message names the narrowest standard window that would do.

    >>> check_windows("1h", pd.Timedelta(days=7))
    """
    width = window_width(freq)
    if pd.isna(span):
        return
    n = span // width + 1
    if n > MAX_WINDOWS:
        wider = next((name for name, w in _FREQS if span // w + 1 <= MAX_WINDOWS), "365D")
        raise ValueError(f"freq {freq!r} cuts the data's span of {span} into {n:,} windows, "
                         f"more than {MAX_WINDOWS:,}: give a wider window, {wider} or more")


def pick_freq(ts: pd.Series, target: int = 60) -> str:
    """The smallest window of 1min, 5min, 15min, 1h, 6h, 1D, 7D, 30D giving at most
    ``target`` windows over the span of ``ts``."""
    ts = ts.dropna()
    if ts.empty:
        return "1h"
    span = ts.max() - ts.min()
    for name, width in _FREQS:
        if span / width <= target:
            return name
    return _FREQS[-1][0]


__all__ = [
    "FAILURE_OUTCOMES", "MUTATION_ERROR_OUTCOMES", "PROMISED_UNKNOWN_METRIC", "READER_METRICS",
    "SEED_METRICS", "WRITER_METRICS", "combine_metric_values", "go_float", "metric_values",
    "metrics", "metrics_frame", "pick_freq", "prometheus_text", "rates", "rates_from_counts",
    "MAX_WINDOWS", "check_windows", "window_width",
]
