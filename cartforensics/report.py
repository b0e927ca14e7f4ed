"""``cartforensics report SRC --out DIR``: the job a user runs first. Replays the logs in both
modes and writes the story: ``report.html`` (one self-contained file, charts embedded),
``report.md``, the charts as PNG, and ``outcomes.parquet`` (every line's outcome in both modes).

>>> res = write_report("sample_data", "/tmp/rep")      # doctest: +SKIP
>>> print(res.summary())                               # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .cliargs import add_go_version_option, one_line_errors
from .dataset import is_dataset, read_manifest
from .events import NoLogsError, Source, find_logs, read_events
from .findings import Finding, findings, findings_table, headline_finding
from .goversion import semantics
from .metrics import metrics, prometheus_text
from .notes import Notes, NotesError
from .notes_report import load_notes, notes_html, notes_markdown
from .plots import (
    OUTCOME_COLORS,
    OUTCOME_LABELS,
    pick_freq,
    plot_failures_heatmap,
    plot_lines_lost,
    plot_outcome_mix,
    plot_rates,
    plot_unknown_types,
)
from .replay import OUTCOMES, Replay, replay

CHARTS = (
    ("outcome_mix", "Outcome of every line over time"),
    ("failure_rates", "Failure rates over time"),
    ("failures_by_type", "Failed lines per event type over time"),
    ("lines_lost", "Lines lost per cart"),
    ("unknown_types", "Unknown event types"),
)
EVIDENCE_ROWS = 20  # per finding in the HTML report
TOP_FINDINGS = 5  # in the terminal summary
TOP_CARTS = 30  # in the per-cart table
LARGE_INPUT_BYTES = 20 << 20
LARGE_INPUT_FILES = 200


class ReportError(ValueError):
    """A report cannot be written: a bad output directory, or nothing to read."""


@dataclass
class ReportResult:
    """What :func:`write_report` wrote and found."""

    out_dir: Path
    html: Path
    markdown: Path
    parquet: Path
    charts: dict[str, Path]
    headline: str | None
    findings: list[Finding]
    metrics: pd.DataFrame
    lines: int
    carts: int
    applied_go: int
    applied_lenient: int
    lost: int
    carts_losing: int
    go: Replay = field(repr=False)
    lenient: Replay = field(repr=False)
    notes: Notes | None = field(default=None, repr=False)  # the analyst's notes, if given

    def summary(self, top: int = TOP_FINDINGS) -> str:
        """The terminal summary: the headline finding first, then the top findings."""
        out = []
        head = headline_finding(self.findings)
        if head is not None:
            out.append(_term(head.message))
        else:
            out.append("No problems found: every line is applied as the writer meant it.")
        rest = [f for f in self.findings if f is not head][:top]
        if rest:
            out.append("")
            out.append("Top findings:")
            for k, f in enumerate(rest, 1):
                out.append(f"  {k}. {_term(f.message)}")
            more = len(self.findings) - 1 - len(rest)
            if more > 0:
                out.append(f"  … and {more} more in the report")
        out.append("")
        out.append(
            f"{self.carts:,} carts, {self.lines:,} lines: the service applied "
            f"{self.applied_go:,}, the writer meant {self.applied_lenient:,} to apply "
            f"({self.lost:,} lost in {self.carts_losing:,} carts)."
        )
        out.append(f"Replayed as {self.go.semantics.label}.")
        out.append(f"Report: {self.html}  (also report.md, outcomes.parquet, "
                   f"{len(self.charts)} charts in {self.out_dir})")
        return "\n".join(out)


# -- escaping ------------------------------------------------------------------------------
def esc(v: Any) -> str:
    """Any value as HTML text: log content never becomes markup."""
    return html.escape(_text(v), quote=True)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and np.isnan(v):
        return ""
    if isinstance(v, pd.Timestamp):
        return "" if pd.isna(v) else _when(v)
    if isinstance(v, pd.Timedelta):
        return "" if pd.isna(v) else str(v)
    if v is pd.NaT:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v)


def _md(v: Any) -> str:
    """A value for a Markdown table cell: HTML-escaped, pipes and line breaks neutralised."""
    s = html.escape(_text(v), quote=False)
    return (s.replace("|", "&#124;").replace("\r", " ").replace("\n", " ")
            .replace("`", "&#96;").replace("*", "&#42;").replace("[", "&#91;")
            .replace("]", "&#93;"))


def _term(s: Any) -> str:
    """Log content for a terminal: control characters shown as escapes, never sent raw."""
    text = str(s)
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def _when(t: pd.Timestamp | None) -> str:
    if t is None or pd.isna(t):
        return ""
    return t.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


# -- checks --------------------------------------------------------------------------------
def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--out {out_dir}: exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"--out {out_dir}: cannot create the directory: {e.strerror or e}"
        ) from None
    try:
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".cartforensics-", delete=True):
            pass
    except OSError as e:
        raise ReportError(f"--out {out_dir}: cannot write there: {e.strerror or e}") from None


def _large(source: Source) -> bool:
    logs = find_logs(source)
    if len(logs) > LARGE_INPUT_FILES:
        return True
    size = 0
    for log in logs:
        try:
            size += log.path.stat().st_size
        except OSError:
            continue
    return size > LARGE_INPUT_BYTES


def _large_dataset(path: Source) -> bool:
    manifest = read_manifest(path) or {}  # type: ignore[arg-type]
    return int(manifest.get("lines") or 0) > 200_000


# -- the report ----------------------------------------------------------------------------
def write_report(
    src: Source,
    out_dir: str | os.PathLike[str],
    progress: bool | None = None,
    freq: str | None = None,
    notes: Notes | str | os.PathLike[str] | None = None,
    go_version: str | None = None,
) -> ReportResult:
    """Replay ``src`` (anything :func:`read_events` takes) in ``go`` and ``lenient`` mode and
    write into ``out_dir``: ``report.html`` (self-contained, charts embedded as PNG, every
    piece of log content escaped), ``report.md``, one PNG per chart and ``outcomes.parquet``
    (one row per line and mode: mode, cart_id, line, ts, type, outcome, error).

    ``progress``: a progress bar on stderr; None shows one for large inputs only. ``freq``:
    the time window of the charts (default: chosen from the time span). ``go_version``: the
    Go that built the service (``"1.25"`` default, ``"1.27"``, ...; see
    :mod:`cartforensics.goversion`); the header names it, and a finding lists the lines whose
    outcome the other side of the json v1/v2 line would change. ``notes``: a
    :class:`~cartforensics.notes.Notes` or the path of a notes file: the report gets an
    "Analyst notes" section (each note with its line's outcomes, raw line and finding).
    Raises :class:`ReportError` for an unusable ``out_dir`` and
    :class:`~cartforensics.events.NoLogsError` when ``src`` holds no logs.
    """
    out = Path(out_dir)
    from_dataset = is_dataset(src)  # a converted dataset: its stored outcomes, no replay
    if not from_dataset:
        find_logs(src)  # fail on a missing source before touching the output directory
    elif go_version is not None:  # its outcomes are of the toolchain it was converted as
        stored = semantics((read_manifest(Path(src)) or {}).get("go_version"))
        if semantics(go_version) != stored:
            raise ReportError(
                f"{src} was converted as {stored.label}: report from the logs, or convert "
                f"them again with go_version={semantics(go_version).spec!r}")
    try:
        notes = load_notes(notes)
    except NotesError as e:
        raise ReportError(str(e)) from None
    _check_out_dir(out)
    if progress is None:
        progress = _large_dataset(src) if from_dataset else _large(src)
    from tqdm.auto import tqdm

    steps = ["reading logs", "replaying (go)", "replaying (lenient)", "findings", "charts",
             "writing"]
    bar = tqdm(total=len(steps), desc="report", unit="step", disable=not progress,
               file=sys.stderr, leave=False)

    def step(k: int) -> None:
        bar.set_description(f"report: {steps[k]}")

    try:
        step(0)
        if from_dataset:
            from .fleet import stored_replays

            noted = [(n["cart_id"], n["line"]) for n in notes] if notes is not None else None
            events, go, lenient = stored_replays(src, noted)  # type: ignore[arg-type]
            bar.update(3)
        else:
            events = read_events(src, progress=progress, go_version=go_version)
            bar.update()
            step(1)
            go = replay(events, mode="go")
            bar.update()
            step(2)
            lenient = replay(events, mode="lenient")
            bar.update()
        step(3)
        fs = findings(go, lenient)
        m = metrics(go, source=src)
        prom = prometheus_text(m)
        bar.update()
        step(4)
        freq = freq or pick_freq(events["ts"])
        figs = {
            "outcome_mix": plot_outcome_mix(go, freq=freq),
            "failure_rates": plot_rates(go, fs, freq=freq),
            "failures_by_type": plot_failures_heatmap(go, freq=freq),
            "lines_lost": plot_lines_lost(go, lenient),
            "unknown_types": plot_unknown_types(lenient),
        }
        pngs = {name: _png(fig) for name, fig in figs.items()}
        bar.update()
        step(5)
        charts = {}
        for name, data in pngs.items():
            path = out / f"{name}.png"
            path.write_bytes(data)
            charts[name] = path
        result = _result(out, events, go, lenient, fs, m, charts)
        result.notes = notes
        ctx = _Context(src=src, events=events, go=go, lenient=lenient, findings=fs, metrics=m,
                       prom=prom, pngs=pngs, result=result, freq=freq, notes=notes)
        result.html.write_text(_html(ctx), encoding="utf-8")
        result.markdown.write_text(_markdown(ctx), encoding="utf-8")
        outcomes_frame(go, lenient).to_parquet(result.parquet, index=False)
        bar.update()
    finally:
        bar.close()
    return result


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, facecolor="white")
    return buf.getvalue()


def outcomes_frame(go: Replay, lenient: Replay) -> pd.DataFrame:
    """Both replays' outcomes stacked, with a ``mode`` column, in plain types (text columns
    as ``str``/None, no categoricals): what ``outcomes.parquet`` holds."""
    parts = []
    for r in (go, lenient):
        oc = r.outcomes
        parts.append(pd.DataFrame({
            "mode": r.mode,
            "cart_id": oc["cart_id"].astype(str).to_numpy(dtype=object),
            "line": oc["line"].to_numpy(dtype=np.int64),
            "ts": pd.to_datetime(oc["ts"], utc=True).array,  # not to_numpy(): no boxing
            "type": _plain(oc["type"]),
            "outcome": oc["outcome"].astype(str).to_numpy(dtype=object),
            "error": _plain(oc["error"]),
        }))
    df = pd.concat(parts, ignore_index=True)
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


def _plain(s: pd.Series) -> np.ndarray:
    return np.array([v if isinstance(v, str) else None for v in s.astype(object)], dtype=object)


def _lost_mask(go: Replay, lenient: Replay) -> np.ndarray:
    a = go.outcomes["outcome"].astype(str).to_numpy()
    b = lenient.outcomes["outcome"].astype(str).to_numpy()
    return (b == "applied") & (a != "applied")


def _result(out: Path, events: pd.DataFrame, go: Replay, lenient: Replay, fs: list[Finding],
            m: pd.DataFrame, charts: dict[str, Path]) -> ReportResult:
    lost = _lost_mask(go, lenient)
    head = headline_finding(fs)
    return ReportResult(
        out_dir=out, html=out / "report.html", markdown=out / "report.md",
        parquet=out / "outcomes.parquet", charts=charts,
        headline=head.message if head is not None and head.is_headline else None,
        findings=fs, metrics=m, lines=len(events), carts=len(go.cart_ids),
        applied_go=int((go.outcomes["outcome"].astype(str) == "applied").sum()),
        applied_lenient=int((lenient.outcomes["outcome"].astype(str) == "applied").sum()),
        lost=int(lost.sum()),
        carts_losing=int(go.outcomes.loc[lost, "cart_id"].astype(str).nunique()),
        go=go, lenient=lenient,
    )


@dataclass
class _Context:
    src: Source
    events: pd.DataFrame
    go: Replay
    lenient: Replay
    findings: list[Finding]
    metrics: pd.DataFrame
    prom: str
    pngs: dict[str, bytes]
    result: ReportResult
    freq: str
    notes: Notes | None = None


def _src_text(src: Source) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return ", ".join(os.fspath(s) for s in src)


def _per_cart(ctx: _Context) -> pd.DataFrame:
    """Carts that lost lines (most first, TOP_CARTS of them) with the value they lost."""
    go, le = ctx.go, ctx.lenient
    oc_go = go.outcomes["outcome"].astype(str).to_numpy()
    oc_le = le.outcomes["outcome"].astype(str).to_numpy()
    cart = go.outcomes["cart_id"].astype(str).to_numpy()
    frame = pd.DataFrame({"cart_id": cart, "lost": _lost_mask(go, le),
                          "applied_go": oc_go == "applied", "applied_lenient": oc_le == "applied"})
    g = frame.groupby("cart_id", sort=False).agg(
        lines=("lost", "size"), applied_go=("applied_go", "sum"),
        applied_lenient=("applied_lenient", "sum"), lost=("lost", "sum"))
    g = g[g["lost"] > 0].sort_values("lost", ascending=False, kind="stable").head(TOP_CARTS)
    rows = []
    for cid, r in g.iterrows():
        a = go.final_state(str(cid))
        b = le.final_state(str(cid))
        rows.append({
            "cart_id": cid, "lines": int(r["lines"]), "applied_go": int(r["applied_go"]),
            "applied_lenient": int(r["applied_lenient"]), "lost": int(r["lost"]),
            "items_go": len(a["items"]), "items_lenient": len(b["items"]),
            "total_go": a["totalPrice"], "total_lenient": b["totalPrice"],
            "order_lenient": b.get("orderReference") or "",
        })
    return pd.DataFrame(rows)


# -- HTML ----------------------------------------------------------------------------------
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:0 auto;max-width:1180px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 16px}.headline{background:#fff4ec;border-left:6px solid #D55E00;
padding:12px 16px;font-size:18px;font-weight:600;margin:16px 0}
.ok{background:#ecf8f3;border-left-color:#009E73}
.nums{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.num{background:#f5f5f7;padding:8px 14px;
border-radius:6px}.num b{display:block;font-size:20px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;
padding:4px 8px;vertical-align:top;text-align:left}th{background:#f5f5f7}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f5f5f7;padding:10px;overflow-x:auto}
td code{word-break:break-all;white-space:pre-wrap}
details{margin:6px 0 14px}summary{cursor:pointer;font-weight:600}
figure{margin:18px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:13px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
.small{font-size:12px;color:#555}
"""


def _table(df: pd.DataFrame, numeric: Sequence[str] = (), code: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False, name=None):
        cells = []
        for col, v in zip(df.columns, row, strict=True):
            if col in code and _text(v):
                cells.append(f"<td><code>{esc(v)}</code></td>")
            elif col in numeric:
                cells.append(f'<td class="n">{esc(v)}</td>')
            else:
                cells.append(f"<td>{esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _examples_text(f: Finding) -> str:
    return ", ".join(f"{c} line {ln}" for c, ln in f.examples)


def _evidence_view(f: Finding) -> pd.DataFrame:
    ev = f.evidence.head(EVIDENCE_ROWS).copy()
    if "row" in ev.columns:
        ev = ev.drop(columns=["row"])
    for col in ev.columns:
        if pd.api.types.is_datetime64_any_dtype(ev[col]):
            ev[col] = [_when(t) for t in ev[col]]
    return ev


def _img(name: str, data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{esc(alt)}">'


def _html(ctx: _Context) -> str:
    from . import __version__  # here, not at import: the package may still be initialising
    res = ctx.result
    fs = ctx.findings
    head = headline_finding(fs)
    parts: list[str] = []
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>cartforensics report</h1><p class=\"sub\">{esc(_src_text(ctx.src))}: "
                 f"{res.carts:,} carts, {res.lines:,} lines, replayed as "
                 f"{esc(ctx.go.semantics.label)}, generated {esc(now)} by "
                 f"cartforensics {esc(__version__)}</p>")
    if head is not None:
        parts.append(f'<div class="headline">{esc(head.message)}</div>')
    else:
        parts.append('<div class="headline ok">No problems found: every line is applied as '
                     "the writer meant it.</div>")
    nums = [
        ("carts", res.carts), ("lines", res.lines),
        ("applied by the service (go)", res.applied_go),
        ("meant to apply (lenient)", res.applied_lenient),
        ("lines lost", res.lost), ("carts losing lines", res.carts_losing),
    ]
    parts.append('<div class="nums">' + "".join(
        f'<div class="num"><b>{esc(v)}</b>{esc(k)}</div>' for k, v in nums) + "</div>")
    parts.append("<p class=\"small\"><b>go</b> mode replays each line as the service's "
                 "reader does, bugs and all: what the service really rebuilt. <b>lenient</b> "
                 "mode reads a JSON number in ts as Unix seconds and lines over 256 KiB: what "
                 "the writer meant. The difference is what the service silently dropped.</p>")

    # findings
    parts.append("<h2>Findings</h2>")
    if fs:
        tbl = findings_table(fs)
        view = pd.DataFrame({
            "#": tbl["rank"], "finding": [f.title for f in fs], "lines": tbl["lines"],
            "carts": tbl["carts"], "first seen": [_when(f.first_seen) for f in fs],
            "last seen": [_when(f.last_seen) for f in fs], "what it means": tbl["message"],
            "examples": [_examples_text(f) for f in fs],
        })
        parts.append(_table(view, numeric=("#", "lines", "carts")))
        parts.append("<h3>The lines behind each finding</h3>")
        for k, f in enumerate(fs, 1):
            ev = _evidence_view(f)
            more = f" (first {len(ev)} of {len(f.evidence):,})" if len(f.evidence) > len(ev) \
                else ""
            parts.append(
                f"<details><summary>{k}. {esc(f.title)}: {esc(f.count)} "
                f"line{'s' if f.count != 1 else ''}{esc(more)}</summary>"
                f"<p>{esc(f.message)}</p>"
                + _table(ev, numeric=("line", "length"), code=("snippet", "go_error",
                                                               "lenient_error"))
                + "</details>"
            )
    else:
        parts.append("<p>None.</p>")
    if ctx.notes is not None:
        parts.append(notes_html(ctx.notes, ctx.go, ctx.lenient, fs, _table, esc))

    # charts
    parts.append("<h2>Charts</h2>")
    legend = " ".join(
        f'<span class="swatch" style="background:{OUTCOME_COLORS[o]}"></span>'
        f"{esc(OUTCOME_LABELS[o])}" for o in OUTCOMES)
    parts.append(f"<p class=\"small\">Outcome colours, the same in every chart: {legend}. "
                 f"Times are UTC; windows of {esc(ctx.freq)}.</p>")
    for name, caption in CHARTS:
        parts.append(f"<figure>{_img(name, ctx.pngs[name], caption)}<figcaption>"
                     f"{esc(caption)} ({esc(name)}.png)</figcaption></figure>")

    # per cart
    parts.append("<h2>Carts that lost lines</h2>")
    pc = _per_cart(ctx)
    if pc.empty:
        parts.append("<p>None: the service applied every line lenient mode applies.</p>")
    else:
        parts.append(f"<p class=\"small\">The {len(pc)} carts that lost the most lines; "
                     "totals in minor units (öre), as the carts' final states hold them.</p>")
        parts.append(_table(pc, numeric=[c for c in pc.columns if c not in
                                         ("cart_id", "order_lenient")]))

    # metrics
    parts.append("<h2>Metrics the service would export</h2>")
    parts.append("<p class=\"small\">Reader side: what <code>ReplayCartEvents</code> counts "
                 "replaying every cart once (go mode). Writer side: what "
                 "<code>AppendCartEvent</code> counted writing these files. "
                 "<code>cartforensics_promised_unknown_types_total</code> is not the "
                 "service's: it is what its comments promise "
                 "<code>cart_event_log_unknown_types_total</code> counts.</p>")
    mv = ctx.metrics.reset_index()[["metric", "side", "type", "value", "note"]]
    mv["value"] = [_fmt_value(v) for v in mv["value"]]
    parts.append(_table(mv, numeric=("value",), code=("metric",)))
    parts.append("<h3>Prometheus text exposition (to hold against a scrape)</h3>")
    parts.append(f"<pre>{esc(ctx.prom)}</pre>")

    # reproduce
    parts.append("<h2>Reproduce in Python</h2>")
    parts.append("<pre>" + esc(
        "import cartforensics as cf\n"
        "from cartforensics.findings import findings, findings_table\n"
        f"events = cf.read_events({_src_text(ctx.src)!r}, "
        f"go_version={ctx.go.semantics.spec!r})\n"
        "go = cf.replay(events, mode=\"go\")\n"
        "lenient = cf.replay(events, mode=\"lenient\")\n"
        "fs = findings(go, lenient)\n"
        "findings_table(fs)\n"
        "fs[0].evidence") + "</pre>")
    title = f"cartforensics report: {_src_text(ctx.src)}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if v.is_integer():
            return f"{int(v)}"
        return f"{v:g}"
    return _text(v)


# -- Markdown ------------------------------------------------------------------------------
def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(_md(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    return "\n".join(lines)


def _markdown(ctx: _Context) -> str:
    res = ctx.result
    fs = ctx.findings
    head = headline_finding(fs)
    out = [f"# cartforensics report: {_md(_src_text(ctx.src))}", "",
           f"Replayed as {_md(ctx.go.semantics.label)}.", ""]
    out.append(f"**{_md(head.message) if head else 'No problems found.'}**")
    out.append("")
    out.append(f"{res.carts:,} carts, {res.lines:,} lines. The service applied "
               f"{res.applied_go:,} lines (go mode); the writer meant {res.applied_lenient:,} "
               f"to apply (lenient mode): {res.lost:,} lines lost in {res.carts_losing:,} "
               "carts.")
    out += ["", "## Findings", ""]
    if fs:
        view = pd.DataFrame({
            "#": range(1, len(fs) + 1), "finding": [f.title for f in fs],
            "lines": [f.count for f in fs], "carts": [f.carts for f in fs],
            "first seen": [_when(f.first_seen) for f in fs],
            "last seen": [_when(f.last_seen) for f in fs],
            "what it means": [f.message for f in fs],
            "examples": [_examples_text(f) for f in fs],
        })
        out.append(_md_table(view))
    else:
        out.append("None.")
    if ctx.notes is not None:
        out += notes_markdown(ctx.notes, ctx.go, ctx.lenient, fs, _md_table)
    out += ["", "## Charts", ""]
    for name, caption in CHARTS:
        out.append(f"![{caption}]({name}.png)")
        out.append("")
    out += ["## Metrics the service would export", ""]
    mv = ctx.metrics.reset_index()[["metric", "side", "type", "value", "note"]]
    mv["value"] = [_fmt_value(v) for v in mv["value"]]
    out.append(_md_table(mv))
    out += ["", "```", ctx.prom.rstrip("\n"), "```", ""]
    out.append("Every line's outcome in both modes: `outcomes.parquet`. The evidence behind "
               "each finding: `report.html`.")
    return "\n".join(out) + "\n"


# -- command line --------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    src = args.path
    if isinstance(src, list) and len(src) == 1:
        src = src[0]
    try:
        res = write_report(src, args.out, progress=False if args.quiet else None,
                           freq=args.freq, notes=args.notes,
                           go_version=args.go_version)
    except (ReportError, NoLogsError) as e:
        sys.stderr.write(f"cartforensics: {e}\n")
        return 2
    except OSError as e:
        where = e.filename or args.out
        sys.stderr.write(f"cartforensics: {where}: {e.strerror or e}\n")
        return 2
    sys.stdout.write(res.summary() + "\n")
    return 0


def add_subcommand(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``cartforensics report SRC --out DIR [--quiet]`` to the CLI."""
    p = subparsers.add_parser(
        "report", help="replay in both modes and write an HTML/Markdown report with charts",
        description=(
            "Replay the logs as the service does (go mode) and as the writer meant them "
            "(lenient mode); write DIR/report.html (self-contained), DIR/report.md, the "
            "charts as PNG and DIR/outcomes.parquet; print the headline finding and the top "
            "findings."
        ),
    )
    p.add_argument("path", nargs="+", metavar="SRC",
                   help="log files (<cartId>.events.log[.gz]), directories or globs")
    p.add_argument("--out", "-o", required=True, metavar="DIR",
                   help="directory to write the report into (created if missing)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--freq", default=None,
                   help="time window of the charts, e.g. 1h or 1D (default: from the span)")
    p.add_argument("--notes", default=None, metavar="NOTES.json",
                   help="an analyst's notes file (cartforensics.Notes): adds an 'Analyst "
                        "notes' section")
    add_go_version_option(p)
    one_line_errors(p, "report")
    p.set_defaults(func=_cmd_report)
    return p


__all__ = ["ReportError", "ReportResult", "add_subcommand", "outcomes_frame", "write_report"]
