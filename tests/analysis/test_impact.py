"""analysis.impact: the business figures equal an independent count over the two replays'
states, and the sample corpus's README figures (written from its generator's answer key)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

import cartforensics as cf
from cartforensics.analysis.impact import cart_impact, impact_totals

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def pair():
    return cf.replay(SAMPLE), cf.replay(SAMPLE, mode="lenient")


def _independent(go, lenient):
    """Every figure again, from state_at(line=last) rather than final_state."""
    out = Counter()
    for cid in lenient.cart_ids:
        last = len(lenient.rows_of(cid))  # the state after every line
        a = go.state_at(cid, line=last)
        b = lenient.state_at(cid, line=last)
        a2 = {k: v for k, v in a.items() if k != "lastChange"}
        b2 = {k: v for k, v in b.items() if k != "lastChange"}
        out["differing"] += a2 != b2
        ca = Counter()
        cb = Counter()
        for it in a["items"]:
            ca[it["sku"]] += it["qty"]
        for it in b["items"]:
            cb[it["sku"]] += it["qty"]
        out["units_missing"] += sum((cb - ca).values())
        out["units_extra"] += sum((ca - cb).values())
        out["value_missing"] += max(0, b["totalPrice"] - a["totalPrice"])
        if b["paymentStatus"] == "checkout_complete":
            out["paid"] += 1
            key = ("orderReference", "paymentStatus")
            if [a[k] for k in key] != [b[k] for k in key]:
                out["paid_lost"] += 1
                out["paid_value_lost"] += b["totalPrice"]
    return out


def test_impact_equals_an_independent_count(pair):
    go, lenient = pair
    t = impact_totals(cart_impact(go, lenient))
    ind = _independent(go, lenient)
    assert t.carts == len(lenient.cart_ids)
    assert t.carts_differing == ind["differing"]
    assert t.units_missing == ind["units_missing"]
    assert t.units_extra == ind["units_extra"]
    assert t.value_missing == ind["value_missing"]
    assert t.paid_orders == ind["paid"]
    assert t.paid_orders_lost == ind["paid_lost"]
    assert t.paid_orders_value_lost == ind["paid_value_lost"]


def test_impact_matches_the_sample_readme(pair):
    """The README's headline 2 ('42 paid orders (72 734,70 kr) are gone', cart value rebuilt)."""
    text = (SAMPLE / "README.md").read_text(encoding="utf-8")
    m = re.search(r"\*\*(\d+) paid orders \(([\d  ]+),(\d\d) kr\) are gone", text)
    assert m, "the README's headline moved"
    t = impact_totals(cart_impact(*pair))
    assert t.paid_orders_lost == int(m.group(1))
    assert t.paid_orders_value_lost == int(re.sub(r"\D", "", m.group(2)) + m.group(3))
    m2 = re.search(r"Cart value\s+rebuilt: ([\d  ]+),(\d\d) kr of ([\d  ]+),(\d\d) kr", text)
    assert m2
    assert t.value_go == int(re.sub(r"\D", "", m2.group(1)) + m2.group(2))
    assert t.value_lenient == int(re.sub(r"\D", "", m2.group(3)) + m2.group(4))


def test_chunks_concatenate_to_the_whole(pair):
    go, lenient = pair
    ids = lenient.cart_ids
    whole = impact_totals(cart_impact(go, lenient))
    parts = pd.concat([cart_impact(go, lenient, ids[:100]), cart_impact(go, lenient, ids[100:])],
                      ignore_index=True)
    assert impact_totals(parts) == whole


# -- impact_sql: the same rows, computed by DuckDB from the stored states ---------------------


def _impact_by_duckdb(con) -> pd.DataFrame:
    from cartforensics.analysis.impact import IMPACT_COLUMNS, impact_sql

    con.execute("create or replace temp table wanted as select cart_id, "
                "row_number() over (order by cart_id desc) as ord from _cf_states")
    return impact_sql(con, "_cf_states", "wanted")[list(IMPACT_COLUMNS)]


@pytest.mark.parametrize("where", ["logs", "dataset"])
def test_impact_sql_equals_cart_impact(pair, where: str, tmp_path: Path) -> None:
    from cartforensics.jobs.convert import convert

    go, lenient = pair
    src = SAMPLE
    if where == "dataset":
        src = tmp_path / "ds"
        convert(SAMPLE, src, workers=1, progress=False)
    got = _impact_by_duckdb(cf.sql(src))  # in the order asked: cart ids descending
    want = cart_impact(go, lenient, sorted(lenient.cart_ids, reverse=True))
    pd.testing.assert_frame_equal(got, want)
    assert got["differs"].sum() > 0 and got["units_missing"].sum() > 0


def test_impact_sql_compares_states_of_another_shape_as_values() -> None:
    """A state whose lastChange is not the writer's last field (or is missing) is compared as
    a value, as cart_impact compares dicts: key order and lastChange never make a difference."""
    import duckdb
    import pyarrow as pa

    from cartforensics.analysis.impact import impact_sql

    base = {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}, {"sku": "a", "qty": 1}],
            "totalPrice": 700, "orderReference": "R1", "paymentStatus": "checkout_complete"}
    states = {
        "same": (dict(base, lastChange=None), dict(base, lastChange="2025-01-01T00:00:00Z")),
        "reordered": ({"lastChange": "x", **base}, dict(reversed(list(base.items())))),
        "lost": (dict(base, items=[{"sku": "a", "qty": 1}], totalPrice=100,
                      paymentStatus="", lastChange=None), dict(base, lastChange=None)),
    }
    con = duckdb.connect()
    con.register("st", pa.table({
        "cart_id": list(states), "state_go": [json.dumps(a, separators=(",", ":"))
                                              for a, _ in states.values()],
        "state_lenient": [json.dumps(b, separators=(",", ":")) for _, b in states.values()]}))
    con.register("wanted", pa.table({"cart_id": list(states), "ord": [0, 1, 2]}))
    got = impact_sql(con, "st", "wanted").set_index("cart_id")
    assert got["differs"].tolist() == [False, False, True]
    assert got.loc["lost", ["units_missing", "units_extra", "value_missing"]].tolist() == \
        [3, 0, 600]
    assert bool(got.loc["lost", "paid_order_lost"]) and not got.loc["same", "order_lost"]
    assert got["items_lenient"].tolist() == [3, 3, 3]
