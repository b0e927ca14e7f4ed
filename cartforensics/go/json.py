"""Go's ``encoding/json`` rules, ported to Python: validation, error texts and typed decoding.

Two implementations: json v1 (Go ≤ 1.26) and ``encoding/json`` running on json v2 with the v1
options (Go ≥ 1.27). Which one applies is a :class:`~cartforensics.go.version.GoSemantics`
(passed as ``sem``; default Go 1.25); the rules that differ are named there.

The decoder follows ``json.Unmarshal``: the whole input is validated first (``checkValid``,
whose first error wins), then decoded into a *Go type* described by the descriptors below:
case-insensitive keys (exact match first, then Go's fold), repeated keys decoded in order into
the same field (Go's merge rules for structs, pointers and slices), unknown keys ignored,
invalid UTF-8 in strings replaced by U+FFFD byte by byte, type errors saved while decoding goes
on (the first one is returned), and errors from ``UnmarshalJSON`` methods returned at once.

>>> unmarshal(b'{"Quantity": 2, "sku": "a"}', Struct("messages.AddRequest",
...     [("quantity", INT32), ("sku", STRING)]))
({'quantity': 2, 'sku': 'a'}, None)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from cartforensics.go.version import DEFAULT, GoSemantics

GO_VERSION = DEFAULT.go_version
MAX_NESTING_DEPTH = 10000

# ---------------------------------------------------------------------------------------------
# Type descriptors


class GoType:
    """A Go type as ``encoding/json`` sees it; ``name`` is Go's ``reflect.Type.String()``."""

    kind: str
    name: str


@dataclass(frozen=True, eq=False)
class Scalar(GoType):
    kind: str
    name: str
    bits: int = 0
    signed: bool = True

    def __repr__(self) -> str:
        return self.name


INT32 = Scalar("int", "int32", 32, True)
INT64 = Scalar("int", "int64", 64, True)
UINT32 = Scalar("uint", "uint32", 32, False)
UINT64 = Scalar("uint", "uint64", 64, False)
STRING = Scalar("string", "string")
BOOL = Scalar("bool", "bool")


@dataclass(frozen=True, eq=False)
class Ptr(GoType):
    elem: GoType
    kind: str = "ptr"

    @property
    def name(self) -> str:  # type: ignore[override]
        return "*" + self.elem.name


@dataclass(frozen=True, eq=False)
class Slice(GoType):
    elem: GoType
    kind: str = "slice"

    @property
    def name(self) -> str:  # type: ignore[override]
        return "[]" + self.elem.name


@dataclass(eq=False)
class Struct(GoType):
    """A struct; ``name`` is qualified (``messages.AddItem``), ``fields`` are (json key, type)."""

    name: str
    fields: list[tuple[str, GoType]]
    kind: str = "struct"
    by_exact: dict[str, tuple[str, GoType]] = field(init=False, repr=False)
    by_folded: dict[str, tuple[str, GoType]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_exact = {}
        self.by_folded = {}
        for key, typ in self.fields:
            self.by_exact.setdefault(key, (key, typ))
            self.by_folded.setdefault(fold_name(key), (key, typ))

    @property
    def short_name(self) -> str:
        """Go's ``reflect.Type.Name()``: empty for an anonymous struct."""
        return "" if self.name.startswith("struct ") else self.name.rsplit(".", 1)[-1]


@dataclass(frozen=True, eq=False)
class Unmarshaler(GoType):
    """A type with an ``UnmarshalJSON`` method: gets the raw bytes of the value (``null`` too).

    ``func(raw, old) -> (new value, error text or None)``.
    """

    name: str
    func: Callable[[bytes, Any], tuple[Any, str | None]]
    kind: str = "unmarshaler"


@dataclass(frozen=True, eq=False)
class TextUnmarshaler(GoType):
    """A type decoded from the *unescaped* text of a JSON string (json v2's own ``time.Time``
    arshaler): ``null`` leaves the value alone, any other JSON kind is a type error.

    ``func(text, old) -> (new value, error text or None)``; ``text`` is the string's bytes
    after unescaping, invalid UTF-8 replaced by U+FFFD.
    """

    name: str
    func: Callable[[bytes, Any], tuple[Any, str | None]]
    kind: str = "text"


def raw_message_unmarshal(raw: bytes, old: Any) -> tuple[Any, str | None]:
    """``json.RawMessage``: keeps a copy of the value's bytes (``null`` becomes b"null")."""
    return bytes(raw), None


RAW_MESSAGE = Unmarshaler("json.RawMessage", raw_message_unmarshal)


def zero_value(t: GoType) -> Any:
    """Go's zero value of ``t`` in this module's Python representation."""
    if t.kind in ("int", "uint"):
        return 0
    if t.kind == "string":
        return ""
    if t.kind == "bool":
        return False
    if t.kind == "struct":
        return {key: zero_value(ft) for key, ft in t.fields}  # type: ignore[attr-defined]
    return None


# ---------------------------------------------------------------------------------------------
# Key folding (encoding/json/fold.go): ASCII letters upper-cased, other runes replaced by the
# smallest rune of their Unicode simple-fold orbit. Only two non-ASCII runes fold onto ASCII
# letters (the Go differential test checks it): long s and the Kelvin sign. For other runes,
# Python's single-character casefold gives the same classes as Go's orbits (İ and ı fold to
# nothing else, as in Go).

_FOLD_TO_ASCII = {"\u017f": "S", "\u212a": "K"}


def _fold_rune(ch: str) -> str:
    hit = _FOLD_TO_ASCII.get(ch)
    if hit is not None:
        return hit
    folded = ch.casefold()
    if len(folded) != 1:
        return ch
    return folded.upper() if folded.isascii() else folded


def fold_name(name: str) -> str:
    """Go's ``foldName``: the key under which a JSON key matches a field case-insensitively."""
    if name.isascii():
        return name.upper()
    return "".join(ch.upper() if ch.isascii() else _fold_rune(ch) for ch in name)


# ---------------------------------------------------------------------------------------------
# Strings: Go's unquote (escapes, surrogate pairs, invalid UTF-8 → U+FFFD per byte)

_SURROGATE_ESCAPES = {cp: "\ufffd" for cp in range(0xDC80, 0xDD00)}


def go_utf8(raw: bytes) -> str:
    """Decode bytes as Go does when it makes a string rune by rune: each bad byte is U+FFFD."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape").translate(_SURROGATE_ESCAPES)


_ESCAPES = {
    ord("b"): "\b", ord("f"): "\f", ord("n"): "\n", ord("r"): "\r", ord("t"): "\t",
    ord("\\"): "\\", ord("/"): "/", ord('"'): '"',
}


def unquote(token: bytes) -> str:
    """Go's ``unquoteBytes`` on a validated string token (with its quotes)."""
    s = token[1:-1]
    if b"\\" not in s:
        return go_utf8(s)
    out: list[str] = []
    i = 0
    n = len(s)
    while i < n:
        j = s.find(b"\\", i)
        if j < 0:
            out.append(go_utf8(s[i:]))
            break
        if j > i:
            out.append(go_utf8(s[i:j]))
        c = s[j + 1]
        if c != ord("u"):
            out.append(_ESCAPES[c])
            i = j + 2
            continue
        r = int(s[j + 2 : j + 6], 16)
        i = j + 6
        if 0xD800 <= r < 0xE000:
            if (
                r < 0xDC00
                and s[i : i + 2] == b"\\u"
                and len(s) >= i + 6
                and 0xDC00 <= (r2 := int(s[i + 2 : i + 6], 16)) < 0xE000
            ):
                out.append(chr(0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00)))
                i += 6
                continue
            out.append("\ufffd")
            continue
        out.append(chr(r))
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Validation: a port of encoding/json/scanner.go's state machine, for the exact first error.


def _go_quote_char(c: int) -> str:
    """Go's ``quoteChar``: the byte as a rune, in strconv.Quote's escaping, in single quotes."""
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    ch = chr(c)
    special = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v",
               0x5C: "\\\\"}
    if c in special:
        return "'" + special[c] + "'"
    if c < 0x20 or c == 0x7F:
        return f"'\\x{c:02x}'"
    if c >= 0x80 and not ch.isprintable():
        return f"'\\u{c:04x}'"
    return "'" + ch + "'"


class _Scanner:
    """Go's ``checkValid``; returns None or the SyntaxError text."""

    __slots__ = ("step", "parse_state", "err", "end_top")

    def check(self, data: bytes) -> str | None:
        self.step = self.begin_value
        self.parse_state: list[int] = []
        self.err: str | None = None
        self.end_top = False
        for c in data:
            if self.step(c) == _ERR:
                return self.err
        return self.eof()

    def eof(self) -> str | None:
        if self.err is not None:
            return self.err
        if self.end_top:
            return None
        self.step(0x20)
        if self.end_top:
            return None
        if self.err is None:
            self.err = "unexpected end of JSON input"
        return self.err

    def error(self, c: int, context: str) -> int:
        self.step = self.state_error
        self.err = "invalid character " + _go_quote_char(c) + " " + context
        return _ERR

    def state_error(self, c: int) -> int:
        return _ERR

    def push(self, c: int, state: int) -> int:
        self.parse_state.append(state)
        if len(self.parse_state) <= MAX_NESTING_DEPTH:
            return _OK
        return self.error(c, "exceeded max depth")

    def pop(self) -> None:
        self.parse_state.pop()
        if not self.parse_state:
            self.step = self.end_top_state
            self.end_top = True
        else:
            self.step = self.end_value

    def begin_value_or_empty(self, c: int) -> int:
        if c in _SPACE:
            return _OK
        if c == 0x5D:  # ]
            return self.end_value(c)
        return self.begin_value(c)

    def begin_value(self, c: int) -> int:
        if c in _SPACE:
            return _OK
        if c == 0x7B:  # {
            self.step = self.begin_string_or_empty
            return self.push(c, _OBJ_KEY)
        if c == 0x5B:  # [
            self.step = self.begin_value_or_empty
            return self.push(c, _ARR)
        if c == 0x22:
            self.step = self.in_string
        elif c == 0x2D:  # -
            self.step = self.neg
        elif c == 0x30:
            self.step = self.zero
        elif c == 0x74:
            self.step = _literal(self, b"rue", "true")
        elif c == 0x66:
            self.step = _literal(self, b"alse", "false")
        elif c == 0x6E:
            self.step = _literal(self, b"ull", "null")
        elif 0x31 <= c <= 0x39:
            self.step = self.digits
        else:
            return self.error(c, "looking for beginning of value")
        return _OK

    def begin_string_or_empty(self, c: int) -> int:
        if c in _SPACE:
            return _OK
        if c == 0x7D:  # }
            self.parse_state[-1] = _OBJ_VALUE
            return self.end_value(c)
        return self.begin_string(c)

    def begin_string(self, c: int) -> int:
        if c in _SPACE:
            return _OK
        if c == 0x22:
            self.step = self.in_string
            return _OK
        return self.error(c, "looking for beginning of object key string")

    def end_value(self, c: int) -> int:
        if not self.parse_state:
            self.step = self.end_top_state
            self.end_top = True
            return self.end_top_state(c)
        if c in _SPACE:
            self.step = self.end_value
            return _OK
        ps = self.parse_state[-1]
        if ps == _OBJ_KEY:
            if c == 0x3A:
                self.parse_state[-1] = _OBJ_VALUE
                self.step = self.begin_value
                return _OK
            return self.error(c, "after object key")
        if ps == _OBJ_VALUE:
            if c == 0x2C:
                self.parse_state[-1] = _OBJ_KEY
                self.step = self.begin_string
                return _OK
            if c == 0x7D:
                self.pop()
                return _OK
            return self.error(c, "after object key:value pair")
        if c == 0x2C:
            self.step = self.begin_value
            return _OK
        if c == 0x5D:
            self.pop()
            return _OK
        return self.error(c, "after array element")

    def end_top_state(self, c: int) -> int:
        if c not in _SPACE:
            self.error(c, "after top-level value")
        return _OK  # Go returns scanEnd here; the next byte (or eof) reports the error

    def in_string(self, c: int) -> int:
        if c == 0x22:
            self.step = self.end_value
            return _OK
        if c == 0x5C:
            self.step = self.in_string_esc
            return _OK
        if c < 0x20:
            return self.error(c, "in string literal")
        return _OK

    def in_string_esc(self, c: int) -> int:
        if c in b'bfnrt\\/"':
            self.step = self.in_string
            return _OK
        if c == 0x75:
            self.step = _hex_escape(self, 4)
            return _OK
        return self.error(c, "in string escape code")

    def neg(self, c: int) -> int:
        if c == 0x30:
            self.step = self.zero
            return _OK
        if 0x31 <= c <= 0x39:
            self.step = self.digits
            return _OK
        return self.error(c, "in numeric literal")

    def digits(self, c: int) -> int:
        if 0x30 <= c <= 0x39:
            return _OK
        return self.zero(c)

    def zero(self, c: int) -> int:
        if c == 0x2E:
            self.step = self.dot
            return _OK
        if c in (0x65, 0x45):
            self.step = self.exp
            return _OK
        return self.end_value(c)

    def dot(self, c: int) -> int:
        if 0x30 <= c <= 0x39:
            self.step = self.dot0
            return _OK
        return self.error(c, "after decimal point in numeric literal")

    def dot0(self, c: int) -> int:
        if 0x30 <= c <= 0x39:
            return _OK
        if c in (0x65, 0x45):
            self.step = self.exp
            return _OK
        return self.end_value(c)

    def exp(self, c: int) -> int:
        if c in (0x2B, 0x2D):
            self.step = self.exp_sign
            return _OK
        return self.exp_sign(c)

    def exp_sign(self, c: int) -> int:
        if 0x30 <= c <= 0x39:
            self.step = self.exp0
            return _OK
        return self.error(c, "in exponent of numeric literal")

    def exp0(self, c: int) -> int:
        if 0x30 <= c <= 0x39:
            return _OK
        return self.end_value(c)


_OK, _ERR = 0, 1
_OBJ_KEY, _OBJ_VALUE, _ARR = 0, 1, 2
_SPACE = frozenset(b" \t\r\n")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _literal(sc: _Scanner, rest: bytes, word: str) -> Callable[[int], int]:
    state = {"i": 0}

    def step(c: int) -> int:
        i = state["i"]
        if c == rest[i]:
            if i + 1 == len(rest):
                sc.step = sc.end_value
            else:
                state["i"] = i + 1
            return _OK
        return sc.error(c, f"in literal {word} (expecting {chr(rest[i])!r})")

    return step


def _hex_escape(sc: _Scanner, count: int) -> Callable[[int], int]:
    state = {"left": count}

    def step(c: int) -> int:
        if c in _HEX:
            state["left"] -= 1
            if state["left"] == 0:
                sc.step = sc.in_string
            return _OK
        return sc.error(c, "in \\u hexadecimal character escape")

    return step


def syntax_error(data: bytes, sem: GoSemantics = DEFAULT) -> str | None:
    """Go's ``checkValid``: None when ``data`` is one valid JSON value, else the error text.

    Both json implementations accept exactly the same inputs; the texts differ."""
    if _quick_valid(data):
        return None
    if sem.json_v2:
        return syntax_error_v2(data)
    return _Scanner().check(data)


# ---------------------------------------------------------------------------------------------
# Validation, json v2: jsontext's consumeValue/consumeObject/consumeArray (the decoder's
# CheckNextValue and checkEOF) with jsonwire's error texts, as v2_scanner.go's
# transformSyntacticError hands them to v1 callers: " (expecting ...)" cut off (except for
# literals) and v2's phrases replaced by v1's.

_UNEXPECTED_END = "unexpected end of JSON input"
_V2_PHRASES = (
    ("object name", "object key"),
    ("at start of value", "looking for beginning of value"),
    ("at start of string", "looking for beginning of object key string"),
    ("after object value", "after object key:value pair"),
    ("in number", "in numeric literal"),
)
_V2_WS = frozenset(b" \t\r\n")


def _decode_rune(b: bytes) -> tuple[str | None, int]:
    """Go's ``utf8.DecodeRune``: (the rune, its width) or (None, 1) for an invalid byte."""
    for w in (1, 2, 3, 4):
        try:
            ch = b[:w].decode("utf-8")
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data" and w < len(b) and w < 4:
                continue
            return None, 1
        return ch, w
    return None, 1


def go_quote_rune(ch: str) -> str:
    """Go's ``strconv.QuoteRune``."""
    c = ord(ch)
    if ch == "'":
        return "'\\''"
    if ch == "\\":
        return "'\\\\'"
    if c < 0x80:
        if 0x20 <= c < 0x7F:
            return "'" + ch + "'"
        special = {7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t", 11: "\\v"}
        return "'" + special.get(c, f"\\x{c:02x}") + "'"
    if ch.isprintable():
        return "'" + ch + "'"
    if c < 0x10000:
        return f"'\\u{c:04x}'"
    return f"'\\U{c:08x}'"


def _quote_rune(b: bytes) -> str:
    """jsonwire's ``QuoteRune`` of the first rune of ``b`` (an invalid byte as '\\xff')."""
    ch, _ = _decode_rune(b)
    if ch is None:
        return f"'\\x{b[0]:x}'"
    return go_quote_rune(ch)


def _invalid_text_error(label: str, what: bytes, where: str) -> str:
    """jsonwire's ``InvalidTextError.Error()``."""
    text = go_utf8(what)
    if len(text) == 1:
        shown = _quote_rune(what)
    elif any(ch in "`\ufffd" or ch.isspace() or not ch.isprintable() for ch in text):
        shown = go_quote_bytes(what)
    else:
        shown = "`" + text + "`"
    return ("invalid " + label + " " + shown + " " + where).rstrip(" ")


def _new_invalid_character_error(data: bytes, pos: int, where: str) -> str:
    """jsonwire's ``NewInvalidCharacterError`` of the rune at ``pos``."""
    return "invalid character " + _quote_rune(data[pos:]) + " " + where


def _transform_syntactic_error(msg: str) -> str:
    """The text v2_scanner.go's ``transformSyntacticError`` gives a v1 caller."""
    i = msg.find(" (expecting")
    if i >= 0 and " in literal" not in msg:
        msg = msg[:i]
    for a, b in _V2_PHRASES:
        msg = msg.replace(a, b)
    return msg


class _V2Error(Exception):
    pass


def _consume_whitespace(data: bytes, i: int) -> int:
    """jsonwire's ``ConsumeWhitespace``: where the next non-space byte is."""
    n = len(data)
    while i < n and data[i] in _V2_WS:
        i += 1
    return i


def _consume_string(data: bytes, i: int) -> int:
    """jsonwire's ``ConsumeStringResumable`` with invalid UTF-8 allowed; data[i] is '"'."""
    n = len(data)
    i += 1
    while True:
        while i < n and 0x20 <= data[i] < 0x80 and data[i] != 0x5C and data[i] != 0x22:
            i += 1
        if i >= n:
            raise _V2Error(_UNEXPECTED_END)
        c = data[i]
        if c == 0x22:
            return i + 1
        if c == 0x5C:
            if n < i + 2:
                raise _V2Error(_UNEXPECTED_END)
            e = data[i + 1]
            if e in b'/"\\bfnrt':
                i += 2
                continue
            if e == 0x75:  # u
                if n < i + 6:
                    if _has_escaped_utf16_prefix(data[i:]):
                        raise _V2Error(_UNEXPECTED_END)
                    raise _V2Error(_invalid_text_error("escape sequence", data[i:], "in string"))
                if not all(h in _HEX for h in data[i + 2 : i + 6]):
                    raise _V2Error(
                        _invalid_text_error("escape sequence", data[i : i + 6], "in string"))
                i += 6
                continue
            raise _V2Error(_invalid_text_error("escape sequence", data[i : i + 2], "in string"))
        if c < 0x20:
            raise _V2Error(_new_invalid_character_error(
                data, i, "in string (expecting non-control character)"))
        ch, w = _decode_rune(data[i : i + 4])
        if ch is not None:
            i += w
            continue
        if _not_full_rune(data[i:]):
            raise _V2Error(_UNEXPECTED_END)
        i += 1


def _not_full_rune(b: bytes) -> bool:
    """Not ``utf8.FullRune``: the bytes start a valid encoding that the input cuts short."""
    c = b[0]
    need = 2 if 0xC2 <= c <= 0xDF else 3 if 0xE0 <= c <= 0xEF else 4 if 0xF0 <= c <= 0xF4 else 0
    if need == 0 or len(b) >= need:
        return False
    try:
        b.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.reason == "unexpected end of data"
    return False


def _has_escaped_utf16_prefix(b: bytes) -> bool:
    """jsonwire's ``hasEscapedUTF16Prefix(b, false)``."""
    for k, c in enumerate(b):
        if k == 0 and c != 0x5C or k == 1 and c != 0x75:
            return False
        if 2 <= k < 6 and c not in _HEX:
            return False
    return True


def _consume_number(data: bytes, i: int) -> int:
    """jsonwire's ``ConsumeNumber``."""
    n = len(data)
    if i < n and data[i] == 0x2D:
        i += 1
    if i >= n:
        raise _V2Error(_UNEXPECTED_END)
    if data[i] == 0x30:
        i += 1
    elif 0x31 <= data[i] <= 0x39:
        i += 1
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
    else:
        raise _V2Error(_new_invalid_character_error(data, i, "in number (expecting digit)"))
    if i < n and data[i] == 0x2E:
        i += 1
        if i >= n:
            raise _V2Error(_UNEXPECTED_END)
        if not 0x30 <= data[i] <= 0x39:
            raise _V2Error(_new_invalid_character_error(data, i, "in number (expecting digit)"))
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
    if i < n and data[i] in (0x65, 0x45):
        i += 1
        if i < n and data[i] in (0x2B, 0x2D):
            i += 1
        if i >= n:
            raise _V2Error(_UNEXPECTED_END)
        if not 0x30 <= data[i] <= 0x39:
            raise _V2Error(_new_invalid_character_error(data, i, "in number (expecting digit)"))
        while i < n and 0x30 <= data[i] <= 0x39:
            i += 1
    return i


def _consume_literal(data: bytes, i: int, lit: bytes) -> int:
    """jsonwire's ``ConsumeLiteral``."""
    word = lit.decode()
    for k in range(len(lit)):
        if i + k >= len(data):
            raise _V2Error(_UNEXPECTED_END)
        if data[i + k] != lit[k]:
            raise _V2Error(_new_invalid_character_error(
                data, i + k, f"in literal {word} (expecting {go_quote_rune(chr(lit[k]))})"))
    return i + len(lit)


def _check_next_value(data: bytes) -> None:
    """jsontext's ``CheckNextValue(last=true)`` over the whole input: one value (its
    ``consumeValue``, ``consumeObject`` and ``consumeArray``, iteratively), then only
    whitespace (``checkEOF``); raises :class:`_V2Error` with jsonwire's text."""
    n = len(data)
    i = _consume_whitespace(data, 0)
    if i >= n:
        raise _V2Error(_UNEXPECTED_END)
    stack: list[int] = []  # 0 object, 1 array
    while True:
        # a value starts at i (whitespace skipped, i < n)
        c = data[i]
        if c == 0x7B or c == 0x5B:
            if len(stack) == MAX_NESTING_DEPTH:
                raise _V2Error("exceeded max depth")
            i = _consume_whitespace(data, i + 1)
            if i >= n:
                raise _V2Error(_UNEXPECTED_END)
            if data[i] == (0x7D if c == 0x7B else 0x5D):
                i += 1
            else:
                stack.append(0 if c == 0x7B else 1)
                if c == 0x7B:
                    i = _consume_object_name(data, i)
                continue
        elif c == 0x22:
            i = _consume_string(data, i)
        elif c == 0x6E:
            i = _consume_literal(data, i, b"null")
        elif c == 0x74:
            i = _consume_literal(data, i, b"true")
        elif c == 0x66:
            i = _consume_literal(data, i, b"false")
        elif c == 0x2D or 0x30 <= c <= 0x39:
            i = _consume_number(data, i)
        else:
            raise _V2Error(_new_invalid_character_error(data, i, "at start of value"))
        # after a value: close containers as far as they end here
        while True:
            if not stack:
                i = _consume_whitespace(data, i)
                if i < n:
                    raise _V2Error(_new_invalid_character_error(data, i, "after top-level value"))
                return
            i = _consume_whitespace(data, i)
            if i >= n:
                raise _V2Error(_UNEXPECTED_END)
            c = data[i]
            if stack[-1] == 0:
                if c == 0x2C:
                    i = _consume_object_name(data, _consume_whitespace(data, i + 1))
                    break
                if c == 0x7D:
                    stack.pop()
                    i += 1
                    continue
                raise _V2Error(
                    _new_invalid_character_error(
                        data, i, "after object value (expecting ',' or '}')"))
            if c == 0x2C:
                i = _consume_whitespace(data, i + 1)
                if i >= n:
                    raise _V2Error(_UNEXPECTED_END)
                break
            if c == 0x5D:
                stack.pop()
                i += 1
                continue
            raise _V2Error(_new_invalid_character_error(
                data, i, "after array element (expecting ',' or ']')"))


def _consume_object_name(data: bytes, i: int) -> int:
    """An object member's name and colon at i (whitespace skipped); returns where the value
    starts (whitespace skipped, inside the input)."""
    n = len(data)
    if i >= n:
        raise _V2Error(_UNEXPECTED_END)
    if data[i] != 0x22:
        raise _V2Error(_new_invalid_character_error(data, i, "at start of string (expecting '\"')"))
    i = _consume_whitespace(data, _consume_string(data, i))
    if i >= n:
        raise _V2Error(_UNEXPECTED_END)
    if data[i] != 0x3A:
        raise _V2Error(_new_invalid_character_error(data, i, "after object name (expecting ':')"))
    i = _consume_whitespace(data, i + 1)
    if i >= n:
        raise _V2Error(_UNEXPECTED_END)
    return i


def syntax_error_v2(data: bytes) -> str | None:
    """json v2's ``checkValid`` as Go ≥ 1.27's ``json.Unmarshal`` reports it."""
    try:
        _check_next_value(data)
    except _V2Error as e:
        return _transform_syntactic_error(str(e))
    return None


def _quick_valid(data: bytes) -> bool:
    """True only when orjson (strict RFC 8259, valid UTF-8, depth ≤ 1024) accepts ``data``.

    Whatever orjson accepts Go's scanner accepts too (Go is laxer: any bytes in strings) as
    long as the nesting stays within Go's 10,000 levels, which orjson does not limit: only a
    value with fewer opening brackets than that is judged here. A True settles validity; a
    False sends the value through the full port.
    """
    if data.count(b"[") + data.count(b"{") >= MAX_NESTING_DEPTH:
        return False
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Decoding over validated bytes


class _Immediate(Exception):
    """An error Go returns at once (from an UnmarshalJSON method)."""


class _GoSlice:
    """A slice being decoded: ``backing`` holds stale elements past ``n`` (Go's SetLen reveals
    them again when a repeated key decodes a longer array into the same slice)."""

    __slots__ = ("backing", "n")

    def __init__(self) -> None:
        self.backing: list[Any] = []
        self.n = 0


_WS = re.compile(rb"[ \t\r\n]*")
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_UINT_TEXT = re.compile(r"\+?[0-9]+")


class _Decoder:
    def __init__(self, data: bytes, sem: GoSemantics = DEFAULT, root_name: str = "") -> None:
        self.data = data
        self.pos = 0
        self.saved: str | None = None
        self.ctx_struct: str | None = None  # Go's errorContext.Struct (None = nil)
        self.field_stack: list[str] = []
        # json v2: the JSON Pointer of the value being decoded (keys as written, indices)
        self.v2_paths = sem.root_field_paths
        self.method_errors_stop = sem.method_errors_stop
        self.ptr: list[str] = []
        self.root_name = root_name

    # -- lexing helpers (input is already valid) --
    def ws(self) -> None:
        self.pos = _WS.match(self.data, self.pos).end()  # type: ignore[union-attr]

    def string_end(self, start: int) -> int:
        data = self.data
        i = start + 1
        while True:
            q = data.index(b'"', i)
            k = q - 1
            while data[k] == 0x5C:
                k -= 1
            if (q - 1 - k) % 2 == 0:
                return q + 1
            i = q + 1

    def skip(self) -> None:
        """Skip one value iteratively (nesting may be deep)."""
        data = self.data
        c = data[self.pos]
        if c == 0x22:
            self.pos = self.string_end(self.pos)
            return
        if c not in (0x7B, 0x5B):
            self.pos = self.literal_end(self.pos)
            return
        depth = 0
        i = self.pos
        while True:
            c = data[i]
            if c == 0x22:
                i = self.string_end(i)
                continue
            if c in (0x7B, 0x5B):
                depth += 1
            elif c in (0x7D, 0x5D):
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return
            i += 1

    def literal_end(self, start: int) -> int:
        c = self.data[start]
        if c == 0x74:
            return start + 4
        if c == 0x66:
            return start + 5
        if c == 0x6E:
            return start + 4
        return _NUMBER.match(self.data, start).end()  # type: ignore[union-attr]

    # -- errors --
    def save_type_error(self, value: str, t: GoType) -> None:
        if self.saved is not None:
            return
        if self.v2_paths:
            self.saved = self.transform_unmarshal_error(value, t)
            return
        if self.ctx_struct is not None or self.field_stack:
            self.saved = (
                f"json: cannot unmarshal {value} into Go struct field "
                f"{self.ctx_struct or ''}.{'.'.join(self.field_stack)} of type {t.name}"
            )
        else:
            self.saved = f"json: cannot unmarshal {value} into Go value of type {t.name}"

    def transform_unmarshal_error(self, value: str, t: GoType) -> str:
        """v2_inject.go's ``transformUnmarshalError`` + ``UnmarshalTypeError.Error()``: the
        root type's name and the JSON Pointer turned into a dotted path; "Go struct field" is
        left out when the last step is an array index."""
        if not self.ptr:
            return f"json: cannot unmarshal {value} into Go value of type {t.name}"
        field = ".".join(self.ptr)
        last = self.ptr[-1]
        into = "" if last and last.strip("0123456789") == "" else "Go struct field "
        return (f"json: cannot unmarshal {value} into {into}{self.root_name}.{field} "
                f"of type {t.name}")

    def method_error(self, err: str) -> None:
        """An ``UnmarshalJSON`` (or time parsing) error: v1 stops; v2 keeps the first error
        of any kind and goes on decoding."""
        if self.method_errors_stop:
            raise _Immediate(err)
        if self.saved is None:
            self.saved = err

    # -- values --
    def value(self, t: GoType | None, cur: Any) -> Any:
        """Decode the value at pos into a Go value of type t holding cur; return the new value."""
        self.ws()
        if t is None:
            self.skip()
            return cur
        c = self.data[self.pos]
        if t.kind == "unmarshaler":
            start = self.pos
            self.skip()
            new, err = t.func(self.data[start : self.pos], cur)  # type: ignore[attr-defined]
            if err is not None:
                self.method_error(err)
            return new
        if t.kind == "text":
            if c == 0x6E:
                self.pos += 4
                return cur
            if c != 0x22:
                kind = "object" if c == 0x7B else "array" if c == 0x5B else (
                    "bool" if c in (0x74, 0x66) else "number")
                self.skip()
                self.save_type_error(kind, t)
                return cur
            end = self.string_end(self.pos)
            text = unquote(self.data[self.pos : end]).encode("utf-8", "surrogatepass")
            self.pos = end
            new, err = t.func(text, cur)  # type: ignore[attr-defined]
            if err is not None:
                self.method_error(err)
                return cur
            return new
        if c == 0x6E:  # null: pointers and slices become nil, everything else is left alone
            self.pos += 4
            if t.kind in ("ptr", "slice"):
                return None
            return cur
        if t.kind == "ptr":
            inner = t.elem  # type: ignore[attr-defined]
            if cur is None:
                cur = zero_value(inner)
            return self.value(inner, cur)
        if c == 0x7B:
            return self.object(t, cur)
        if c == 0x5B:
            return self.array(t, cur)
        end = self.string_end(self.pos) if c == 0x22 else self.literal_end(self.pos)
        item = self.data[self.pos : end]
        self.pos = end
        return self.literal(item, t, cur)

    def literal(self, item: bytes, t: GoType, cur: Any) -> Any:
        c = item[0]
        kind = t.kind
        if c == 0x22:
            if kind == "string":
                return unquote(item)
            self.save_type_error("string", t)
            return cur
        if c in (0x74, 0x66):
            if kind == "bool":
                return c == 0x74
            self.save_type_error("bool", t)
            return cur
        text = item.decode("ascii")
        if kind in ("int", "uint"):
            bits = t.bits  # type: ignore[attr-defined]
            if kind == "int":
                ok = _INT_TEXT.fullmatch(text) is not None
                n = int(text) if ok else 0
                ok = ok and -(1 << 63) <= n < (1 << 63) and -(1 << (bits - 1)) <= n < (
                    1 << (bits - 1)
                )
            else:
                ok = _UINT_TEXT.fullmatch(text) is not None
                n = int(text) if ok else 0
                ok = ok and 0 <= n < (1 << 64) and n < (1 << bits)
            if ok:
                return n
            self.save_type_error("number " + text, t)
            return cur
        self.save_type_error("number", t)
        return cur

    def object(self, t: GoType, cur: Any) -> Any:
        if t.kind != "struct":
            self.save_type_error("object", t)
            self.skip()
            return cur
        st: Struct = t  # type: ignore[assignment]
        obj = cur if cur is not None else zero_value(st)
        orig_struct, orig_len = self.ctx_struct, len(self.field_stack)
        data = self.data
        self.pos += 1
        while True:
            self.ws()
            if data[self.pos] == 0x7D:
                self.pos += 1
                break
            kstart = self.pos
            kend = self.string_end(kstart)
            key = unquote(data[kstart:kend])
            self.pos = kend
            self.ws()
            self.pos += 1  # ':'
            f = st.by_exact.get(key)
            if f is None:
                f = st.by_folded.get(fold_name(key))
            if f is not None:
                self.ctx_struct = st.short_name
                self.field_stack.append(f[0])
                if self.v2_paths:
                    self.ptr.append(key.replace("~", "~0").replace("/", "~1"))
                    obj[f[0]] = self.value(f[1], obj[f[0]])
                    self.ptr.pop()
                else:
                    obj[f[0]] = self.value(f[1], obj[f[0]])
            else:
                self.value(None, None)
            del self.field_stack[orig_len:]
            self.ctx_struct = orig_struct
            self.ws()
            if data[self.pos] == 0x2C:
                self.pos += 1
        return obj

    def array(self, t: GoType, cur: Any) -> Any:
        if t.kind != "slice":
            self.save_type_error("array", t)
            self.skip()
            return cur
        elem: GoType = t.elem  # type: ignore[attr-defined]
        sl = cur if isinstance(cur, _GoSlice) else _GoSlice()
        data = self.data
        self.pos += 1
        i = 0
        while True:
            self.ws()
            if data[self.pos] == 0x5D:
                self.pos += 1
                break
            if i >= len(sl.backing):
                sl.backing.append(zero_value(elem))
            if i >= sl.n:
                sl.n = i + 1
            if self.v2_paths:
                self.ptr.append(str(i))
                sl.backing[i] = self.value(elem, sl.backing[i])
                self.ptr.pop()
            else:
                sl.backing[i] = self.value(elem, sl.backing[i])
            i += 1
            self.ws()
            if data[self.pos] == 0x2C:
                self.pos += 1
        if i < sl.n:
            sl.n = i
        if i == 0:
            return _GoSlice()  # Go makes a fresh empty slice: stale elements are gone
        return sl


def _finish(v: Any) -> Any:
    """Turn decoding-time slices into lists, recursively."""
    if isinstance(v, _GoSlice):
        return [_finish(x) for x in v.backing[: v.n]]
    if isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (_GoSlice, dict)):
                v[k] = _finish(x)
        return v
    return v


def _type_name(t: GoType) -> str:
    """Go's ``reflect.Type.Name()`` of the value Unmarshal gets a pointer to."""
    if t.kind == "ptr":
        t = t.elem  # type: ignore[attr-defined]
    if isinstance(t, Struct):
        return t.short_name
    if isinstance(t, Scalar):
        return t.name
    return ""


def unmarshal(data: bytes, t: GoType, into: Any = None,
              sem: GoSemantics = DEFAULT) -> tuple[Any, str | None]:
    """``json.Unmarshal(data, &v)`` for a v of type ``t`` (holding ``into``, default zero),
    as the toolchain ``sem`` does it.

    Returns (value, error text or None); on error the value is what Go would have left behind.
    """
    err = syntax_error(data, sem)
    if err is not None:
        return (zero_value(t) if into is None else into), err
    dec = _Decoder(data, sem, _type_name(t))
    cur = zero_value(t) if into is None else into
    try:
        cur = dec.value(t, cur)
    except _Immediate as e:
        return _finish(cur), str(e)
    return _finish(cur), dec.saved


# json.Marshal escapes these inside strings (HTMLEscape's set plus the JavaScript line
# separators); in JSON text they can only stand inside strings, so a byte replace is exact
_MARSHAL_ESCAPES = (
    (b"&", b"\\u0026"), (b"<", b"\\u003c"), (b">", b"\\u003e"),
    ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"),
)


def go_escape(text: bytes, escape_html: bool = True) -> bytes:
    """orjson's output as Go's ``json.Marshal`` writes it: orjson writes strings, ints and
    bools as Go does (short escapes \\b \\f \\n \\r \\t, other control characters as
    lowercase \\u00XX, UTF-8 kept) but for ``<``, ``>``, ``&``, U+2028 and U+2029, which Go
    escapes as ``\\u003c`` etc. ``escape_html=False`` leaves ``<>&`` as they are.

    >>> go_escape(b'"a<b"')
    b'"a\\\\u003cb"'
    """
    for raw, escaped in _MARSHAL_ESCAPES if escape_html else _MARSHAL_ESCAPES[3:]:
        if raw in text:
            text = text.replace(raw, escaped)
    return text


def marshal(value: Any, indent: bool = False, escape_html: bool = True) -> bytes:
    """JSON text escaped as Go's ``json.Marshal`` escapes it: ``<``, ``>``, ``&``, U+2028 and
    U+2029 as ``\\u003c`` etc., so that line-oriented readers never cut a line inside a string.
    ``escape_html=False`` keeps ``<>&`` as they are (Go's ``Encoder.SetEscapeHTML(false)``),
    for text a person reads once it is HTML-escaped on its own.

    >>> marshal({"sku": "a\u2028<b>"})
    b'{"sku":"a\\\\u2028\\\\u003cb\\\\u003e"}'
    """
    return go_escape(orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0),
                     escape_html)


def go_quote(s: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` of a valid UTF-8 string."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif c < 0x80:
            if 0x20 <= c < 0x7F:
                out.append(ch)
            else:
                out.append({7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r", 9: "\\t",
                            11: "\\v"}.get(c, f"\\x{c:02x}"))
        elif ch == "\ufffd" or ch.isprintable():
            out.append(ch)
        elif c < 0x10000:
            out.append(f"\\u{c:04x}")
        else:
            out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


def go_quote_bytes(b: bytes) -> str:
    """Go's ``strconv.Quote`` of a string that may hold invalid UTF-8 (each bad byte ``\\xHH``)."""
    text = b.decode("utf-8", "surrogateescape")
    if not any(0xDC80 <= ord(ch) <= 0xDCFF for ch in text):
        return go_quote(text)
    parts = []
    run: list[str] = []
    for ch in text:
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            if run:
                parts.append(go_quote("".join(run))[1:-1])
                run = []
            parts.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            run.append(ch)
    if run:
        parts.append(go_quote("".join(run))[1:-1])
    return '"' + "".join(parts) + '"'
