"""The scrubber in a real JupyterLab, driven by headless Chromium through Playwright.

Starts ``jupyter lab`` on 127.0.0.1 (random token, free port, a temporary root), writes a
notebook that builds a TimelineScrubber over a small log holding a hostile sku, name and cart
id, runs it, and checks in the browser what an analyst does: move the slider (the state shown
is ``Replay.state_at`` of that line), skip a line and take it back, add a (hostile) note that
the notes file then holds, choose a field in the blame, switch cart, export; that hostile text
shows as text (no element made of it, a window marker its script would set stays unset); and
that at 1280 and at 800 px wide no element of the view is wider than its cell and nothing
scrolls sideways. Screenshots go to ``test-artifacts/`` (git-ignored).

Needs Debian's Chromium at /usr/bin/chromium and the ``playwright`` Python package (never
``playwright install``: no browser download). Skipped without them, except in CI (``CI=true``
or ``CARTFORENSICS_REQUIRE_BROWSER=1``), where they are required and their absence fails.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from browser.lab import JupyterLab, write_notebook

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE_TYPE = "<b>Evil</b><img src=x onerror=__cfpwned=3>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE_SKU = "<img src=x onerror=alert(1)>"
HOSTILE_NAME = "<script>alert(2)</script>"
HOSTILE_NOTE = "<img src=x onerror=alert(7)> the writer's numeric ts & <b>why</b>"

HOSTILE_CART = "<img src=x onerror=window.__cfpwned=1>"  # a file name: no slash
LOG_LINES = [
    ("2025-11-01T08:00:00Z", "AddItem", {"item_id": 61520, "quantity": 1, "price": 34900,
                                         "sku": "61520", "name": "Gjutjärnsgryta 4 l"}),
    ("2025-11-01T08:01:00Z", "AddItem", {"quantity": 2, "price": 1000, "sku": HOSTILE_SKU,
                                         "name": HOSTILE_NAME}),
    (1761984120, "ChangeQuantity", {"Id": 1, "quantity": 3}),
    ("2025-11-01T08:03:00Z", "AddVoucher", {"code": "HÖSTREA"}),
    None,  # a glued line
    ("2025-11-01T08:05:00Z", "ChangeQuantity", {"Id": 2, "quantity": 5}),
]
NOTEBOOK_CELLS = [
    # a small log in the writer's format: a hostile sku on line 2, a hostile cart id
    f'''import json
from pathlib import Path

import cartforensics as cf
from cartforensics.present.widgets import TimelineScrubber


def rec(ts, type_, payload):
    return json.dumps({{"ts": ts, "type": type_, "payload": payload}}, separators=(",", ":"))


glued = '{{"ts":"2025-11-01T08:04:00Z","type":"RemoveItem","payload":{{"Id":1}}}}{{"ts":1}}'
logs = Path("logs")
logs.mkdir(exist_ok=True)
lines = [glued if x is None else rec(*x) for x in {LOG_LINES!r}]
(logs / "cart-7.events.log").write_text("\\n".join(lines) + "\\n")
evil = {{"quantity": 1, "price": 100, "sku": "ok",
        "name": "</script><script>window.__cfpwned=2"}}
(logs / {(HOSTILE_CART + ".events.log")!r}).write_text(
    rec("2025-11-01T09:00:00Z", "AddItem", evil) + "\\n")''',
    '''events = cf.read_events(logs)
scrubber = TimelineScrubber(cf.replay(events), cart_id="cart-7", notes="notes.json")
scrubber.seek(line=1)
scrubber''',
]
# the state a table shows: [{header: text}] per row of a table under ``sel`` (struck rows out)
READ_TABLE = """sel => {
  const t = document.querySelector(sel);
  if (!t) return null;
  const heads = [...t.querySelectorAll('thead th')].map(x => x.textContent);
  return [...t.querySelectorAll('tbody tr:not(.cft-del)')].map(tr => Object.fromEntries(
    [...tr.children].map((td, k) => [heads[k], td.lastChild ? td.lastChild.textContent : ''])));
}"""
# what is wider than its cell: elements of the view past the view's edges, the view past its
# output area, and anything that scrolls sideways (the notebook's panel included)
OVERFLOW = """sel => {
  const root = document.querySelector(sel);
  const R = root.getBoundingClientRect();
  const bad = [];
  const out = root.closest('.jp-OutputArea-output') || root.parentElement;
  const O = out.getBoundingClientRect();
  if (R.right > O.right + 1) bad.push('view ' + R.right + ' > output ' + O.right);
  for (const e of [root, ...root.querySelectorAll('*')]) {
    if (!e.getClientRects().length) continue;
    const r = e.getBoundingClientRect();
    if (!r.width) continue;
    const name = e.tagName + '.' + (e.className.baseVal ?? e.className);
    if (r.right > R.right + 1 || r.left < R.left - 1)
      bad.push(name + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
    if (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'hidden'
        && getComputedStyle(e).overflowX !== 'visible') bad.push('scrolls: ' + name);
  }
  for (const e of document.querySelectorAll('.jp-WindowedPanel-outer, .jp-OutputArea-output'))
    if (e.scrollWidth > e.clientWidth + 1) bad.push('scrolls: ' + e.className);
  return bad;
}"""


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


def _state_shown(page, mode: str) -> list[tuple[str, str]]:
    rows = page.evaluate(READ_TABLE,
                         f".cf-scrubber.cft-live .cf-{mode}-state table.cft-items") or []
    return [(r["sku"], r["qty"]) for r in rows]


def _state_wanted(rp, position: int) -> list[tuple[str, str]]:
    return [(i["sku"], str(i["qty"])) for i in rp.state_at("cart-7", line=position)["items"]]


def _wait_line(page, text: str) -> None:
    page.wait_for_function(
        "s => { const e = document.querySelector('.cf-scrubber.cft-live .cf-line');"
        " return e && e.innerText.includes(s); }", arg=text, timeout=20_000)


def _open_details(page) -> None:
    page.evaluate("() => document.querySelectorAll('.cf-scrubber.cft-live details')"
                  ".forEach(d => { d.open = true; })")


def test_scrubber_in_jupyterlab(playwright_api, tmp_path):
    import cartforensics as cf
    from cartforensics import Notes

    root = tmp_path / "root"
    home = tmp_path / "home"
    root.mkdir()
    home.mkdir()
    write_notebook(root / "scrubber.ipynb", NOTEBOOK_CELLS)
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with JupyterLab(root, home) as lab:
        browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(lab.url("lab/tree/scrubber.ipynb"), wait_until="domcontentloaded")
            try:
                _run_all(page)
                scrubber = page.locator(".cf-scrubber.cft-live")
                scrubber.wait_for(state="visible", timeout=60_000)
                _wait_line(page, "Line 1 of 6")
                # the static copy beside the live widget (for HTML exports) is not shown here
                copy = page.locator(".cft-notebook-copy")
                assert copy.count() == 1 and not copy.is_visible()
                go = cf.replay(cf.read_events(root / "logs"))
                le = cf.replay(go.events, mode="lenient")
                assert _state_shown(page, "go") == _state_wanted(go, 1)

                # the slider: ArrowRight on it moves on a line; the state is state_at(2)
                page.locator(".cf-scrubber.cft-live .cf-slider").focus()
                page.keyboard.press("ArrowRight")
                _wait_line(page, "Line 2 of 6")
                page.wait_for_function(
                    "s => document.querySelector('.cf-scrubber.cft-live .cf-go-state').innerText"
                    ".includes(s)", arg=HOSTILE_SKU, timeout=20_000)
                assert _state_shown(page, "go") == _state_wanted(go, 2)
                assert _state_shown(page, "lenient") == _state_wanted(le, 2)
                go_state = page.locator(".cf-scrubber.cft-live .cf-go-state")
                assert HOSTILE_NAME in go_state.inner_text()
                assert page.locator(".cf-scrubber.cft-live .cf-go-state td").filter(
                    has_text=HOSTILE_SKU).first.is_visible()
                # the step buttons carry text; line 3 (a numeric ts) splits the modes
                page.locator(".cf-scrubber.cft-live .cf-step-forward").click()
                _wait_line(page, "Line 3 of 6")
                assert _state_shown(page, "go") == _state_wanted(go, 3)
                assert _state_shown(page, "lenient") == _state_wanted(le, 3)
                for sel in (".cf-step-back", ".cf-step-forward", ".cf-end", ".cf-start",
                            ".cf-prev-problem", ".cf-next-problem", ".cf-skip", ".cf-export"):
                    assert page.locator(f".cf-scrubber.cft-live {sel}").inner_text().strip(), sel
                _no_hostile_elements(page, dialogs)
                _skip_a_line(page, go)
                _note(page, root)
                assert [(n["cart_id"], n["line"], n["note"]) for n in Notes(root / "notes.json")
                        ] == [("cart-7", 3, HOSTILE_NOTE)]
                _blame(page)
                _layout(page)
                _switch_cart(page)
                _no_hostile_elements(page, dialogs)
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), full_page=True)
                print("---- jupyter lab log (tail) ----\n" + lab.log())
                raise
        finally:
            browser.close()


def _no_hostile_elements(page, dialogs: list[str]) -> None:
    page.wait_for_timeout(200)  # an onerror would have fired by now
    assert page.locator(".cf-scrubber.cft-live img").count() == 0
    assert page.locator("img[src='x']").count() == 0
    assert page.locator(".cf-scrubber.cft-live script").count() == 0
    assert page.evaluate("() => window.__cfpwned") is None
    assert dialogs == []


def _skip_a_line(page, go) -> None:
    """On line 3, "skip this line" switches it off (the line says so, both strips mark it,
    the state is the replay without it) and "use this line again" switches it back on."""
    go_before = _state_shown(page, "go")
    page.locator(".cf-scrubber.cft-live .cf-skip").click()
    page.wait_for_function(
        "() => document.querySelector('.cf-scrubber.cft-live .cf-line').innerText"
        ".includes('this line is switched off')", timeout=20_000)
    assert "Skipped: line 3." in page.locator(".cf-scrubber.cft-live .cf-skip-text").inner_text()
    for row in ("go", "lenient"):
        assert page.locator(f".cf-scrubber.cft-live .cfw-strip-{row} rect[data-outcome='skipped']"
                            ).count() == 1, row
    assert page.locator(".cf-scrubber.cft-live .cf-skip").inner_text() == "use this line again"
    page.locator(".cf-scrubber.cft-live .cf-skip").click()
    page.wait_for_function(
        "() => !document.querySelector('.cf-scrubber.cft-live .cf-line').innerText"
        ".includes('this line is switched off')", timeout=20_000)
    assert page.locator(".cf-scrubber.cft-live rect[data-outcome='skipped']").count() == 0
    assert _state_shown(page, "go") == go_before == _state_wanted(go, 3)


def _note(page, root: Path) -> None:
    page.locator(".cf-scrubber.cft-live .cf-notes > summary").click()
    page.locator(".cf-scrubber.cft-live .cf-note-text").fill(HOSTILE_NOTE)
    page.locator(".cf-scrubber.cft-live .cf-tag-evidence").click()
    page.locator(".cf-scrubber.cft-live .cf-note-save").click()
    page.wait_for_function(
        "s => document.querySelector('.cf-scrubber.cft-live .cf-line-notes').innerText.includes(s)",
        arg=HOSTILE_NOTE, timeout=20_000)
    notes = page.locator(".cf-scrubber.cft-live .cf-line-notes").inner_text()
    assert "notes on line 3" in notes and "evidence" in notes
    assert page.locator(".cf-scrubber.cft-live .cfw-strip-notes rect").count() == 1
    listed = page.locator(".cf-scrubber.cft-live .cf-notes-list").inner_text()
    assert "cart-7 · line 3 · evidence" in listed
    assert page.locator(".cf-scrubber.cft-live .cf-line-notes b").count() == 0


def _blame(page) -> None:
    """Blame: find items[0].qty (go kept line 1's quantity, lenient applied line 3's: they
    differ) and choose it: the view goes to line 1."""
    page.locator(".cf-scrubber.cft-live .cf-blame > summary").click()
    page.locator(".cf-scrubber.cft-live .cf-blame-search").fill("items[0].qty")
    row = page.locator(".cf-scrubber.cft-live .cf-blame-go .cf-blame-row")
    assert row.count() == 1
    text = row.first.inner_text()
    assert "items[0].qty = 1" in text and "line 1 AddItem" in text and "≠" in text
    row.first.click()
    _wait_line(page, "Line 1 of 6")


def _layout(page) -> None:
    """At 1280 and 800 px wide, everything open: nothing wider than its cell, nothing scrolls
    sideways; the default view (details folded) fits about 900 px high at 1280."""
    _tidy(page)
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(400)
        page.evaluate("() => document.querySelectorAll('.cf-scrubber.cft-live details')"
                      ".forEach(d => { d.open = false; })")
        if width == 1280:
            height = page.locator(".cf-scrubber.cft-live").bounding_box()["height"]
            assert height <= 950, height
            sides = [page.locator(f".cf-scrubber.cft-live .cf-{m}-state").bounding_box()
                     for m in ("go", "lenient")]
            assert abs(sides[0]["y"] - sides[1]["y"]) < 2  # side by side
        _shoot(page, f"browser_scrubber_{width}.png")
        _open_details(page)
        page.wait_for_timeout(300)
        bad = page.evaluate(OVERFLOW, ".cf-scrubber.cft-live")
        assert bad == [], (width, bad)
        if width == 800:
            sides = [page.locator(f".cf-scrubber.cft-live .cf-{m}-state").bounding_box()
                     for m in ("go", "lenient")]
            assert sides[1]["y"] > sides[0]["y"] + 50  # stacked
        _shoot(page, f"browser_scrubber_{width}_open.png")
    page.set_viewport_size({"width": 1280, "height": 800})


def _shoot(page, name: str) -> None:
    """A picture of the whole view: the page made tall enough for the notebook to hold it."""
    width = page.viewport_size["width"]
    page.set_viewport_size({"width": width, "height": 2600})
    page.wait_for_timeout(300)
    page.locator(".cf-scrubber.cft-live").scroll_into_view_if_needed()
    page.locator(".cf-scrubber.cft-live").screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size({"width": width, "height": 800})
    page.wait_for_timeout(200)


def _switch_cart(page) -> None:
    """The picker opens the hostile cart: its id shows as text, nothing of it runs."""
    page.locator(".cf-scrubber.cft-live .cf-cart-select").select_option(value=HOSTILE_CART)
    page.wait_for_function(
        "s => document.querySelector('.cf-scrubber.cft-live .cf-cart-id').textContent === s",
        arg=HOSTILE_CART, timeout=20_000)
    _wait_line(page, "of 1")
    assert "</script><script>window.__cfpwned=2" in page.locator(
        ".cf-scrubber.cft-live .cf-go-state").inner_text()


def _run_all(page, timeout: float = 90.0, status_bar: bool = True) -> None:
    """Run every cell from the Run menu once the notebook's kernel is connected and idle.

    A run requested while the session is still connecting opens a "Select Kernel" dialog
    and runs nothing: then dismiss the dialog (accepting it would start a second kernel), or,
    where it stays (Notebook 7 without a kernel yet), accept its preferred kernel; wait and
    ask again, until a code cell is running or has run (Notebook 7 draws only the
    cells in view). ``status_bar``: wait for JupyterLab's status bar to say the kernel is
    idle first (Notebook 7 has none)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=60_000)
    deadline = time.monotonic() + timeout
    while True:
        if status_bar:
            page.wait_for_function(
                "() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]"
                ".some(e => /\\| Idle$/.test(e.innerText.trim()))", timeout=60_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(
                "() => { if (document.querySelector('.jp-Dialog')) return false;"
                " return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell"
                " .jp-InputPrompt')].some(p => /\\[(\\*|\\d+)\\]/.test(p.innerText)); }",
                timeout=10_000)
            return
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            page.keyboard.press("Escape")
            try:
                dialog.first.wait_for(state="detached", timeout=5_000)
            except PlaywrightTimeout:  # Notebook 7 keeps it open: the notebook has no kernel
                dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click()  # start one
                dialog.first.wait_for(state="detached", timeout=10_000)
        page.wait_for_timeout(2000)


def _tidy(page) -> None:
    """Collapse the left side panel so that the screenshot shows the notebook wide."""
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if tab.count():
        tab.first.click()
        page.wait_for_timeout(500)


# -- the fleet dashboard -----------------------------------------------------------------------
DASHBOARD_CELLS = [
    '''from pathlib import Path

import cartforensics as cf

ev = cf.read_events([Path(SAMPLE), Path("hostile")], progress=False)
go, le = cf.replay(ev), cf.replay(ev, mode="lenient")
dash = cf.FleetDashboard(go, lenient=le)
dash''',
]
# a click in the page, timed until the charts are drawn again and until the kernel's answer
# (the worst carts) is drawn: [charts ms, answer ms]
TIMED_CLICK = """([sel, key]) => new Promise(resolve => {
  const root = document.querySelector('.cf-dashboard');
  const draws = root.dataset.draws, view = root.dataset.view;
  const t0 = performance.now();
  let charts = null;
  const target = document.querySelector(sel);
  if (key) { target.stepUp(); target.dispatchEvent(new Event('input', {bubbles: true})); }
  else target.click();
  const poll = () => {
    if (charts === null && root.dataset.draws !== draws) charts = performance.now() - t0;
    if (charts !== null && root.dataset.view !== view)
      return resolve([charts, performance.now() - t0]);
    if (performance.now() - t0 > 20000) return resolve([charts, null]);
    requestAnimationFrame(poll);
  };
  poll();
})"""
# per rate point: [series, bin, numerator, denominator, x]; per bar: [bin, outcome, n, x, width]
READ_CHART = """() => {
  const svg = document.querySelector('.cf-dashboard .cfd-svg');
  const pts = [...svg.querySelectorAll('.cfd-pt')].map(c => [
    c.parentNode.getAttribute('class').replace('cfd-rate cfd-rate-', ''), +c.dataset.bin,
    +c.dataset.num, +c.dataset.den, +c.getAttribute('cx')]);
  const bars = [...svg.querySelectorAll('.cfd-bar')].map(r => [
    +r.dataset.bin, r.dataset.outcome, +r.dataset.n, +r.getAttribute('x'),
    +r.getAttribute('width')]);
  return {pts, bars};
}"""


def test_dashboard_in_jupyterlab(playwright_api, tmp_path):
    """The dashboard on the sample corpus: filtered to handler errors, each rate point is
    that window's handler errors over all its lines (checked against the replay) and lines
    up with the same window's bar; a chosen rare type stays in view; "open" lands on the
    first matched line; nothing wider than its cell at 1280 and 800 px. Prints the filter
    and date-step timings measured in the page."""
    import pandas as pd

    import cartforensics as cf

    root = tmp_path / "root"
    home = tmp_path / "home"
    root.mkdir()
    home.mkdir()
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    write_notebook(root / "dashboard.ipynb",
                   [f"SAMPLE = {str(sample)!r}\n" + DASHBOARD_CELLS[0]])
    # beside the sample corpus, a cart with a hostile id, sku and type (an unknown type)
    (root / "hostile").mkdir()
    (root / "hostile" / f"{HOSTILE_CART}.events.log").write_text("\n".join(
        json.dumps({"ts": f"2025-11-01T09:0{k}:00Z", "type": t, "payload": p})
        for k, (t, p) in enumerate([
            ("AddItem", {"quantity": 1, "price": 100, "sku": HOSTILE_SKU, "name": HOSTILE_NAME}),
            (HOSTILE_TYPE, {"x": 1})])) + "\n")
    ARTIFACTS.mkdir(exist_ok=True)
    go = cf.replay(cf.read_events([sample, root / "hostile"], progress=False))
    ts, outcome = go.outcomes["ts"], go.outcomes["outcome"].astype(str)
    with JupyterLab(root, home) as lab:
        browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(lab.url("lab/tree/dashboard.ipynb"), wait_until="domcontentloaded")
            try:
                _run_all(page)
                page.locator(".cf-dashboard .cfd-pt").first.wait_for(state="attached",
                                                                      timeout=90_000)
                page.locator(".cf-dashboard .cfd-open").first.wait_for(timeout=30_000)
                summary = page.locator(".cf-dashboard .cfd-summary").inner_text()
                assert f"{len(outcome):,} of {len(outcome):,} lines" in summary
                _tidy(page)
                timings: dict[str, list[float]] = {"outcome filter": [], "date step": []}
                # handler errors only: switch every other outcome off, one click each
                for name in page.evaluate(
                        "() => [...document.querySelectorAll('.cf-dashboard .cfd-outcome')]"
                        ".map(c => c.dataset.outcome)"):
                    if name != "apply_error":
                        timings["outcome filter"].append(page.evaluate(TIMED_CLICK, [
                            f".cf-dashboard .cfd-outcome[data-outcome='{name}'] input", None]))
                page.wait_for_function(
                    "n => document.querySelector('.cf-dashboard .cfd-summary')"
                    ".innerText.startsWith(n + ' of')",
                    arg=f"{int((outcome == 'apply_error').sum()):,}", timeout=20_000)
                chart = page.evaluate(READ_CHART)
                meta = _chart_meta(page)
                start = pd.Timestamp(meta["start_ms"], unit="ms", tz="UTC")
                step = pd.Timedelta(milliseconds=meta["step_ms"])
                series = {p[0] for p in chart["pts"]}
                assert series == {"mutation_error_rate"}, series
                bar_at = {b[0]: b for b in chart["bars"]}
                assert {b[1] for b in chart["bars"]} == {"apply_error"}
                for _, b, num, den, x in chart["pts"]:
                    inside = (ts >= start + b * step) & (ts < start + (b + 1) * step)
                    assert den == int(inside.sum())  # every line of the window
                    assert num == int((inside & (outcome == "apply_error")).sum())
                    if num:
                        assert num < den  # not "100 % mutation errors"
                        bx = bar_at[b]
                        assert abs(bx[3] + bx[4] / 2 - x) < 1.5  # one time axis
                refused = outcome == "apply_error"
                assert sum(p[2] for p in chart["pts"]) == int((refused & ts.notna()).sum())
                # open: cart-1193 at its refused line 5
                page.locator(".cf-dashboard .cfd-open[data-cart='cart-1193']").click()
                page.wait_for_function(
                    "() => { const s = document.querySelector('.cf-scrubber.cft-live');"
                    " return s && s.querySelector('.cf-cart-id').textContent === 'cart-1193'"
                    " && s.querySelector('.cf-line').innerText.includes('Line 5 of'); }",
                    timeout=20_000)
                page.wait_for_function(  # the dashboard's status comes in its own message
                    "() => (document.querySelector('.cf-dashboard .cfd-status') || {})"
                    ".textContent?.includes('first line the filters match')", timeout=20_000)
                # the date slider, one window a step
                page.locator(".cf-dashboard .cfd-reset").click()
                for _ in range(4):
                    timings["date step"].append(page.evaluate(
                        TIMED_CLICK, [".cf-dashboard .cfd-date-from", "ArrowRight"]))
                _chosen_type_stays_visible(page)
                # hostile log text shows as text: the type's box, the cart in the table
                assert page.locator(".cf-dashboard .cfd-type").filter(
                    has_text=HOSTILE_TYPE).count() == 1
                page.locator(".cf-dashboard .cfd-types-none").click()
                page.locator(".cf-dashboard .cfd-type").filter(
                    has_text=HOSTILE_TYPE).locator("input").check()
                page.wait_for_function(
                    "s => [...document.querySelectorAll('.cf-dashboard .cfd-cart')]"
                    ".some(td => td.textContent === s)", arg=HOSTILE_CART, timeout=20_000)
                assert page.locator(".cf-dashboard img, .cf-dashboard script").count() == 0
                assert page.locator(".cf-dashboard b", has_text="Evil").count() == 0
                assert page.evaluate("() => window.__cfpwned") is None
                _dashboard_layout(page)
                for what, ms in timings.items():
                    charts = sorted(x[0] for x in ms)
                    answers = sorted(x[1] for x in ms)
                    print(f"dashboard {what}: charts redrawn {charts} ms, kernel's answer "
                          f"drawn {answers} ms")
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "browser_dashboard_failure.png"),
                                full_page=True)
                print("---- jupyter lab log (tail) ----\n" + lab.log())
                raise
        finally:
            browser.close()


def _chart_meta(page) -> dict:
    """The chart's first window and a window's length, as the view writes them on its root."""
    return page.evaluate("() => { const r = document.querySelector('.cf-dashboard');"
                         " return {start_ms: +r.dataset.startMs, step_ms: +r.dataset.stepMs}; }")


def _chosen_type_stays_visible(page) -> None:
    """Choose only the rarest type: its box stays listed, checked and in view, and the note
    under the list names it."""
    page.locator(".cf-dashboard .cfd-types-none").click()
    rare = page.locator(".cf-dashboard .cfd-type").last
    name = rare.locator(".cfd-chip-text").inner_text()
    rare.locator("input").check()
    page.wait_for_timeout(300)
    chosen = page.locator(".cf-dashboard .cfd-type.cfd-on")
    assert chosen.count() == 1 and chosen.first.is_visible()
    box = chosen.first.bounding_box()
    fieldset = page.locator(".cf-dashboard .cfd-types").bounding_box()
    assert fieldset["y"] <= box["y"]
    assert box["y"] + box["height"] <= fieldset["y"] + fieldset["height"] + 1
    assert name in page.locator(".cf-dashboard .cfd-types-note").inner_text()
    page.locator(".cf-dashboard .cfd-reset").click()


def _dashboard_layout(page) -> None:
    for width in (1280, 800):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_timeout(500)
        bad = page.evaluate(OVERFLOW, ".cf-dashboard")
        assert bad == [], (width, bad)
        page.set_viewport_size({"width": width, "height": 2000})
        page.wait_for_timeout(300)
        page.locator(".cf-dashboard").scroll_into_view_if_needed()
        page.locator(".cf-dashboard").screenshot(
            path=str(ARTIFACTS / f"browser_dashboard_{width}.png"))
    page.set_viewport_size({"width": 1280, "height": 800})
