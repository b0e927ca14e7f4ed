"""``report.html`` in Debian's Chromium, every request that is not ``file:`` aborted: the
impact block holds the figures an independent computation from the two replays gives; two
flagged carts' timelines open from the page's embedded data and show, at every position, the
state ``Replay.state_at`` gives in both modes; a finding's cart link opens that cart's
timeline; nothing is wider than the page at 800 px; hostile log text stays text (a window
marker its script would set stays unset). Screenshots (the fold, a timeline, the impact
block) and the page's size and first paint go to ``test-artifacts/``.

Needs /usr/bin/chromium and the ``playwright`` package (see tests/present/test_browser.py:
required in CI, never skipped there).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from browser.lab import open_offline
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    READ_TABLE,
    playwright_api,  # noqa: F401 (the fixture)
)
from test_report_chunks import write_hostile

import cartforensics as cf
from cartforensics.analysis.impact import cart_impact, impact_totals
from cartforensics.present.report import cart_anchor, write_report
from cartforensics.present.widgets.frames import money_text

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"
HOSTILE_CART = "<img src=x onerror=window.__cfpwned=1>"
HOSTILE_SKU = "<img src=x onerror=window.__cfpwned=2>"
HOSTILE_NAME = "</script><script>window.__cfpwned=3</script>"
VIEW = ".cf-scrubber.cft-static"
# every element's width, and the page's: nothing may be wider than the page
TOO_WIDE = """() => {
  const w = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > w + 1;
  }).map(e => e.tagName + '.' + e.className);
  return {page: document.documentElement.scrollWidth, width: w, wide: wide.slice(0, 5)};
}"""


def _report(src: Path, out: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_report(src, out, progress=False, workers=1)
    return out / "report.html"


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _report(SAMPLE, tmp_path_factory.mktemp("page") / "out")


@pytest.fixture(scope="module")
def replays() -> tuple[Any, Any]:
    ev = cf.read_events(SAMPLE, progress=False)
    return cf.replay(ev, mode="go"), cf.replay(ev, mode="lenient")


@pytest.fixture(scope="module")
def browser(playwright_api):  # noqa: F811
    b = playwright_api.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                       headless=True)
    yield b
    b.close()


def _details(anchor: str) -> str:
    return f'details[id="{anchor}"]'  # (an anchor may hold a dot: no #id selector)


def _items(page: Any, sel: str) -> list[tuple[str, str]]:
    rows = page.evaluate(READ_TABLE, f"{sel} table.cft-items") or []
    return [(r["sku"], r["qty"]) for r in rows]


def test_impact_block_equals_the_replays(browser: Any, sample_report: Path,
                                         replays: tuple[Any, Any]) -> None:
    go, lenient = replays
    want = impact_totals(cart_impact(go, lenient, lenient.cart_ids))
    assert want.paid_orders_lost > 0 and want.value_missing > 0
    page, blocked, _ = open_offline(browser, sample_report)
    try:
        block = page.locator("#impact")
        text = block.inner_text()
        assert f"{want.carts_differing:,} of {want.carts:,}" in text
        assert money_text(want.value_missing) in text
        assert f"{want.units_missing:,}" in text
        assert f"{want.paid_orders_lost:,} of {want.paid_orders:,}" in text
        assert money_text(want.paid_orders_value_lost) in text
        assert money_text(want.in_payment_orders_value_lost) in text
        # the block comes before the findings: the first thing read after the headline
        y_impact = block.bounding_box()["y"]
        assert y_impact < page.locator("#findings").bounding_box()["y"]
        paint = page.evaluate("() => performance.getEntriesByType('paint')"
                              ".map(e => [e.name, e.startTime])")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report_fold.png"))
        block.screenshot(path=str(ARTIFACTS / "report_impact.png"))
        (ARTIFACTS / "report_figures.json").write_text(json.dumps({
            "report_html_bytes": sample_report.stat().st_size, "paint_ms": dict(paint)}))
    finally:
        page.close()
    assert blocked == []


def test_two_timelines_step_through_every_line(browser: Any, sample_report: Path,
                                               replays: tuple[Any, Any]) -> None:
    go, lenient = replays
    page, blocked, dialogs = open_offline(browser, sample_report)
    try:
        ids = page.evaluate("() => [...document.querySelectorAll('details.cf-cart')]"
                            ".map(d => d.id)")
        assert len(ids) >= 2
        anchors = {cart_anchor(c): c for c in go.cart_ids}
        # two flagged carts where the modes part, with a few lines each
        chosen = [anchors[a] for a in ids if anchors.get(a) is not None
                  and len(go.rows_of(anchors[a])) >= 3
                  and go.final_state(anchors[a]) != lenient.final_state(anchors[a])][:2]
        assert len(chosen) == 2
        for k, cart in enumerate(chosen):
            d = page.locator(_details(cart_anchor(cart)))
            d.locator(":scope > summary").click()
            view = d.locator(VIEW)
            view.wait_for(state="visible", timeout=20_000)
            n = len(go.rows_of(cart))
            d.locator(f"{VIEW} .cf-slider").focus()
            page.keyboard.press("Home")
            sel = f"{_details(cart_anchor(cart))} {VIEW}"
            for p in range(n + 1):
                if p:
                    d.locator(f"{VIEW} .cf-step-forward").click()
                    assert f"Line {p} of {n}" in d.locator(f"{VIEW} .cf-line").inner_text()
                for mode, rp in (("go", go), ("lenient", lenient)):
                    state = rp.state_at(cart, line=p)
                    assert _items(page, f"{sel} .cf-{mode}-state") == [
                        (i["sku"], str(i["qty"])) for i in state["items"]], (cart, p, mode)
                    side = d.locator(f"{VIEW} .cf-{mode}-state").inner_text()
                    assert f"total {money_text(state['totalPrice'])}" in side, (cart, p, mode)
            if k == 0:
                view.screenshot(path=str(ARTIFACTS / "report_timeline.png"))
    finally:
        page.close()
    assert blocked == [] and dialogs == []


def test_a_findings_cart_link_opens_its_timeline(browser: Any, sample_report: Path) -> None:
    page, blocked, _ = open_offline(browser, sample_report)
    try:
        link = page.locator("#findings ~ table a[href^='#cart-']").first
        target = link.get_attribute("href")[1:]
        link.click()
        d = page.locator(_details(target))
        assert d.evaluate("e => e.open")
        d.locator(VIEW).wait_for(state="visible", timeout=20_000)
        assert page.evaluate("() => location.hash") == f"#{target}"
        # every finding is linkable, and the contents lead to every section
        assert page.locator("tr[id^='finding-']").count() >= 1
        for href in page.evaluate("() => [...document.querySelectorAll('nav.toc a')]"
                                  ".map(a => a.getAttribute('href'))"):
            assert page.locator(href).count() == 1, href
    finally:
        page.close()
    assert blocked == []


def test_nothing_wider_than_the_page_at_800px(browser: Any, sample_report: Path) -> None:
    page, blocked, _ = open_offline(browser, sample_report, width=800)
    try:
        first = page.locator("details.cf-cart").first
        first.locator(":scope > summary").click()  # an open timeline too
        first.locator(VIEW).wait_for(state="visible", timeout=20_000)
        got = page.evaluate(TOO_WIDE)
        assert got["page"] <= got["width"] and got["wide"] == [], got
    finally:
        page.close()
    assert blocked == []


def test_hostile_text_stays_text(browser: Any, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    write_hostile(logs)
    rec = [{"ts": 1761984000, "type": "AddItem",  # numeric ts: a finding names the cart
            "payload": {"sku": HOSTILE_SKU, "name": HOSTILE_NAME, "quantity": 1, "price": 5}},
           {"ts": "2025-11-01T08:01:00Z", "type": HOSTILE_NAME,
            "payload": {"sku": HOSTILE_SKU, "name": HOSTILE_NAME, "quantity": 2, "price": 7}}]
    (logs / f"{HOSTILE_CART}.events.log").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rec), encoding="utf-8")
    report = _report(logs, tmp_path / "out")
    html = report.read_text(encoding="utf-8")
    for raw in (HOSTILE_CART, HOSTILE_SKU, HOSTILE_NAME):
        assert raw not in html
    page, blocked, dialogs = open_offline(browser, report)
    try:
        anchor = cart_anchor(HOSTILE_CART)
        d = page.locator(_details(anchor))
        assert d.count() == 1
        page.evaluate(f"() => {{ location.hash = '#{anchor}'; }}")
        d.locator(VIEW).wait_for(state="visible", timeout=20_000)
        page.keyboard.press("End")
        d.locator(f"{VIEW} .cf-end").click()
        assert HOSTILE_SKU in d.locator(f"{VIEW} .cf-lenient-state").inner_text()
        assert HOSTILE_CART in d.locator(":scope > summary").inner_text()
        page.wait_for_timeout(200)
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("() => window.__cfpwned") is None and dialogs == []
    finally:
        page.close()
    assert blocked == []
