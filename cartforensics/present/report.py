"""``cartforensics report SRC --out DIR``: the job a user runs first. Replays the logs in both
modes and writes the story: ``report.html`` (one self-contained file, charts embedded),
``report.md``, the charts as PNG, and ``outcomes.parquet`` (every line's outcome in both modes).

>>> res = write_report("sample_data", "/tmp/rep")      # doctest: +SKIP
>>> print(res.summary())                               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cartforensics._runtime.publish import build_directory, publish_directory, remove_abandoned
from cartforensics._version import __version__
from cartforensics.analysis.findings import Finding, findings_table, headline_finding
from cartforensics.analysis.metrics import prometheus_text
from cartforensics.analysis.notes import Notes, NotesError
from cartforensics.analysis.reconcile import Reconciliation, reconcile_logs
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.logs import Source
from cartforensics.io.prometheus import read_record
from cartforensics.io.provenance import PROVENANCE, call_record, write_provenance
from cartforensics.io.sources import (
    DatasetSource,
    Resolved,
    read_events,
    resolve_source,
    source_inputs,
)
from cartforensics.model.engine import engine_info
from cartforensics.model.protocol import ReplayLike, ReplayOfEvents
from cartforensics.model.replay import replay
from cartforensics.present.escaping import visible
from cartforensics.present.notes_report import load_notes, notes_html, notes_markdown
from cartforensics.present.report_chunks import CHUNK_BYTES, CHUNK_FILES, CHUNK_LINES
from cartforensics.vocab import EVIDENCE_ROWS, OUTCOME_COLORS, OUTCOME_LABELS, OUTCOMES

if TYPE_CHECKING:  # matplotlib loads with the charts (cartforensics.present.plots), when they are
    from matplotlib.figure import Figure  # drawn: the report's workers never import it

CHARTS = (
    ("outcome_mix", "Outcome of every line over time"),
    ("failure_rates", "Failure rates over time"),
    ("failures_by_type", "Failed lines per event type over time"),
    ("lines_lost", "Lines lost per cart"),
    ("unknown_types", "Unknown event types"),
)
TOP_FINDINGS = 5  # in the terminal summary
TOP_CARTS = 30  # in the per-cart table
LARGE_INPUT_BYTES = 20 << 20
LARGE_INPUT_FILES = 200
# what a report directory holds: --out is replaced whole, so it may hold only these
REPORT_FILES = frozenset({"report.html", "report.md", "outcomes.parquet",
                          *(f"{name}.png" for name, _ in CHARTS),
                          "reconcile.png",  # (with a Prometheus record)
                          PROVENANCE})
_BUILDING = "report"  # the report is built in .<out>.report-<pid>-<random> beside --out


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
    semantics: GoSemantics = field(repr=False)  # the toolchain replayed as
    notes: Notes | None = field(default=None, repr=False)  # the analyst's notes, if given
    source: Resolved | None = field(default=None, repr=False)  # what was analysed
    _replays: tuple[ReplayOfEvents, ReplayOfEvents] | None = field(default=None, repr=False)

    def _load(self) -> tuple[ReplayOfEvents, ReplayOfEvents]:
        if self._replays is None:
            if isinstance(self.source, DatasetSource):
                from cartforensics.analysis.fleet import stored_replays

                _, go, lenient = stored_replays(self.source.root, manifest=self.source.manifest)
            else:
                ev = read_events(self.source, progress=False, go_version=self.semantics)
                go, lenient = replay(ev, mode="go"), replay(ev, mode="lenient")
            self._replays = (go, lenient)
        return self._replays

    @property
    def go(self) -> ReplayOfEvents:
        """The source replayed in go mode. The report itself never holds every line: this
        reads and replays the whole source again, on first use."""
        return self._load()[0]

    @property
    def lenient(self) -> ReplayOfEvents:
        """The source replayed in lenient mode (read again on first use, as :attr:`go`)."""
        return self._load()[1]

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
        out.append(f"Replayed as {self.semantics.label}.")
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
    """A value for Markdown text or a table cell: line breaks as spaces, other non-printing
    characters (terminal escapes) shown as escapes, then HTML-escaped, pipes and Markdown's
    own characters neutralised."""
    s = html.escape(visible(_text(v).replace("\r", " ").replace("\n", " ")), quote=False)
    return (s.replace("|", "&#124;")
            .replace("`", "&#96;").replace("*", "&#42;").replace("[", "&#91;")
            .replace("]", "&#93;"))


def _term(s: Any) -> str:
    """Log content for a terminal: control characters shown as escapes, never sent raw."""
    return visible(str(s))


def _when(t: pd.Timestamp | None) -> str:
    if t is None or pd.isna(t):
        return ""
    return t.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


# -- checks --------------------------------------------------------------------------------
def _check_out_dir(out_dir: Path) -> Path:
    """Where the report is published: ``out_dir`` as an absolute path, a symbolic link
    resolved. It is replaced whole (publish_directory), so it must be nothing yet or a
    directory holding only a report's files, and the directory it is in must be writable."""
    out = Path(os.path.realpath(out_dir) if out_dir.is_symlink() else os.path.abspath(out_dir))
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out_dir}: exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"--out {out_dir}: cannot create the directory: {e.strerror or e}"
        ) from None
    if out.is_dir():
        cwd = Path.cwd()
        if out == cwd or out in cwd.parents or os.path.ismount(out):
            where = "a mount point" if os.path.ismount(out) else "the current directory or " \
                "holds it"
            raise ReportError(f"--out {out_dir}: is {where}; the report replaces its directory "
                              "whole: give a directory inside it")
        if not os.access(out, os.W_OK | os.X_OK):
            raise ReportError(f"--out {out_dir}: cannot write there: permission denied")
        foreign = sorted(n for n in os.listdir(out)
                         if n not in REPORT_FILES and not n.startswith(".cartforensics-"))
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ReportError(f"--out {out_dir}: holds files that are not a report's ({shown}); "
                              "the report replaces its directory whole: give a new or empty "
                              "directory, or a previous report's")
    try:
        build_directory(out, _BUILDING).rmdir()
    except OSError as e:
        raise ReportError(f"--out {out_dir}: cannot write there: {e.strerror or e}") from None
    return out


def _large(source: Resolved) -> bool:
    if isinstance(source, DatasetSource):
        return source.lines > 200_000
    return len(source.logs) > LARGE_INPUT_FILES or source.total_bytes > LARGE_INPUT_BYTES


# -- the report ----------------------------------------------------------------------------
def write_report(
    src: Source | Resolved,
    out_dir: str | os.PathLike[str],
    progress: bool | None = None,
    freq: str | None = None,
    notes: Notes | str | os.PathLike[str] | None = None,
    go_version: str | None = None,
    *,
    executor: Executor | None = None,
    workers: int | None = None,
    chunk_files: int = CHUNK_FILES,
    chunk_bytes: int = CHUNK_BYTES,
    chunk_lines: int = CHUNK_LINES,
    prometheus: str | os.PathLike[str] | None = None,
) -> ReportResult:
    """Replay ``src`` (anything :func:`read_events` takes) in ``go`` and ``lenient`` mode and
    write into ``out_dir``: ``report.html`` (self-contained, charts embedded as PNG, every
    piece of log content escaped), ``report.md``, one PNG per chart and ``outcomes.parquet``
    (one row per line and mode: mode, cart_id, line, ts, type, outcome, error).

    The report is built in a new directory beside ``out_dir`` and then takes its place in one
    step: ``out_dir`` holds the old report or the new one, never a mix, whatever stops the
    run (an error, a full disk, a kill), and nothing is ever written through a link planted
    in it. So ``out_dir`` must be new, empty, or hold only a report's files; a link to a
    directory is followed once, to the directory it names. A log that vanishes or cannot be
    read while the report runs is listed as a problem, as other bad input is.

    ``progress``: a progress bar on stderr; None shows one for large inputs only. ``freq``:
    the time window of the charts (default: chosen from the time span). ``go_version``: the
    Go that built the service (``"1.25"`` default, ``"1.27"``, ...; see
    :mod:`cartforensics.go.version`); the header names it, and a finding lists the lines whose
    outcome the other side of the json v1/v2 line would change. ``notes``: a
    :class:`~cartforensics.analysis.notes.Notes` or the path of a notes file: the report gets an
    "Analyst notes" section (each note with its line's outcomes, raw line and finding).

    The work runs in chunks of whole carts (:mod:`cartforensics.present.report_chunks`): at most
    ``chunk_files`` files / ``chunk_bytes`` bytes of logs, or about ``chunk_lines`` lines of a
    converted dataset, each read, replayed and reduced to small aggregates, so memory is a few
    chunks', not the fleet's. ``workers``: processes (default: one per core when there is
    more than one chunk for logs; one, this process, for a dataset: it stays under 1 GB);
    ``executor``: any ``concurrent.futures.Executor`` instead (a Dask
    ``client.get_executor()``: its workers must see ``src`` and ``out_dir``).

    ``prometheus``: a Prometheus record of the service's counters (anything
    :func:`~cartforensics.io.prometheus.read_record` reads): the report gets a section that
    reconciles it with the logs (:func:`~cartforensics.analysis.reconcile.reconcile`) and the
    chart ``reconcile.png``; from logs only (it needs the lines themselves).

    Raises :class:`ReportError` for an unusable ``out_dir`` and
    :class:`~cartforensics.io.logs.NoLogsError` when ``src`` holds no logs.
    """
    from cartforensics.present.report_chunks import (
        OutcomesWriter,
        combine,
        plan_dataset,
        plan_logs,
        run_chunks,
        start_workers_server,
    )

    started = time.time()
    out = Path(out_dir)
    # what src is, decided once (fails on a missing source before touching the output)
    source = resolve_source(src)
    from_dataset = isinstance(source, DatasetSource)  # its stored outcomes, no replay
    if not from_dataset:
        sem = semantics(go_version)
    else:  # its outcomes are of the toolchain it was converted as
        sem = semantics(source.go_version)
        if go_version is not None and semantics(go_version) != sem:
            raise ReportError(
                f"{source} was converted as {sem.label}: report from the logs, or convert "
                f"them again with go_version={semantics(go_version).spec!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ReportError(f"workers must be a positive number of processes, not {workers!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise ReportError(f"executor must be a concurrent.futures.Executor (for Dask: "
                          f"client.get_executor()), not {type(executor).__name__}")
    if not from_dataset and executor is None and workers != 1 and \
            len(source.logs) > chunk_files:  # type: ignore[union-attr]
        start_workers_server()  # several chunks: its imports overlap the checks below
    try:
        notes = load_notes(notes)
    except NotesError as e:
        raise ReportError(str(e)) from None
    if prometheus is not None and from_dataset:
        raise ReportError("--prometheus reconciles with the logs: report from the logs, not a "
                          "converted dataset")
    record = read_record(prometheus) if prometheus is not None else None  # fails early
    target = _check_out_dir(out)  # where the report is published (out, a link resolved)
    remove_abandoned(target, _BUILDING)  # what a killed run left beside it
    if progress is None:  # large: a bar when stderr is a terminal
        progress = None if _large(source) else False
    from cartforensics._runtime.progress import progress_bar

    chunks = plan_dataset(source, chunk_lines) if from_dataset else \
        plan_logs(source, chunk_bytes, chunk_files)
    bar = progress_bar(total=len(chunks) + 1, desc="report: chunks", unit="chunk",
                       enabled=progress, file=sys.stderr, leave=False)
    # built beside --out, published by a swap: never written in place, never through a link
    build = build_directory(target, _BUILDING)
    tmp = build / ".cartforensics-parts"
    try:
        tmp.mkdir()
        writer = OutcomesWriter(build / "outcomes.parquet")
        charts_ready: list[Any] = []

        def chunk_done(r: Any) -> None:
            bar.update()
            writer.add(r)
            if not charts_ready:  # matplotlib loads while the other chunks run
                from cartforensics.present import plots

                charts_ready.append(plots)

        closing = None
        with ThreadPoolExecutor(1, thread_name_prefix="cartforensics-outcomes") as copier:
            try:
                if workers is None and from_dataset:  # measured: one process keeps a 10M-
                    workers = 1  # event dataset's report under 1 GB; two took 1.4 GB, no faster
                results = run_chunks(chunks, str(tmp), freq, None if from_dataset else sem,
                                     executor=executor, workers=workers, on_done=chunk_done)
                # the lenient rows are copied into outcomes.parquet while the charts are
                # drawn (Arrow's reading and writing release the GIL)
                closing = copier.submit(writer.close)
                bar.set_description("report: writing")
                comb = combine(results, freq, sem)
                fs = comb.findings
                prom = prometheus_text(comb.metrics)
                pngs = _chart_pngs(comb)
                reconciled = None
                if record is not None:
                    from cartforensics.present.plots import plot_reconcile

                    reconciled = reconcile_logs(source, record, go_version=sem.spec)
                    pngs["reconcile"] = _png(plot_reconcile(reconciled))
                closing.result()
            finally:
                if closing is not None:
                    wait([closing])
                writer.abort()
        charts = {}
        for name, data in pngs.items():
            (build / f"{name}.png").write_bytes(data)
            charts[name] = out / f"{name}.png"
        head = headline_finding(fs)
        result = ReportResult(
            out_dir=out, html=out / "report.html", markdown=out / "report.md",
            parquet=out / "outcomes.parquet", charts=charts,
            headline=head.message if head is not None and head.is_headline else None,
            findings=fs, metrics=comb.metrics, lines=comb.lines, carts=comb.carts,
            applied_go=comb.applied_go, applied_lenient=comb.applied_lenient,
            lost=comb.lost, carts_losing=comb.carts_losing, semantics=sem, notes=notes,
            source=source)
        noted = _noted(notes, chunks, fs, from_dataset, sem) if notes is not None else None
        ctx = _Context(src=src, findings=fs, metrics=comb.metrics, prom=prom, pngs=pngs,
                       result=result, freq=comb.freq, semantics=sem, per_cart=comb.per_cart,
                       notes=notes, noted=noted, reconciled=reconciled)
        (build / "report.html").write_text(_html(ctx), encoding="utf-8")
        (build / "report.md").write_text(_markdown(ctx), encoding="utf-8")
        shutil.rmtree(tmp)  # the chunks' parts: copied into outcomes.parquet
        root, inputs = source_inputs(source)
        if notes is not None and notes.path is not None and notes.path.is_file():
            inputs.append(notes.path)
        write_provenance(
            build, inputs=inputs, input_root=root, started=started,
            call=call_record("write_report", src=src, out_dir=out_dir, freq=freq,
                             go_version=go_version, notes=notes and notes.path,
                             prometheus=prometheus),
            details={"go_version": sem.spec, "modes": ["go", "lenient"],
                     "engine": engine_info()["engine"],
                     "source": "dataset" if from_dataset else "logs"})
        # one step: a reader, or OUT after a crash, has the old report or this one
        publish_directory(build, target)
        bar.update()
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        bar.close()
    return result


class _NoCarts:
    """The notes' replay stand-in when none of the noted carts is in the source: a
    :class:`~cartforensics.model.protocol.ReplayOfEvents` of no line and no cart."""

    cart_ids: list[str] = []
    outcomes = pd.DataFrame({"line": pd.Series([], dtype="int64"),
                             "outcome": pd.Series([], dtype=str)})
    events = pd.DataFrame({"raw": pd.Series([], dtype=object)})
    catalog = None
    registry = None

    def __init__(self, mode: str, sem: GoSemantics) -> None:
        self.mode = mode
        self.semantics = sem

    def rows_of(self, cart_id: str) -> list[int]:
        return []

    def final_state(self, cart_id: str) -> dict[str, Any]:
        raise KeyError(f"no cart {cart_id!r} in this replay")


def _noted(notes: Notes, chunks: list[Any], fs: list[Finding],
           from_dataset: bool, sem: GoSemantics
           ) -> tuple[ReplayOfEvents, ReplayOfEvents, list[Any]]:
    """(go, lenient, findings) for the notes section: the noted carts read and replayed again
    (only they), and per finding the evidence of those carts' lines (every line, not the few
    the report keeps)."""
    from types import SimpleNamespace

    from cartforensics.analysis.findings import finding_parts
    from cartforensics.present.report_chunks import Chunk, read_chunk

    wanted = {n["cart_id"] for n in notes}
    pairs = [(n["cart_id"], n["line"]) for n in notes]
    if from_dataset:
        hit = [c for c in chunks if wanted & set(c.carts)]
        if not hit:
            return _NoCarts("go", sem), _NoCarts("lenient", sem), []
        chunk = Chunk(0, root=hit[0].root,
                      fragments=sorted({f for c in hit for f in c.fragments}),
                      carts=[x for c in hit for x in c.carts],
                      cart_fragments=sorted({f for c in hit for f in c.cart_fragments}),
                      manifest=None if hit[0].manifest is None else dict(
                          hit[0].manifest, files=[f for c in hit for f in
                                                  (c.manifest or {}).get("files", [])]))
    else:
        logs = [log for c in chunks for log in c.logs if log.cart_id in wanted]
        if not logs:
            return _NoCarts("go", sem), _NoCarts("lenient", sem), []
        chunk = Chunk(0, logs=logs)
    import warnings

    with warnings.catch_warnings():  # the report's own reading said it already
        warnings.simplefilter("ignore")
        _, go, lenient = read_chunk(chunk, None if from_dataset else sem, lines=pairs)
    parts = finding_parts(go, lenient, limit=None)
    proxies = []
    for f in fs:
        evs = [parts[(f.kind, k)].evidence for k in getattr(f, "part_keys", [f.key])
               if (f.kind, k) in parts]
        ev = pd.concat(evs, ignore_index=True) if evs else pd.DataFrame()
        proxies.append(SimpleNamespace(title=f.title, evidence=ev))
    return go, lenient, proxies


def _chart_pngs(comb: Any) -> dict[str, bytes]:
    """The report's charts (CHARTS' names) as PNG, from the chunks' combined inputs."""
    from cartforensics.present.plots import (
        failures_heatmap_figure,
        lines_lost_figure,
        outcome_mix_figure,
        rates_figure,
        unknown_types_figure,
    )

    figs = {
        "outcome_mix": outcome_mix_figure(comb.rates, comb.freq, "go"),
        "failure_rates": rates_figure(comb.rates, comb.freq, "go", comb.findings),
        "failures_by_type": failures_heatmap_figure(comb.rates_by_type, comb.freq, "go"),
        "lines_lost": lines_lost_figure(comb.lost_table),
        "unknown_types": unknown_types_figure(comb.unknown, "lenient"),
    }
    return {name: _png(fig) for name, fig in figs.items()}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, facecolor="white")
    return buf.getvalue()


def outcomes_frame(go: ReplayLike, lenient: ReplayLike) -> pd.DataFrame:
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


@dataclass
class _Context:
    src: Source
    findings: list[Finding]
    metrics: pd.DataFrame
    prom: str
    pngs: dict[str, bytes]
    result: ReportResult
    freq: str
    semantics: GoSemantics
    per_cart: pd.DataFrame
    notes: Notes | None = None
    # go, lenient, findings for the notes
    noted: tuple[ReplayOfEvents, ReplayOfEvents, list[Any]] | None = None
    reconciled: Reconciliation | None = None  # with a Prometheus record


def _src_text(src: Source) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return ", ".join(os.fspath(s) for s in src)


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
    res = ctx.result
    fs = ctx.findings
    head = headline_finding(fs)
    parts: list[str] = []
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>cartforensics report</h1><p class=\"sub\">{esc(_src_text(ctx.src))}: "
                 f"{res.carts:,} carts, {res.lines:,} lines, replayed as "
                 f"{esc(ctx.semantics.label)}, generated {esc(now)} by "
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
            more = f" (first {len(ev)} of {f.count:,})" if f.count > len(ev) else ""
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
        go, le, nfs = ctx.noted  # type: ignore[misc]
        parts.append(notes_html(ctx.notes, go, le, nfs, _table, esc))

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
    pc = ctx.per_cart
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

    if ctx.reconciled is not None:
        parts += _reconciled_html(ctx)

    # reproduce
    parts.append("<h2>Reproduce in Python</h2>")
    parts.append("<pre>" + esc(
        "import cartforensics as cf\n"
        "from cartforensics.analysis.findings import findings, findings_table\n"
        f"events = cf.read_events({_src_text(ctx.src)!r}, "
        f"go_version={ctx.semantics.spec!r})\n"
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
           f"Replayed as {_md(ctx.semantics.label)}.", ""]
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
        go, le, nfs = ctx.noted  # type: ignore[misc]
        out += notes_markdown(ctx.notes, go, le, nfs, _md_table)
    out += ["", "## Charts", ""]
    for name, caption in CHARTS:
        out.append(f"![{caption}]({name}.png)")
        out.append("")
    out += ["## Metrics the service would export", ""]
    mv = ctx.metrics.reset_index()[["metric", "side", "type", "value", "note"]]
    mv["value"] = [_fmt_value(v) for v in mv["value"]]
    out.append(_md_table(mv))
    out += ["", "```", visible(ctx.prom.rstrip("\n"), keep_newlines=True), "```", ""]
    if ctx.reconciled is not None:
        out += _reconciled_markdown(ctx.reconciled)
    out.append("Every line's outcome in both modes: `outcomes.parquet`. The evidence behind "
               "each finding: `report.html`.")
    return "\n".join(out) + "\n"


# -- the Prometheus record, reconciled ----------------------------------------------------
_RECONCILED_TITLE = "What Prometheus recorded, reconciled with the logs"
_RECONCILED_COLUMNS = ["window", "metric", "exported", "rebuilt", "kind", "count", "text"]


def _explained(rec: Reconciliation) -> pd.DataFrame:
    e = rec.explanations[rec.explanations["kind"] != "matched"][_RECONCILED_COLUMNS]
    return e.assign(text=e["text"].map(visible))  # cart ids and types are the logs' own


def _reconciled_html(ctx: _Context) -> list[str]:
    rec = ctx.reconciled
    assert rec is not None
    e = _explained(rec)
    return [
        f"<h2>{esc(_RECONCILED_TITLE)}</h2>",
        f"<p>{len(rec.windows)} window(s) (process lifetimes); difference explained: "
        f"{rec.explained:,}, unexplained: {rec.unexplained:,}.</p>",
        f"<figure>{_img('reconcile', ctx.pngs['reconcile'], _RECONCILED_TITLE)}</figure>",
        "<ul>" + "".join(f"<li>{esc(visible(f))}</li>" for f in rec.findings) + "</ul>",
        _table(e, numeric=("exported", "rebuilt", "count"), code=("metric",)),
    ]


def _reconciled_markdown(rec: Reconciliation) -> list[str]:
    e = _explained(rec)
    return [f"## {_RECONCILED_TITLE}", "",
            f"{len(rec.windows)} window(s); difference explained: {rec.explained:,}, "
            f"unexplained: {rec.unexplained:,}.", "", "![reconciled](reconcile.png)", "",
            *(f"- {_md(visible(f))}" for f in rec.findings), "", _md_table(e), ""]


# -- command line --------------------------------------------------------------------------


__all__ = ["ReportError", "ReportResult", "outcomes_frame", "write_report"]
