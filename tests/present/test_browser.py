"""The scrubber in a real JupyterLab, driven by headless Chromium through Playwright.

Starts ``jupyter lab`` on 127.0.0.1 (random token, free port, a temporary root), writes a
notebook that builds a TimelineScrubber over a small log holding a hostile sku, runs it, and
checks in the browser that the scrubber renders, that a step changes the state shown, and that
the hostile text shows as text (no ``<img src=x>`` element, no alert). Then the investigation:
the timeline strip is visible, a (hostile) note added through the widget is listed and found
in the notes file read again from disk, choosing a field in the blame jumps to its line, and
"skip this line" switches the line off and on again.
Screenshots go to ``test-artifacts/`` (git-ignored): ``browser_workbench.png`` is the scrubber
with its notes and blame.

Needs Debian's Chromium at /usr/bin/chromium and the ``playwright`` Python package (never
``playwright install``: no browser download). Skipped without them, except in CI (``CI=true``
or ``CARTFORENSICS_REQUIRE_BROWSER=1``), where they are required and their absence fails.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from browser.lab import JupyterLab, write_notebook

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE_SKU = "<img src=x onerror=alert(1)>"
HOSTILE_NAME = "<script>alert(2)</script>"
HOSTILE_NOTE = "<img src=x onerror=alert(7)> the writer's numeric ts & <b>why</b>"

NOTEBOOK_CELLS = [
    # a small log in the writer's format, a hostile sku on line 2
    '''import json
from pathlib import Path

import cartforensics as cf
from cartforensics.present.widgets import TimelineScrubber


def rec(ts, type_, payload):
    return json.dumps({"ts": ts, "type": type_, "payload": payload}, separators=(",", ":"))


logs = Path("logs")
logs.mkdir(exist_ok=True)
lines = [
    rec("2025-11-01T08:00:00Z", "AddItem", {"item_id": 61520, "quantity": 1, "price": 34900,
        "sku": "61520", "name": "Gjutjärnsgryta 4 l, Skeppshult"}),
    rec("2025-11-01T08:01:00Z", "AddItem", {"quantity": 2, "price": 1000,
        "sku": "<img src=x onerror=alert(1)>", "name": "<script>alert(2)</script>"}),
    rec(1761984120, "ChangeQuantity", {"Id": 1, "quantity": 3}),
    rec("2025-11-01T08:03:00Z", "AddVoucher", {"code": "HÖSTREA"}),
    '{"ts":"2025-11-01T08:04:00Z","type":"RemoveItem","payload":{"Id":1}}{"ts":1}',
    rec("2025-11-01T08:05:00Z", "ChangeQuantity", {"Id": 2, "quantity": 5}),
]
(logs / "cart-7.events.log").write_text("\\n".join(lines) + "\\n")''',
    '''events = cf.read_events(logs)
scrubber = TimelineScrubber(cf.replay(events), cart_id="cart-7", notes="notes.json")
scrubber.seek(line=1)
scrubber''',
]


def browser_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("CARTFORENSICS_REQUIRE_BROWSER") == "1"


def _need(ok: bool, reason: str) -> None:
    if not ok:
        if browser_required():
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def playwright_api():
    _need(CHROMIUM.exists(), f"{CHROMIUM} not found: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright Python package is not installed: pip install playwright")
    with sync_playwright() as p:
        yield p


def test_scrubber_in_jupyterlab(playwright_api, tmp_path):
    root = tmp_path / "root"
    home = tmp_path / "home"
    root.mkdir()
    home.mkdir()
    write_notebook(root / "scrubber.ipynb", NOTEBOOK_CELLS)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser_scrubber.png"
    dialogs: list[str] = []
    with JupyterLab(root, home) as lab:
        browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1500})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(lab.url("lab/tree/scrubber.ipynb"), wait_until="domcontentloaded")
            try:
                _run_all(page)
                scrubber = page.locator(".cf-scrubber")
                scrubber.wait_for(state="visible", timeout=60_000)
                go_state = page.locator(".cf-scrubber .cf-go-state")
                go_state.wait_for(state="visible")
                line = page.locator(".cf-scrubber .cf-line")
                assert "Line 1 of 6" in line.inner_text()
                before = go_state.inner_text()
                assert HOSTILE_SKU not in before

                # a step forward: line 2 adds the hostile item
                page.locator(".cf-scrubber .cf-step-forward").click()
                page.wait_for_function(
                    "() => document.querySelector('.cf-scrubber .cf-line')"
                    ".innerText.includes('Line 2 of 6')", timeout=20_000)
                page.wait_for_function(
                    "s => document.querySelector('.cf-scrubber .cf-go-state')"
                    ".innerText.includes(s)", arg=HOSTILE_SKU, timeout=20_000)
                after = go_state.inner_text()
                assert after != before
                assert "2 items" in after
                # the hostile sku and name as text in the scrubber: the line and the state
                assert HOSTILE_SKU in line.inner_text()
                assert HOSTILE_NAME in after
                assert scrubber.get_by_text(HOSTILE_SKU).first.is_visible()

                # the keyboard: ArrowRight on the focused slider's handle moves on a line
                page.locator(".cf-scrubber .noUi-handle").first.focus()
                page.keyboard.press("ArrowRight")
                page.wait_for_function(
                    "() => document.querySelector('.cf-scrubber .cf-line')"
                    ".innerText.includes('Line 3 of 6')", timeout=20_000)

                # hostile text is text: no element made of it, the literal text visible
                assert page.locator(".cf-scrubber img").count() == 0
                assert page.locator("img[src='x']").count() == 0
                assert page.locator(".cf-scrubber script").count() == 0
                assert HOSTILE_NAME in go_state.inner_text()
                # export: the state JSON and the history appear in the output area
                page.locator(".cf-scrubber .cf-export").click()
                page.wait_for_function(
                    "() => document.querySelector('.cf-scrubber').innerText"
                    ".includes('History (go mode, 6 lines)')", timeout=20_000)
                assert page.locator(".cf-scrubber img").count() == 0
                page.wait_for_timeout(300)  # an onerror would have fired by now
                assert dialogs == []
                _tidy(page)
                scrubber.scroll_into_view_if_needed()
                page.screenshot(path=str(shot), full_page=True)
                scrubber.screenshot(path=str(ARTIFACTS / "browser_scrubber_widget.png"))
                _workbench(page, root, dialogs)
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), full_page=True)
                print("---- jupyter lab log (tail) ----\n" + lab.log())
                raise
        finally:
            browser.close()
    assert shot.exists() and shot.stat().st_size > 10_000


def _workbench(page, root: Path, dialogs: list[str]) -> None:
    """The investigation on line 3: the strip, a hostile note written through the widget and
    found in the notes file, blame choosing a field, and a screenshot of it all."""
    from cartforensics import Notes

    scrubber = page.locator(".cf-scrubber")
    # the timeline strip above the slider: both modes' marks, the cursor
    for sel in (".cf-strip svg.cfw-strip-go", ".cf-strip svg.cfw-strip-lenient",
                ".cf-strip-cursor svg.cfw-strip-cursor"):
        assert page.locator(f".cf-scrubber {sel}").first.is_visible(), sel
    assert page.locator(".cf-scrubber .cfw-strip-go rect").count() >= 3  # runs of outcomes
    assert "line 3" in page.locator(".cf-scrubber .cf-strip-cursor").inner_text()

    # a note on line 3, tagged, through the widget
    page.locator(".cf-scrubber .cf-note-text textarea").fill(HOSTILE_NOTE)
    page.locator(".cf-scrubber button.cf-tag-evidence").click()
    page.locator(".cf-scrubber .cf-note-tags input").fill("ts, <i>clock</i>")
    page.wait_for_timeout(300)  # the text reaches the kernel before the click
    page.locator(".cf-scrubber button.cf-note-save").click()
    notes = page.locator(".cf-scrubber .cf-line-notes")
    page.wait_for_function(
        "s => document.querySelector('.cf-scrubber .cf-line-notes').innerText.includes(s)",
        arg=HOSTILE_NOTE, timeout=20_000)
    assert "notes on line 3" in notes.inner_text()
    assert "<i>clock</i>" in notes.inner_text()  # a hostile tag, as text
    listed = page.locator(".cf-scrubber .cf-notes-list select")
    # (ipywidgets' Select shows spaces as no-break spaces)
    assert "cart-7 · line 3 · evidence, ts, <i>clock</i>" in listed.inner_text().replace(
        "\xa0", " ")
    assert page.locator(".cf-scrubber .cfw-strip-notes rect").count() == 1
    # the notes file, read again from disk, holds it
    saved = list(Notes(root / "notes.json"))
    assert [(n["cart_id"], n["line"], n["note"], n["tags"]) for n in saved] == [
        ("cart-7", 3, HOSTILE_NOTE, ["evidence", "ts", "<i>clock</i>"])]
    # hostile text is text
    assert page.locator(".cf-scrubber img").count() == 0
    for sel in (".cf-line-notes i", ".cf-line-notes b", ".cf-strip i", ".cf-strip b"):
        assert page.locator(f".cf-scrubber {sel}").count() == 0, sel  # (icons are <i> too)

    # blame: choosing items[0].qty (set by line 1: line 3 is dropped in go mode) jumps there
    blame = page.locator(".cf-scrubber .cf-blame-go select")
    blame.wait_for(state="visible")
    labels = [t.replace("\xa0", " ") for t in
              blame.evaluate("s => [...s.options].map(o => o.textContent)")]
    k = next((i for i, t in enumerate(labels) if "items[0].qty" in t), None)
    assert k is not None, labels
    # go kept line 1's quantity; lenient applied line 3's: the two blames differ (≠)
    assert labels[k].startswith("≠ items[0].qty = 1") and "line 1 AddItem" in labels[k]
    blame.select_option(index=k)
    page.wait_for_function(
        "() => document.querySelector('.cf-scrubber .cf-line')"
        ".innerText.includes('Line 1 of 6')", timeout=20_000)
    # back to the note, for the picture: notes, blame and the strip together
    page.locator(".cf-scrubber button.cf-next-note").click()
    page.wait_for_function(
        "() => document.querySelector('.cf-scrubber .cf-line')"
        ".innerText.includes('Line 3 of 6')", timeout=20_000)
    page.locator(".cf-scrubber .cf-blame-lenient select").wait_for(state="visible")
    page.wait_for_timeout(300)
    assert dialogs == []
    # tall enough that JupyterLab's notebook panel holds the whole scrubber, blame included
    page.set_viewport_size({"width": 1400, "height": 2900})
    page.wait_for_timeout(500)
    scrubber.scroll_into_view_if_needed()
    scrubber.screenshot(path=str(ARTIFACTS / "browser_workbench.png"))
    assert (ARTIFACTS / "browser_workbench.png").stat().st_size > 10_000
    _skip_a_line(page, dialogs)


def _skip_a_line(page, dialogs: list[str]) -> None:
    """On line 3, "skip this line" switches it off (the line says so, both strips mark it
    skipped) and a second press switches it on again (the view as before)."""
    line = page.locator(".cf-scrubber .cf-line")
    assert "Line 3 of 6" in line.inner_text()
    go_before = page.locator(".cf-scrubber .cf-go-state").inner_text()
    skip = page.locator(".cf-scrubber button.cf-skip")
    skip.click()
    page.wait_for_function(
        "() => document.querySelector('.cf-scrubber .cf-line').innerText"
        ".includes('this line is switched off')", timeout=20_000)
    assert "Skipped: line 3." in page.locator(".cf-scrubber").inner_text()
    for row in ("go", "lenient"):
        assert page.locator(f".cf-scrubber .cfw-strip-{row} rect[data-outcome='skipped']"
                            ).count() == 1, row
    skip.click()
    page.wait_for_function(
        "() => !document.querySelector('.cf-scrubber .cf-line').innerText"
        ".includes('this line is switched off')", timeout=20_000)
    assert "Skipped: line" not in page.locator(".cf-scrubber").inner_text()
    assert page.locator(".cf-scrubber rect[data-outcome='skipped']").count() == 0
    assert page.locator(".cf-scrubber .cf-go-state").inner_text() == go_before
    assert page.locator(".cf-scrubber img").count() == 0 and dialogs == []


def _run_all(page, timeout: float = 90.0) -> None:
    """Run every cell from the Run menu once the notebook's kernel is connected and idle.

    A run requested while the session is still connecting opens a "Select Kernel" dialog
    and runs nothing: then dismiss the dialog (accepting it would start a second kernel),
    wait and ask again, until the first cell is running or has run."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=60_000)
    deadline = time.monotonic() + timeout
    while True:
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
            ".some(e => /\\| Idle$/.test(e.innerText.trim()))", timeout=60_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "() => { if (document.querySelector('.jp-Dialog')) return false;"
                " const p = document.querySelector('.jp-Notebook .jp-Cell .jp-InputPrompt');"
                " return p && /\\[(\\*|\\d+)\\]/.test(p.innerText); }",
                timeout=10_000)
            return
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            page.keyboard.press("Escape")
            dialog.first.wait_for(state="detached", timeout=10_000)
        page.wait_for_timeout(2000)


def _tidy(page) -> None:
    """Collapse the left side panel so that the screenshot shows the notebook wide."""
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if tab.count():
        tab.first.click()
        page.wait_for_timeout(500)
