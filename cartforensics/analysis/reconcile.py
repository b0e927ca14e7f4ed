"""What the dashboards showed against what the logs say happened: the service's exported
counters (a Prometheus record, :mod:`cartforensics.io.prometheus`) reconciled with their
rebuilt twins (:mod:`cartforensics.analysis.metrics`), window by window, every difference
explained to the line or said to be unexplained.

A **window** is one process's life as the record shows it: a series is split where
``process_start_time_seconds`` changes (client_golang exports it by default) or, without it,
where a counter drops (a reset). The window runs from the process's start to the next one's
(the last to the end of the logs; the first, when the record has no start time, from the
beginning of the logs). A line belongs to the window its ``ts`` falls in (the
writer's ``ts`` is whole seconds: a line written in the second a process started counts in
the new window). The exported value of a counter in a window is its last scraped value (a
counter starts at 0 with its process).

What the differences can be, per window (``kind`` in :attr:`Reconciliation.explanations`):

- ``before_record``: lines in the logs from before the first process of the record started:
  the writer appended them, no counter in the record saw them;
- ``not_scraped``: appends made after Prometheus last scraped the process, before it ended
  (a crash, a kill): the dashboard never showed them (which of the lines of the same second,
  the logs cannot tell: the count is exact, ``text`` says when the lines are not);
- ``torn``: bytes of a write cut short (a crash mid-write) that the next append completed:
  in the file, never in ``bytes_written_total``;
- ``not_replayed``: carts the process did not replay in that window (``ReplayCartEvents`` runs
  per cart when a grain spawns; the logs cannot tell which carts a process replayed: the
  replays must add up to the exported counts, and ``text`` gives the bounds on how many carts
  fit and how many sets of carts do);
- ``long_line``: replays that failed only because of a line over 256 KiB (the scanner stops:
  one more failure, no ``replay_total``);
- ``unknown_type``: the exported ``unknown_types_total`` (never incremented by the seed)
  against the unknown-type lines the replays read (lenient mode names them: go mode counts
  them as failures, the seed's reader failing on the numeric ``ts`` first);
- ``unexplained``: what is left; 0 everywhere when the record and the logs agree;
- ``matched``: no difference (a row with count 0, to show the values).

:attr:`Reconciliation.breakdown` splits each window's exported failures into what they were
(unknown types, long lines, malformed lines).

>>> record = read_record("sample_data/prometheus/record.json")   # doctest: +SKIP
>>> res = reconcile(go, lenient, record)                          # doctest: +SKIP
>>> res.unexplained, res.findings[0]                              # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cartforensics.io.prometheus import read_record
from cartforensics.io.sources import read_events
from cartforensics.model.protocol import ReplayOfEvents
from cartforensics.model.replay import replay
from cartforensics.vocab import FAILURE_OUTCOMES, MUTATION_ERROR_OUTCOMES

__all__ = ["COUNTERS", "EXPLANATION_KINDS", "ReconcileError", "Reconciliation", "reconcile",
           "reconcile_logs"]

APPENDS = "cart_event_log_appends_total"
BYTES = "cart_event_log_bytes_written_total"
REPLAYS = "cart_event_log_replay_total"
FAILURES = "cart_event_log_replay_failures_total"
MUTATION_ERRORS = "cart_event_log_mutation_errors_total"
UNKNOWN = "cart_event_log_unknown_types_total"
START = "process_start_time_seconds"
COUNTERS = (APPENDS, BYTES, REPLAYS, FAILURES, MUTATION_ERRORS, UNKNOWN)
EXPLANATION_KINDS = ("matched", "before_record", "not_scraped", "torn", "not_replayed", "long_line",
                     "unknown_type", "unexplained")
_READER = (REPLAYS, FAILURES, MUTATION_ERRORS, UNKNOWN)
_ENVELOPE_TS = re.compile(rb'\{"ts":(-?\d{1,19}),')
_MAX_STATES = 200_000


class ReconcileError(ValueError):
    """The record and the logs cannot be reconciled as asked (one line says why)."""


@dataclass
class Reconciliation:
    """What :func:`reconcile` found.

    ``windows``: one row per window (``window``, ``target``, ``start``, ``end``, ``scrapes``,
    ``first_scrape``, ``last_scrape``, ``replays`` (a text: how many carts fit the exported
    replays), ``missed_scrapes``). ``explanations``: the tidy frame, one row per window,
    counter and kind: ``window``, ``metric``, ``exported``, ``rebuilt``, ``kind``, ``count``
    (lines, bytes or replays the kind explains; ``unexplained`` rows: what is left, signed as
    rebuilt minus exported), ``text``. ``breakdown``: the exported failures per window split
    by what they were. ``findings``: the findings in words. Texts hold the record's and the
    logs' own words (cart ids, types, label values): escape them to show them.
    """

    windows: pd.DataFrame
    explanations: pd.DataFrame
    breakdown: pd.DataFrame
    findings: list[str] = field(default_factory=list)
    gaps: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def explained(self) -> int:
        """Units (lines, bytes, replays) of difference explained, all windows and counters."""
        e = self.explanations
        return int(e.loc[e["kind"] != "unexplained", "count"].abs().sum())

    @property
    def unexplained(self) -> int:
        """Units of difference nothing explains (0 when the record and the logs agree)."""
        e = self.explanations
        return int(e.loc[e["kind"] == "unexplained", "count"].abs().sum())

    def summary(self) -> str:
        """A few lines: the counts, then the findings."""
        head = (f"{len(self.windows)} window(s); difference explained: {self.explained}, "
                f"unexplained: {self.unexplained}")
        return "\n".join([head, *(f"- {f}" for f in self.findings)])


# -- the record ---------------------------------------------------------------------------
def _target(record: pd.DataFrame, target: str | None) -> pd.DataFrame:
    ours = record[record["metric"].isin([*COUNTERS, START, "up"])]
    if ours.empty or not ours["metric"].isin(COUNTERS).any():
        raise ReconcileError("the record holds none of the seed's cart_event_log_* counters")
    targets = list(dict.fromkeys(ours.loc[ours["metric"].isin(COUNTERS), "labels"]))
    if target is not None:
        targets = [t for t in targets if target in t]
        if not targets:
            raise ReconcileError(f"no series of the record has labels matching {target!r}")
    if len(targets) > 1:
        raise ReconcileError(
            f"the record holds {len(targets)} targets writing cart_event_log_* counters: "
            "choose one with target= (a part of its labels, e.g. its instance)")
    return ours[ours["labels"] == targets[0]]


def _windows(series: pd.DataFrame) -> list[dict[str, Any]]:
    """The record of one target cut into process lifetimes."""
    counters = series[series["metric"].isin(COUNTERS)]
    wide = counters.pivot_table(index="time", columns="metric", values="value", aggfunc="last")
    starts = series[series["metric"] == START].set_index("time")["value"]
    wide = wide.join(starts.rename(START), how="left") if len(starts) else wide.assign(
        **{START: np.nan})
    wide = wide.sort_index()
    cuts: list[int] = [0]
    prev: pd.Series | None = None
    for i, (_, row) in enumerate(wide.iterrows()):
        if prev is not None:
            restarted = (not math.isnan(row[START]) and not math.isnan(prev[START])
                         and row[START] != prev[START])
            dropped = any(row.get(c, np.nan) < prev.get(c, np.nan) for c in COUNTERS)
            if restarted or dropped:
                cuts.append(i)
        prev = row
    cuts.append(len(wide))
    out = []
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        part = wide.iloc[a:b]
        start = part[START].dropna()
        if len(start) and 0 <= float(start.iloc[0]) < 1e11:  # a plausible Unix time
            began = pd.Timestamp(float(start.iloc[0]) * 1e9, tz="UTC")
        elif out:  # a reset without a start time: after the previous window's last scrape
            began = out[-1]["last_scrape"]
        else:
            began = None
        last = part.iloc[-1]
        # when the appends counter first showed its final value: in a query_range answer the
        # times are evaluation steps, so the last scrape lies up to a step before that, not
        # at the last point (which repeats the value until the series goes stale)
        settled = part.index[-1]
        if APPENDS in part and math.isfinite(last[APPENDS]):
            settled = part.index[int(np.argmax(part[APPENDS].to_numpy() == last[APPENDS]))]
        gaps = part.index.to_series().diff().dropna()
        out.append({
            "window": k + 1, "start": began, "first_scrape": part.index[0],
            "last_scrape": part.index[-1], "scrapes": len(part), "settled": settled,
            "step": gaps.median() if len(gaps) else pd.Timedelta(0),
            "exported": {c: int(last[c]) for c in COUNTERS  # a count an int64 can hold
                         if c in part and math.isfinite(last[c]) and abs(last[c]) < 2**63},
        })
    return out


def _gaps(series: pd.DataFrame) -> pd.DataFrame:
    """Scrapes that failed (``up`` 0) or never came (a step over 1.5 times the usual one)."""
    up = series[series["metric"] == "up"].sort_values("time")
    times = up["time"] if len(up) else series[series["metric"].isin(COUNTERS)]["time"]
    times = pd.Series(sorted(set(times)))
    rows = []
    if len(times) > 2:
        step = times.diff().median()
        for t0, t1 in zip(times[:-1], times[1:], strict=True):
            if t1 - t0 > step * 1.5:
                rows.append({"from": t0, "to": t1, "missed_scrapes": int((t1 - t0) / step) - 1,
                             "why": "no sample"})
    down = up[up["value"] == 0]
    for t in down["time"]:
        rows.append({"from": t, "to": t, "missed_scrapes": 1, "why": "up == 0"})
    gaps = pd.DataFrame(rows, columns=["from", "to", "missed_scrapes", "why"])
    return _merge_gaps(gaps.sort_values("from").reset_index(drop=True))


def _merge_gaps(g: pd.DataFrame) -> pd.DataFrame:
    if g.empty:
        return g
    out: list[dict[str, Any]] = []
    for r in g.to_dict("records"):
        if out and r["from"] <= out[-1]["to"] + pd.Timedelta(seconds=1.5) and \
                r["why"] == out[-1]["why"]:
            out[-1]["to"] = max(out[-1]["to"], r["to"])
            out[-1]["missed_scrapes"] += r["missed_scrapes"]
        else:
            out.append(dict(r))
    return pd.DataFrame(out)


# -- the logs -----------------------------------------------------------------------------
def _lines(go: ReplayOfEvents, lenient: ReplayOfEvents) -> pd.DataFrame:
    """One row per line: cart, the second it was appended, bytes, torn bytes, outcomes."""
    ev = go.events
    raw = ev["raw"].tolist() if "raw" in ev else [None] * len(ev)
    secs = np.full(len(ev), np.nan)
    torn = np.zeros(len(ev), dtype=np.int64)
    ts = ev["ts"]
    known = ts.notna().to_numpy()
    secs[known] = ts[known].astype("int64").to_numpy() // 10**9 if known.any() else []
    for i, r in enumerate(raw):
        if not isinstance(r, bytes | bytearray):
            continue
        starts = [m for m in _ENVELOPE_TS.finditer(r)]
        if starts and starts[-1].start() > 0:  # a torn line completed by a later append
            torn[i] = starts[-1].start()
            secs[i] = float(starts[-1].group(1))
        elif not known[i] and starts:
            secs[i] = float(starts[-1].group(1))
    go_out = go.outcomes["outcome"].astype(str).to_numpy()
    len_out = lenient.outcomes["outcome"].astype(str).to_numpy()
    if len(len_out) != len(go_out):
        raise ReconcileError("go and lenient are not replays of the same lines")
    return pd.DataFrame({
        "cart_id": ev["cart_id"].astype(str).to_numpy(),
        "sec": secs,
        "newline": ev["newline"].to_numpy(dtype=bool),
        "bytes": np.where(ev["newline"].to_numpy(dtype=bool),
                          ev["length"].to_numpy(dtype=np.int64) + 1, 0),
        "torn": torn,
        "go": go_out,
        "lenient": len_out,
        "type": lenient.outcomes["type"].astype(object).to_numpy(),
    })


def _cart_vectors(lines: pd.DataFrame) -> pd.DataFrame:
    """Per cart, what one ``ReplayCartEvents`` over these lines counts."""
    g = lines.assign(
        fail=lines["go"].isin(FAILURE_OUTCOMES), mut=lines["go"].isin(MUTATION_ERROR_OUTCOMES),
        long=lines["go"] == "too_long",
        unk=(lines["lenient"] == "unknown_type") & (lines["go"] != "not_reached"),
    ).groupby("cart_id", sort=True)
    v = pd.DataFrame({"fail": g["fail"].sum(), "mut": g["mut"].sum(), "long": g["long"].any(),
                      "unk": g["unk"].sum()})
    v["ok"] = (~v["long"]).astype(int)
    return v.astype({"fail": int, "mut": int, "unk": int})


def _fits(v: pd.DataFrame, want: tuple[int, int, int]) -> dict[str, Any] | None:
    """Sets of carts (each replayed once) whose counts add up to ``want`` (replays, failures,
    mutation errors): how many carts, long-line failures and unknown-type lines they hold
    (each as the set of values some fitting set gives), and how many sets fit; None when none
    does, or too many to count."""
    # state (ok, fail, mut) -> {(carts, long, unk): number of sets}
    Vec = tuple[int, int, int]
    states: dict[Vec, dict[Vec, int]] = {(0, 0, 0): {(0, 0, 0): 1}}
    for ok, fail, mut, long_, unk in v[["ok", "fail", "mut", "long", "unk"]].itertuples(
            index=False):
        new = {k: dict(d) for k, d in states.items()}
        for (a, b, c), d in states.items():
            key = (a + ok, b + fail, c + mut)
            if key[0] > want[0] or key[1] > want[1] or key[2] > want[2]:
                continue
            tgt = new.setdefault(key, {})
            for (n, lg, u), count in d.items():
                kk = (n + 1, lg + int(long_), u + unk)
                tgt[kk] = tgt.get(kk, 0) + count
        states = new
        if sum(len(d) for d in states.values()) > _MAX_STATES:
            return None
    hit = states.get(want)
    if not hit:
        return None
    return {"carts": sorted({k[0] for k in hit}), "long": sorted({k[1] for k in hit}),
            "unk": sorted({k[2] for k in hit}), "sets": sum(hit.values())}


# -- reconcile ----------------------------------------------------------------------------
def reconcile(go: ReplayOfEvents, lenient: ReplayOfEvents, record: pd.DataFrame,
              target: str | None = None) -> Reconciliation:
    """The exported counters of ``record`` (a frame of :func:`~cartforensics.io.prometheus.
    read_record`) against the counters rebuilt from the logs (``go``: a go-mode replay of
    them, ``lenient``: a lenient one of the same lines), window by window (see the module).
    ``target``: a part of the labels choosing one target when the record holds several.

    >>> import cartforensics as cf                                      # doctest: +SKIP
    >>> go, lenient = cf.replay("sample_data/prometheus/logs"), cf.replay(
    ...     "sample_data/prometheus/logs", mode="lenient")              # doctest: +SKIP
    >>> cf.reconcile(go, lenient, cf.read_record("sample_data/prometheus/record.json")
    ...              ).unexplained                                      # doctest: +SKIP
    0
    """
    if getattr(go, "mode", "go") != "go" or getattr(lenient, "mode", "lenient") != "lenient":
        raise ReconcileError("reconcile takes a go-mode replay and a lenient one, in that order")
    series = _target(record, target)
    wins = _windows(series)
    gaps = _gaps(series)
    lines = _lines(go, lenient)
    rows: list[dict[str, Any]] = []
    breakdown: list[dict[str, Any]] = []
    findings: list[str] = []
    replays_text: list[str] = []

    # without a start time the first process may have written any of the older lines
    first = wins[0]["start"]
    first_sec = -math.inf if first is None else math.floor(first.timestamp())
    secs = lines["sec"].to_numpy()
    before = lines[secs < first_sec]
    if len(before):
        n_before = int(before["newline"].sum())
        rows.append(_row(0, APPENDS, 0, n_before, "before_record", n_before,
                         f"{n_before} lines appended before the first process in the record "
                         "started: no counter in the record saw them"))
        rows.append(_row(0, BYTES, 0, int(before["bytes"].sum()), "before_record",
                         int(before["bytes"].sum()), "their bytes"))
        findings.append(f"{n_before} lines in the logs are older than the record: the "
                        "dashboards never counted them")
    no_sec = lines[np.isnan(secs)]
    if len(no_sec):
        findings.append(f"{len(no_sec)} lines have no ts to place them in a window: they count "
                        "as unexplained where they fall short")

    for k, w in enumerate(wins):
        lo = first_sec if k == 0 else math.floor(w["start"].timestamp()) if w["start"] is not None \
            else math.floor(w["first_scrape"].timestamp())
        nxt = wins[k + 1] if k + 1 < len(wins) else None
        hi = math.inf if nxt is None else math.floor(
            (nxt["start"] or nxt["first_scrape"]).timestamp())
        inside = lines[(secs >= lo) & (secs < hi)]
        upto = lines[secs < hi]
        exp = w["exported"]
        label = _when(w["start"]) if w["start"] is not None else f"window {w['window']}"
        rows += _writer_rows(w, inside, exp, label, findings,
                             stepped=record.attrs.get("kind") == "api")
        text, r_rows, r_break = _reader_rows(w, upto, exp, label, findings)
        rows += r_rows
        breakdown += r_break
        replays_text.append(text)

    if len(gaps):
        for g in gaps.to_dict("records"):
            findings.append(f"Prometheus has no scrape of the service from {_when(g['from'])} "
                            f"to {_when(g['to'])} ({g['missed_scrapes']} missed, {g['why']})")
    windows = pd.DataFrame([{
        "window": w["window"], "target": series["labels"].iloc[0], "start": w["start"],
        "first_scrape": w["first_scrape"], "last_scrape": w["last_scrape"],
        "scrapes": w["scrapes"], "replays": t,
    } for w, t in zip(wins, replays_text, strict=True)])
    expl = pd.DataFrame(rows, columns=["window", "metric", "exported", "rebuilt", "kind",
                                       "count", "text"])
    return Reconciliation(windows, expl, pd.DataFrame(breakdown), findings, gaps)


def _row(window: int, metric: str, exported: int, rebuilt: int, kind: str, count: int,
         text: str) -> dict[str, Any]:
    return {"window": window, "metric": metric, "exported": exported, "rebuilt": rebuilt,
            "kind": kind, "count": int(count), "text": text}


def _when(t: pd.Timestamp | None) -> str:
    return "?" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _writer_rows(w: dict[str, Any], inside: pd.DataFrame, exp: dict[str, int], label: str,
                 findings: list[str], stepped: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    n = w["window"]
    appended = inside[inside["newline"]]
    if APPENDS in exp:
        rebuilt, exported = len(appended), exp[APPENDS]
        rest = rebuilt - exported
        if rest == 0:
            rows.append(_row(n, APPENDS, exported, rebuilt, "matched", 0, ""))
        tail_sec = math.floor(w["last_scrape"].timestamp())
        tail = appended[appended["sec"] >= tail_sec].sort_values("sec", kind="stable")
        if rest > len(tail) and stepped:  # the last scrape: a step before the value settled
            tail_sec = math.floor((w["settled"] - w["step"]).timestamp())
            tail = appended[appended["sec"] >= tail_sec].sort_values("sec", kind="stable")
        late = min(max(rest, 0), len(tail))
        if late:
            exact = "" if late == len(tail) else (
                f" (which {late} of the {len(tail)} lines from that second on, the logs cannot "
                "tell)")
            rows.append(_row(n, APPENDS, exported, rebuilt, "not_scraped", late,
                             f"{late} appends after the last scrape ({_when(w['last_scrape'])})"
                             f"{exact}"))
            findings.append(
                f"the process started {label} appended {late} lines after Prometheus last "
                f"scraped it at {_when(w['last_scrape'])}: it ended before the next scrape, "
                f"the dashboard never showed them{exact}")
        if rest - late:
            rows.append(_row(n, APPENDS, exported, rebuilt, "unexplained", rest - late,
                             "appends neither the logs nor the record account for"))
        if BYTES in exp:
            rebuilt_b, exported_b = int(appended["bytes"].sum()), exp[BYTES]
            rest_b = rebuilt_b - exported_b
            torn = inside[inside["torn"] > 0]
            torn_b = int(torn["torn"].sum())
            if torn_b and rest_b > 0:
                rows.append(_row(n, BYTES, exported_b, rebuilt_b, "torn", torn_b,
                                 f"{len(torn)} torn write(s) completed by a later append "
                                 f"(carts {', '.join(sorted(set(torn['cart_id'])))})"))
                for cart, b in torn.groupby("cart_id")["torn"].sum().items():
                    findings.append(
                        f"a torn write in cart {cart}: {b} bytes of a line cut short (a crash "
                        "mid-write), completed by the next append: in the file, never counted "
                        "in bytes_written_total")
                rest_b -= torn_b
            late_b = int(tail.tail(late)["bytes"].sum()) if late else 0
            if late_b and rest_b > 0:
                rows.append(_row(n, BYTES, exported_b, rebuilt_b, "not_scraped", late_b,
                                 f"the bytes of those {late} appends"))
                rest_b -= late_b
            if rest_b:
                rows.append(_row(n, BYTES, exported_b, rebuilt_b, "unexplained", rest_b,
                                 "bytes neither the logs nor the record account for"))
            elif rebuilt_b == exported_b:
                rows.append(_row(n, BYTES, exported_b, rebuilt_b, "matched", 0, ""))
    return rows


def _reader_rows(w: dict[str, Any], upto: pd.DataFrame, exp: dict[str, int], label: str,
                 findings: list[str]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    n = w["window"]
    if not all(c in exp for c in (REPLAYS, FAILURES, MUTATION_ERRORS)):
        return "the record lacks the replay counters", [], []
    v = _cart_vectors(upto)
    want = (exp[REPLAYS], exp[FAILURES], exp[MUTATION_ERRORS])
    all_carts = (int(v["ok"].sum()), int(v["fail"].sum()), int(v["mut"].sum()))
    rows: list[dict[str, Any]] = []
    fit = _fits(v, want)
    if fit is None:
        text = (f"no set of carts (each replayed once, as their lines stood at the window's "
                f"end) adds up to {want[0]} replays, {want[1]} failures and {want[2]} mutation "
                "errors")
        for c, got, full in zip((REPLAYS, FAILURES, MUTATION_ERRORS), want, all_carts,
                                strict=True):
            if full != got:
                rows.append(_row(n, c, got, full, "unexplained", full - got, text))
        findings.append(f"the replays of the process started {label}: {text}")
        return text, rows, []
    ncarts = len(v)
    n_lo, n_hi = fit["carts"][0], fit["carts"][-1]
    how_many = f"{n_lo}" if n_lo == n_hi else f"between {n_lo} and {n_hi}"
    if n_lo == ncarts:
        which = "every cart"
    elif fit["sets"] == 1:
        which = f"{how_many} of the {ncarts} carts (exactly one set of carts fits the counts)"
    else:
        which = (f"{how_many} of the {ncarts} carts; which ones the logs cannot tell "
                 f"({fit['sets']} sets of carts fit the counts)")
    text = f"replayed {which}"
    findings.append(f"the process started {label} {text}")
    # replay_total: every cart once would be ncarts
    gap = ncarts - want[0]
    if gap:
        long_lo, long_hi = fit["long"][0], fit["long"][-1]
        if n_lo == n_hi:
            not_rep = ncarts - n_lo
            if not_rep:
                rows.append(_row(n, REPLAYS, want[0], ncarts, "not_replayed", not_rep,
                                 f"{not_rep} carts not replayed in this window"))
            if long_lo:
                rows.append(_row(n, REPLAYS, want[0], ncarts, "long_line", long_lo,
                                 f"{long_lo} replays failed only because of a line over 256 "
                                 "KiB"))
                findings.append(
                    f"{long_lo} replay{'s' if long_lo != 1 else ''} by the process started "
                    f"{label} failed only because of a line over 256 KiB: counted in "
                    "replay_failures_total, never in replay_total")
        else:
            rows.append(_row(n, REPLAYS, want[0], ncarts, "not_replayed", gap,
                             f"carts not replayed ({ncarts - n_hi} to {ncarts - n_lo}) or "
                             f"failed on a line over 256 KiB ({long_lo} to {long_hi})"))
    else:
        rows.append(_row(n, REPLAYS, want[0], ncarts, "matched", 0, ""))
    for c, got, full in ((FAILURES, want[1], all_carts[1]),
                         (MUTATION_ERRORS, want[2], all_carts[2])):
        if full != got:
            rows.append(_row(n, c, got, full, "not_replayed", full - got,
                             f"{'failures' if c == FAILURES else 'mutation errors'} in the "
                             "carts not replayed in this window"))
        else:
            rows.append(_row(n, c, got, full, "matched", 0, ""))
    unk_lo, unk_hi = fit["unk"][0], fit["unk"][-1]
    exported_unk = exp.get(UNKNOWN, 0)
    types = _unknown_types(upto)
    if unk_lo == unk_hi:
        diff = unk_lo - exported_unk
        if diff:
            rows.append(_row(n, UNKNOWN, exported_unk, unk_lo, "unknown_type", diff,
                             f"{unk_lo} unknown-type lines replayed, counted as failures"))
            findings.append(
                f"the dashboard showed {exported_unk} unknown types for the process started "
                f"{label}; {unk_lo} lines of type {types} were replayed and counted as failures")
        else:
            rows.append(_row(n, UNKNOWN, exported_unk, unk_lo, "matched", 0, ""))
    else:
        rows.append(_row(n, UNKNOWN, exported_unk, unk_lo, "unknown_type", unk_lo - exported_unk,
                         f"between {unk_lo} and {unk_hi} unknown-type lines replayed "
                         "(which carts, the logs cannot tell)"))
        rows.append(_row(n, UNKNOWN, exported_unk, unk_hi, "unexplained", unk_hi - unk_lo,
                         "the rest of the bound"))
    long_n = fit["long"][0] if len(fit["long"]) == 1 else None
    brk = [{"window": n, "part": "unknown_type", "failures": unk_lo if unk_lo == unk_hi else None},
           {"window": n, "part": "too_long", "failures": long_n}]
    if unk_lo == unk_hi and long_n is not None:
        brk.append({"window": n, "part": "malformed (other)",
                    "failures": want[1] - unk_lo - long_n})
    return text, rows, brk


def _unknown_types(lines: pd.DataFrame) -> str:
    unk = lines[(lines["lenient"] == "unknown_type") & (lines["go"] != "not_reached")]
    names = list(dict.fromkeys(str(t) for t in unk["type"]))
    if not names:
        return "(none)"
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def reconcile_logs(source: Any, record: Any, target: str | None = None,
                   go_version: str | None = None) -> Reconciliation:
    """:func:`reconcile` from paths: the logs (anything ``read_events`` takes), replayed in go
    and lenient mode, against a record (a path :func:`~cartforensics.io.prometheus.read_record`
    reads, or its frame)."""
    frame = record if isinstance(record, pd.DataFrame) else read_record(record)
    events = read_events(source, progress=False, go_version=go_version)
    return reconcile(replay(events), replay(events, mode="lenient"), frame, target=target)
