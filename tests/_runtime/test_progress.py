"""Progress bars draw only where someone watches: on a terminal, never into a pipe or file."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from cartforensics._runtime.progress import progress_bar, watched

ROOT = Path(__file__).resolve().parents[2]
CODE = ("import sys\n"
        "from cartforensics._runtime.progress import progress_bar\n"
        "bar = progress_bar(range(3), desc='reading logs', unit='file')\n"
        "print('enabled' if not bar.disable else 'disabled', file=sys.stdout, flush=True)\n"
        "list(bar)\n")


def _run_with_stderr(stderr) -> tuple[str, bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", CODE], stdout=subprocess.PIPE, stderr=stderr,
                       env=env, timeout=120)
    assert p.returncode == 0
    return p.stdout.decode().strip(), p.stderr or b""


def test_enabled_none_is_off_when_stderr_is_a_pipe():
    said, err = _run_with_stderr(subprocess.PIPE)
    assert said == "disabled" and err == b""


def test_enabled_none_is_on_when_stderr_is_a_terminal():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # 80 columns
    try:
        said, _ = _run_with_stderr(follower)
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    assert said == "enabled"
    assert b"reading logs" in drawn and b"\r" in drawn


def test_explicit_choice_wins_and_a_disabled_bar_still_counts():
    out = io.StringIO()  # not a terminal
    assert not watched(out)
    bar = progress_bar(total=2, desc="converting", unit="file", enabled=True, file=out)
    bar.update(2)
    bar.close()
    assert "converting" in out.getvalue()
    quiet = progress_bar(range(4), enabled=False)
    assert list(quiet) == [0, 1, 2, 3] and quiet.disable
    quiet.update(1)
    quiet.close()  # no effect, no error
