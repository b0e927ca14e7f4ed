"""The widgets' Python side: set values, press buttons, and check what they show and hold.

No browser here (tests/present/test_browser.py runs them in a real JupyterLab): the widgets are
built,
driven through their traits, buttons (``Button.click()`` calls the click handlers) and methods,
and the HTML they would show is checked as text.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd
import pytest

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


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    d = tmp_path_factory.mktemp("hostile")
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
    ev = read_events(d)
    return replay(ev), replay(ev, mode="lenient")


def all_html(w: widgets.Widget) -> str:
    """Every HTML widget's value under ``w``, joined."""
    out = []
    stack = [w]
    while stack:
        x = stack.pop()
        if isinstance(x, widgets.HTML):
            out.append(x.value)
        stack.extend(getattr(x, "children", ()))
    return "\n".join(out)


def outside_css(text: str) -> str:
    return re.sub(r"<style>.*?</style>", "", text, flags=re.S)


def tags(text: str) -> set[str]:
    """Tag names used in HTML text."""
    return {m.lower() for m in re.findall(r"<\s*/?\s*([a-zA-Z][a-zA-Z0-9]*)", text)}


def attribute_names(text: str) -> set[str]:
    """Attribute names used in HTML text (parsed, so escaped text in values is no name)."""
    from html.parser import HTMLParser

    names: set[str] = set()

    class P(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names.update(k for k, _ in attrs)

    p = P()
    p.feed(text)
    p.close()
    return names


SAFE_TAGS = {"div", "span", "b", "h4", "table", "thead", "tbody", "tr", "th", "td", "s", "ul",
             "li", "style"}
STRIP_TAGS = {"svg", "rect", "title"}  # the timeline strip's marks and their tooltips


# -- the scrubber ------------------------------------------------------------------------------
def test_slider_max_is_the_line_count_and_problem_carts_come_first(sample):
    go, le = sample
    s = TimelineScrubber(go, lenient=le)
    assert s.lines and s.cart_id == "cart-1001"  # every line dropped by the service
    values = [v for _, v in s.cart_select.options]
    assert values == ["cart-1001", "cart-1003", "cart-1004", "cart-1002"]
    for cid in go.cart_ids:
        s.cart_select.value = cid
        n = len(go.rows_of(cid))
        assert s.cart_id == cid
        assert s.slider.max == n == s.lines == s.play.max == s.line_input.max
        assert s.slider.min == 0
        assert s.position == n  # opens on the cart as the replay left it
        assert s.state() == go.final_state(cid)
        assert s.state("lenient") == le.final_state(cid)


def test_cart_filter_narrows_the_picker_without_switching_carts(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.cart_filter.value = "1003"
    assert [v for _, v in s.cart_select.options] == ["cart-1003"]
    assert s.cart_id == "cart-1002"
    assert "1 of 4 carts" in s.cart_count.value
    s.cart_select.value = "cart-1003"
    assert s.cart_id == "cart-1003"
    s.cart_filter.value = ""
    assert s.cart_select.value == "cart-1003" and len(s.cart_select.options) == 4


def test_steps_buttons_and_line_box_move_together(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert s.forward_button.disabled  # at the end
    s.back_button.click()
    assert s.position == 8 and s.line_input.value == 8
    assert "Line 8 of 9" in s.line_html.value and "InitializeCheckout" in s.line_html.value
    s.line_input.value = 2
    assert s.position == 2 and s.slider.value == 2
    s.forward_button.click()
    assert s.position == 3
    s.slider.value = 0
    assert s.back_button.disabled and "before line 1" in s.line_html.value
    assert s.state() == go.state_at("cart-1002", line=0)
    s.step(-5)
    assert s.position == 0
    s.step(100)
    assert s.position == 9


def test_state_and_diff_at_every_position_match_the_replay(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    for p in range(s.lines + 1):
        s.slider.value = p
        for m, r in (("go", go), ("lenient", le)):
            assert s.state(m) == r.state_at("cart-1003", line=p)
            if p:
                assert s.diff(m) == r.diff("cart-1003", p - 1, p)
            else:
                assert s.diff(m) is None


def test_diff_is_highlighted(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s.seek(line=4)  # ChangeQuantity item 1 -> 2
    html = s.go_html.value
    assert 'class="cfw-num cfw-chg"' in html and "<s>1</s>2" in html
    assert "item 1: qty 1 → 2" in html
    s.seek(line=5)  # RemoveItem 2: the removed row stays, struck through
    assert 'class="cfw-del"' in s.go_html.value
    assert "−</span> item 2: 40877 Doftljus Skog &amp; Mossa" in s.go_html.value
    s.seek(line=1)
    assert 'class="cfw-add"' in s.go_html.value
    s.seek(line=6)  # apply_error: nothing changes, the error is shown
    assert "no change from the previous position" in s.go_html.value
    assert "item not found" in s.go_html.value and "item not found" in s.line_html.value


def test_go_and_lenient_side_by_side(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    assert len(s.state("go")["items"]) == 1 and len(s.state("lenient")["items"]) == 3
    assert "differs from what the writer meant" in s.compare_html.value
    assert "1 vs 3 items" in s.compare_html.value
    assert "what the service rebuilt" in s.go_html.value
    assert "what the writer meant" in s.lenient_html.value
    s.seek(line=1)  # numeric ts: dropped by the service, applied as the writer meant
    assert "malformed" in s.line_html.value and "applied" in s.line_html.value
    assert "Time.UnmarshalJSON: input is not a JSON string" in s.line_html.value
    assert "ts written as a JSON number" in s.line_html.value
    s2 = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert "is the cart the writer meant" in s2.compare_html.value


def test_next_and_previous_problem(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    oc = go.outcomes[go.outcomes["cart_id"] == "cart-1003"]
    expected = [k + 1 for k, o in enumerate(oc["outcome"].astype(str)) if o != "applied"]
    assert s.problem_lines() == expected == [1, 2, 3, 5, 6, 7]
    s.slider.value = 0
    seen = []
    while True:
        before = s.position
        s.next_problem_button.click()
        if s.position == before:
            break
        seen.append(s.position)
    assert seen == expected
    assert "no problem line after this one" in s.status.value
    s.prev_problem_button.click()
    assert s.position == 6
    s.seek(line=4)
    assert s.prev_problem() == 3
    assert s.next_problem() == 5
    s2 = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    s2.slider.value = 0
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
    s.skip_button.value = True  # the toggle button
    assert s.skipped == [5]
    assert "skipped" in s.line_html.value and "switched off" in s.line_html.value
    assert "Skipped: line 5" in s.skip_html.value and not s.reset_button.disabled
    for m in ("go", "lenient"):
        ref = replay(_without(go.events, [row]), mode=m)
        for p in range(s.lines + 1):
            expected = ref.state_at(cid, line=p - 1 if p >= 5 else p)
            assert s.state(m, position=p) == expected, (m, p)
        assert s.history(m).equals(ref.history(cid))
    s.seek(line=6)
    assert "apply_error" not in s.line_html.value and "item not found" not in s.line_html.value
    assert s.problem_lines() == []
    # a second skip, through the method
    s.toggle_skip(1)
    assert s.skipped == [1, 5]
    ref = replay(_without(go.events, [row, go.rows_of(cid)[0]]))
    assert s.state() == ref.state_at(cid, line=4)
    s.reset_button.click()
    assert s.skipped == [] and s.reset_button.disabled
    assert s.state() == go.state_at(cid, line=6)
    assert s.problem_lines() == [6]


def test_skipping_every_line_leaves_the_empty_cart(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1004", lenient=le)
    for k in range(1, 5):
        s.toggle_skip(k)
    assert s.state("lenient")["items"] == [] and s.state("lenient")["lastChange"] is None
    assert s.history("lenient").empty
    s.toggle_skip(2)
    assert s.skipped == [1, 3, 4]
    assert [(i["id"], i["sku"], i["qty"]) for i in s.state("lenient")["items"]] == [
        (1, "80177", 2)]


def test_seek_by_time_lands_on_spec_6_line(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    # lines 1-5 are at or before 08:03, line 6 has no readable ts and goes with line 5,
    # line 7 is at 08:04:30
    s.time_input.value = "2025-11-01T08:03:00Z"
    assert s.position == 6 == go.line_at("cart-1003", "2025-11-01T08:03:00Z")
    assert "SPEC §6" in s.status.value
    assert s.state() == go.state_at("cart-1003", ts="2025-11-01T08:03:00Z")
    for when in ("2025-11-01T07:00:00Z", "2025-11-01 07:55:02", "2025-11-01T08:04:30+00:00",
                 "2025-11-02"):
        assert s.seek(ts=when) == go.line_at("cart-1003", when)
    assert s.seek(ts="2025-11-01T07:00:00Z") == 0
    s.time_input.value = "not a time"
    assert "not a time" in s.status.value and s.position == 0
    s.time_input.value = "2025-11-01T08:02:40Z"
    s.seek_button.click()
    assert s.position == 4


def test_exports_equal_history_and_state(sample):
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
    assert hist["outcome"].tolist() == ref["outcome"].astype(str).tolist()
    assert hist["total_price"].tolist() == ref["total_price"].tolist()
    assert s.export_output.outputs == ()
    s.export_button.click()
    (out,) = s.export_output.outputs
    assert json.loads(out["data"]["text/plain"]) == {
        "go": go.state_at("cart-1003", line=4), "lenient": le.state_at("cart-1003", line=4)}
    body = out["data"]["text/html"]
    assert "Salt &amp; peppar" in body and "History (go mode, 8 lines)" in body


def test_hostile_log_content_is_escaped_everywhere(hostile):
    go, le = hostile
    s = TimelineScrubber(go, cart_id="evil", lenient=le)
    seen = []
    for p in range(s.lines + 1):
        s.slider.value = p
        s.export_button.click()
        page = all_html(s) + s.export_output.outputs[0]["data"]["text/html"]
        seen.append(page)
        assert tags(outside_css(page)) <= SAFE_TAGS | STRIP_TAGS, p
        assert "<img" not in page and "<script" not in page
        # the only SVG is the timeline strip's own, and no tag carries an event handler
        assert re.findall(r"<svg\b[^>]*", page) and all(
            t.startswith('<svg class="cfw-strip-') for t in re.findall(r"<svg\b[^>]*", page))
        assert not {a for a in attribute_names(outside_css(page)) if a.startswith("on")}
    s.seek(line=1)
    assert "&lt;img src=x onerror=alert(1)&gt;" in s.go_html.value
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in s.go_html.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in s.line_html.value
    s.seek(line=2)  # unknown type: in the line, its type and Go's error text
    assert "unknown mutation type: &quot;&lt;b&gt;Evil&lt;/b&gt;&quot;" in s.line_html.value
    assert "&lt;u&gt;y&lt;/u&gt;" in s.line_html.value
    s.seek(line=3)  # not JSON: the raw bytes, escaped, the bad bytes marked
    assert "raw bytes" in s.line_html.value
    assert "&lt;img src=x onerror=alert(3)&gt;" in s.line_html.value
    assert '<span class="cfw-esc">\\xff</span><span class="cfw-esc">\\x01</span>' in \
        s.line_html.value
    # a hostile cart id: in the picker (plain-text labels) and in the title
    s.cart_id = HOSTILE_CART
    assert "c&lt;i&gt;1" in s.title_html.value
    assert "&lt;svg onload=x&gt;" in s.go_html.value
    assert any(v == HOSTILE_CART for _, v in s.cart_select.options)


def test_pretty_line_and_escape_bytes():
    kind, text = pretty_line(b'{"ts":"x","payload":{"sku":"a\\u003cb"}}')
    assert kind == "json" and '"sku": "a&lt;b"' in text and "\n" in text
    kind, text = pretty_line(b'{"n":[1e400,-0.50,12345678901234567890],"e":{},"l":[]}')
    assert kind == "json"  # numbers as written, never rounded or turned into inf
    assert text == ('{\n  "n": [\n    1e400,\n    -0.50,\n    12345678901234567890\n  ],\n'
                    '  "e": {},\n  "l": []\n}')
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


def test_only_the_rows_that_fit_are_rendered(tmp_path):
    lines = [rec(f"2025-01-01T10:{k // 60:02d}:{k % 60:02d}Z", "AddItem",
                 {"quantity": 1, "sku": f"s{k}"}) for k in range(120)]
    write(tmp_path, "big", lines)
    go = replay(read_events(tmp_path))
    s = TimelineScrubber(go, max_rows=10)
    html = s.go_html.value
    assert html.count("<tr") < 40
    assert "more unchanged rows not shown" in html
    assert "s119" in html  # the row the last line added is shown though it is far down
    assert len(s.state()["items"]) == 120


def test_a_lenient_replay_alone_is_enough(sample):
    go, le = sample
    s = TimelineScrubber(le, cart_id="cart-1001")
    assert s.go.mode == "go" and s.lenient is le
    assert s.state("go") == go.final_state("cart-1001")
    with pytest.raises(ValueError):
        TimelineScrubber(go, lenient=go)
    with pytest.raises(KeyError):
        TimelineScrubber(go, cart_id="nope", lenient=le)


# -- the dashboard -----------------------------------------------------------------------------
def test_dashboard_filters_redraw_and_open_a_cart(sample, hostile):
    go, le = sample
    d = FleetDashboard(go, lenient=le)
    assert d.redraws == 1
    for img in (d.rates_image, d.mix_image):
        assert img.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert d.mask().all()
    assert "<b>28</b> of 28 lines" in d.summary_html.value
    worst = d.worst_carts()
    assert worst.index.tolist() == ["cart-1001", "cart-1003", "cart-1004", "cart-1002"]
    assert worst.loc["cart-1003"].tolist() == [8, 6, 2, 4]
    assert [v for _, v in d.cart_select.options] == worst.index.tolist()
    before = d.rates_image.value

    d.outcome_filter.value = ("apply_error",)
    assert d.redraws == 2 and d.rates_image.value != before
    assert d.mask().sum() == 2
    assert d.worst_carts().index.tolist() == ["cart-1003", "cart-1002"]  # 1003 lost its line
    assert "<b>2</b> of 28 lines" in d.summary_html.value

    d.reset_button.click()
    assert d.mask().all() and d.redraws == 3

    # dates: 2025-10-28 … 2025-11-03, one option a day; with a type too
    labels = [lab for lab, _ in d.date_range.options]
    assert labels[0] == "2025-10-28" and labels[-1] == "2025-11-03"
    k = labels.index("2025-11-01")
    d.date_range.index = (k, k)
    assert set(go.outcomes["cart_id"][d.mask()].astype(str)) == {"cart-1003"}
    assert d.mask().sum() == 7  # the glued line has no readable ts
    d.type_filter.value = ("AddItem",)
    assert go.outcomes["type"][d.mask()].tolist() == ["AddItem"] * 3
    assert d.redraws == 5

    d.mode.value = "lenient"  # the outcome filter now offers lenient mode's outcomes
    assert [v for _, v in d.outcome_filter.options] == ["applied", "malformed",
                                                        "unknown_type", "apply_error"]
    assert d.worst_carts()["problems_lenient"].tolist() == [0]
    assert "most problem lines in lenient mode" in d.worst_html.value
    d.reset_filters()
    assert d.worst_carts().index[0] == "cart-1003"  # most problems as the writer meant

    d.cart_select.value = "cart-1002"
    assert isinstance(d.scrubber, TimelineScrubber) and d.scrubber.cart_id == "cart-1002"
    assert d.scrubber_box.children == (d.scrubber,)
    d.cart_select.value = "cart-1004"
    assert d.scrubber.cart_id == "cart-1004"

    h = FleetDashboard(hostile[0], lenient=hostile[1])
    page = all_html(h)
    assert "c&lt;i&gt;1" in page and "<i>" not in outside_css(page)
    assert any(v == "<b>Evil</b>" for _, v in h.type_filter.options)
    h.cart_select.value = "evil"
    assert "<img" not in all_html(h)


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
# -- the workbench: strip, notes, blame, context ----------------------------------------------
HOSTILE_NOTE = "<img src=x onerror=alert(9)> \u202e & done"
MODES_ = ("go", "lenient")


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
    go_marks = strip_rects(s.strip_html.value, "go")
    want = go.outcomes["outcome"].astype(str).to_numpy()[go.rows_of("cart-1003")]
    drawn = [o for x, w, _f, o in go_marks for _ in range(w)]
    assert drawn == want.tolist()
    s.seek(line=5)
    assert '<rect x="4" width="1"' in s.strip_cursor.value and "line 5" in s.strip_cursor.value
    s.toggle_skip(2)
    drawn = [o for x, w, _f, o in strip_rects(s.strip_html.value, "lenient") for _ in range(w)]
    assert drawn[1] == "skipped"


def test_notes_through_the_widget(sample, tmp_path):
    go, le = sample
    path = tmp_path / "notes.json"
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le, notes=path)
    s.seek(line=0)
    assert s.note_save.disabled  # the start is no line
    s.seek(line=6)
    s.note_text.value = HOSTILE_NOTE
    s.tag_buttons["evidence"].value = True
    s.tag_buttons["question"].value = True
    s.note_tags.value = "stale id, <i>mine</i>"
    s.note_save.click()
    saved = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()][1:]
    assert [(n["cart_id"], n["line"], n["note"], n["tags"]) for n in saved] == [
        ("cart-1002", 6, HOSTILE_NOTE, ["evidence", "question", "stale id", "<i>mine</i>"])]
    assert s.note_text.value == "" and not s.tag_buttons["evidence"].value  # box cleared
    shown = s.line_notes_html.value
    assert "&lt;img src=x onerror=alert(9)&gt;" in shown and "<img" not in shown
    assert '<span class="cfw-esc">\\u202e</span>' in shown and "&amp; done" in shown
    assert "&lt;i&gt;mine&lt;/i&gt;" in shown
    assert 'data-line="6"' in s.strip_html.value and "<img" not in s.strip_html.value
    assert [v for _, v in s.notes_select.options] == [saved[0]["id"]]
    # a second note elsewhere, then jump note to note
    s.add_note("the delivery", tags=["root cause"], line=7)
    s.seek(line=1)
    assert s.next_note() == 6 and s.next_note() == 7 and s.next_note() == 7
    assert s.prev_note() == 6 and s.prev_note() == 6
    # the list opens a note's cart at its line
    s.cart_id = "cart-1001"
    s.notes_select.value = saved[0]["id"]
    assert s.cart_id == "cart-1002" and s.position == 6
    # another Notes on the same file sees both; a note on a line the cart lacks is kept
    other = Notes(path)
    assert [n["line"] for n in other] == [6, 7]
    other.add("cart-1002", 40, "past the end")
    s.notes.reload()
    s._notes_changed()
    assert len(s.notes_select.options) == 3 and 'data-line="40"' not in s.strip_html.value
    s.notes_select.value = s.notes_select.options[-1][1]
    assert "not in these logs" in s.status.value and s.position == 6
    # delete
    s.notes_select.value = saved[0]["id"]
    s.delete_note_button.click()
    assert [n["line"] for n in Notes(path)] == [7, 40]


def test_blame_beside_the_state_jumps_to_the_line(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    got = s.blame()
    want = go.blame("cart-1002")
    assert got["path"].tolist() == want["path"].tolist()
    assert got["line"].tolist() == want["line"].tolist()
    opts = s.blame_selects["go"].options
    qty = next(v for label, v in opts if label.strip().startswith("items[0].qty = 2"))
    label = next(label for label, v in opts if v == qty)
    assert "line 4 ChangeQuantity" in label
    s.blame_selects["go"].value = qty
    assert s.position == 4
    # with line 4 skipped, the quantity is line 1's again
    s.seek(line=9)
    s.toggle_skip(4)
    b = s.blame()
    assert b.loc[b["path"] == "items[0].qty", "line"].item() == 1
    assert b.loc[b["path"] == "items[0].qty", "value"].item() == 1
    # an empty-cart field says so and does not move
    s.reset_skips()
    ident = next(v for label, v in s.blame_selects["go"].options if "id = " in label
                 and "items" not in label)
    s.blame_selects["go"].value = ident
    assert s.position == 9 and "empty-cart value" in s.status.value


def test_go_and_lenient_blame_and_where_they_part(sample):
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1003", lenient=le)
    labels = {m: [lab for lab, _ in s.blame_selects[m].options] for m in MODES_}
    assert any(lab.startswith("≠ items[2].sku") for lab in labels["lenient"])
    assert any(lab.startswith("  id = ") for lab in labels["go"])  # the same in both
    assert "part at <b>line 1</b>" in s.parting_html.value
    s.seek(line=5)
    s.parting_button.click()
    assert s.position == 1
    same = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert same.parting_button.disabled and "never part" in same.parting_html.value


def test_blame_waits_for_a_press_on_long_carts(sample, monkeypatch):
    import cartforensics.present.widgets.scrubber as w

    go, le = sample
    monkeypatch.setattr(w, "BLAME_AUTO_LINES", 3)
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    assert "not read yet" in s.blame_selects["go"].options[0][0]
    s.blame_selects["go"].value = -1
    assert s.position == 9
    s.blame_button.click()
    assert len(s.blame_selects["go"].options) == len(go.blame("cart-1002"))


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
    assert s.context_select.options == ()  # collapsed: not computed
    s.context_box.selected_index = 0
    assert s.context_minutes.value == 5
    assert [v for _, v in s.context_select.options] == [("cart-y", 1), ("cart-y", 2)]
    s.context_minutes.value = 1
    assert [v for _, v in s.context_select.options] == [("cart-y", 1)]
    assert "1 lines of other carts within ± 1 min" in s.context_html.value
    s.context_minutes.value = 120
    labels = [lab for lab, _ in s.context_select.options]
    assert len(labels) == 3 and "go unknown_type" in labels[1]
    assert "go apply_error" in labels[2] and "(+59m00s)" in labels[2]
    assert "handler error" in s.context_html.value  # the outcome badges, both modes
    s.context_select.value = ("cart-y", 2)
    assert s.cart_id == "cart-y" and s.line == 2 and s.position == 2
    s.seek(line=0)
    assert "the start is not a line" in s.context_html.value


def test_blame_lists_the_carts_own_fields_first_and_at_most_blame_rows(sample, monkeypatch):
    import cartforensics.present.widgets.scrubber as w

    go, le = sample
    monkeypatch.setattr(w, "BLAME_ROWS", 5)
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    labels = [lab for lab, _ in s.blame_selects["go"].options]
    assert len(labels) == 6 and labels[-1].startswith("… ")
    assert f"{len(go.blame('cart-1002')) - 5:,} more fields" in labels[-1]
    assert [lab.split(" = ")[0].strip() for lab in labels[:5]] == [
        "id", "totalPrice", "totalTax", "totalDiscount", "processing"]
    s.blame_selects["go"].value = -1  # the "more" row goes nowhere
    assert s.position == 9


def test_dashboard_scrubber_writes_to_the_dashboards_notes(sample, tmp_path):
    go, le = sample
    d = FleetDashboard(go, lenient=le, notes=tmp_path / "n.json")
    s = d.open_cart("cart-1002")
    assert s.notes is d.notes
    s.add_note("from the dashboard", line=3)
    assert [(n["cart_id"], n["line"]) for n in Notes(tmp_path / "n.json")] == [("cart-1002", 3)]


# -- a skip redraws only what changed (issue 11), and shows exactly what a fresh draw shows ---


def _view(s: TimelineScrubber) -> dict[str, Any]:
    """Everything the scrubber shows that a skip can change."""
    return {"html": all_html(s), "json": s.to_json(), "skipped": s.skipped,
            "problems": (s.problem_lines("go"), s.problem_lines("lenient")),
            "skip": (s.skip_button.value, s.skip_button.disabled, s.reset_button.disabled),
            "parting": (s.parting_html.value, s.parting_button.disabled)}


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


def test_a_cell_or_row_kept_for_reuse_never_stands_for_another_value():
    from cartforensics.present.widgets.common import _cell, _table

    # 1, True, "1" and 1.0 print differently: the kept cells and rows tell them apart
    cells = {repr(v): _cell("qty", v, True, None) for v in (1, True, "1", 1.0, None, "")}
    assert cells["1"] != cells["True"] and cells["True"] != cells["'1'"]
    assert "yes" in cells["True"] and ">1<" in cells["1"] and "1.0" in cells["1.0"]
    assert _cell("qty", 1, True, None) == cells["1"]  # and the same value, the same cell
    assert _cell("qty", 1, True, (2, 1)) != cells["1"]  # a change is drawn, never reused
    cols = [("id", "id", True), ("qty", "qty", True), ("name", "name", False)]
    one = _table([{"id": 1, "qty": 1, "name": "<b>x</b>"}], cols, None, 10)
    same = _table([{"id": 1, "qty": True, "name": "<b>x</b>"}], cols, None, 10)
    assert one != same and "yes" in same and "&lt;b&gt;x&lt;/b&gt;" in one
    added = _table([{"id": 1, "qty": 1, "name": "<b>x</b>"}], cols,
                   {"added": [{"id": 1}], "changed": {}, "removed": []}, 10)
    assert 'class="cfw-add"' in added and 'class="cfw-add"' not in one
    # a long name is cut the same way whether or not its cell is kept
    long = "ü" * 2_000
    a, b = (_table([{"id": 2, "qty": 1, "name": long}], cols, None, 10) for _ in range(2))
    assert a == b and "ü" * 29 + "…" in a


def test_a_skip_switched_on_and_off_shows_exactly_a_fresh_view(sample, hostile):
    """Toggling a line shows what a scrubber opened on the same skips shows, switching it
    off again shows the view from before, and on again the same as the first time, at every
    line of the cart."""
    for (go, le), cid in ((sample, "cart-1003"), (sample, "cart-1002"), (hostile, "evil")):
        s = TimelineScrubber(go, cart_id=cid, lenient=le)
        for p in range(1, s.lines + 1):
            s.seek(line=p)
            before = _view(s)
            s.skip_button.value = True
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
        s.seek(line=s.lines)
        s.toggle_skip(1)
        s.toggle_skip(s.lines)
        fresh = TimelineScrubber(go, cart_id=cid, lenient=le)
        fresh.toggle_skip(s.lines)
        fresh.toggle_skip(1)
        fresh.seek(line=s.lines)
        assert _view(s) == _view(fresh), cid


def test_a_state_handed_out_is_the_callers_to_change(sample) -> None:
    """The scrubber keeps the states it shows; what state() returns is a copy."""
    go, le = sample
    s = TimelineScrubber(go, cart_id="cart-1002", lenient=le)
    first = s.state()
    first["items"].append({"sku": "mine"})
    first["totalPrice"] = -1
    assert s.state() == go.final_state("cart-1002") != first
    s.step(-1)
    s.step(1)  # redrawn from what it keeps
    assert s.state() == go.final_state("cart-1002")
