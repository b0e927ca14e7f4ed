"""The widgets' Python side: set values, ask what the page asks, and check what they hold.

No browser here (tests/present/test_browser.py draws them in a real JupyterLab, marimo and an
HTML export): the scrubber is driven through its traits (``position``, ``cart_id``, and
``request``, what the page's buttons send) and methods, and the data it sends the page
(``cart``, ``frame``) is checked; the dashboard through its filter traits and the data it
sends (``meta``: the line counts the charts are drawn from; ``view``).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import traitlets

from cartforensics import Notes, read_events, replay
from cartforensics.model.replay import OUTCOMES
from cartforensics.present.plots import OUTCOME_COLORS
from cartforensics.present.widgets import (
    STRIP_MARKS,
    FleetDashboard,
    TimelineScrubber,
    escape_bytes,
    pretty_line,
    strip_bins,
    strip_cursor_html,
    strip_html,
)

HOSTILE_SKU = "<img src=x onerror=alert(1)>"
HOSTILE_NAME = "<script>alert(2)</script>"
HOSTILE_TYPE = "<b>Evil</b>"
HOSTILE_CART = "c<i>1"  # a file name: no slash


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def write(d: Path, cart: str, lines: list[bytes]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{cart}.events.log").write_bytes(b"\n".join(lines) + b"\n")


def add_item(ts: Any, item_id: int, sku: str, name: str, price: int, qty: int = 1,
             org: int | None = None, tax: int = 2500, **extra: Any) -> bytes:
    return rec(ts, "AddItem", {"item_id": item_id, "quantity": qty, "price": price,
                               "orgPrice": org or price, "sku": sku, "name": name, "tax": tax,
                               **extra})


def write_fleet(d: Path) -> Path:
    """Four carts shaped like the project's first hand-made sample: the writer's numeric ts
    (dropped by the service), a session after the fix with a stale ChangeQuantity, a session
    across the deploy with an unknown type, a glued line and no final newline, and a gzip."""
    d.mkdir(parents=True, exist_ok=True)
    write(d, "cart-1001", [  # 2025-10-28, numeric ts: go drops every line
        add_item(1761680531, 10234, "10234", "Moccamaster KBG Select", 229900, org=269900),
        add_item(1761680590, 10871, "10871", "Kaffefilter 1x4", 3900),
        add_item(1761680644, 31002, "31002", "Kärlek & kaffe", 24900, tax=600),
        rec(1761680700, "ChangeQuantity", {"Id": 2, "quantity": 3}),
        rec(1761680802, "SetDelivery", {"provider": "postnord"}),
        rec(1761680900, "InitializeCheckout", {"orderId": "HB-104233", "status": "init",
                                               "paymentInProgress": True}),
        rec(1761681000, "OrderCreated", {"orderId": "HB-104233",
                                         "status": "checkout_complete"}),
    ])
    write(d, "cart-1002", [  # 2025-11-03, RFC 3339 ts: read; line 6 is stale
        add_item("2025-11-03T09:15:02Z", 40411, "40411", "Ullpläd Åre", 89900, org=119900),
        add_item("2025-11-03T09:15:40Z", 40877, "40877", "Doftljus Skog & Mossa", 19900,
                 qty=2, storeId="114"),
        add_item("2025-11-03T09:16:18Z", 52090, "52090", "Dragbil i trä", 14900, org=17900),
        rec("2025-11-03T09:16:55Z", "ChangeQuantity", {"Id": 1, "quantity": 2}),
        rec("2025-11-03T09:17:05Z", "RemoveItem", {"Id": 2}),
        rec("2025-11-03T09:17:06Z", "ChangeQuantity", {"Id": 2, "quantity": 1}),
        rec("2025-11-03T09:18:40Z", "SetDelivery", {"provider": "instabox", "items": [1, 3]}),
        rec("2025-11-03T09:20:11Z", "InitializeCheckout",
            {"orderId": "HB-104871", "status": "checkout_incomplete", "paymentInProgress": True}),
        rec("2025-11-03T09:21:47Z", "OrderCreated",
            {"orderId": "HB-104871", "status": "checkout_complete"}),
    ])
    glued = (rec(1761984194, "ChangeQuantity", {"Id": 2, "quantity": 3})
             + rec("2025-11-01T08:03:14Z", "ChangeQuantity", {"Id": 3, "quantity": 2}))
    (d / "cart-1003.events.log").write_bytes(b"\n".join([  # 2025-11-01, across the deploy
        add_item(1761983468, 61520, "61520", "Gjutjärnsgryta 4 l", 34900),
        add_item(1761983560, 61988, "61988", "Grytlapp Ängsblom", 12900, org=15900),
        rec(1761983702, "ChangeQuantity", {"Id": 1, "quantity": 2}),
        add_item("2025-11-01T08:02:37Z", 70312, "70312", "Salt & peppar", 4500, tax=1200),
        rec("2025-11-01T08:02:59Z", "AddVoucher", {"code": "HÖSTREA", "amount": 5000}),
        glued,
        rec("2025-11-01T08:04:30Z", "SetDelivery", {"provider": "budbee", "items": [1, 2, 3]}),
        rec("2025-11-01T08:05:12Z", "InitializeCheckout",
            {"orderId": "HB-104517", "status": "checkout_incomplete", "paymentInProgress": True}),
    ]))  # no final newline
    with gzip.open(d / "cart-1004.events.log.gz", "wb") as fh:  # 2025-10-30, numeric ts
        fh.write(b"\n".join([
            add_item(1761826244, 80104, "80104", "Vägglampa Öland", 59900),
            add_item(1761826323, 80177, "80177", "LED-lampa E14 & dimbar", 7900, qty=2,
                     org=9900),
            rec(1761826469, "RemoveItem", {"Id": 1}),
            rec(1761826501, "ChangeQuantity", {"Id": 2, "quantity": 4}),
        ]) + b"\n")
    return d


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    ev = read_events(write_fleet(tmp_path_factory.mktemp("fleet")))
    return replay(ev), replay(ev, mode="lenient")


def write_hostile(d: Path) -> None:
    """The hostile corpus: markup in types, names, cart ids and a broken line."""
    write(d, "evil", [
        rec("2025-01-01T10:00:00Z", "AddItem",
            {"quantity": 1, "price": 1000, "sku": HOSTILE_SKU, "name": HOSTILE_NAME}),
        rec("2025-01-01T10:01:00Z", HOSTILE_TYPE, {"x": "<u>y</u>"}),
        b'{"ts":"2025-01-01T10:02:00Z","type":"AddItem"<img src=x onerror=alert(3)>\xff\x01',
        rec(1735725780, "ChangeQuantity", {"Id": 1, "quantity": 3}),
        rec("2025-01-01T10:04:00Z", "ChangeQuantity", {"Id": 1, "quantity": 2}),
    ])
    write(d, HOSTILE_CART, [rec("2025-01-01T11:00:00Z", "AddItem",
                                {"quantity": 1, "sku": "ok", "storeId": "<svg onload=x>"})])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    d = tmp_path_factory.mktemp("hostile")
    write_hostile(d)
    ev = read_events(d)
    return replay(ev), replay(ev, mode="lenient")




# -- the scrubber ------------------------------------------------------------------------------
HOSTILE_NOTE = "<img src=x onerror=alert(9)> \u202e & done"
MODES_ = ("go", "lenient")


def ask(s: TimelineScrubber, **req: Any) -> None:
    """What a button of the page does: set the ``request`` trait (a new ``n`` each time)."""
    s.request = {"n": len(str(s.request)) + np.random.random(), **req}


def strings(value: Any) -> list[str]:
    """Every string in the data sent to the page."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in strings(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in strings(v)]
    return []


def text_of(value: Any) -> str:
    return "\n".join(strings(value))


def cells(table: dict[str, Any]) -> list[list[str]]:
    return [[c[0] for c in row[1]] for row in table["rows"]]


def test_cart_opens_where_go_and_lenient_part_and_problem_carts_come_first(sample):
    go, le = sample
    s = TimelineScrubber(go, lenient=le)
    assert s.cart_id == "cart-1001"  # every line dropped by the service
    assert [v for v, _ in s.carts] == ["cart-1001", "cart-1003", "cart-1004", "cart-1002"]
    assert "4 of 4 carts" in s.carts_note
    for cid in go.cart_ids:
        s.cart_id = cid
        n = len(go.rows_of(cid))
        assert s.lines == n == s.cart["lines"] == s.frame["lines"]
        part = s.cart["parting"]
        probs = s.problem_lines()
        want = part if part is not None else (probs[0] if probs else n)
        assert s.position == want == s.cart["start"] == s.frame["position"]
        assert s.state() == go.state_at(cid, line=want)
        s.position = n  # the control to go to the end
        assert s.state() == go.final_state(cid)
        assert s.state("lenient") == le.final_state(cid)
    assert TimelineScrubber(go, cart_id="cart-1002", lenient=le).position == 6  # 1st problem
    with pytest.raises(KeyError):
        s.cart_id = "no-such-cart"


def test_text_form_is_one_readable_line(sample, monkeypatch):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    s.seek(line=3)
    assert repr(s) == "TimelineScrubber(cart-1003, line 3 of 8, go vs lenient)"
    data, _meta = s._repr_mimebundle_()
    assert data["text/plain"] == repr(s)
    assert "application/vnd.jupyter.widget-view+json" in data
    # in a notebook: the live widget, and the static copy as a second output beside it
    import IPython.display

    shown: list[dict[str, Any]] = []
    monkeypatch.setattr(IPython.display, "display", lambda data, **_kw: shown.append(data))
    s._ipython_display_()
    live, copy = shown
    assert "application/vnd.jupyter.widget-view+json" in live
    assert list(copy) == ["text/html"] and 'class="cft-host cft-notebook-copy"' in copy[
        "text/html"] and copy["text/html"].count('<script type="module">') == 1
    s.position = 0
    assert repr(s) == "TimelineScrubber(cart-1003, start of 8, go vs lenient)"


def test_cart_filter_narrows_the_picker_without_switching_carts(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.cart_filter = "1003"
    assert [v for v, _ in s.carts] == ["cart-1002", "cart-1003"]  # the open one stays listed
    assert s.cart_id == "cart-1002"
    assert "1 of 4 carts" in s.carts_note
    s.cart_id = "cart-1003"
    s.cart_filter = ""
    assert s.cart_id == "cart-1003" and len(s.carts) == 4
    assert "1 problem ·" in dict(s.carts)["cart-1002"]  # singular


def test_position_steps_and_clamps(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.position = 8
    f = s.frame
    assert f["position"] == 8 and f["line"]["where"] == "Line 8 of 9"
    assert f["line"]["type"] == "InitializeCheckout"
    s.position = 0
    assert s.frame["line"] is None and s.state() == go.state_at("cart-1002", line=0)
    assert s.step(-5) == 0
    assert s.step(100) == 9
    s.position = -3
    assert s.position == 0


def test_state_and_diff_at_every_position_match_the_replay(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    for p in range(s.lines + 1):
        s.position = p
        for m, r in (("go", go), ("lenient", le)):
            want = r.state_at("cart-1003", line=p)
            assert s.state(m) == want
            side = s.frame["sides"][m]
            assert [row[0] for row in (cells(side["items"]) if side["items"] else [])
                    if row] == [str(i["id"]) for i in want["items"]]
            if p:
                assert s.diff(m) == r.diff("cart-1003", p - 1, p)
            else:
                assert s.diff(m) is None and side["changes"] is None


def test_diff_is_highlighted_and_money_is_kronor(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.seek(line=4)  # ChangeQuantity item 1 -> 2
    side = s.frame["sides"]["go"]
    qty = side["items"]["cols"].index(["qty", True])
    row = side["items"]["rows"][0][1]
    assert row[qty][:2] == ["2", "1"]  # [shown, old]
    assert side["changes"][0][0] == "~"
    assert side["changes"][0][1].startswith("item 1: qty 1 → 2, totalPrice 899,00 kr → "
                                            "1\u202f798,00 kr")
    assert side["meta"][2] == "total 2\u202f345,00 kr" and s.state()["totalPrice"] == 234500
    s.seek(line=5)  # RemoveItem 2: the removed row stays, marked
    side = s.frame["sides"]["go"]
    assert [r[0] for r in side["items"]["rows"]] == ["", "", "del"]
    assert ["−", "item 2: 40877 Doftljus Skog & Mossa"] in side["changes"]
    s.seek(line=1)
    assert s.frame["sides"]["go"]["items"]["rows"][0][0] == "add"
    s.seek(line=6)  # apply_error: nothing changes, the error is shown
    f = s.frame
    assert f["sides"]["go"]["changes"] == [] and "item not found" in f["sides"]["go"]["error"]
    assert "item not found" in f["line"]["outcomes"]["go"][1]


def test_go_and_lenient_side_by_side(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    s.position = 8
    assert len(s.state("go")["items"]) == 1 and len(s.state("lenient")["items"]) == 3
    same, text = s.frame["compare"]
    assert not same and "1 vs 3 items" in text
    assert s.frame["sides"]["go"]["title"] == "go: what the service rebuilt"
    assert s.frame["sides"]["lenient"]["title"] == "lenient: what the writer meant"
    s.seek(line=1)  # numeric ts: dropped by the service, applied as the writer meant
    line = s.frame["line"]
    names = [o[0] for o in s.vocab["outcomes"]]
    assert names[line["outcomes"]["go"][0]] == "malformed"
    assert names[line["outcomes"]["lenient"][0]] == "applied"
    assert line["outcomes"]["go"][1] == "Time.UnmarshalJSON: input is not a JSON string"
    assert line["ts_note"] == "ts written as a JSON number"
    s2 = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert s2.frame["compare"][0] is True


def test_next_and_previous_problem(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    oc = go.outcomes[go.outcomes["cart_id"] == "cart-1003"]
    expected = [k + 1 for k, o in enumerate(oc["outcome"].astype(str)) if o != "applied"]
    assert s.problem_lines() == expected == [1, 2, 3, 5, 6, 7] == s.cart["problems"]["go"]
    s.position = 0
    seen = []
    while True:
        before = s.position
        if s.next_problem() == before:
            break
        seen.append(s.position)
    assert seen == expected
    assert "no problem line after this one" in s.status
    s.position = 4
    assert s.status == ""  # a message goes when the view moves on
    assert s.prev_problem() == 3
    assert s.next_problem() == 5
    s2 = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s2.position = 0
    assert s2.next_problem() == 6
    assert s2.problem_lines("lenient") == [6]


def _without(events: pd.DataFrame, rows: list[int]) -> pd.DataFrame:
    keep = np.ones(len(events), dtype=bool)
    keep[rows] = False
    return events[keep]


def test_skipping_a_line_replays_the_cart_without_it(sample):
    go, le = sample
    cid = "cart-1002"
    s = TimelineScrubber(go, cart_id=cid, lenient=le)
    row = go.rows_of(cid)[4]  # line 5: RemoveItem 2, so line 6 (ChangeQuantity 2) now applies
    s.seek(line=5)
    ask(s, do="skip")  # the page's "skip this line"
    assert s.skipped == [5] == s.cart["skipped"]
    assert s.frame["line"]["skipped"] is True
    assert s.frame["line"]["outcomes"]["go"][0] == s.vocab["skipped"]
    assert s.cart["skip_text"] == "Skipped: line 5. Both modes replayed without it."
    for m in ("go", "lenient"):
        ref = replay(_without(go.events, [row]), mode=m)
        for p in range(s.lines + 1):
            expected = ref.state_at(cid, line=p - 1 if p >= 5 else p)
            assert s.state(m, position=p) == expected, (m, p)
        assert s.history(m).equals(ref.history(cid))
    s.seek(line=6)
    assert s.frame["line"]["outcomes"]["go"] == [s.vocab["applied"], None]
    assert s.problem_lines() == []
    s.toggle_skip(1)
    assert s.skipped == [1, 5]
    ref = replay(_without(go.events, [row, go.rows_of(cid)[0]]))
    assert s.state() == ref.state_at(cid, line=4)
    ask(s, do="reset")
    assert s.skipped == [] and s.cart["skip_text"] == ""
    assert s.state() == go.state_at(cid, line=6)
    assert s.problem_lines() == [6]


def test_skipping_every_line_leaves_the_empty_cart(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1004", lenient=le)
    s.position = s.lines
    for k in range(1, 5):
        s.toggle_skip(k)
    assert s.state("lenient")["items"] == [] and s.state("lenient")["lastChange"] is None
    assert s.history("lenient").empty
    s.toggle_skip(2)
    assert s.skipped == [1, 3, 4]
    assert [(i["id"], i["sku"], i["qty"]) for i in s.state("lenient")["items"]] == [
        (1, "80177", 2)]


def test_seek_by_time(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    # lines 1-5 are at or before 08:03, line 6 has no readable ts and goes with line 5,
    # line 7 is at 08:04:30
    ask(s, do="seek_time", text="2025-11-01T08:03:00Z")
    assert s.position == 6 == go.line_at("cart-1003", "2025-11-01T08:03:00Z")
    assert "the cart after its first 6 lines" in s.status and "SPEC" not in s.status
    assert s.state() == go.state_at("cart-1003", ts="2025-11-01T08:03:00Z")
    for when in ("2025-11-01T07:00:00Z", "2025-11-01 07:55:02", "2025-11-01T08:04:30+00:00",
                 "2025-11-02"):
        assert s.seek(ts=when) == go.line_at("cart-1003", when)
    assert s.seek(ts="2025-11-01T07:00:00Z") == 0
    ask(s, do="seek_time", text="not a time")
    assert "not a time" in s.status and s.position == 0


def test_exports_equal_history_and_state(sample, tmp_path, monkeypatch):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    s.seek(line=4)
    pd.testing.assert_frame_equal(s.history(), go.history("cart-1003"))
    pd.testing.assert_frame_equal(s.history("lenient"), le.history("cart-1003"))
    doc = json.loads(s.to_json())
    assert doc["cart_id"] == "cart-1003" and doc["position"] == 4 and doc["skipped"] == []
    assert doc["go"]["state"] == go.state_at("cart-1003", line=4)
    assert doc["lenient"]["state"] == le.state_at("cart-1003", line=4)
    assert doc["go"]["outcome"] == "applied"
    hist = pd.DataFrame(doc["go"]["history"])
    ref = go.history("cart-1003")
    assert hist["line"].tolist() == ref["line"].tolist()
    assert hist["total_price"].tolist() == ref["total_price"].tolist()
    # the page's export button writes a file beside the notebook and says where
    monkeypatch.chdir(tmp_path)
    ask(s, do="export")
    out = tmp_path / "cart-1003.position-4.json"
    assert s.status == "saved cart-1003.position-4.json"
    assert json.loads(out.read_text(encoding="utf-8")) == doc
    assert s.export(tmp_path / "x.json") == tmp_path / "x.json"


def test_hostile_log_content_is_plain_text_in_the_data(hostile):
    go, le = hostile
    s = TimelineScrubber(go, cart_id="evil", lenient=le)
    s.seek(line=1)
    seen = text_of([s.frame, s.cart])
    assert HOSTILE_SKU in seen and HOSTILE_NAME in seen  # as text, drawn with textContent
    s.seek(line=2)  # unknown type: in the line, its type and Go's error text
    assert s.frame["line"]["type"] == HOSTILE_TYPE
    assert 'unknown mutation type: "<b>Evil</b>"' in s.frame["line"]["outcomes"]["go"][1]
    s.seek(line=3)  # not JSON: the raw bytes, the bad bytes as marked escapes
    line = s.frame["line"]
    assert line["kind"] == "raw" and ["\\xff", 1] in line["text"] and ["\\x01", 1] in line["text"]
    assert "<img src=x onerror=alert(3)>" in text_of(line["text"])
    s.cart_id = HOSTILE_CART
    assert s.cart["id"] == HOSTILE_CART and [HOSTILE_CART, HOSTILE_CART] not in s.carts
    assert any(v == HOSTILE_CART for v, _ in s.carts)
    assert "<svg onload=x>" in text_of(s.frame["sides"]["go"]["items"])


def test_static_html_embeds_the_data_so_no_text_can_end_the_script(hostile):
    from html.parser import HTMLParser

    from cartforensics.present.widgets.static import embed_json, static_payload

    go, le = hostile
    s = TimelineScrubber(go, cart_id="evil", lenient=le)
    s.add_note("</script><script>window.__pwned=1</script><!--", line=1)
    page = s.static_html()
    # the page's own tags only: a div, a style, the JSON script and the module script
    found: list[str] = []

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append(tag)

    P().feed(page)
    assert found == ["div", "div", "style", "script", "script"]
    assert "</script" not in page.split('type="application/json"')[1].split("</script>")[0]
    payload = static_payload(s)
    text = embed_json(payload)
    assert "<" not in text and ">" not in text and json.loads(text) == payload
    assert payload["positions"] == list(range(s.lines + 1))
    assert HOSTILE_SKU in text_of(payload) and "</script><script>" in text_of(payload)
    assert "</script><script>window" not in page


def _payload_one_position_at_a_time(events: pd.DataFrame, cart_id: str, limit: int,
                                    notes: Notes, skip: int | None) -> dict[str, Any]:
    """What static_payload holds, built the plain way: each frame by ``frame_at`` on a
    scrubber of its own over replays of its own (no state, blame or text kept from another
    position), blame rows and parts told apart by their JSON text."""
    from cartforensics.present.widgets.static import held_positions

    def opened() -> TimelineScrubber:
        s = TimelineScrubber(replay(events), cart_id=cart_id,
                             lenient=replay(events, mode="lenient"), notes=notes)
        if skip is not None:
            s.toggle_skip(skip)
        return s

    first = opened()
    positions = held_positions(first.lines, int(first.position), first.problem_lines("go"),
                               limit)
    parts: list[Any] = []
    rows: list[Any] = []
    frames = []
    for p in positions:
        f = dict(opened().frame_at(p))
        if f["blame"].get("on"):
            b = dict(f["blame"])
            for m in MODES_:
                texts = [json.dumps(r, ensure_ascii=False) for r in rows]
                refs = []
                for r in b[m]["rows"]:
                    t = json.dumps(r, ensure_ascii=False)
                    if t not in texts:
                        texts.append(t)
                        rows.append(r)
                    refs.append(texts.index(t))
                b[m] = {"rows": refs, "more": b[m]["more"]}
            b["refs"] = True
            f["blame"] = b
        texts = [json.dumps(v, sort_keys=True, ensure_ascii=False) for v in parts]
        refs = {}
        for key, value in f.items():
            t = json.dumps(value, sort_keys=True, ensure_ascii=False)
            if t not in texts:
                texts.append(t)
                parts.append(value)
            refs[key] = texts.index(t)
        frames.append(refs)
    return {"positions": positions, "frames": frames, "parts": parts, "rows": rows}


@pytest.mark.parametrize("corpus", ["fleet", "hostile", "sample_data"])
def test_static_payload_is_the_frames_built_one_position_at_a_time(corpus, tmp_path):
    """The embedded timeline is byte for byte what frame_at gives at each held position from
    scratch, whatever the static view reuses from one position to the next: every position
    of a short cart, a sparse set of a long one, with a line skipped, with notes."""
    from cartforensics.present.widgets.static import embed_json, static_payload

    if corpus == "fleet":
        events = read_events(write_fleet(tmp_path / "fleet"))
    elif corpus == "hostile":
        write_hostile(tmp_path / "hostile")
        events = read_events(tmp_path / "hostile")
    else:  # the carts with the most problem lines, and the longest
        events = read_events(Path(__file__).resolve().parents[2] / "sample_data")
        s = TimelineScrubber(replay(events), lenient=replay(events, mode="lenient"))
        sizes = events.groupby("cart_id", observed=True).size()
        keep = {*map(str, s._carts.index[:3]), str(sizes.idxmax())}
        events = events[events["cart_id"].astype(str).isin(keep)].reset_index(drop=True)
    go, le = replay(events), replay(events, mode="lenient")
    notes = Notes()
    s = TimelineScrubber(go, lenient=le, notes=notes)
    carts = list(go.cart_ids)
    cases = [(c, limit, None) for c in carts for limit in (300, 4)]
    cases += [(c, 6, 2) for c in carts if len(go.rows_of(c)) >= 3]
    for c, limit, skip in cases:
        s.cart_id = c
        s.reset_skips()
        if skip is not None:
            s.toggle_skip(skip)
        if c == carts[0] and not list(notes.of_cart(c)):
            s.add_note(HOSTILE_NOTE, tags=["dropped"], line=go.outcomes["line"].to_numpy()[
                go.rows_of(c)[-1]].item())
        payload = static_payload(s, limit)
        want = _payload_one_position_at_a_time(events, c, limit, notes, skip)
        got = {k: payload[k] for k in want}
        assert embed_json(got) == embed_json(want), (corpus, c, limit, skip)
        assert payload["frames"] and payload["positions"] == want["positions"]
    assert any(isinstance(v, dict) and v.get("on") for v in payload["parts"])  # blame shown


def test_static_export_holds_a_bounded_set_of_positions():
    from cartforensics.present.widgets.static import (
        STATIC_LONG_POSITIONS,
        STATIC_POSITIONS,
        held_positions,
    )

    assert held_positions(10, 3, [3]) == list(range(11))
    assert held_positions(STATIC_POSITIONS, 3, [3]) == list(range(STATIC_POSITIONS + 1))
    held = held_positions(10_000, 4_321, [17, 4_321, 9_999])
    assert len(held) <= STATIC_LONG_POSITIONS + 1 and held == sorted(set(held))
    assert {0, 10_000, 4_321, 4_320, 17, 16, 9_999, 9_998} <= set(held)


def test_line_segments_mark_escapes_and_keep_numbers():
    from cartforensics.present.widgets import line_segments

    kind, segs, more = line_segments(b'{"n":[1e400,-0.50],"s":"a\\u0001"}')
    assert kind == "json" and more == 0
    assert "".join(t for t, _ in segs).startswith('{\n  "n": [\n    1e400,\n    -0.50\n')
    assert '"s": "a\\u0001"' in segs[0][0]  # a JSON escape stays as written
    assert line_segments(b'{"a":1}\x01')[1] == [['{"a":1}', 0], ["\\x01", 1]]
    kind, segs, more = line_segments(b'{"a":"' + b"x" * 100 + b'"}', limit=20)
    assert kind == "raw" and more == 88
    assert line_segments(b"\xff")[1] == [["\\xff", 1]]


def test_pretty_line_and_escape_bytes():
    kind, text = pretty_line(b'{"ts":"x","payload":{"sku":"a\\u003cb"}}')
    assert kind == "json" and '"sku": "a&lt;b"' in text and "\n" in text
    assert pretty_line(b'{"a":1,"a":2}')[0] == "raw"  # Go decodes both keys
    assert pretty_line(b'{"a":NaN}')[0] == "raw"
    assert pretty_line(b'{"a":1}{"b":2}')[0] == "raw"
    assert pretty_line(b'{"a":"\xff"}')[0] == "raw"
    kind, text = pretty_line(b'{"a":"\\ud800 \\u202e"}')  # lone surrogate, bidi override
    assert kind == "json" and "\\ud800" in text and "\\u202e" in text
    assert "\ud800" not in text and "\u202e" not in text
    kind, text = pretty_line(b'{"a":"' + b"x" * 100 + b'"}', limit=20)
    assert kind == "raw" and "88 more bytes not shown" in text
    assert escape_bytes(b"a\\xffb") == "a\\xffb"  # a literal backslash stays text
    assert escape_bytes(b"\xff") == '<span class="cfw-esc">\\xff</span>'
    assert escape_bytes("é<".encode()) == "é&lt;"


def test_only_the_rows_that_fit_are_sent(tmp_path):
    lines = [rec(f"2025-01-01T10:{k // 60:02d}:{k % 60:02d}Z", "AddItem",
                 {"quantity": 1, "sku": f"s{k}"}) for k in range(120)]
    write(tmp_path, "big", lines)
    go = replay(read_events(tmp_path))
    s = TimelineScrubber(go, max_rows=10)
    s.position = 120
    items = s.frame["sides"]["go"]["items"]
    assert len(items["rows"]) == 11 and items["more"] == 109
    assert items["rows"][-1][0] == "add" and "s119" in text_of(items)
    assert len(s.state()["items"]) == 120


def test_a_lenient_replay_alone_is_enough(sample):
    go, le = sample
    s = TimelineScrubber(le, cart_id="cart-1001")
    assert s.go.mode == "go" and s.lenient is le
    assert s.state("go", position=s.lines) == go.final_state("cart-1001")
    with pytest.raises(ValueError):
        TimelineScrubber(go, lenient=go)


def test_dashboard_filters_redraw_and_open_a_cart(sample, hostile):
    go, le = sample
    d = FleetDashboard(go, lenient=le)
    assert d.redraws == 1
    assert d.mask().all() and not d.filtered
    assert d.view["lines"] == 28 and d.view["carts"] == 4
    assert repr(d) == "FleetDashboard(28 of 28 lines, 4 carts, go)"
    worst = d.worst_carts()
    assert worst.index.tolist() == ["cart-1001", "cart-1003", "cart-1004", "cart-1002"]
    assert worst.loc["cart-1003"].tolist() == [8, 6, 2, 4]
    assert [r[1] for r in d.view["worst"]] == worst.index.tolist()
    assert [r[2:] for r in d.view["worst"]] == worst.to_numpy().tolist()

    d.outcomes = ["apply_error"]
    assert d.redraws == 2 and d.filtered
    assert d.mask().sum() == 2
    assert d.worst_carts().index.tolist() == ["cart-1003", "cart-1002"]  # 1003 lost its line
    assert d.view["lines"] == 2 and d.view["carts"] == 2
    assert d.view["mix"] == [0, 0, 0, 0, 2, 0, 0]

    ask(d, do="reset")  # the page's "all lines"
    assert d.mask().all() and d.redraws == 3

    # dates: 2025-10-28 … 2025-11-03, one window a day; with a type too
    assert d.date_labels[0] == "2025-10-28" and d.date_labels[-1] == "2025-11-03"
    k = d.date_labels.index("2025-11-01")
    d.date_index = [k, k]
    assert set(go.outcomes["cart_id"][d.mask()].astype(str)) == {"cart-1003"}
    assert d.mask().sum() == 7  # the glued line has no readable ts
    d.types = ["AddItem"]
    assert go.outcomes["type"][d.mask()].tolist() == ["AddItem"] * 3
    assert d.redraws == 5
    d.date_index = [5, 1]  # the page's two sliders crossed: first and last swap
    assert d.date_index == [1, 5]

    d.mode = "lenient"  # the outcome filter now holds lenient mode's outcomes, all of them
    assert d.outcomes == ["applied", "malformed", "unknown_type", "apply_error"]
    assert d.redraws == 7  # one redraw for the mode and its outcomes together
    d.reset_filters()
    assert d.worst_carts()["problems_lenient"].iloc[0] == 2
    assert d.worst_carts().index[0] == "cart-1003"  # most problems as the writer meant
    assert d.view["mode"] == "lenient"

    ask(d, do="open", cart="cart-1002")
    assert isinstance(d.scrubber, TimelineScrubber) and d.scrubber.cart_id == "cart-1002"
    ask(d, do="open", cart="cart-1004")
    assert d.scrubber.cart_id == "cart-1004" and "cart-1004 opened" in d.status
    ask(d, do="open", cart="no-such-cart")
    assert d.scrubber.cart_id == "cart-1004" and d.status.startswith("could not do that")

    for bad in ({"outcomes": ["exploded"]}, {"types": ["NoSuchType"]}, {"mode": "strict"}):
        with pytest.raises(traitlets.TraitError):
            d.set_trait(*next(iter(bad.items())))

    h = FleetDashboard(hostile[0], lenient=hostile[1])
    # log text goes to the page as text (drawn with textContent), not as HTML
    assert HOSTILE_TYPE in h.meta["type_values"]
    assert [HOSTILE_TYPE, 1] in h.meta["types"]
    assert HOSTILE_CART in [r[1] for r in h.view["worst"]]
    assert "&lt;" not in text_of([h.meta, h.view])
    assert h.open_cart(HOSTILE_CART).cart_id == HOSTILE_CART


def _counted(d: FleetDashboard, what: str) -> int:
    """Lines of the dashboard's counts (``meta``) that pass its filters, added up as the page
    does: dates as chart windows, types by index, outcomes in the mode."""
    c, m = d.meta["counts"], d.meta
    pw, (i0, i1) = m["per_window"], d.date_index
    full = i0 == 0 and i1 == len(d.date_labels) - 1
    types = {m["type_values"].index(t) for t in d.types}
    outs = {OUTCOMES.index(o) for o in d.outcomes}
    total = 0
    for b, t, g, le_, n in zip(c["bin"], c["type"], c["go"], c["le"], c["n"], strict=True):
        code = g if d.mode == "go" else le_
        in_dates = (b < 0 and full) or (i0 * pw <= b < (i1 + 1) * pw)
        if t in types and in_dates and (what == "denominator" or code in outs):
            total += n
    return total


def test_dashboard_counts_add_up_to_the_lines_the_filters_keep(sample):
    """The counts the page draws from equal the lines mask() keeps, under every filter; a
    rate's denominator is every line of the chosen types whatever the outcome filter."""
    go, le = sample
    d = FleetDashboard(go, lenient=le)
    assert sum(d.meta["counts"]["n"]) == len(go.outcomes)
    step = pd.Timedelta(milliseconds=d.meta["step_ms"])
    assert pd.Timedelta("1D") % step == pd.Timedelta(0)  # a date window: whole chart windows
    assert d.meta["per_window"] == pd.Timedelta("1D") / step
    rng = np.random.default_rng(7)
    types = d.meta["type_values"]
    for _ in range(25):
        d.mode = str(rng.choice(["go", "lenient"]))
        a, b = sorted(rng.integers(0, len(d.date_labels), 2).tolist())
        d.date_index = [a, b]
        d.types = [t for t in types if rng.random() < 0.6]
        d.outcomes = [o for o in d.outcomes if rng.random() < 0.5]
        assert _counted(d, "lines") == int(d.mask().sum()) == d.view["lines"]
        # the denominator: the same filters with every outcome chosen
        kept = d.mask()
        outs = d.outcomes
        d.outcomes = list(OUTCOMES)
        assert _counted(d, "denominator") == int(d.mask().sum())
        assert (d.mask() | ~kept).all()
        d.outcomes = outs


def test_dashboard_rates_keep_their_denominator_and_open_at_the_filtered_line():
    """On the sample corpus: filtered to handler errors, the mutation-error rate of a window
    is its handler errors over all its lines (not 100 %), and "open" on cart-1193 lands on
    its refused line 5, not where the scrubber opens it without a filter."""
    ev = read_events(Path(__file__).resolve().parents[2] / "sample_data", progress=False)
    go, le = replay(ev), replay(ev, mode="lenient")
    d = FleetDashboard(go, lenient=le)
    d.outcomes = ["apply_error"]
    c = pd.DataFrame(d.meta["counts"])
    code = OUTCOMES.index("apply_error")
    per_bin = c[c["bin"] >= 0].groupby("bin").apply(
        lambda g: (int(g.loc[g["go"] == code, "n"].sum()), int(g["n"].sum())),
        include_groups=False)
    busiest = max(per_bin.items(), key=lambda kv: kv[1][0])
    num, den = busiest[1]
    # the same window counted from the replay itself
    start = pd.Timestamp(d.meta["start_ms"], unit="ms", tz="UTC")
    step = pd.Timedelta(milliseconds=d.meta["step_ms"])
    lo, hi = start + busiest[0] * step, start + (busiest[0] + 1) * step
    in_window = (go.outcomes["ts"] >= lo) & (go.outcomes["ts"] < hi)
    assert den == int(in_window.sum()) and den > num > 0
    assert num == int((in_window & (go.outcomes["outcome"] == "apply_error")).sum())
    assert d.open_cart("cart-1193").position == 5
    assert go.history("cart-1193")["outcome"].iloc[4] == "apply_error"
    assert "the first line the filters match" in d.status


def test_widgets_replay_again_as_the_same_toolchain(tmp_path: Path) -> None:
    """The lenient replay a widget makes (and its skip-a-line replays) use the toolchain of the
    replay it was given, even when the frame has lost its go_version."""
    from cartforensics import read_events, replay
    from cartforensics.present.widgets.common import replay_pair

    f = tmp_path / "e.events.log"
    f.write_bytes(b'{"ts":"2024-01-01T00:00:00\\u005a","type":"AddItem","payload":'
                  b'{"sku":"x","quantity":1,"price":7}}\n')
    events = read_events(str(f), go_version="1.27")
    events.attrs = {}
    go = replay(events, go_version="1.27")
    assert go.final_state("e")["totalPrice"] == 7
    again, lenient = replay_pair(replay(events, mode="lenient", go_version="1.27"), None)
    assert again.semantics == go.semantics and lenient.semantics == go.semantics
    assert again.final_state("e")["totalPrice"] == 7


# -- the timeline strip and the workbench: notes, blame, context -----------------------
def strip_rects(html_text: str, row: str) -> list[tuple[int, int, str, str]]:
    """(x, width, fill, outcome) of every mark of one strip row."""
    svg = re.search(rf'<svg class="cfw-strip-{row}"[^>]*>(.*?)</svg>', html_text).group(1)
    return [(int(x), int(w), f, o) for x, w, f, o in re.findall(
        r'<rect x="(\d+)" width="(\d+)" height="1" fill="([^"]+)" data-outcome="([^"]+)"', svg)]


def test_strip_colours_every_outcome_with_the_report_palette():
    outs = list(OUTCOMES)
    bins = strip_bins(outs)
    assert [(b[0], b[1], b[2]) for b in bins] == [(k + 1, k + 1, o) for k, o in enumerate(outs)]
    html_text = strip_html({"go": outs, "lenient": ["applied"] * len(outs)})
    rects = strip_rects(html_text, "go")
    assert [(x, f, o) for x, _w, f, o in rects] == [
        (k, OUTCOME_COLORS[o], o) for k, o in enumerate(outs)]
    # a run of one outcome is one mark spanning its lines
    assert strip_rects(html_text, "lenient") == [(0, len(outs), OUTCOME_COLORS["applied"],
                                                  "applied")]
    assert "one mark each" in html_text


def test_strip_bins_a_long_cart_and_keeps_the_trouble_visible():
    n = 10_000
    outs = ["applied"] * n
    outs[4_321] = "malformed"  # line 4,322
    outs[9_000:9_010] = ["skipped"] * 10
    bins = strip_bins(outs)
    assert len(bins) == STRIP_MARKS
    assert bins[0][0] == 1 and bins[-1][1] == n
    assert all(b[0] == a[1] + 1 for a, b in zip(bins, bins[1:], strict=False))  # contiguous
    assert sum(sum(b[3].values()) for b in bins) == n
    bad = [b for b in bins if b[2] == "malformed"]
    assert len(bad) == 1 and bad[0][0] <= 4_322 <= bad[0][1]
    assert bad[0][3] == {"applied": bad[0][1] - bad[0][0], "malformed": 1}
    assert {b[2] for b in bins} == {"applied", "malformed", "skipped"}
    html_text = strip_html({"go": outs}, noted={4_322: "here <b>"})
    assert "10,000 lines in 500 marks" in html_text
    assert 'data-line="4322"' in html_text and "here &lt;b&gt;" in html_text
    cursor = strip_cursor_html(4_322, n)
    x = float(re.search(r'<rect x="([\d.]+)"', cursor).group(1))
    assert bad[0][0] <= x * n / STRIP_MARKS + 1 <= bad[0][1] + 1


def test_scrubber_strip_follows_outcomes_skips_and_position(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    names = [o[0] for o in s.vocab["outcomes"]]
    want = go.outcomes["outcome"].astype(str).to_numpy()[go.rows_of("cart-1003")]
    drawn = [names[code] for _x, w, code, _t in s.cart["strip"]["go"] for _ in range(w)]
    assert drawn == want.tolist()
    assert s.cart["bins"] == 8 and s.cart["edges"] is None
    s.toggle_skip(2)
    drawn = [names[code] for _x, w, code, _t in s.cart["strip"]["lenient"] for _ in range(w)]
    assert drawn[1] == "skipped"


def test_notes_through_the_widget(sample, tmp_path):
    go, le = sample
    path = tmp_path / "notes.json"
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le, notes=path)
    s.seek(line=0)
    ask(s, do="note", text="at the start", tags=[])
    assert "the start is not a line" in s.status and not path.exists()
    s.seek(line=6)
    ask(s, do="note", text=HOSTILE_NOTE, tags=["evidence", "question", "stale id", "<i>mine</i>"])
    saved = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()][1:]
    assert [(n["cart_id"], n["line"], n["note"], n["tags"]) for n in saved] == [
        ("cart-1002", 6, HOSTILE_NOTE, ["evidence", "question", "stale id", "<i>mine</i>"])]
    assert s.status == "note saved on line 6"
    (shown,) = s.frame["notes"]
    assert shown["tags"][-1] == "<i>mine</i>"
    assert ["\\u202e", 1] in shown["text"] and "<img src=x onerror=alert(9)> " in text_of(shown)
    assert s.cart["noted"] == [[6, "<img src=x onerror=alert(9)> \\u202e & done"]]
    assert [x[0] for x in s.notes_list] == [saved[0]["id"]]
    assert s.notes_where.startswith("1 note · notes file")
    s.add_note("the delivery", tags=["root cause"], line=7)
    s.seek(line=1)
    assert s.next_note() == 6 and s.next_note() == 7 and s.next_note() == 7
    assert s.prev_note() == 6 and s.prev_note() == 6
    # the list opens a note's cart at its line
    s.cart_id = "cart-1001"
    ask(s, do="open", cart="cart-1002", line=6)
    assert s.cart_id == "cart-1002" and s.position == 6
    other = Notes(path)
    other.add("cart-1002", 40, "past the end")
    s.notes.reload()
    s._notes_changed()
    assert len(s.notes_list) == 3 and [q for q, _ in s.cart["noted"]] == [6, 7]
    ask(s, do="open", cart="cart-1002", line=40)
    assert "could not do that" in s.status and s.position == 6
    ask(s, do="delete_note", id=saved[0]["id"])
    assert [n["line"] for n in Notes(path)] == [7, 40]


def test_blame_beside_the_state_jumps_to_the_line(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.position = 9
    got = s.blame()
    want = go.blame("cart-1002")
    assert got["path"].tolist() == want["path"].tolist()
    assert got["line"].tolist() == want["line"].tolist()
    rows = s.frame["blame"]["go"]["rows"]
    qty = next(r for r in rows if r[1] == "items[0].qty")
    assert qty[0] == "items[0]" and qty[2] == "2" and qty[3] == 4
    assert qty[4] == "line 4 ChangeQuantity"
    assert rows[0][0] == "cart"  # the cart's own fields first
    s.toggle_skip(4)
    b = s.blame()
    assert b.loc[b["path"] == "items[0].qty", "line"].item() == 1
    assert b.loc[b["path"] == "items[0].qty", "value"].item() == 1
    s.reset_skips()
    ident = next(r for r in s.frame["blame"]["go"]["rows"] if r[1] == "id")
    assert ident[3] == 0 and ident[4] == "empty-cart value"


def test_go_and_lenient_blame_and_where_they_part(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    s.position = 8
    b = s.frame["blame"]
    assert any(r[1] == "items[2].sku" and r[5] for r in b["lenient"]["rows"])  # differs
    assert any(r[1] == "id" and not r[5] for r in b["go"]["rows"])  # the same in both
    assert s.cart["parting"] == 1 and s.cart["parting_line"] == 1
    same = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert same.cart["parting"] is None


def test_blame_waits_for_a_press_on_long_carts(sample, monkeypatch):
    import cartforensics.present.widgets.scrubber as w

    go, le = sample
    monkeypatch.setattr(w, "BLAME_AUTO_LINES", 3)
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert s.frame["blame"] == {"on": False, "lines": 9}
    ask(s, do="blame")
    assert len(s.frame["blame"]["go"]["rows"]) == len(s.blame())


def test_context_table_opens_the_other_cart(tmp_path):
    write(tmp_path, "cart-x", [rec(f"2025-11-01T08:0{k}:00Z", "AddItem",
                                   {"quantity": 1, "sku": f"x{k}"}) for k in range(3)])
    write(tmp_path, "cart-y", [
        rec("2025-11-01T08:00:30Z", "AddItem", {"quantity": 1, "sku": "y"}),
        rec("2025-11-01T08:03:00Z", "Bogus", {}),
        rec("2025-11-01T09:00:00Z", "RemoveItem", {"Id": 7}),
    ])
    ev = read_events(tmp_path)
    go, le = replay(ev), replay(ev, mode="lenient")
    s = TimelineScrubber(go, cart_id="cart-x", lenient=le)
    s.seek(line=2)  # 08:01
    assert s.context_rows == {}  # folded: not computed
    ask(s, do="context", open=True, minutes=5)
    assert [(r[3], r[4]) for r in s.context_rows["rows"]] == [("cart-y", 1), ("cart-y", 2)]
    ask(s, do="context", open=True, minutes=1)
    assert [(r[3], r[4]) for r in s.context_rows["rows"]] == [("cart-y", 1)]
    assert "1 lines of other carts within ± 1 min" in s.context_rows["head"]
    ask(s, do="context", open=True, minutes=120)
    rows = s.context_rows["rows"]
    assert len(rows) == 3 and rows[1][6] == "unknown_type" and rows[2][6] == "apply_error"
    assert rows[2][1] == "+59 min 00 s"
    ask(s, do="open", cart="cart-y", line=2)
    assert s.cart_id == "cart-y" and s.line == 2 and s.position == 2
    s.seek(line=0)
    assert "the start is not a line" in s.context_rows["head"]


def test_blame_lists_the_carts_own_fields_first_and_at_most_blame_rows(sample, monkeypatch):
    import cartforensics.present.widgets.scrubber as w

    go, le = sample
    monkeypatch.setattr(w, "BLAME_ROWS", 5)
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.position = 9
    b = s.frame["blame"]["go"]
    assert len(b["rows"]) == 5 and b["more"] == len(go.blame("cart-1002")) - 5
    assert [r[1] for r in b["rows"]] == [
        "id", "totalPrice", "totalTax", "totalDiscount", "processing"]


def test_dashboard_scrubber_writes_to_the_dashboards_notes(sample, tmp_path):
    go, le = sample
    d = FleetDashboard(go, lenient=le, notes=tmp_path / "n.json")
    s = d.open_cart("cart-1002")
    assert s.notes is d.notes
    s.add_note("from the dashboard", line=3)
    assert [(n["cart_id"], n["line"]) for n in Notes(tmp_path / "n.json")] == [("cart-1002", 3)]


# -- a skip shows exactly what a fresh view shows ---------------------------------------------


def _view(s: TimelineScrubber) -> dict[str, Any]:
    """Everything the scrubber sends the page that a skip can change."""
    return {"frame": s.frame_at(s.position), "cart": s.cart, "json": s.to_json(),
            "skipped": s.skipped,
            "problems": (s.problem_lines("go"), s.problem_lines("lenient"))}


def test_a_skip_switched_on_and_off_shows_exactly_a_fresh_view(sample, hostile):
    """Toggling a line shows what a scrubber opened on the same skips shows, switching it
    off again shows the view from before, and on again the same as the first time, at every
    line of the cart."""
    for (go, le), cid in ((sample, "cart-1003"), (sample, "cart-1002"), (hostile, "evil")):
        s = TimelineScrubber(go, cart_id=cid, lenient=le)
        for p in range(1, s.lines + 1):
            s.seek(line=p)
            before = _view(s)
            ask(s, do="skip")
            on = _view(s)
            fresh = TimelineScrubber(go, cart_id=cid, lenient=le)
            fresh.toggle_skip(p)
            fresh.seek(line=p)
            assert on == _view(fresh), (cid, p)
            s.toggle_skip(p)
            assert _view(s) == before, (cid, p)
            if p % 2:  # and on again: the kept sides show the same as the first time
                s.toggle_skip(p)
                assert _view(s) == on, (cid, p)
                s.toggle_skip(p)


def _strip_svg_reference(outcomes: list[str], cls: str) -> str:
    """One strip row drawn the plain way (bins, then runs of one colour with their summed
    counts in the order they first occur), as the strip was drawn before it used codes."""
    from collections import Counter

    from cartforensics.present.plots import OUTCOME_LABELS
    from cartforensics.present.widgets.strip import _STRIP_COLORS

    bins = strip_bins(outcomes)
    rects, k = [], 0
    while k < len(bins):
        j = k
        while j + 1 < len(bins) and bins[j + 1][2] == bins[k][2]:
            j += 1
        total: Counter[str] = Counter()
        for b in bins[k:j + 1]:
            total.update(b[3])
        first, last = bins[k][0], bins[j][1]
        where = f"line {first:,}" if first == last else f"lines {first:,}–{last:,}"
        mix = ", ".join(f"{OUTCOME_LABELS.get(o, o)} {v:,}" for o, v in total.items())
        rects.append(f'<rect x="{k}" width="{j - k + 1}" height="1" '
                     f'fill="{_STRIP_COLORS.get(bins[k][2], "#999999")}" '
                     f'data-outcome="{bins[k][2]}"><title>{where}: {mix}</title></rect>')
        k = j + 1
    return (f'<svg class="{cls}" viewBox="0 0 {max(len(bins), 1)} 1" '
            f'preserveAspectRatio="none" height="12">{"".join(rects)}</svg>')


@pytest.mark.parametrize("n", [0, 1, 7, 500, 501, 4_999, 10_000])
def test_strip_rows_from_codes_match_the_plain_drawing(n):
    rng = np.random.default_rng(n)
    kinds = [*OUTCOMES, "skipped"]
    outs = ["applied" if rng.random() < 0.9 else kinds[rng.integers(len(kinds))]
            for _ in range(n)]
    html_text = strip_html({"go": outs})
    svg = re.search(r'<svg class="cfw-strip-go".*?</svg>', html_text).group(0)
    assert svg == _strip_svg_reference(outs, "cfw-strip-go")


def test_a_state_handed_out_is_the_callers_to_change(sample) -> None:
    """The scrubber keeps the states it shows; what state() returns is a copy."""
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.position = s.lines
    first = s.state()
    first["items"].append({"sku": "mine"})
    first["totalPrice"] = -1
    assert s.state() == go.final_state("cart-1002") != first
    s.step(-1)
    s.step(1)  # redrawn from what it keeps
    assert s.state() == go.final_state("cart-1002")


def test_a_dashboard_shown_in_a_notebook_brings_its_scrubber(sample, monkeypatch):
    """Displayed, the dashboard shows its view and below it the scrubber that "open" fills,
    opened on the worst cart; its text form is one line."""
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    go, le = sample
    d = FleetDashboard(go, lenient=le)
    assert d.scrubber is None
    d._ipython_display_()
    assert shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == d.model_id
    assert shown[0]["text/plain"] == repr(d) == "FleetDashboard(28 of 28 lines, 4 carts, go)"
    assert d.scrubber is not None and d.scrubber.cart_id == d.worst_carts().index[0]
    assert shown[1:] == [d.scrubber]


# -- the dashboard over a converted dataset (DuckDB answers; nothing replayed up front) ------
@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sample_data and the hostile corpus, each as logs replayed in memory and as a dataset."""
    from cartforensics.jobs.convert import convert

    hostile_dir = tmp_path_factory.mktemp("hostile-logs")
    write_hostile(hostile_dir)
    out = {}
    for name, logs in (("sample", Path(__file__).resolve().parents[2] / "sample_data"),
                       ("hostile", hostile_dir)):
        dataset = tmp_path_factory.mktemp(f"{name}-dataset") / "carts.parquet"
        assert convert(logs, dataset, progress=False).lines > 0
        ev = read_events(logs, progress=False)
        out[name] = (logs, dataset, replay(ev), replay(ev, mode="lenient"))
    return out


def _dash_view(d: FleetDashboard) -> dict[str, Any]:
    return {k: v for k, v in d.view.items() if k != "key"}


def _step_both(a: FleetDashboard, others: list[FleetDashboard], seed: int, rounds: int,
               open_carts: bool = True) -> int:
    """Random filter steps on ``a`` and ``others`` alike; each answers as ``a`` does (view,
    worst carts, the line a cart opens at). Returns how many steps kept some lines."""
    rng = np.random.default_rng(seed)
    kept = 0
    for _ in range(rounds):
        mode = str(rng.choice(["go", "lenient"]))
        i0, i1 = sorted(rng.integers(0, len(a.date_labels), 2).tolist())
        types = [t for t in a.meta["type_values"] if rng.random() < 0.7]
        for d in [a, *others]:
            d.mode = mode
            d.date_index = [i0, i1]
            d.types = types
        outcomes = [o for o in a.outcomes if rng.random() < 0.7]
        for d in [a, *others]:
            d.outcomes = outcomes
        for d in others:
            assert _dash_view(d) == _dash_view(a)
            assert d.worst_carts().equals(a.worst_carts())
            assert d.filtered == a.filtered
        kept += a.view["lines"] > 0
        if open_carts and a.view["worst"]:
            cart = a.view["worst"][-1][1]
            at = a.open_cart(cart).position
            for d in others:
                assert d.open_cart(cart).position == at and d.status == a.status
    return kept


def test_dashboard_over_a_dataset_answers_as_over_the_replays(converted):
    """sample_data converted: the dataset's dashboard (a path, or a cf.sql connection) sends
    the same meta and, under random filters in both modes, the same view, worst carts and
    opening line as the dashboard of the replays; a cart opens alone."""
    from cartforensics import sql

    logs, dataset, go, le = converted["sample"]
    a = FleetDashboard(go, lenient=le)
    b = FleetDashboard(dataset)
    c = FleetDashboard(sql(dataset))
    e = FleetDashboard(sql(logs))  # logs replayed by cf.sql: the same counts
    assert b.meta == a.meta == c.meta == e.meta
    assert _dash_view(b) == _dash_view(a) == _dash_view(c) == _dash_view(e)
    assert repr(b) == repr(a) == "FleetDashboard(1,540 of 1,540 lines, 300 carts, go)"
    assert _step_both(a, [b], seed=11, rounds=30) > 20
    _step_both(a, [c, e], seed=12, rounds=10, open_carts=False)
    b.reset_filters()
    s = b.open_cart("cart-1193")
    assert s.go.cart_ids == ["cart-1193"]  # the cart alone was read and replayed
    assert s.state("go", position=s.lines) == go.final_state("cart-1193")
    with pytest.raises(ValueError):
        b.mask()  # the dataset's lines stay in DuckDB
    ask(c, do="open", cart="cart-1193")  # a connection has no dataset to read a cart from
    assert c.scrubber is None and c.status.startswith("could not do that")
    ask(b, do="open", cart="no-such-cart")
    assert b.status.startswith("could not do that")
    with pytest.raises(TypeError):
        FleetDashboard(logs)  # logs: replay them (the dashboard of a Replay)
    with pytest.raises(ValueError):
        FleetDashboard(dataset, lenient=le)


def test_dashboard_over_a_hostile_dataset_sends_text_as_text(converted):
    logs, dataset, go, le = converted["hostile"]
    a = FleetDashboard(go, lenient=le)
    b = FleetDashboard(dataset)
    assert b.meta == a.meta and _dash_view(b) == _dash_view(a)
    assert HOSTILE_TYPE in b.meta["type_values"]
    assert HOSTILE_CART in [r[1] for r in b.view["worst"]]
    assert "&lt;" not in text_of([b.meta, b.view])
    _step_both(a, [b], seed=5, rounds=8)
    assert b.open_cart(HOSTILE_CART).cart_id == HOSTILE_CART


@pytest.mark.parametrize("files", [
    {"e.events.log": b""},  # no line at all
    {"n.events.log": b'{"type":"AddItem","payload":{}}\n{"ts":"x","type":"AddItem"}\n',
     "e.events.log": b""},  # no readable ts: no date window
    {"g.events.log": b'garbage\n{"ts":"2025-01-01T00:00:00Z","type":"AddItem",'
                     b'"payload":{"sku":"a","quantity":1}}\n'},  # a line without a type
])
def test_dashboard_over_an_odd_dataset_answers_as_over_the_replays(
        tmp_path: Path, files: dict[str, bytes]) -> None:
    from cartforensics.jobs.convert import convert

    (tmp_path / "logs").mkdir()
    for name, data in files.items():
        (tmp_path / "logs" / name).write_bytes(data)
    convert(tmp_path / "logs", tmp_path / "ds", progress=False)
    ev = read_events(tmp_path / "logs", progress=False)
    go, le = replay(ev), replay(ev, mode="lenient")
    a, b = FleetDashboard(go, lenient=le), FleetDashboard(tmp_path / "ds")
    assert b.meta == a.meta and _dash_view(b) == _dash_view(a) and repr(b) == repr(a)
    for cart in go.cart_ids:  # a cart of an empty file opens too
        assert b.open_cart(cart).position == a.open_cart(cart).position


def _page_step(s: TimelineScrubber, p: int) -> None:
    """A move the page makes: its new position applied as ipywidgets applies page state."""
    with s._lock_property(position=p):
        s.position = p


def test_a_live_page_is_sent_the_frames_ahead_of_its_steps(sample):
    """Once a view says it keeps frames, a step it makes sends the frames of the next
    positions (each exactly the frame that position shows); a skip and a move made in Python
    send none, and a frame is not sent twice while the view is the same."""
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    sent: list[dict[str, Any]] = []
    s.send = lambda content, buffers=None: sent.extend(content["frames_ahead"])  # type: ignore[method-assign]
    s.seek(line=2)
    s._on_page_msg(s, {"keeps_frames": True}, [])
    opened = [f["position"] for f in sent]
    assert opened and 3 in opened and 1 in opened and 2 not in opened
    rev = sent[0]["rev"]
    sent.clear()
    _page_step(s, 3)
    got = [f["position"] for f in sent]
    assert set(got).isdisjoint([*opened, 2, 3])  # only frames the view does not hold
    for f in sent:
        assert f == s.frame_at(f["position"])
    assert s.frame == s.frame_at(3) and s.frame["rev"] == rev
    sent.clear()
    s.step(1)  # in Python: nothing ahead
    assert sent == []
    _page_step(s, 5)
    rev = s.frame["rev"]
    sent.clear()
    ask(s, do="skip")
    assert sent == [] and s.frame["rev"] != rev and s.frame["line"]["skipped"]
    _page_step(s, 6)  # after the skip: frames of the new view, the line off in them
    assert sent and all(f["rev"] == s.frame["rev"] for f in sent)
    for f in sent:
        assert f == s.frame_at(f["position"])


def test_a_scrubber_without_a_page_sends_no_frames_ahead(sample):
    """No view said it keeps frames (a script, a test): steps send nothing ahead."""
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    sent: list[Any] = []
    s.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    _page_step(s, 1)
    _page_step(s, 2)
    assert sent == [] and s.frame == s.frame_at(2)
