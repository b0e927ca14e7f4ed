"""Charts of a replay: each function returns a matplotlib Figure and takes an optional ``ax=``.

They draw on :class:`matplotlib.figure.Figure` objects, not pyplot, so they work headless (no
display, no backend to choose) and leave pyplot's state alone; in JupyterLab the returned Figure
shows as an image. Times are UTC. Every chart colours an outcome the same way
(:data:`cartforensics.vocab.OUTCOME_COLORS`, the Okabe-Ito colour-blind-safe palette).

>>> fig = plot_outcome_mix(replay("sample_data"))     # doctest: +SKIP
>>> fig.savefig("outcomes.png")                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, Normalize, PowerNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cartforensics.analysis.findings import Finding
from cartforensics.analysis.metrics import pick_freq, rates
from cartforensics.analysis.reconcile import Reconciliation
from cartforensics.model.replay import Replay
from cartforensics.vocab import (
    FAILURE_OUTCOMES,
    OUTCOME_COLORS,
    OUTCOME_LABELS,
    OUTCOMES,
    RATE_COLORS,
)

# a sequential colour-blind-safe map for counts; white for "none"
_HEAT_CMAP = "cividis"
_FREQ_WORDS = {"1min": "minute", "5min": "5 minutes", "15min": "15 minutes", "1h": "hour",
               "6h": "6 hours", "1D": "day", "7D": "7 days", "30D": "30 days"}


def mpl_text(s: Any, limit: int = 60) -> str:
    """Log content made safe as a matplotlib label: ``$`` escaped (no mathtext), control
    characters dropped, cut at ``limit`` characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(s))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def freq_words(freq: str) -> str:
    return _FREQ_WORDS.get(freq, freq)


def _fig_ax(ax: Axes | None, size: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=size, layout="constrained", dpi=100)
    return fig, fig.add_subplot()


def _empty(ax: Axes, title: str, text: str) -> None:
    ax.set_title(title, loc="left", fontsize=12)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def _style(ax: Axes) -> None:
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _time_axis(ax: Axes) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=8, tz="UTC")
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz="UTC"))
    ax.set_xlabel("time (UTC)")


def _note_no_ts(ax: Axes, n: int) -> None:
    if n:
        ax.set_xlabel(
            f"time (UTC); {n:,} line{'s' if n != 1 else ''} without a readable ts not shown"
        )


def _plural(k: int, word: str) -> str:
    return f"{k:,} {word}{'' if k == 1 else 's'}"


def _mode_words(r: Replay | str) -> str:
    mode = r if isinstance(r, str) else r.mode
    return "as the service read them (go mode)" if mode == "go" else \
        "as the writer meant them (lenient mode)"


def _to_naive_utc(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    idx = pd.DatetimeIndex(ts)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_pydatetime()


# -- charts --------------------------------------------------------------------------------
def plot_outcome_mix(
    replay: Replay, freq: str | None = None, ax: Axes | None = None
) -> Figure:
    """Lines per outcome per time window, stacked (bars, or areas when there are many
    windows)."""
    freq = freq or pick_freq(replay.outcomes["ts"])
    return outcome_mix_figure(rates(replay, freq=freq), freq, replay.mode, ax)


def outcome_mix_figure(r: pd.DataFrame, freq: str, mode: str, ax: Axes | None = None
                       ) -> Figure:
    """:func:`plot_outcome_mix` from :func:`~cartforensics.analysis.metrics.rates`' table."""
    fig, ax = _fig_ax(ax, (10, 4.2))
    title = f"Outcome of every line over time, {_mode_words(mode)}"
    if r.empty or r["lines"].sum() == 0:
        _empty(ax, title, "no line has a readable ts")
        return fig
    x = _to_naive_utc(r["window"])
    present = [o for o in OUTCOMES if r[o].sum() > 0]
    width = pd.Timedelta(freq).total_seconds() / 86400 if _fixed(freq) else 0.8
    if len(r) <= 90:
        bottom = np.zeros(len(r))
        for o in present:
            vals = r[o].to_numpy(dtype=float)
            ax.bar(x, vals, width=width * 0.9, bottom=bottom, align="edge",
                   color=OUTCOME_COLORS[o], label=OUTCOME_LABELS[o], linewidth=0)
            bottom += vals
    else:
        ax.stackplot(x, *[r[o].to_numpy(dtype=float) for o in present],
                     colors=[OUTCOME_COLORS[o] for o in present],
                     labels=[OUTCOME_LABELS[o] for o in present], step="post", linewidth=0)
    _style(ax)
    _time_axis(ax)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"lines per {freq_words(freq)}")
    ax.set_title(title, loc="left", fontsize=12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="outcome")
    _note_no_ts(ax, r.attrs.get("no_ts", 0))
    return fig


def _fixed(freq: str) -> bool:
    try:
        pd.Timedelta(freq)
        return True
    except ValueError:
        return False


def plot_rates(
    replay: Replay,
    findings: Sequence[Finding] | None = None,
    freq: str | None = None,
    ax: Axes | None = None,
    mark: int = 6,
) -> Figure:
    """Failure rate ((malformed + unknown_type + too_long) / lines), unknown-type rate and
    mutation-error rate per window, with the first-seen times of the ``mark`` largest
    findings drawn as dotted lines."""
    freq = freq or pick_freq(replay.outcomes["ts"])
    return rates_figure(rates(replay, freq=freq), freq, replay.mode, findings, ax, mark)


def rates_figure(r: pd.DataFrame, freq: str, mode: str,
                 findings: Sequence[Finding] | None = None, ax: Axes | None = None,
                 mark: int = 6) -> Figure:
    """:func:`plot_rates` from :func:`~cartforensics.analysis.metrics.rates`' table."""
    fig, ax = _fig_ax(ax, (10, 4.2))
    title = f"Failure rates per {freq_words(freq)}, {_mode_words(mode)}"
    if r.empty or r["lines"].sum() == 0:
        _empty(ax, title, "no line has a readable ts")
        return fig
    x = _to_naive_utc(r["window"])
    half = pd.Timedelta(freq) / 2 if _fixed(freq) else pd.Timedelta(0)
    xc = _to_naive_utc(r["window"] + half)
    labels = {
        "failure_rate": "failures\n(replay_failures_total)",
        "unknown_type_rate": "unknown types",
        "mutation_error_rate": "mutation errors\n(mutation_errors_total)",
    }
    styles = {"failure_rate": "-", "unknown_type_rate": "--", "mutation_error_rate": ":"}
    markers = {"failure_rate": "o", "unknown_type_rate": "s", "mutation_error_rate": "^"}
    for col, label in labels.items():  # an empty window has no rate: the line breaks there
        y = r[col].to_numpy(dtype=float) * 100
        ax.plot(xc, y, styles[col], color=RATE_COLORS[col], label=label, linewidth=1.6,
                marker=markers[col], markersize=4,
                zorder=3 if col == "failure_rate" else 2)  # failures never hidden
    ax.set_ylim(-3, 105)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylabel("share of the window's lines")
    _style(ax)
    _time_axis(ax)
    ax.set_xlim(x[0], _to_naive_utc(r["window"].iloc[[-1]] + 2 * half)[0]
                if _fixed(freq) else x[-1])
    marked = [f for f in (findings or []) if f.first_seen is not None][:mark]
    _mark_findings(ax, marked)
    ax.set_title(title, loc="left", fontsize=12, pad=26 if marked else 6)
    leg = ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="rate")
    if marked:
        ax.add_artist(leg)
        handles = [Line2D([], [], color="#444444", linestyle=(0, (2, 2)), linewidth=0.9)
                   for _ in marked]
        names = [f"{k + 1}  {mpl_text(f.title, 60)}" for k, f in enumerate(marked)]
        ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.0, 0.55), frameon=False,
                  title="findings, first seen", fontsize=8, handlelength=1.2,
                  title_fontsize=9, alignment="left")
    _note_no_ts(ax, r.attrs.get("no_ts", 0))
    return fig


def _mark_findings(ax: Axes, marked: Sequence[Finding]) -> None:
    """A dotted line at each finding's first-seen time, numbered above the axes; numbers of
    findings seen at (almost) the same time share one label."""
    if not marked:
        return
    times = [mdates.date2num(_to_naive_utc(pd.Series([f.first_seen]))[0]) for f in marked]
    lo, hi = ax.get_xlim()
    near = (hi - lo) * 0.02
    groups: list[tuple[float, list[int]]] = []
    for k, t in sorted(enumerate(times), key=lambda p: p[1]):
        if groups and t - groups[-1][0] <= near:
            groups[-1][1].append(k + 1)
        else:
            groups.append((t, [k + 1]))
    level = 0
    for g, (t, ks) in enumerate(groups):
        # labels of neighbouring groups alternate between two heights so they never overlap
        level = 1 - level if g and t - groups[g - 1][0] <= 5 * near else 0
        ax.axvline(t, color="#444444", linestyle=(0, (2, 2)), linewidth=0.9, zorder=1)
        ax.annotate(",".join(map(str, sorted(ks))), xy=(t, 1), xycoords=("data", "axes fraction"),
                    xytext=(0, 2 + 11 * level), textcoords="offset points", ha="center",
                    va="bottom", fontsize=8, color="#333333")


def plot_failures_heatmap(
    replay: Replay, freq: str | None = None, top: int = 15, ax: Axes | None = None
) -> Figure:
    """Failed lines (malformed + unknown_type + too_long) per event type per window, for the
    ``top`` types with the most failures."""
    freq = freq or pick_freq(replay.outcomes["ts"])
    return failures_heatmap_figure(rates(replay, freq=freq, by="type"), freq, replay.mode,
                                   top, ax)


def failures_heatmap_figure(r: pd.DataFrame, freq: str, mode: str, top: int = 15,
                            ax: Axes | None = None) -> Figure:
    """:func:`plot_failures_heatmap` from ``rates(..., by="type")``' table."""
    fig, ax = _fig_ax(ax, (10, 4.6))
    title = f"Failed lines per event type per {freq_words(freq)}, {_mode_words(mode)}"
    if r.empty:
        _empty(ax, title, "no line has a readable ts")
        return fig
    r["failed"] = r[list(FAILURE_OUTCOMES)].sum(axis=1)
    totals = r.groupby("type")["failed"].sum().sort_values(ascending=False)
    totals = totals[totals > 0]
    if totals.empty:
        _empty(ax, title, "no failed lines")
        return fig
    types = list(totals.index[:top])
    grid = (
        r[r["type"].isin(types)]
        .pivot_table(index="type", columns="window", values="failed", aggfunc="sum",
                     fill_value=0)
        .reindex(types)
    )
    allw = pd.date_range(r["window"].min(), r["window"].max(), freq=freq) if _fixed(freq) \
        else pd.DatetimeIndex(sorted(r["window"].unique()))
    grid = grid.reindex(columns=allw, fill_value=0)
    data = np.ma.masked_equal(grid.to_numpy(dtype=float), 0)
    step = pd.Timedelta(freq) if _fixed(freq) else pd.Timedelta(hours=1)
    edges = _to_naive_utc(allw.append(pd.DatetimeIndex([allw[-1] + step])))
    xe = mdates.date2num(edges)
    ye = np.arange(len(types) + 1)
    cmap = ListedColormap(_cividis_colors()).with_extremes(bad="white")
    vmax = float(data.max()) if data.count() else 1.0
    # a square-root scale when counts differ a lot, so small failures stay visible
    norm = PowerNorm(0.5, vmin=0, vmax=vmax) if vmax > 20 else Normalize(vmin=1, vmax=vmax)
    mesh = ax.pcolormesh(xe, ye, data, cmap=cmap, shading="flat", norm=norm)
    values = grid.to_numpy()
    if values.size <= 400:  # few cells: write the counts in them
        vmax = values.max()
        for (i, j), v in np.ndenumerate(values):
            if v:
                # inside its cell, so outside the layout: measuring hundreds of them for
                # the constrained layout cost more than drawing the chart
                ax.text((xe[j] + xe[j + 1]) / 2, i + 0.5, f"{int(v):,}", ha="center",
                        va="center", fontsize=7,
                        color="black" if v > 0.55 * vmax else "white", in_layout=False)
    ax.set_yticks(np.arange(len(types)) + 0.5)
    ax.set_yticklabels([mpl_text(t, 40) for t in types])
    ax.invert_yaxis()
    ax.xaxis_date()
    _time_axis(ax)
    ax.set_ylabel("event type")
    cb = fig.colorbar(mesh, ax=ax, pad=0.01)
    cb.set_label(f"failed lines per {freq_words(freq)}")
    if vmax <= 20:
        cb.locator = MaxNLocator(integer=True)
        cb.update_ticks()
    shown = f" (top {top} of {len(totals)})" if len(totals) > top else ""
    ax.set_title(title + shown, loc="left", fontsize=12)
    _note_no_ts(ax, r.attrs.get("no_ts", 0))
    return fig


def _cividis_colors() -> list[Any]:
    from matplotlib import colormaps

    base = colormaps[_HEAT_CMAP]
    return [base(v) for v in np.linspace(0.15, 1.0, 256)]


def plot_lines_lost(
    go: Replay, lenient: Replay, top: int = 15, ax: Axes | None = None
) -> Figure:
    """Per cart, the lines lenient mode applies and the service (go mode) does not, split by
    what the service did with them, for the ``top`` carts that lost the most."""
    a, b = go.outcomes, lenient.outcomes
    mask = ((b["outcome"].astype(str) == "applied") & (a["outcome"].astype(str) != "applied"))
    lost = pd.DataFrame({"cart": a.loc[mask, "cart_id"].astype(str).to_numpy(),
                         "outcome": a.loc[mask, "outcome"].astype(str).to_numpy()})
    table = pd.crosstab(lost["cart"], lost["outcome"]) if len(lost) else None
    return lines_lost_figure(table, top, ax)


def lines_lost_figure(table: pd.DataFrame | None, top: int = 15, ax: Axes | None = None
                      ) -> Figure:
    """:func:`plot_lines_lost` from the lost lines per cart (index, sorted) and go outcome
    (columns); None or empty: no line lost."""
    n_carts = 0 if table is None else len(table)
    fig, ax = _fig_ax(ax, (10, max(2.6, 0.32 * min(top, max(n_carts, 1)) + 1.4)))
    title = "Lines lost per cart: applied as the writer meant them, not by the service"
    if table is None or table.empty:
        _empty(ax, title, "the service lost no line lenient mode applies")
        return fig
    table = table.reindex(columns=[o for o in OUTCOMES if o in table.columns])
    in_all = table.sum()  # per outcome, over every cart, for the legend
    table["_total"] = table.sum(axis=1)
    table = table.sort_values(["_total"], ascending=False, kind="stable").head(top)
    y = np.arange(len(table))
    left = np.zeros(len(table))
    for o in [c for c in table.columns if c != "_total"]:
        vals = table[o].to_numpy(dtype=float)
        ax.barh(y, vals, left=left, color=OUTCOME_COLORS[o],
                label=f"{OUTCOME_LABELS[o]}: {_plural(int(in_all[o]), 'line')} in all carts",
                height=0.7)
        left += vals
    for yi, total in zip(y, table["_total"], strict=True):
        ax.text(total, yi, f" {total:,}", va="center", fontsize=8, color="#333333")
    ax.set_xlim(0, table["_total"].max() * 1.08)
    ax.set_yticks(y)
    ax.set_yticklabels([mpl_text(c, 36) for c in table.index])
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lines lost")
    ax.set_ylabel("cart")
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    shown = f" (top {len(table)} of {n_carts:,} carts)" if n_carts > len(table) else ""
    ax.set_title(title + shown, loc="left", fontsize=12)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8,
              title="what the service did (go mode)",
              title_fontsize=9, alignment="left")
    return fig


def plot_unknown_types(replay: Replay, top: int = 10, ax: Axes | None = None) -> Figure:
    """The ``top`` event types the registry does not know, by lines (and carts). Pass a
    lenient-mode replay to count every line the writer wrote: in go mode a line whose ts the
    reader rejects never gets to the type check."""
    oc = replay.outcomes
    m = oc["outcome"].astype(str) == "unknown_type"
    sel = pd.DataFrame({"type": oc.loc[m, "type"].astype(object).to_numpy(),
                        "cart": oc.loc[m, "cart_id"].astype(str).to_numpy()})
    sel["type"] = [t if isinstance(t, str) else "" for t in sel["type"]]
    g = sel.groupby("type").agg(lines=("cart", "size"), carts=("cart", "nunique"))
    return unknown_types_figure(g, replay.mode, top, ax)


def unknown_types_figure(g: pd.DataFrame, mode: str, top: int = 10, ax: Axes | None = None
                         ) -> Figure:
    """:func:`plot_unknown_types` from lines and carts per unknown type (index sorted)."""
    n_types = len(g)
    fig, ax = _fig_ax(ax, (8, max(2.4, 0.34 * min(top, max(n_types, 1)) + 1.4)))
    title = f"Unknown event types, {_mode_words(mode)}"
    if g.empty:
        _empty(ax, title, "no unknown event types")
        return fig
    g = g.sort_values(["lines", "carts"], ascending=False).head(top)
    y = np.arange(len(g))
    ax.barh(y, g["lines"], color=OUTCOME_COLORS["unknown_type"], height=0.7)
    for yi, (lines, carts) in zip(y, zip(g["lines"], g["carts"], strict=True), strict=True):
        ax.text(lines, yi, f" {_plural(lines, 'line')}, {_plural(carts, 'cart')}", va="center",
                fontsize=8,
                color="#333333")
    ax.set_yticks(y)
    ax.set_yticklabels([mpl_text(t if t else '""', 40) for t in g.index])
    ax.invert_yaxis()
    ax.set_xlim(0, g["lines"].max() * 1.35)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lines")
    ax.set_ylabel("type")
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    shown = f" (top {len(g)} of {n_types})" if n_types > len(g) else ""
    ax.set_title(title + shown, loc="left", fontsize=12)
    return fig


# -- reconcile: what the dashboards showed against the logs ---------------------------------
# the kinds of difference (cartforensics.analysis.reconcile), Okabe-Ito like the outcomes
_KIND_COLORS = {
    "before_record": "#999999", "not_scraped": "#56B4E9", "torn": OUTCOME_COLORS["malformed"],
    "not_replayed": OUTCOME_COLORS["apply_error"], "long_line": OUTCOME_COLORS["too_long"],
    "unknown_type": OUTCOME_COLORS["unknown_type"], "unexplained": "#FFFFFF",
}
_KIND_LABELS = {
    "before_record": "older than the record", "not_scraped": "appended after the last scrape",
    "torn": "torn write (bytes)", "not_replayed": "carts not replayed",
    "long_line": "replay failed on a long line", "unknown_type": "unknown types replayed",
    "unexplained": "unexplained",
}
_SHORT = {
    "cart_event_log_appends_total": "appends_total",
    "cart_event_log_bytes_written_total": "bytes_written_total",
    "cart_event_log_replay_total": "replay_total",
    "cart_event_log_replay_failures_total": "replay_failures_total",
    "cart_event_log_mutation_errors_total": "mutation_errors_total",
    "cart_event_log_unknown_types_total": "unknown_types_total",
}


def plot_reconcile(res: Reconciliation) -> Figure:
    """Per counter and window: what Prometheus recorded (grey) beside what the logs say
    (the exported part, then each explained part of the difference stacked on it, anything
    unexplained hatched red), from :func:`cartforensics.analysis.reconcile.reconcile`."""
    e = res.explanations
    counters = [c for c in _SHORT if c in set(e["metric"])]
    fig = Figure(figsize=(12, 3.0 * math.ceil(max(len(counters), 1) / 3) + 1.2),
                 layout="constrained", dpi=100)
    if not counters:
        _empty(fig.add_subplot(), "Exported against rebuilt", "no counters to compare")
        return fig
    axes = fig.subplots(math.ceil(len(counters) / 3), 3, squeeze=False).ravel()
    starts = dict(zip(res.windows["window"], res.windows["start"], strict=True))
    used: set[str] = set()
    for ax, metric in zip(axes, counters, strict=False):
        rows = e[e["metric"] == metric]
        windows = sorted(set(rows["window"]))
        top = 0.0
        for i, w in enumerate(windows):
            wr = rows[rows["window"] == w]
            exported, rebuilt = int(wr["exported"].iloc[0]), int(wr["rebuilt"].iloc[0])
            ax.bar(i - 0.2, exported, width=0.38, color="#BBBBBB", edgecolor="#555555",
                   linewidth=0.6)
            base = float(min(exported, rebuilt))
            ax.bar(i + 0.2, base, width=0.38, color="#DDDDDD", edgecolor="#555555",
                   linewidth=0.6)
            for kind in _KIND_COLORS:
                n = int(wr.loc[wr["kind"] == kind, "count"].sum())
                if not n:
                    continue
                used.add(kind)
                bottom, height = base, abs(n)  # a negative unexplained: the record holds more
                hatch = "////" if kind == "unexplained" else None
                ax.bar(i + 0.2, height, bottom=bottom, width=0.38, color=_KIND_COLORS[kind],
                       edgecolor="#CC0000" if hatch else "#555555", hatch=hatch,
                       linewidth=0.6)
                base += height
            top = max(top, exported, base)
            if rebuilt != exported:  # the difference in figures: small parts are thin bars
                ax.annotate(f"{rebuilt - exported:+,}", (i + 0.2, base), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8,
                            color="#333333")
        ax.set_ylim(0, max(1.0, top * 1.12))
        ax.set_xticks(range(len(windows)))
        ax.set_xticklabels([_window_label(w, starts.get(w)) for w in windows], fontsize=8)
        ax.set_title(_SHORT[metric], loc="left", fontsize=10)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _style(ax)
    for ax in axes[len(counters):]:
        ax.set_visible(False)
    handles = [Patch(facecolor="#BBBBBB", edgecolor="#555555", label="exported (Prometheus)"),
               Patch(facecolor="#DDDDDD", edgecolor="#555555", label="rebuilt: as exported")]
    handles += [Patch(facecolor=_KIND_COLORS[k], edgecolor="#CC0000" if k == "unexplained"
                      else "#555555", hatch="////" if k == "unexplained" else None,
                      label=f"rebuilt: {_KIND_LABELS[k]}") for k in _KIND_COLORS if k in used]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
               frameon=False, fontsize=8)
    fig.suptitle(f"What Prometheus recorded (left bar) against the logs (right bar): "
                 f"{res.explained:,} explained, {res.unexplained:,} unexplained",
                 x=0.01, ha="left", fontsize=12)
    return fig


def _window_label(w: int, start: Any) -> str:
    if w == 0:
        return "before"
    if start is None or pd.isna(start):
        return f"window {w}"
    return f"window {w}\nfrom {pd.Timestamp(start).strftime('%H:%M:%S')}"


__all__ = [
    "OUTCOME_COLORS", "OUTCOME_LABELS", "failures_heatmap_figure", "lines_lost_figure",
    "mpl_text", "outcome_mix_figure", "pick_freq", "plot_failures_heatmap", "plot_lines_lost",
    "plot_outcome_mix", "plot_rates", "plot_reconcile", "plot_unknown_types", "rates_figure",
    "unknown_types_figure",
]
