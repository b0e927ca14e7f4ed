"""Untrusted text (log content, analyst notes) made visible: every character that does not
print (controls, bidi overrides, zero-width, lone surrogates, bytes decoded with
surrogateescape) written as a ``\\xNN`` / ``\\uNNNN`` escape. HTML escaping comes after.
The one escaping of what reaches a terminal (every print of the command line) and report.md.

>>> visible("a\\u202eb")
'a\\\\u202eb'
"""

from __future__ import annotations

__all__ = ["char_escape", "visible"]


def char_escape(ch: str) -> str:
    """One non-printing character as an escape (a surrogateescape byte as ``\\xNN``)."""
    o = ord(ch)
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    if o < 0x100:
        return {"\t": "\\t", "\r": "\\r", "\n": "\\n"}.get(ch, f"\\x{o:02x}")
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


def visible(text: str, keep_newlines: bool = False) -> str:
    """``text`` with every non-printing character escaped (newlines kept when asked)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or (keep_newlines and ch == "\n")
                   else char_escape(ch) for ch in text)
