"""The "Analyst notes" section of the report: each note with its cart, line, tags, the line's
outcome in both modes, the raw line, and the findings whose evidence holds the line; notes on
lines the logs do not hold are listed as such, never dropped. Everything escaped (the report's
own escaping, after non-printing characters are made visible).

>>> found, missing = notes_tables(cf.Notes("notes.json"), go, lenient, fs)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cartforensics.analysis.findings import Finding, snippet
from cartforensics.analysis.notes import Notes, NotesError
from cartforensics.present.escaping import visible

if TYPE_CHECKING:
    from cartforensics.model.replay import Replay

__all__ = ["load_notes", "notes_html", "notes_markdown", "notes_tables"]

RAW_LIMIT = 300
FOUND_COLUMNS = ["cart_id", "line", "tags", "note", "go_outcome", "lenient_outcome", "raw_line",
                 "finding"]
MISSING_COLUMNS = ["cart_id", "line", "tags", "note", "why"]


def load_notes(notes: Notes | str | os.PathLike[str] | None) -> Notes | None:
    """``notes=`` of :func:`write_report`: a :class:`Notes`, the path of an existing notes
    file, or None. Raises :class:`NotesError` (a ValueError) for a missing or bad file."""
    if notes is None or isinstance(notes, Notes):
        return notes
    if not isinstance(notes, (str, os.PathLike)):
        raise NotesError(f"notes must be a Notes or the path of a notes file, not "
                         f"{type(notes).__name__}")
    path = Path(notes)
    if not path.is_file():
        raise NotesError(f"--notes {path}: no such notes file")
    return Notes(path)


def notes_tables(notes: Notes, go: Replay, lenient: Replay,
                 findings: Sequence[Finding]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(notes on lines the logs hold, notes on lines they do not), one row per note."""
    carts = set(go.cart_ids)
    where: dict[tuple[str, int], int] = {}
    sizes: dict[str, int] = {}
    line_col = go.outcomes["line"].to_numpy()
    for cid in sorted({n["cart_id"] for n in notes} & carts):
        rows = go.rows_of(cid)
        sizes[cid] = len(rows)
        for r in rows:
            where[(cid, int(line_col[r]))] = r
    wanted = {(n["cart_id"], n["line"]) for n in notes}
    owners: dict[tuple[str, int], list[str]] = {}
    for k, f in enumerate(findings, 1):
        ev = f.evidence
        if not {"cart_id", "line"} <= set(ev.columns):
            continue
        for c, ln in zip(ev["cart_id"].astype(str), ev["line"].tolist(), strict=True):
            key = (c, int(ln))
            if key in wanted and f"#{k} {f.title}" not in owners.get(key, []):
                owners.setdefault(key, []).append(f"#{k} {f.title}")
    go_out = go.outcomes["outcome"].astype(str).to_numpy()
    le_out = lenient.outcomes["outcome"].astype(str).to_numpy()
    raw = go.events["raw"]
    found, missing = [], []
    for n in notes:
        key = (n["cart_id"], n["line"])
        tags = ", ".join(n["tags"])
        if key in where:
            r = where[key]
            found.append({
                "cart_id": n["cart_id"], "line": n["line"], "tags": tags, "note": n["note"],
                "go_outcome": go_out[r], "lenient_outcome": le_out[r],
                "raw_line": snippet(bytes(raw.iloc[r]), RAW_LIMIT),
                "finding": "; ".join(owners.get(key, [])) or "(none)",
            })
        else:
            why = (f"cart {n['cart_id']} has {sizes[n['cart_id']]:,} lines: line {n['line']} "
                   "is not in these logs" if n["cart_id"] in carts
                   else f"no cart {n['cart_id']} in these logs")
            missing.append({"cart_id": n["cart_id"], "line": n["line"], "tags": tags,
                            "note": n["note"], "why": why})
    return (pd.DataFrame(found, columns=FOUND_COLUMNS),
            pd.DataFrame(missing, columns=MISSING_COLUMNS))


def _shown(df: pd.DataFrame) -> pd.DataFrame:
    """Every text cell with its non-printing characters visible (bidi overrides, controls)."""
    out = df.copy()
    for col in out.columns:
        out[col] = [visible(v, keep_newlines=True) if isinstance(v, str) else v
                    for v in out[col]]
    return out


def notes_html(notes: Notes, go: Replay, lenient: Replay, findings: Sequence[Finding],
               table: Any, esc: Any) -> str:
    """The section as HTML; ``table`` and ``esc`` are the report's table and escaping."""
    found, missing = notes_tables(notes, go, lenient, findings)
    parts = ["<h2>Analyst notes</h2>"]
    if found.empty and missing.empty:
        parts.append("<p>The notes file holds no notes.</p>")
        return "\n".join(parts)
    parts.append(f"<p class=\"small\">{esc(len(found) + len(missing))} notes from the analyst's "
                 "notes file: each with its line's outcome in both modes, the raw line, and "
                 "the findings whose evidence holds it.</p>")
    if not found.empty:
        parts.append(table(_shown(found), numeric=("line",), code=("raw_line",)))
    if not missing.empty:
        parts.append(f"<h3>Notes on lines these logs do not hold ({esc(len(missing))})</h3>")
        parts.append(table(_shown(missing), numeric=("line",)))
    return "\n".join(parts)


def notes_markdown(notes: Notes, go: Replay, lenient: Replay, findings: Sequence[Finding],
                   md_table: Any) -> list[str]:
    """The section as Markdown lines; ``md_table`` is the report's (escaping) table."""
    found, missing = notes_tables(notes, go, lenient, findings)
    out = ["", "## Analyst notes", ""]
    if found.empty and missing.empty:
        out.append("The notes file holds no notes.")
        return out
    if not found.empty:
        out.append(md_table(_shown(found)))
    if not missing.empty:
        out += ["", f"### Notes on lines these logs do not hold ({len(missing)})", ""]
        out.append(md_table(_shown(missing)))
    return out
