"""io.provenance: the record verifies on fresh output and names the file when one byte of an
input or an output differs, when a file is missing or added, and refuses a record that is not."""

from __future__ import annotations

import json
import time

import pytest

from cartforensics.io.provenance import (
    PROVENANCE,
    ProvenanceError,
    verify,
    write_provenance,
)


def _flip(path, at=0):
    b = bytearray(path.read_bytes())
    b[at] ^= 0x01
    path.write_bytes(bytes(b))


@pytest.fixture()
def made(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "cart-1.events.log").write_bytes(b'{"type":"A"}\n')
    (src / "sub" / "cart-2.events.log").write_bytes(b'{"type":"B"}\n')
    out = tmp_path / "out"
    (out / "parts").mkdir(parents=True)
    (out / "report.md").write_text("# report\n")
    (out / "parts" / "a.parquet").write_bytes(b"PAR1....PAR1")
    write_provenance(out, inputs=sorted(src.rglob("*.log")), input_root=src,
                     call={"argv": ["cartforensics", "report", str(src)]},
                     started=time.time(), details={"go_version": "1.25"})
    return src, out


def test_fresh_output_verifies_with_and_without_the_source(made):
    src, out = made
    assert verify(out).ok
    v = verify(out, against=src)
    assert v.ok and v.checked == 4
    rec = json.loads((out / PROVENANCE).read_text())
    assert [e["path"] for e in rec["inputs"]] == ["cart-1.events.log", "sub/cart-2.events.log"]
    assert rec["go_version"] == "1.25" and rec["call"]["argv"][1] == "report"


def test_a_flipped_byte_in_an_output_is_named(made):
    _, out = made
    _flip(out / "parts" / "a.parquet", 5)
    v = verify(out)
    assert not v.ok and [(p.side, p.path, p.what) for p in v.problems] == [
        ("output", "parts/a.parquet", "changed")]


def test_a_flipped_byte_in_an_input_is_named(made):
    src, out = made
    _flip(src / "sub" / "cart-2.events.log", 3)
    assert verify(out).ok  # without the source only the outputs are checked
    v = verify(out, against=src)
    assert [(p.side, p.path, p.what) for p in v.problems] == [
        ("input", "sub/cart-2.events.log", "changed")]


def test_missing_and_added_files_are_named(made):
    _, out = made
    (out / "report.md").unlink()
    (out / "extra.txt").write_text("planted")
    got = {(p.path, p.what) for p in verify(out).problems}
    assert got == {("report.md", "missing"), ("extra.txt", "added")}


def test_a_record_edited_to_escape_the_directory_is_missing_not_read(made, tmp_path):
    _, out = made
    rec = json.loads((out / PROVENANCE).read_text())
    rec["outputs"][0]["path"] = "../src/cart-1.events.log"
    (out / PROVENANCE).write_text(json.dumps(rec))
    assert ("../src/cart-1.events.log", "missing") in {
        (p.path, p.what) for p in verify(out).problems}


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"format": "cartforensics-provenance/1"}',
                                  "[" * 100000])
def test_a_bad_record_is_one_clear_error(made, text):
    _, out = made
    (out / PROVENANCE).write_text(text)
    with pytest.raises(ProvenanceError, match=PROVENANCE.split(".")[0]):
        verify(out)


def test_no_record(tmp_path):
    with pytest.raises(ProvenanceError, match="has no provenance.json"):
        verify(tmp_path)


def test_an_input_unreadable_when_recorded_says_so(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    rec = write_provenance(out, inputs=[src / "gone.events.log"], input_root=src,
                           call={"argv": []}, started=time.time())
    assert rec["inputs"] == [{"path": "gone.events.log", "sha256": None, "bytes": None,
                              "error": "cannot read: No such file or directory"}]
    assert verify(out, against=src).ok  # still unreadable: as recorded
    (src / "gone.events.log").write_bytes(b"{}\n")
    assert [(p.path, p.what) for p in verify(out, against=src).problems] == [
        ("gone.events.log", "changed")]


def test_report_convert_and_repair_outputs_carry_a_verifiable_record(tmp_path):
    """Each artefact directory verifies against its source; one flipped byte in an input,
    an output, or the notes the report read is named."""
    import shutil

    import cartforensics as cf
    from cartforensics.jobs.repair import repair

    sample = __import__("pathlib").Path(__file__).resolve().parents[2] / "sample_data"
    src = tmp_path / "logs"
    src.mkdir()
    for p in sorted(sample.glob("cart-10[0-2]*.events.log")):
        shutil.copy(p, src / p.name)
    notes = tmp_path / "notes.json"
    cf.Notes(notes).add("cart-1002", 2, "checked")
    outs = {"report": tmp_path / "report", "dataset": tmp_path / "ds", "repair": tmp_path / "rp"}
    cf.write_report(src, outs["report"], progress=False, notes=notes)
    cf.convert(src, outs["dataset"], workers=1, progress=False)
    repair(src, outs["repair"], progress=False)
    for name, out in outs.items():
        rec = json.loads((out / PROVENANCE).read_text())
        n = len(list(src.iterdir())) + (name == "report")  # the report read the notes too
        assert len(rec["inputs"]) == n and rec["version"] == cf.__version__, name
        assert rec["call"]["function"] in ("write_report", "convert", "repair")
        assert verify(out, against=src).ok, (name, verify(out, against=src).problems)
    report_rec = json.loads((outs["report"] / PROVENANCE).read_text())
    assert str(notes) in [e["path"] for e in report_rec["inputs"]]  # outside SRC: absolute
    _flip(src / "cart-1005.events.log", 10)
    for out in outs.values():
        assert [(p.side, p.path) for p in verify(out, against=src).problems] == [
            ("input", "cart-1005.events.log")]
    _flip(outs["dataset"] / "manifest.json", 20)
    got = {(p.side, p.path) for p in verify(outs["dataset"]).problems}
    assert ("output", "manifest.json") in got
    notes.write_text(notes.read_text() + " ")
    assert ("input", str(notes)) in {
        (p.side, p.path) for p in verify(outs["report"], against=src).problems}
    notes.write_bytes(notes.read_bytes().replace(b'"checked"', b'"chucked"'))  # by hand
    chain = [p for p in verify(outs["report"]).problems if "hash chain" in p.what]
    assert [(p.side, p.path) for p in chain] == [("input", str(notes))]
    assert "line 2" in chain[0].what and "cart_id 'cart-1002'" in chain[0].what


def test_the_reports_record_names_the_bytes_it_read_not_the_file_after(tmp_path, monkeypatch):
    """A log appended to while the report is written: the record holds the hash and size of
    what was analysed (and verify then names the log as changed), not of the file at the
    end; a .gz is recorded as its compressed bytes."""
    import gzip
    import hashlib
    import shutil

    import cartforensics as cf
    import cartforensics.present.report as report_module

    sample = __import__("pathlib").Path(__file__).resolve().parents[2] / "sample_data"
    src = tmp_path / "logs"
    src.mkdir()
    for p in sorted(sample.glob("cart-100[1-3].events.log")):
        shutil.copy(p, src / p.name)
    (src / "cart-1004.events.log.gz").write_bytes(
        gzip.compress((sample / "cart-1004.events.log").read_bytes(), mtime=0))
    grows = src / "cart-1002.events.log"
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    real = report_module.write_provenance

    def late_append(*args, **kwargs):
        with open(grows, "ab") as fh:  # the service writes on while the report finishes
            fh.write(b'{"ts":"2025-10-27T10:00:00Z","type":"Clear","payload":{}}\n')
        return real(*args, **kwargs)

    monkeypatch.setattr(report_module, "write_provenance", late_append)
    out = tmp_path / "report"
    cf.write_report(src, out, progress=False, workers=1)
    rec = {e["path"]: e for e in json.loads((out / PROVENANCE).read_text())["inputs"]}
    for name, data in before.items():
        assert rec[name]["sha256"] == hashlib.sha256(data).hexdigest(), name
        assert rec[name]["bytes"] == len(data), name
    assert [(p.side, p.path, p.what) for p in verify(out, against=src).problems] == [
        ("input", "cart-1002.events.log", "changed")]


def test_the_record_file_is_json_dumps_indent_1(made):
    _src, out = made
    text = (out / PROVENANCE).read_text()
    assert text == json.dumps(json.loads(text), indent=1) + "\n"
