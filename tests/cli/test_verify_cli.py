"""cartforensics verify: exit 0 on a fresh record, 1 naming the file that differs, 2 with one
line when there is no record."""

from __future__ import annotations

import time

from cartforensics.cli.app import main
from cartforensics.io.provenance import write_provenance


def test_verify_exit_codes(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "c.events.log").write_bytes(b"{}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("# r\n")
    write_provenance(out, inputs=[src / "c.events.log"], input_root=src,
                     call={"argv": ["x"]}, started=time.time())
    assert main(["verify", str(out), "--against", str(src)]) == 0
    assert "verified: 2 files" in capsys.readouterr().out
    (src / "c.events.log").write_bytes(b"{ }\n")
    assert main(["verify", str(out), "--against", str(src)]) == 1
    got = capsys.readouterr().out
    assert "input 'c.events.log' changed" in got and "FAILED: 1 of 2" in got
    assert main(["verify", str(src)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cartforensics: ") and "provenance.json" in err
