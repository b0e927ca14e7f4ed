"""The quickstart (notebooks/01_quickstart.ipynb) in Notebook 7, driven by Debian's Chromium.

Serves a copy of the notebook with ``jupyter notebook`` on 127.0.0.1 (a free port, a random
token, its own process group, stopped on exit; tests/present/browser/lab.py), runs every cell,
and checks that the scrubber renders as the live widget (its static copy for HTML exports
hidden), and that a step on the slider shows the state ``Replay.state_at`` gives for that
line, in both modes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from browser.lab import JupyterLab
from test_browser import (  # noqa: F401
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    READ_TABLE,
    _run_all,
    playwright_api,
)

ROOT = Path(__file__).resolve().parents[2]
LIVE = ".cf-scrubber.cft-live"


def _items(page, mode: str) -> list[tuple[str, str]]:
    rows = page.evaluate(READ_TABLE, f"{LIVE} .cf-{mode}-state table.cft-items") or []
    return [(r["sku"], r["qty"]) for r in rows]


def _wanted(rp, cart: str, line: int) -> list[tuple[str, str]]:
    return [(i["sku"], str(i["qty"])) for i in rp.state_at(cart, line=line)["items"]]


def _start_session(server, path: str) -> None:
    """Start the notebook's kernel through the server's REST API before the page opens:
    Notebook 7 opened on a notebook without a session asks which kernel to start, in a
    dialog that a run can race with."""
    import json
    import urllib.request

    body = json.dumps({"path": path, "type": "notebook", "name": path,
                       "kernel": {"name": "python3"}}).encode()
    req = urllib.request.Request(f"{server.base}/api/sessions", data=body, method="POST",
                                 headers={"Authorization": f"token {server.token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 201, resp.status


def test_quickstart_in_notebook7(playwright_api, tmp_path):  # noqa: F811
    import cartforensics as cf

    root = tmp_path / "root"
    home = tmp_path / "home"
    root.mkdir()
    home.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", root)
    (root / "sample_data").symlink_to(ROOT / "sample_data")  # where the notebook looks
    ev = cf.read_events(ROOT / "sample_data", progress=False)
    go, le = cf.replay(ev), cf.replay(ev, mode="lenient")
    ARTIFACTS.mkdir(exist_ok=True)
    with JupyterLab(root, home, app="notebook") as server:
        browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
        try:
            _start_session(server, "01_quickstart.ipynb")  # no "Select Kernel" dialog
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url("notebooks/01_quickstart.ipynb"),
                      wait_until="domcontentloaded")
            try:
                _run_all(page, status_bar=False)
                line = page.locator(f"{LIVE} .cf-line")
                line.wait_for(state="visible", timeout=120_000)
                copy = page.locator(".cft-notebook-copy")
                assert copy.count() == 1 and not copy.is_visible()
                cart = page.locator(f"{LIVE} .cf-cart-id").inner_text()
                p = int(page.locator(f"{LIVE} .cf-slider").input_value())
                assert f"Line {p} of" in line.inner_text()
                assert _items(page, "go") == _wanted(go, cart, p)
                # the slider moved one step on, as a drag does: its value, then its input event
                page.locator(f"{LIVE} .cf-slider").evaluate(
                    "s => { s.stepUp(); s.dispatchEvent(new Event('input', {bubbles: true})); }")
                page.wait_for_function(
                    "([sel, s]) => document.querySelector(sel).innerText.includes(s)",
                    arg=[f"{LIVE} .cf-line", f"Line {p + 1} of"], timeout=20_000)
                assert _items(page, "go") == _wanted(go, cart, p + 1)
                assert _items(page, "lenient") == _wanted(le, cart, p + 1)
                page.locator(LIVE).screenshot(path=str(ARTIFACTS / "notebook7_scrubber.png"))
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "notebook7_failure.png"), full_page=True)
                print("---- jupyter notebook log (tail) ----\n" + server.log())
                raise
        finally:
            browser.close()
