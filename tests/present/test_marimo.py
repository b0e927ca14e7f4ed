"""The marimo twins (notebooks/marimo/) in a real marimo server.

Runs ``marimo run`` on 127.0.0.1 (a free port, a random token password, its own process
group, stopped in ``finally``) and opens the app in Debian's Chromium. The quickstart: the
scrubber renders through ``mo.ui.anywidget`` (marimo draws an anywidget inside a shadow root:
Playwright's locators pierce it), and a step changes the line and the state shown. The
post-mortem: the fleet dashboard draws its charts, a filter to handler errors changes the
counts shown, and "open" on a cart shows it in the scrubber below at its refused line.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from browser.lab import free_port
from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, playwright_api  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "marimo" / "01_quickstart.py"
POSTMORTEM = ROOT / "notebooks" / "marimo" / "02_incident_postmortem.py"


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"marimo run exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (the token page)
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise TimeoutError(f"marimo did not answer in {timeout:.0f} s")


def _until(ok, timeout: float = 30.0) -> None:
    """Poll ``ok()`` (locators pierce marimo's shadow roots; page scripts do not)."""
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not show it in time")
        time.sleep(0.1)


@contextmanager
def marimo_app(notebook: Path, tmp_path: Path) -> Iterator[str]:
    """``marimo run notebook`` on 127.0.0.1; yields the app's URL (token included)."""
    port = free_port()
    token = secrets.token_hex(16)
    log_path = tmp_path / "marimo.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
        MARIMO_SKIP_UPDATE_CHECK="1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "marimo", "run", str(notebook), "--host", "127.0.0.1",
             "--port", str(port), "--headless", "--token-password", token, "--no-sandbox",
             "--no-check"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/?access_token={token}"
        _wait(url, proc)
        yield url
    except BaseException:
        print(log_path.read_text(errors="replace")[-3000:])
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@contextmanager
def chromium_page(playwright_api, url: str):  # noqa: F811
    """Debian's Chromium on ``url`` at 1280 x 900; closed on exit."""
    browser = playwright_api.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_ARGS, headless=True)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, wait_until="domcontentloaded")
        yield page
    finally:
        browser.close()


def test_quickstart_twin_in_marimo(playwright_api, tmp_path):  # noqa: F811
    with marimo_app(NOTEBOOK, tmp_path) as url:
        with chromium_page(playwright_api, url) as page:
            line = page.locator(".cf-scrubber .cf-line")
            line.wait_for(state="visible", timeout=90_000)
            first = line.inner_text()
            cart = page.locator(".cf-scrubber .cf-cart-id").inner_text()
            lenient_state = page.locator(".cf-scrubber .cf-lenient-state")
            before = lenient_state.inner_text()
            page.locator(".cf-scrubber .cf-end").click()
            deadline = time.monotonic() + 30
            while line.inner_text() == first and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            import cartforensics as cf

            le = cf.replay(cf.read_events(ROOT / "sample_data", progress=False), mode="lenient")
            n = len(le.rows_of(cart))
            assert f"Line {n} of {n}" in line.inner_text()
            final = le.final_state(cart)
            shown = lenient_state.inner_text()
            assert shown != before
            assert f"{len(final['items'])} item" in shown.split("\n")[1]
            assert all(i["sku"] in shown for i in final["items"][:5])
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "marimo_quickstart.png"), full_page=True)


def test_postmortem_twin_in_marimo(playwright_api, tmp_path):  # noqa: F811
    import cartforensics as cf

    go = cf.replay(cf.read_events(ROOT / "sample_data", progress=False))
    outcome = go.outcomes["outcome"].astype(str)
    refused = go.outcomes[outcome == "apply_error"]
    with marimo_app(POSTMORTEM, tmp_path) as url:
        with chromium_page(playwright_api, url) as page:
            try:
                page.locator(".cf-dashboard .cfd-pt").first.wait_for(state="attached",
                                                                      timeout=90_000)
                page.locator(".cf-scrubber .cf-line").wait_for(state="visible", timeout=60_000)
                summary = page.locator(".cf-dashboard .cfd-summary")
                assert f"{len(outcome):,} of {len(outcome):,} lines" in summary.inner_text()
                chips = page.locator(".cf-dashboard .cfd-outcome")
                for k in range(chips.count()):
                    chip = chips.nth(k)
                    if chip.get_attribute("data-outcome") != "apply_error":
                        chip.locator("input").uncheck()
                _until(lambda: summary.inner_text().startswith(f"{len(refused):,} of"))
                # the mutation-error rate is a share of every line, never 100 %
                pts = page.locator(".cf-dashboard .cfd-rate-mutation_error_rate .cfd-pt")
                assert pts.count() > 0
                for k in range(pts.count()):
                    num = float(pts.nth(k).get_attribute("data-num"))
                    den = float(pts.nth(k).get_attribute("data-den"))
                    assert num < den or num == 0
                cart = str(refused["cart_id"].iloc[0])
                line = int(refused["line"].iloc[0])
                page.locator(f".cf-dashboard .cfd-open[data-cart='{cart}']").click()
                want = f"Line {list(go.rows_of(cart)).index(refused.index[0]) + 1} of"
                scrub_line = page.locator(".cf-scrubber .cf-line")
                _until(lambda: page.locator(".cf-scrubber .cf-cart-id").inner_text() == cart
                       and want in scrub_line.inner_text())
                assert page.locator(".cf-scrubber .cf-cart-id").inner_text() == cart
                assert want in scrub_line.inner_text(), (want, line)
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "marimo_postmortem.png"), full_page=True)
            except BaseException:
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "marimo_postmortem_failure.png"),
                                full_page=True)
                raise
