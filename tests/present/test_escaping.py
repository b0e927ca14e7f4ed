"""``visible``: the one escaping of untrusted text for terminals and report.md (HTML escaping
comes after it): no control character, C1 control, bidi override or undecodable byte survives."""

from __future__ import annotations

import pytest

from cartforensics.present.escaping import char_escape, visible

TERMINAL_ATTACK = "cart\x1b]0;pwned\x07\x1b[2J"


def test_item5_terminal_escapes_are_shown_not_sent():
    shown = visible(TERMINAL_ATTACK)
    assert shown == "cart\\x1b]0;pwned\\x07\\x1b[2J"
    assert shown.isprintable()


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x9b2J", "\\x9b2J"),  # the one-byte CSI of C1
    ("a\u202eb", "a\\u202eb"),  # a bidi override
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("tab\there", "tab\\there"),
    ("cr\rlf\n", "cr\\rlf\\n"),
    ("\x00", "\\x00"),
    ("bad byte \udcff", "bad byte \\xff"),  # surrogateescape: the byte that was not UTF-8
    ("\U000e0001tag", "\\U000e0001tag"),
])
def test_every_non_printing_character_is_escaped(raw: str, shown: str):
    assert visible(raw) == shown
    assert visible(raw).isprintable()


def test_printable_text_is_kept_and_newlines_only_when_asked():
    text = "plain text, ünïcödé, 日本語 and a space"
    assert visible(text) is text
    assert visible("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    assert visible(visible(TERMINAL_ATTACK)) == visible(TERMINAL_ATTACK)  # escaping twice: same


def test_char_escape_covers_every_plane():
    assert char_escape("\x1b") == "\\x1b"
    assert char_escape("\u2066") == "\\u2066"
    assert char_escape("\U0010ffff") == "\\U0010ffff"
