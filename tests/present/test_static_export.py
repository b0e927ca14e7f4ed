"""An executed notebook exported with ``jupyter nbconvert --to html`` shows each timeline as a
working view offline: the same ES module draws it from data embedded in the page.

The notebook of tests/present/test_browser.py (a hostile sku, name and cart id) is executed
with nbclient as ``jupyter nbconvert --execute`` does (the widget state saved in the
notebook: nbconvert then prefers the widget's own output, whose manager comes from a CDN),
exported with nbconvert's HTMLExporter, and opened from a ``file:`` URL in Debian's
Chromium with every request that is not ``file:`` aborted. The timeline is there, stepping
it changes the state shown (to ``Replay.state_at`` of that line), and hostile text is text.
"""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
from browser.lab import open_offline, write_notebook
from nbconvert import HTMLExporter
from test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    HOSTILE_NAME,
    HOSTILE_SKU,
    NOTEBOOK_CELLS,
    READ_TABLE,
    playwright_api,  # noqa: F401 (the fixture)
)

ROOT = Path(__file__).resolve().parents[2]
VIEW = ".cf-scrubber.cft-static"


def _export(tmp_path: Path) -> Path:
    nb_path = write_notebook(tmp_path / "scrubber.ipynb", NOTEBOOK_CELLS)
    nb = nbformat.read(nb_path, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert "widgets" in nb.metadata  # the widget state was saved, as --execute does
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = tmp_path / "scrubber.html"
    out.write_text(body, encoding="utf-8")
    return out


def test_exported_notebook_steps_offline(playwright_api, tmp_path):  # noqa: F811
    import cartforensics as cf

    page_path = _export(tmp_path)
    go = cf.replay(cf.read_events(tmp_path / "logs"))
    browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS, headless=True)
    try:
        page, blocked, dialogs = open_offline(browser, page_path, height=800)
        view = page.locator(VIEW)
        view.wait_for(state="visible", timeout=20_000)
        assert "Line 1 of 6" in page.locator(f"{VIEW} .cf-line").inner_text()

        def shown() -> list[tuple[str, str]]:
            rows = page.evaluate(READ_TABLE, f"{VIEW} .cf-go-state table.cft-items") or []
            return [(r["sku"], r["qty"]) for r in rows]

        def wanted(p: int) -> list[tuple[str, str]]:
            return [(i["sku"], str(i["qty"])) for i in go.state_at("cart-7", line=p)["items"]]

        assert shown() == wanted(1)
        before = page.locator(f"{VIEW} .cf-go-state").inner_text()
        page.locator(f"{VIEW} .cf-step-forward").click()
        assert "Line 2 of 6" in page.locator(f"{VIEW} .cf-line").inner_text()
        assert page.locator(f"{VIEW} .cf-go-state").inner_text() != before
        assert shown() == wanted(2)
        assert HOSTILE_NAME in page.locator(f"{VIEW} .cf-go-state").inner_text()
        page.locator(f"{VIEW} .cf-end").click()
        assert shown() == wanted(6)
        page.locator(f"{VIEW} .cf-slider").focus()
        page.keyboard.press("Home")
        assert "Start" in page.locator(f"{VIEW} .cf-line").inner_text() and shown() == []
        # hostile text is text: no element made of it, no script of it ran
        assert page.locator(f"{VIEW} .cf-go-state td").filter(has_text=HOSTILE_SKU).count() == 0
        page.locator(f"{VIEW} .cf-step-forward").click()
        page.locator(f"{VIEW} .cf-step-forward").click()
        assert page.locator(f"{VIEW} .cf-go-state td").filter(
            has_text=HOSTILE_SKU).first.is_visible()
        page.wait_for_timeout(200)
        assert page.locator("img[src='x']").count() == 0
        assert page.evaluate("() => window.__cfpwned") is None and dialogs == []
        # the live-only controls are not offered; what the copy holds is said
        assert page.locator(f"{VIEW} .cf-skip").count() == 0
        assert "holds every position" in page.locator(f"{VIEW} .cf-static-note").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        view.screenshot(path=str(ARTIFACTS / "static_export.png"))
    finally:
        browser.close()
    assert all(not u.startswith("file:") for u in blocked)
