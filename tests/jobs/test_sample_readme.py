"""sample_data/README.md tells the corpus's story in numbers; its tables and figures are checked
against the replays here (not against the generator that wrote them). The opening headline
sentence is checked in test_sample.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cartforensics as cf
from cartforensics.analysis.impact import cart_impact, impact_totals
from cartforensics.vocab import OUTCOMES, PROMISED_UNKNOWN_METRIC

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
README = (SAMPLE / "README.md").read_text(encoding="utf-8")


def _int(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def _kr(text: str) -> int:
    """'72 734,70' -> 7273470 öre."""
    kr, ore = text.rsplit(",", 1)
    return _int(kr) * 100 + int(ore)


def _table(first_header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header starts with ``first_header``."""
    lines = README.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header}"))
    rows = []
    for ln in lines[start + 2:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


@pytest.fixture(scope="module")
def pair():
    return cf.replay(SAMPLE), cf.replay(SAMPLE, mode="lenient")


def test_outcome_table(pair):
    go, lenient = pair
    rows = _table("outcome")
    assert [r[0] for r in rows] == list(OUTCOMES)
    counts_go = go.outcomes["outcome"].value_counts()
    counts_le = lenient.outcomes["outcome"].value_counts()
    for name, in_go, in_lenient in rows:
        assert _int(in_go) == int(counts_go.get(name, 0)), name
        assert _int(in_lenient) == int(counts_le.get(name, 0)), name


def test_metric_table(pair):
    go, lenient = pair
    m_go, m_le = cf.metrics(go)["value"], cf.metrics(lenient)["value"]
    rows = _table("metric the service exports")
    assert len(rows) == 4
    for name_cell, in_go, in_lenient in rows:
        name = re.search(r"`(\w+)`", name_cell).group(1)
        if "/" in in_go:  # exported / promised
            for cell, m in ((in_go, m_go), (in_lenient, m_le)):
                exported, promised = (_int(x) for x in cell.split("/"))
                assert exported == m[name]
                assert promised == m[PROMISED_UNKNOWN_METRIC]
        else:
            assert _int(in_go) == m_go[name], name
            assert _int(in_lenient) == m_le[name], name


def test_writer_side_figures(pair):
    go, _ = pair
    m = cf.metrics(go)["value"]
    g = re.search(r"Writer side, from the files: ([\d,]+) `\\n`-terminated lines.*?"
                  r"([\d,]+) bytes in them.*?`files_existing` (\d+)", README, re.S)
    assert g, "the README's writer-side sentence moved"
    assert _int(g.group(1)) == m["cart_event_log_appends_total"]
    assert _int(g.group(2)) == m["cart_event_log_bytes_written_total"]
    assert _int(g.group(3)) == m["cart_event_log_files_existing"]


def test_headline_figures(pair):
    go, lenient = pair
    t = impact_totals(cart_impact(go, lenient))
    g = re.search(r"rebuilt 44: \*\*(\d+) paid orders \(([\d  ]+,\d\d) kr\) are gone", README)
    assert (t.paid_orders_lost, t.paid_orders_value_lost) == (_int(g.group(1)), _kr(g.group(2)))
    g = re.search(r"Of the (\d+) carts with a completed order, the service\s+rebuilt (\d+)",
                  README)
    assert t.paid_orders == _int(g.group(1))
    assert t.paid_orders - t.paid_orders_lost == _int(g.group(2))
    g = re.search(r"Cart value\s+rebuilt: ([\d  ]+,\d\d) kr of ([\d  ]+,\d\d) kr", README)
    assert (t.value_go, t.value_lenient) == (_kr(g.group(1)), _kr(g.group(2)))

    cmp = cf.compare(go, lenient)
    g = re.search(r"counts (\d+) lines the\s+service\s+dropped that the writer meant, in\s+(\d+) "
                  r"carts", README)
    assert int(cmp["dropped"].sum()) == _int(g.group(1))
    assert int((cmp["dropped"] > 0).sum()) == _int(g.group(2))

    g = re.search(r"In `lenient` mode ([\d,]+) of ([\d,]+) lines apply", README)
    le = lenient.outcomes["outcome"]
    assert (_int(g.group(1)), _int(g.group(2))) == (int((le == "applied").sum()), len(le))


def test_incident_table(pair):
    """The 'What is planted' table's line counts against the answer key and the outcomes."""
    go, lenient = pair
    from cartforensics.jobs.sample import read_manifest

    planted = read_manifest(SAMPLE)["planted"]
    for incident, carts, lines, *_ in _table("incident"):
        name = incident.strip("`")
        assert _int(carts) == len(planted[name]), name
        n = sum(len(v) for v in planted[name].values())
        assert _int(lines.split("(")[0]) == n, name
