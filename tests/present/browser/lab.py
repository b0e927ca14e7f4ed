"""Start a JupyterLab server on 127.0.0.1 for one test, and write the notebooks it opens.

The server runs in its own process group with its own settings, workspaces and runtime
directories under the test's temporary directory, so nothing of the user's JupyterLab is read
or changed, and no news or update check reaches out to the network.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
# JupyterLab user settings: no news or update checks (no network), no toasts over the page,
# and time for a busy kernel to answer kernel_info (on a loaded machine a kernel importing
# pandas and matplotlib misses the 3 s default, and JupyterLab then asks for another kernel)
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True,
    },
    "@jupyterlab/apputils-extension/kernels-settings.jupyterlab-settings": {
        "kernelInfoTimeout": 60000,
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterLab:
    """``jupyter lab`` serving ``root`` on 127.0.0.1 with a random token; a context manager
    that waits until the server answers and stops it (and its kernels) on exit. ``app``:
    ``"notebook"`` serves Notebook 7 (``jupyter notebook``) the same way."""

    def __init__(self, root: Path, home: Path, timeout: float = 60.0, app: str = "lab"):
        self.app = app
        self.root = root
        self.home = home
        self.timeout = timeout
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "jupyter-lab.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"

    def __enter__(self) -> JupyterLab:
        settings = self.home / "settings"
        for name, value in SETTINGS.items():
            p = settings / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value))
        env = dict(
            os.environ,
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(self.home / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            PYTHONUNBUFFERED="1",
        )
        cmd = [
            sys.executable, "-m", "jupyter", self.app, "--no-browser",
            f"--ServerApp.token={self.token}", f"--port={self.port}",
            "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.root_dir={self.root}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed in __exit__)
        self._log = log
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited with {self.proc.returncode}:\n"
                                   + self.log())
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer in {self.timeout:.0f} s:\n" + self.log())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            # the server's own process group: the server and the kernels it started
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._log.close()


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook (nbformat 4.5) of code cells with the python3 kernelspec in its metadata
    (without it JupyterLab asks for a kernel in a dialog that blocks every click)."""
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell-{k}", "metadata": {},
             "outputs": [], "source": src.splitlines(keepends=True)}
            for k, src in enumerate(cells)
        ],
        "metadata": {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def open_offline(browser: Any, path: Path, width: int = 1280, height: int = 900
                 ) -> tuple[Any, list[str], list[str]]:
    """A page of ``browser`` showing the file ``path`` with every request that is not
    ``file:`` aborted: (page, the URLs it blocked, the dialogs that opened, dismissed)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    blocked: list[str] = []
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    def route(r: Any) -> None:
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    return page, blocked, dialogs
