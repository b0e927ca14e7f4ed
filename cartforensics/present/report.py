"""``cartforensics report SRC --out DIR``: the job a user runs first. Replays the logs in both
modes and writes the story: ``report.html`` (one self-contained file, charts embedded),
``report.md``, the charts as PNG, and ``outcomes.parquet`` (every line's outcome in both modes).

>>> res = write_report("sample_data", "/tmp/rep")      # doctest: +SKIP
>>> print(res.summary())                               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
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

from cartforensics._runtime.publish import (
    build_directory,
    building,
    publish_directory,
    remove_abandoned,
)
from cartforensics._version import __version__
from cartforensics.analysis.findings import Finding, findings_table, headline_finding
from cartforensics.analysis.fleet import fleet_report
from cartforensics.analysis.impact import Impact, impact_totals
from cartforensics.analysis.metrics import prometheus_text, window_width
from cartforensics.analysis.notes import Notes, NotesError
from cartforensics.analysis.reconcile import Reconciliation, reconcile_logs
from cartforensics.go.version import GoSemantics, semantics
from cartforensics.io.logs import Source
from cartforensics.io.prometheus import read_record
from cartforensics.io.provenance import PROVENANCE, call_record, write_provenance
from cartforensics.io.sources import (
    DatasetSource,
    LogSource,
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
from cartforensics.present.report_chunks import (
    CHUNK_BYTES,
    CHUNK_FILES,
    CHUNK_LINES,
    TIMELINE_CARTS,
    TIMELINE_POSITIONS,
    CartTimeline,
    default_workers,
    start_timelines,
)
from cartforensics.present.widgets.frames import money_text
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
    s = html.escape(visible(_text(v).replace("\r", " ").replace("\n", " ")
                            .replace("\u202f", " ")), quote=False)  # (money_text's space)
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
    timelines: int = TIMELINE_CARTS,
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

    ``timelines``: how many of the most affected carts (most lines named by findings, then
    most money lacking) get their timeline embedded in ``report.html`` (default 50; 0: only
    the carts with an analyst's note); drawing them is a few CPU seconds of a large report,
    spent on the workers while this process draws the charts (in this process for one
    worker or a dataset).

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
    if not isinstance(timelines, int) or isinstance(timelines, bool) or timelines < 0:
        raise ReportError(f"timelines must be a number of carts (0 or more), not {timelines!r}")
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
    try:
        with building(target, _BUILDING) as build:
            tmp = build / ".cartforensics-parts"
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
            with ThreadPoolExecutor(1, thread_name_prefix="cartforensics-outcomes") as copier, \
                    ThreadPoolExecutor(1, thread_name_prefix="cartforensics-fleet") as aggregator:
                try:
                    if workers is None and from_dataset:  # measured: one process keeps a 10M-
                        workers = 1  # event dataset's report under 1 GB; two took 1.4 GB, no faster
                    noted = frozenset(str(n["cart_id"]) for n in notes) if notes else frozenset()
                    notes_file = str(notes.path) if notes is not None and notes.path is not None \
                        and notes.path.is_file() else None
                    # a dataset's chunks give their findings (and outcomes) only: its counts,
                    # impact and per-cart table are aggregated by DuckDB where the Parquet lies,
                    # in its threads while the chunks run
                    aggregating = None
                    if from_dataset:
                        if freq is not None:  # refused before anything runs, as run_chunks does
                            window_width(freq)
                        aggregating = aggregator.submit(fleet_report, source, freq, TOP_CARTS)
                    results = run_chunks(chunks, str(tmp), freq, None if from_dataset else sem,
                                         executor=executor, workers=workers, on_done=chunk_done,
                                         noted=noted, timelines=timelines,
                                         findings_only=from_dataset)
                    fleet = aggregating.result() if aggregating is not None else None
                    # the lenient rows are copied into outcomes.parquet while the charts are
                    # drawn (Arrow's reading and writing release the GIL)
                    closing = copier.submit(writer.close)
                    bar.set_description("report: writing")
                    comb = combine(results, freq, sem, timelines, fleet, noted)
                    # the kept carts' timelines, drawn once (only their lines are read again),
                    # on the chunks' workers while this process draws the charts
                    drawn = start_timelines(
                        comb.timelines, source, sem, notes_file,
                        budget=TIMELINE_POSITIONS * max(timelines, 1) // TIMELINE_CARTS,
                        workers=workers if workers is not None else default_workers(chunks),
                        executor=executor)
                    try:
                        fs = comb.findings
                        prom = prometheus_text(comb.metrics)
                        pngs = _chart_pngs(comb)
                    finally:  # (the pool they are drawn on ends here, whatever happened)
                        timeline_problem = drawn()
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
                           notes=notes, noted=noted, reconciled=reconciled, impact=comb.impact,
                           parts=comb.parts, timelines=comb.timelines,
                           timeline_problem=timeline_problem)
            (build / "report.html").write_text(_html(ctx), encoding="utf-8")
            (build / "report.md").write_text(_markdown(ctx), encoding="utf-8")
            shutil.rmtree(tmp)  # the chunks' parts: copied into outcomes.parquet
            root, inputs = source_inputs(source)
            if notes is not None and notes.path is not None and notes.path.is_file():
                inputs.append(notes.path)
            write_provenance(
                build, inputs=inputs, input_root=root, started=started,
                call=call_record("write_report", src=_src_paths(src), out_dir=out_dir, freq=freq,
                                 go_version=go_version, notes=notes and notes.path,
                                 prometheus=prometheus),
                details={"go_version": sem.spec, "modes": ["go", "lenient"],
                         "engine": engine_info()["engine"],
                         "source": "dataset" if from_dataset else "logs"},
                read={path: got for r in results for path, got in r.read.items()})
            # one step: a reader, or OUT after a crash, has the old report or this one
            publish_directory(build, target)
            bar.update()
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
        "failure_rates": rates_figure(comb.rates, comb.freq, "go", comb.findings,
                                      mark=len(comb.findings)),  # every finding marked
        "failures_by_type": failures_heatmap_figure(comb.rates_by_type, comb.freq, "go"),
        "lines_lost": lines_lost_figure(comb.lost_table),
        "unknown_types": unknown_types_figure(comb.unknown, "lenient"),
    }
    return {name: _png(fig) for name, fig in figs.items()}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, facecolor="white", bbox_inches="tight")  # legends whole
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
    impact: pd.DataFrame | None = None  # cart_impact rows of every cart
    parts: dict[tuple[str, Any], Any] = field(default_factory=dict)  # the findings' parts
    timelines: list[CartTimeline] = field(default_factory=list)
    timeline_problem: str | None = None


def _src_paths(src: Source | Resolved) -> str | list[str]:
    """The source as paths: one (a path, a dataset's root) or a list (a list of paths or of
    :func:`~cartforensics.io.logs.find_logs` entries, the logs of a resolved source)."""
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, DatasetSource):
        return os.fspath(src.root)
    entries = src.logs if isinstance(src, LogSource) else src
    return [os.fspath(getattr(e, "path", e)) for e in entries]


def _src_text(src: Source | Resolved) -> str:
    """The source as the page names it: its path, up to three paths, or how many logs in
    which folder.

    >>> _src_text(["a/x.events.log", "a/y.events.log", "a/z.events.log", "a/w.events.log"])
    '4 logs in a'
    """
    paths = _src_paths(src)
    if isinstance(paths, str):
        return paths
    if len(paths) <= 3:
        return ", ".join(paths)
    try:
        where = os.path.commonpath([os.path.dirname(p) or "." for p in paths])
    except ValueError:  # absolute and relative paths mixed
        where = "several folders"
    return f"{len(paths):,} logs in {where}"


# -- HTML ----------------------------------------------------------------------------------
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:0 auto;max-width:1180px;padding:24px;overflow-wrap:anywhere}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 16px}.headline{background:#fff4ec;border-left:6px solid #D55E00;
padding:12px 16px;font-size:18px;font-weight:600;margin:16px 0}
.ok{background:#ecf8f3;border-left-color:#009E73}
.impact{border:2px solid #D55E00;border-radius:8px;padding:10px 16px;margin:16px 0}
.impact h2{margin-top:6px;border:0}.impact .lead{font-size:17px;font-weight:600;margin:4px 0}
.nums{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.num{background:#f5f5f7;padding:8px 14px;
border-radius:6px;max-width:100%;box-sizing:border-box}.num b{display:block;font-size:20px}
nav.toc ol{columns:2 260px;margin:4px 0}
table{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}th,td{border:1px
solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f5f5f7}
td.n{text-align:right;font-variant-numeric:tabular-nums}th,td.n{overflow-wrap:normal}
tr:target,details:target>summary{background:#fff4c2}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{background:#f5f5f7;padding:10px;white-space:pre-wrap;overflow-wrap:anywhere}
td code{word-break:break-all;white-space:pre-wrap}
details{margin:6px 0 14px}summary{cursor:pointer;font-weight:600}
details.cf-cart{border:1px solid #ddd;border-radius:6px;padding:4px 10px}
details.cf-cart>summary{font-weight:400}
figure{margin:18px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:13px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
.small{font-size:12px;color:#555}
"""
_UNIX_SUFFIX = "_unix"  # a gauge of Unix seconds: shown as a UTC date


def _table(df: pd.DataFrame, numeric: Sequence[str] = (), code: Sequence[str] = (),
           cells: dict[str, Any] | None = None, row_ids: Sequence[str] | None = None) -> str:
    """``df`` as an HTML table, every value escaped; ``cells``: column -> function giving a
    cell's HTML (it escapes what it shows), ``row_ids``: an anchor per row."""
    cells = cells or {}
    head = "".join(f"<th>{esc(c).replace('_', '_<wbr>')}</th>" for c in df.columns)
    body = []
    for k, row in enumerate(df.itertuples(index=False, name=None)):
        out = []
        for col, v in zip(df.columns, row, strict=True):
            if col in cells:
                cls = ' class="n"' if col in numeric else ""
                out.append(f"<td{cls}>{cells[col](v)}</td>")
            elif col in code and _text(v):
                out.append(f"<td><code>{esc(v)}</code></td>")
            elif col in numeric:
                out.append(f'<td class="n">{esc(v)}</td>')
            else:
                out.append(f"<td>{esc(v)}</td>")
        rid = f' id="{esc(row_ids[k])}"' if row_ids is not None else ""
        body.append(f"<tr{rid}>" + "".join(out) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def cart_anchor(cart_id: str) -> str:
    """The page anchor of a cart's timeline: ``cart-`` and the id (a leading ``cart-`` not
    doubled), every character but ASCII letters, digits, ``-`` and ``.`` as ``_<hex>_``.

    >>> cart_anchor("cart-1164"), cart_anchor("a b<")
    ('cart-1164', 'cart-a_20_b_3c_')
    """
    base = cart_id[5:] if cart_id.startswith("cart-") and len(cart_id) > 5 else cart_id
    return "cart-" + "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-.")
                             else f"_{ord(ch):x}_" for ch in base)


class _Anchors:
    """The carts the page holds a timeline of, each with one anchor (``cart_anchor``; a
    second id giving the same one gets a ``_dup<k>`` suffix)."""

    def __init__(self, cart_ids: Sequence[str]) -> None:
        self.of: dict[str, str] = {}
        used: set[str] = set()
        for c in cart_ids:
            a, k = cart_anchor(c), 1
            while a in used:
                k += 1
                a = f"{cart_anchor(c)}_dup{k}"
            used.add(a)
            self.of[c] = a

    def link(self, cart_id: Any) -> str:
        """The cart id as HTML: a link to its timeline when the page holds one."""
        c = _text(cart_id)
        a = self.of.get(c)
        return f'<a href="#{esc(a)}">{esc(c)}</a>' if a is not None else esc(c)


def _examples_text(f: Finding) -> str:
    return ", ".join(f"{c} line {ln}" for c, ln in f.examples)


def _examples_html(f: Finding, anchors: _Anchors) -> str:
    return ", ".join(f"{anchors.link(c)} line {esc(ln)}" for c, ln in f.examples)


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


# -- impact --------------------------------------------------------------------------------
def finding_carts(f: Finding, parts: dict[tuple[str, Any], Any]) -> set[str]:
    """The carts a finding names (every one, from its combined parts)."""
    out: set[str] = set()
    for k in getattr(f, "part_keys", [f.key]):
        p = parts.get((f.kind, k))
        if p is not None:
            out.update(map(str, p.carts))
    return out


def _impact_of(ctx: _Context) -> Impact | None:
    return None if ctx.impact is None or not len(ctx.impact) else impact_totals(ctx.impact)


def impact_sentence(imp: Impact) -> str:
    """The impact in one sentence of business units (money in kr with öre)."""
    if not imp.carts_differing:
        return ("Nothing lost: every cart the service rebuilds is the cart the writer meant.")
    out = (f"The service's rebuild differs from what the writer meant in "
           f"{imp.carts_differing:,} of {imp.carts:,} carts: it lacks "
           f"{imp.units_missing:,} item unit{'s' if imp.units_missing != 1 else ''} worth "
           f"{money_text(imp.value_missing)}")
    if imp.paid_orders_lost or imp.in_payment_orders_lost:
        out += (f"; {imp.paid_orders_lost:,} of {imp.paid_orders:,} paid orders "
                f"({money_text(imp.paid_orders_value_lost)}) and "
                f"{imp.in_payment_orders_lost:,} orders in payment "
                f"({money_text(imp.in_payment_orders_value_lost)}) have lost their order "
                "reference or payment status")
    return out + "."


def _impact_tiles(imp: Impact) -> list[tuple[str, str]]:
    tiles = [
        (f"{imp.carts_differing:,} of {imp.carts:,}", "carts whose rebuilt state differs"),
        (money_text(imp.value_missing), "missing from the rebuilt carts' totals"),
        (f"{imp.units_missing:,}", "item units the rebuild lacks"),
        (f"{imp.paid_orders_lost:,} of {imp.paid_orders:,}",
         f"paid orders (checkout_complete) gone: {money_text(imp.paid_orders_value_lost)}"),
        (f"{imp.in_payment_orders_lost:,}",
         f"orders in payment (checkout_incomplete) gone: "
         f"{money_text(imp.in_payment_orders_value_lost)}"),
    ]
    if imp.units_extra or imp.value_extra:
        tiles.append((money_text(imp.value_extra),
                      f"held extra by the rebuild ({imp.units_extra:,} item units)"))
    return tiles


def _finding_impact(ctx: _Context) -> pd.DataFrame:
    """Per finding: the impact rows of the carts it names, summed."""
    rows = []
    imp = ctx.impact
    for k, f in enumerate(ctx.findings, 1):
        carts = finding_carts(f, ctx.parts)
        t = impact_totals(imp[imp["cart_id"].astype(str).isin(carts)]) \
            if imp is not None and len(imp) else None
        rows.append({
            "#": k, "finding": f.title, "carts": f.carts,
            "carts differing": t.carts_differing if t else 0,
            "units missing": t.units_missing if t else 0,
            "money missing": money_text(t.value_missing if t else 0),
            "paid orders gone": t.paid_orders_lost if t else 0,
            "paid value gone": money_text(t.paid_orders_value_lost if t else 0),
            "orders in payment gone": t.in_payment_orders_lost if t else 0,
        })
    return pd.DataFrame(rows)


_IMPACT_NUMERIC = ("#", "carts", "carts differing", "units missing", "money missing",
                   "paid orders gone", "paid value gone", "orders in payment gone")
_IMPACT_NOTE = ("From the two replays' final states, cart by cart: go is what the service "
                "rebuilt, lenient what the writer meant. Money at the carts' own prices; an "
                "order is gone when the writer's cart has an order reference and the rebuilt "
                "one lacks it or its payment status. A cart named by several findings counts "
                "in each.")


def _impact_html(ctx: _Context) -> list[str]:
    imp = _impact_of(ctx)
    out = ['<section class="impact" id="impact"><h2>What was lost</h2>']
    if imp is None:
        return out + ["<p>No carts.</p></section>"]
    out.append(f'<p class="lead">{esc(impact_sentence(imp))}</p>')
    out.append('<div class="nums">' + "".join(
        f'<div class="num"><b>{esc(v)}</b>{esc(k)}</div>' for v, k in _impact_tiles(imp))
        + "</div>")
    if ctx.findings:
        fi = _finding_impact(ctx)
        out.append("<h3>Per finding</h3>")
        out.append(_table(fi, numeric=_IMPACT_NUMERIC, cells={
            "#": lambda v: f'<a href="#finding-{esc(v)}">{esc(v)}</a>'}))
    out.append(f'<p class="small">{esc(_IMPACT_NOTE)}</p></section>')
    return out


# -- timelines -----------------------------------------------------------------------------
_MOUNT = """
function cfBytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let k = 0; k < s.length; k++) out[k] = s.charCodeAt(k);
  return out;
}
async function cfOpen(d) {
  const host = d.querySelector(".cft-host[data-z]");
  if (!host || host.dataset.mounted) return;
  host.dataset.mounted = "1";
  const raw = new Blob([cfBytes(host.dataset.z)]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  mountStatic(host, JSON.parse(await new Response(raw).text()));
}
for (const d of document.querySelectorAll("details.cf-cart")) {
  d.addEventListener("toggle", () => { if (d.open) cfOpen(d); });
  if (d.open) cfOpen(d);
}
function cfTarget() {
  const id = decodeURIComponent(location.hash.slice(1));
  const t = id && document.getElementById(id);
  if (t && t.matches("details.cf-cart")) { t.open = true; t.scrollIntoView(); }
}
window.addEventListener("hashchange", cfTarget);
cfTarget();
"""


def _timeline_script() -> str:
    from cartforensics.present.widgets.static import module_text

    return module_text() + _MOUNT


def _timeline_summary(t: CartTimeline, row: dict[str, Any] | None) -> str:
    parts = [f"{t.named_lines:,} line{'s' if t.named_lines != 1 else ''} named by findings"]
    if t.noted:
        parts.append("analyst's note")
    if row is not None:
        if row["value_missing"]:
            parts.append(f"lacks {money_text(int(row['value_missing']))}")
        if row["paid_order_lost"]:
            parts.append(f"paid order {visible(str(row['order_lenient']))} gone")
        elif row["in_payment_order_lost"]:
            parts.append(f"order in payment {visible(str(row['order_lenient']))} gone")
    return "; ".join(parts)


def _timelines_html(ctx: _Context, anchors: _Anchors) -> list[str]:
    from cartforensics.present.widgets.static import css_text

    out = ['<h2 id="timelines">Timelines of the carts</h2>']
    tls = ctx.timelines
    named = len(set().union(*(finding_carts(f, ctx.parts) for f in ctx.findings))) \
        if ctx.findings else 0
    if ctx.timeline_problem:
        out.append(f"<p>No timelines: {esc(ctx.timeline_problem)}.</p>")
        return out
    if not tls:
        out.append("<p>None: no finding names a cart.</p>")
        return out
    most = sum(1 for t in tls if t.named_lines)
    out.append(
        f'<p class="small">The {most:,} most affected of the {named:,} carts the findings '
        f"name (at most {TIMELINE_CARTS}: most lines named by findings first, then most money "
        "the rebuild lacks), and every cart with an analyst's note. Open one to step through "
        "its lines: go (what the service rebuilt) and lenient (what the writer meant) side "
        "by side. A cart of up to 300 lines holds every position; a longer one 40 of them. "
        "Every cart's line outcomes: outcomes.parquet.</p>")
    rows = {} if ctx.impact is None else {
        str(r["cart_id"]): r for r in ctx.impact.to_dict("records")}
    for t in tls:
        data = base64.b64encode(t.data).decode("ascii")
        out.append(
            f'<details class="cf-cart" id="{esc(anchors.of[t.cart_id])}"><summary>'
            f"<code>{esc(visible(t.cart_id))}</code>: "
            f"{esc(_timeline_summary(t, rows.get(t.cart_id)))}</summary>"
            f'<div class="cft-host" data-z="{data}"><div class="cft-fallback">The timeline '
            "needs JavaScript.</div></div></details>")
    out.append(f"<style>{css_text()}</style>")
    return out


def _metrics_view(metrics: pd.DataFrame) -> pd.DataFrame:
    mv = metrics.reset_index()[["metric", "side", "type", "value", "note"]]
    mv["value"] = [_unix_text(v) if str(m).endswith(_UNIX_SUFFIX) else _fmt_value(v)
                   for m, v in zip(mv["metric"], mv["value"], strict=True)]
    return mv


def _unix_text(v: Any) -> str:
    """Unix seconds as a UTC date (and the number)."""
    try:
        t = pd.Timestamp(float(v), unit="s", tz="UTC")
    except (TypeError, ValueError, OverflowError):
        return _fmt_value(v)
    if pd.isna(t) or not float(v):
        return _fmt_value(v)
    return f"{_when(t)} ({int(float(v))})"


def _per_cart_view(pc: pd.DataFrame) -> pd.DataFrame:
    view = pc.copy()
    for col in ("total_go", "total_lenient"):
        if col in view.columns:
            view[col] = [money_text(int(v)) if isinstance(v, (int, np.integer)) else v
                         for v in view[col]]
    return view


_SECTIONS = (("impact", "What was lost"), ("findings", "Findings"),
             ("evidence", "The lines behind each finding"), ("notes", "Analyst notes"),
             ("charts", "Charts"), ("carts", "Carts that lost lines"),
             ("timelines", "Timelines of the carts"),
             ("metrics", "Metrics the service would export"),
             ("reconciled", "What Prometheus recorded, reconciled"),
             ("reproduce", "Reproduce in Python"))


def _html(ctx: _Context) -> str:
    res = ctx.result
    fs = ctx.findings
    head = headline_finding(fs)
    anchors = _Anchors([t.cart_id for t in ctx.timelines] if not ctx.timeline_problem else [])
    link = anchors.link
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
    parts += _impact_html(ctx)
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
    shown = {"notes": ctx.notes is not None, "reconciled": ctx.reconciled is not None}
    parts.append('<nav class="toc"><b>Contents</b><ol>' + "".join(
        f'<li><a href="#{a}">{esc(t)}</a></li>' for a, t in _SECTIONS if shown.get(a, True))
        + "</ol></nav>")

    # findings
    parts.append('<h2 id="findings">Findings</h2>')
    if fs:
        tbl = findings_table(fs)
        view = pd.DataFrame({
            "#": tbl["rank"], "finding": [f.title for f in fs], "lines": tbl["lines"],
            "carts": tbl["carts"], "first seen": [_when(f.first_seen) for f in fs],
            "last seen": [_when(f.last_seen) for f in fs], "what it means": tbl["message"],
            "examples": list(range(len(fs))),
        })
        parts.append(_table(view, numeric=("#", "lines", "carts"), cells={
            "#": lambda v: f'<a href="#finding-{esc(v)}">{esc(v)}</a>',
            "examples": lambda k: _examples_html(fs[k], anchors)},
            row_ids=[f"finding-{k}" for k in range(1, len(fs) + 1)]))
        parts.append('<h3 id="evidence">The lines behind each finding</h3>')
        for k, f in enumerate(fs, 1):
            ev = _evidence_view(f)
            more = f" (first {len(ev)} of {f.count:,})" if f.count > len(ev) else ""
            parts.append(
                f'<details id="evidence-{k}"><summary>{k}. {esc(f.title)}: {esc(f.count)} '
                f"line{'s' if f.count != 1 else ''}{esc(more)}</summary>"
                f"<p>{esc(f.message)}</p>"
                + _table(ev, numeric=("line", "length"), code=("snippet", "go_error",
                                                               "lenient_error"),
                         cells={"cart_id": link})
                + "</details>"
            )
    else:
        parts.append("<p>None.</p>")
    if ctx.notes is not None:
        go, le, nfs = ctx.noted  # type: ignore[misc]
        parts.append('<section id="notes">' + notes_html(ctx.notes, go, le, nfs, _table, esc)
                     + "</section>")

    # charts
    parts.append('<h2 id="charts">Charts</h2>')
    legend = " ".join(
        f'<span class="swatch" style="background:{OUTCOME_COLORS[o]}"></span>'
        f"{esc(OUTCOME_LABELS[o])}" for o in OUTCOMES)
    parts.append(f"<p class=\"small\">Outcome colours, the same in every chart: {legend}. "
                 f"Times are UTC; windows of {esc(ctx.freq)}.</p>")
    for name, caption in CHARTS:
        parts.append(f"<figure>{_img(name, ctx.pngs[name], caption)}<figcaption>"
                     f"{esc(caption)} ({esc(name)}.png)</figcaption></figure>")
        if name == "failure_rates" and fs:
            parts.append(_marks_html(fs))

    # per cart
    parts.append('<h2 id="carts">Carts that lost lines</h2>')
    pc = ctx.per_cart
    if pc.empty:
        parts.append("<p>None: the service applied every line lenient mode applies.</p>")
    else:
        parts.append(f"<p class=\"small\">The {len(pc)} carts that lost the most lines; "
                     "totals as the carts' final states hold them.</p>")
        view = _per_cart_view(pc)
        parts.append(_table(view, numeric=[c for c in view.columns if c not in
                                           ("cart_id", "order_lenient")],
                            cells={"cart_id": link}))
    parts += _timelines_html(ctx, anchors)

    # metrics
    parts.append('<h2 id="metrics">Metrics the service would export</h2>')
    parts.append("<p class=\"small\">Reader side: what <code>ReplayCartEvents</code> counts "
                 "replaying every cart once (go mode). Writer side: what "
                 "<code>AppendCartEvent</code> counted writing these files. "
                 "<code>cartforensics_promised_unknown_types_total</code> is not the "
                 "service's: it is what its comments promise "
                 "<code>cart_event_log_unknown_types_total</code> counts. Gauges of Unix "
                 "seconds are shown as UTC dates.</p>")
    parts.append(_table(_metrics_view(ctx.metrics), numeric=("value",), code=("metric",)))
    parts.append("<h3>Prometheus text exposition (to hold against a scrape)</h3>")
    parts.append(f"<pre>{esc(ctx.prom)}</pre>")

    if ctx.reconciled is not None:
        parts.append('<section id="reconciled">')
        parts += _reconciled_html(ctx)
        parts.append("</section>")

    # reproduce
    parts.append('<h2 id="reproduce">Reproduce in Python</h2>')
    parts.append("<pre>" + esc(
        "import cartforensics as cf\n"
        "from cartforensics.analysis.findings import findings, findings_table\n"
        f"events = cf.read_events({_src_paths(ctx.src)!r}, "
        f"go_version={ctx.semantics.spec!r})\n"
        "go = cf.replay(events, mode=\"go\")\n"
        "lenient = cf.replay(events, mode=\"lenient\")\n"
        "fs = findings(go, lenient)\n"
        "findings_table(fs)\n"
        "fs[0].evidence") + "</pre>")
    script = _timeline_script() if anchors.of else None
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    if script is not None:
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
        csp += f"; script-src 'sha256-{digest}'"
        parts.append(f'<script type="module">{script}</script>')
    title = f"cartforensics report: {_src_text(ctx.src)}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _marks_html(fs: Sequence[Finding]) -> str:
    """Every finding beside the failure-rate chart: its number there, first and last seen."""
    view = pd.DataFrame({
        "#": range(1, len(fs) + 1), "finding": [f.title for f in fs],
        "first seen": [_when(f.first_seen) for f in fs],
        "last seen": [_when(f.last_seen) for f in fs], "lines": [f.count for f in fs]})
    return ('<details open><summary>The findings on this chart (numbered at their first '
            "line)</summary>" + _table(view, numeric=("#", "lines"), cells={
                "#": lambda v: f'<a href="#finding-{esc(v)}">{esc(v)}</a>'}) + "</details>")


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
    out += ["", "## What was lost", ""]
    imp = _impact_of(ctx)
    if imp is None:
        out.append("No carts.")
    else:
        out += [f"**{_md(impact_sentence(imp))}**", ""]
        out += [f"- {_md(v)}: {_md(k)}" for v, k in _impact_tiles(imp)]
        if fs:
            out += ["", "Per finding:", "", _md_table(_finding_impact(ctx))]
        out += ["", _md(_IMPACT_NOTE)]
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
        out += ["", "## The lines behind each finding", ""]
        for k, f in enumerate(fs, 1):
            ev = _evidence_view(f)
            more = f" (first {len(ev)} of {f.count:,})" if f.count > len(ev) else ""
            out += [f"### {k}. {_md(f.title)}: {f.count:,} line{'s' if f.count != 1 else ''}"
                    f"{more}", "", _md(f.message), "", _md_table(ev), ""]
    else:
        out.append("None.")
    if ctx.notes is not None:
        go, le, nfs = ctx.noted  # type: ignore[misc]
        out += notes_markdown(ctx.notes, go, le, nfs, _md_table)
    out += ["", "## Charts", ""]
    for name, caption in CHARTS:
        out.append(f"![{caption}]({name}.png)")
        out.append("")
    out += ["## Carts that lost lines", ""]
    if ctx.per_cart.empty:
        out.append("None: the service applied every line lenient mode applies.")
    else:
        out += [f"The {len(ctx.per_cart)} carts that lost the most lines; totals as the "
                "carts' final states hold them (timelines of the most affected carts: "
                "report.html).", "", _md_table(_per_cart_view(ctx.per_cart))]
    out += ["", "## Metrics the service would export", ""]
    out.append(_md_table(_metrics_view(ctx.metrics)))
    out += ["", "```", visible(ctx.prom.rstrip("\n"), keep_newlines=True), "```", ""]
    if ctx.reconciled is not None:
        out += _reconciled_markdown(ctx.reconciled)
    out.append("Every line's outcome in both modes: `outcomes.parquet`. The timelines of the "
               "most affected carts: `report.html`.")
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
