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
from cartforensics.analysis.impact import IN_PAYMENT, PAID, cart_impact, impact_totals

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



class _FinalStatesOnly:
    """A replay that answers only what ReplayLike promises (cart_ids, final_state): what
    cart_impact reads of any replay that is not the logs' own."""

    def __init__(self, r) -> None:
        self.cart_ids, self.final_state = r.cart_ids, r.final_state


@pytest.mark.parametrize("engine", ["compiled", "reference"])
def test_a_replays_own_final_carts_give_the_rows_final_state_gives(engine: str) -> None:
    """cart_impact reads a Replay's final carts without their lastChange; the rows equal
    those from final_state, on either core, and for carts replayed on from a start."""
    if engine == "compiled" and cf.engine_info()["engine"] != "compiled":
        pytest.skip("compiled core not built")
    go = cf.replay(SAMPLE, engine=engine)
    lenient = cf.replay(SAMPLE, mode="lenient", engine=engine)
    got = cart_impact(go, lenient)
    want = cart_impact(_FinalStatesOnly(go), _FinalStatesOnly(lenient))
    pd.testing.assert_frame_equal(got, want)
    assert got["differs"].any() and not got["differs"].all()
    assert got["units_missing"].sum() > 0 and got["paid_order_lost"].sum() > 0
    # the second half of each log replayed on from where its first half left the cart
    events = cf.read_events(SAMPLE)
    halves = events.groupby("cart_id", sort=False).cumcount() >= \
        events.groupby("cart_id", sort=False)["cart_id"].transform("size") // 2
    firsts = [cf.replay(events[~halves], mode=m, engine=engine) for m in ("go", "lenient")]
    seconds = [cf.replay(events[halves], mode=f.mode, engine=engine,
                         starts={c: f.cart_end(c) for c in f.cart_ids}) for f in firsts]
    got = cart_impact(*seconds)
    pd.testing.assert_frame_equal(got, cart_impact(*map(_FinalStatesOnly, seconds)))
    whole = want.set_index(want["cart_id"]).loc[got["cart_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, whole)

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


def _writer_state(template: dict, cart_id: str, items: list[tuple[str, int]], total: int,
                  order: str = "", payment: str = "", last: str | None = None) -> dict:
    """A final state in the Go writer's fields (``template``'s: a replay's), with these
    (sku, qty) items (names that spell a field inside a text), totals and order."""
    one = template["items"][0]
    return dict(template, id=cart_id, totalPrice=total, orderReference=order,
                paymentStatus=payment, lastChange=last, items=[
                    dict(one, id=k + 1, sku=sku, qty=qty, name=f'x","qty":99,"sku":"{sku}<',
                         category=',"qty":7}') for k, (sku, qty) in enumerate(items)])


class _Finals:
    """Final states by cart, read back from their JSON texts (as a dataset's are)."""

    def __init__(self, texts: dict[str, bytes]) -> None:
        self._texts = texts

    def final_state(self, cart_id: str) -> dict:
        return json.loads(self._texts[cart_id])


def test_impact_sql_equals_cart_impact_on_every_way_it_reads_a_state(pair) -> None:
    """States as the Go writer spells them (escapes, field names inside texts, negative
    quantities, sums and differences past int64) and of other shapes give cart_impact's rows:
    read by expressions, grouped by SKU only where needed, or parsed."""
    import duckdb
    import pyarrow as pa

    from cartforensics.analysis.impact import IMPACT_COLUMNS, ITEM_COLUMNS, impact_sql
    from cartforensics.go.json import marshal

    _, lenient = pair
    template = next(s for s in map(lenient.final_state, lenient.cart_ids) if s["items"])
    big, top = 2**62, 2**63 - 1

    def s(items, total=0, order="", payment="", last=None):
        return _writer_state(template, "c", items, total, order, payment, last)

    paid = ("R<1>", PAID)
    states = {
        "same": (s([("a", 2)], 5, *paid), s([("a", 2)], 5, *paid, "2025-01-01T00:00:00Z")),
        "go_empty": (s([]), s([("a", 2), ("a", 1), ("b<&>", 4)], 700, *paid)),
        "lenient_empty": (s([("a", 3)], 300, "R2", IN_PAYMENT), s([], 0)),
        "negative": (s([]), s([("a", 3), ("a", -5), ("b", 2)], -40)),
        "both": (s([("a", 1), ("b", 2)], 9, "R3", ""), s([("a", 3), ("c", 1)], 11, "R3", PAID)),
        "past_int64": (s([("a", big)], -top - 1), s([("a", big), ("a", big), ("a", big)], top)),
        "none": (s([]), s([])),
    }
    texts = {c: tuple(marshal(x) for x in pair_) for c, pair_ in states.items()}
    # a total Go never writes (past int64): parsed
    texts["total_not_int64"] = (texts["same"][0], texts["same"][1].replace(
        b',"totalPrice":5,"totalTax"', f',"totalPrice":{2**64},"totalTax"'.encode()))
    # another shape: keys reordered (lastChange first), no lastChange, items null
    texts["reordered"] = (json.dumps({"lastChange": "x", **states["both"][0]}).encode(),
                          json.dumps(dict(reversed(list(states["both"][1].items())))).encode())
    texts["no_last_change"] = (json.dumps({"items": None, "totalPrice": 1}).encode(),
                               json.dumps({"items": [{"sku": "a", "qty": 2}]}).encode())
    ids = list(texts)
    con = duckdb.connect()
    con.register("st", pa.table({
        "cart_id": ids, "state_go": [texts[c][0].decode() for c in ids],
        "state_lenient": [texts[c][1].decode() for c in ids]}))
    con.register("wanted", pa.table({"cart_id": ids, "ord": list(range(len(ids)))[::-1]}))
    got = impact_sql(con, "st", "wanted")
    order = ids[::-1]
    want = cart_impact(_Finals({c: t[0] for c, t in texts.items()}),
                       _Finals({c: t[1] for c, t in texts.items()}), order)
    pd.testing.assert_frame_equal(got[list(IMPACT_COLUMNS)], want)
    assert got[list(ITEM_COLUMNS)].to_numpy().tolist() == [
        [len(json.loads(texts[c][k]).get("items") or ()) for k in (0, 1)] for c in order]
    rows = want.set_index("cart_id")
    assert rows.at["past_int64", "units_lenient"] == 3 * big
    assert rows.at["past_int64", "value_missing"] == 2 * top + 1
    assert rows.at["total_not_int64", "value_lenient"] == 2**64
    assert rows.at["negative", "units_missing"] == 2 and rows.at["go_empty", "units_missing"] == 7
    assert rows.loc["both", ["units_missing", "units_extra"]].tolist() == [3, 2]
    assert rows.at["both", "paid_order_lost"]
    assert not rows.at["same", "differs"] and rows.at["go_empty", "paid_order_lost"]
    assert not rows.at["lenient_empty", "order_lost"]
