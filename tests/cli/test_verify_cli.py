"""cartforensics verify: exit 0 on a fresh record, 1 naming the file that differs or the note
edited by hand, 2 with one line when there is no record."""

from __future__ import annotations

import time

from cartforensics.analysis.notes import Notes
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


def test_verify_checks_the_notes_chain_of_every_notes_input(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "c.events.log").write_bytes(b"{}\n")
    notes_path = tmp_path / "kept elsewhere" / "notes.json"  # outside the source: absolute
    notes = Notes(notes_path)
    kept = notes.add("c", 1, "the numeric ts")
    notes.add("c", 2, "second")
    inside = Notes(src / "notes.json")  # under the source: found through input_root
    inside.add("c", 1, "inside")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("# r\n")
    write_provenance(out, inputs=[src / "c.events.log", notes_path, src / "notes.json"],
                     input_root=src, call={"argv": ["x"]}, started=time.time())
    assert main(["verify", str(out)]) == 0
    assert main(["verify", "--notes", str(notes_path)]) == 0
    capsys.readouterr()
    clean = notes_path.read_bytes()
    notes_path.write_bytes(clean.replace(b"the numeric ts", b"the numeric TS"))
    assert main(["verify", str(out)]) == 1
    got = capsys.readouterr().out
    assert "hash chain broken" in got and f"id {kept['id']!r}" in got and "line 2" in got
    assert main(["verify", "--notes", str(notes_path)]) == 1
    assert f"id {kept['id']!r}" in capsys.readouterr().out
    notes_path.write_bytes(clean)
    (src / "notes.json").write_bytes((src / "notes.json").read_bytes().replace(b"inside",
                                                                               b"outside"))
    assert main(["verify", str(out)]) == 1  # found under the record's input_root
    assert "'notes.json' hash chain broken" in capsys.readouterr().out
    assert main(["verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--notes FILE" in err
