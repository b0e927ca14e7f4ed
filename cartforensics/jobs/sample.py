"""A synthetic cart service: realistic shopping sessions written in the seed writer's exact bytes,
with the incidents of a real outage planted where the manifest says.

>>> m = write_sample("/tmp/carts", carts=300, seed=1)            # doctest: +SKIP
>>> m.planted["crash"]                                            # doctest: +SKIP
[('cart-1090', 9), ('cart-1094', 7), ('cart-1250', 2)]

Command line: ``cartforensics sample OUT --carts 300 --seed 1 [--incident NAME ...]``.

**Bytes.** Every record is what the seed's ``AppendCartEvent`` writes: ``json.Marshal`` of
``cartEventRecord{ts, type, &message}`` plus ``"\\n"``, with the message structs of
docs/model.md (``omitempty`` everywhere: zero numbers, empty strings, ``false``, nil pointers and
empty slices are left out; a pointer to a zero value is written). Strings are escaped as Go does:
``<`` ``>`` ``&`` U+2028 U+2029 as ``\\u003c`` etc., control characters as ``\\n``/``\\u001f``,
other non-ASCII as UTF-8. The test suite checks this byte for byte against Go
(``tests/go/cfdiff marshal``).

**Sessions.** Each cart is one shopper's session (sometimes with a return visit hours or days
later): items added (``AddItem``, or ``AddRequest`` from the app's shopping list, rarely a
``SetCartRequest`` restoring a saved cart), quantities changed, items removed, a delivery or pickup
point chosen, checkout started and the order created. About 70 % of carts are abandoned on the
way. Sessions start over ``days`` days with a Swedish daily rhythm (evening peak, quiet nights,
busier weekends). Every mutation is one the live cart accepted, so the writer's own replay of its
sessions applies every line, except where an incident below says otherwise.

**Incidents** (:data:`ALL_INCIDENTS`; each can be switched off):

``numeric-ts``
    The seed's writer era: ``ts`` is ``time.Now().Unix()``, a JSON number, which the service's
    reader rejects. A fix deployed as a rolling update (the middle day, 08:00-08:20 UTC) writes
    ``ts`` as a ``time.Time``: Go's ``MarshalJSON``, RFC 3339 with nanoseconds, UTC ``Z``. During
    the rollout old and new pods write the same carts, so some carts mix both. Off: every line has
    the string ``ts``.
``unknown-type``
    A deploy (three quarters into the window, 13:00 UTC) adds vouchers: ``AddVoucher``
    (``{"code","amount"}``), a type the reader's registry does not know.
``two-writers``
    Two processes append to one cart at the same moment (two ``ChangeQuantity`` records). Glued:
    the first write lost its ``"\\n"`` to the second, giving ``{..}{..}`` and an empty line.
    Torn: the first write was split around the second, giving a line that starts a record and
    holds the other, then the first record's tail.
``crash``
    The process died during its last append: the file ends without ``"\\n"``, either after a whole
    record (only the newline lost) or in the middle of one.
``long-line``
    A marketplace ``AddItem`` with its picture inline (``image`` a ``data:image/jpeg;base64,``
    URL) making the line longer than the reader's 256 KiB limit, followed by more events.
``clock-step``
    The host's clock steps back (an NTP correction) during a session: a ``ts`` smaller than the
    line before it.
``handler-errors``
    Lines the live cart accepted but the model rejects: a ``ChangeQuantity`` of an item removed a
    second earlier (a stale tab) or a double-submitted ``SetDelivery`` for the same items.

Each incident marks its own carts (no cart has two of them; ``numeric-ts`` is an era, not a
cart), alternately before and after the ts fix, so that each shows both hidden behind a numeric
``ts`` and as itself; with enough carts (15 or more) an incident's carts stay the same when
another incident is switched off.
:class:`SampleManifest` lists every planted ``(cart_id, line)``; the same list is written beside
the logs as ``sample_manifest.json``, with ``catalog.json`` (the product catalogue,
``sku -> AddItem fields``, for resolving ``AddRequest`` lines: ``replay(..., catalog=...)``).

Deterministic: the same arguments write the same bytes, on any machine (per-cart seeded
``random.Random``, no libm in the draws). Memory stays bounded: carts are simulated and written
one at a time. ``visits=K`` makes long-lived carts of K visits (fewer, longer files: file creation
dominates at benchmark sizes on a slow disk).
"""

from __future__ import annotations

import base64
import bisect
import gc
import io
import math
import os
import random
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from cartforensics.go.json import GoType, Struct, go_escape
from cartforensics.model.registry import DEFAULT_SCHEMAS, message

ALL_INCIDENTS: tuple[str, ...] = (
    "numeric-ts", "unknown-type", "two-writers", "crash", "long-line", "clock-step",
    "handler-errors",
)
GENERATOR = "cartforensics.jobs.sample"
GENERATOR_VERSION = 1  # bump whenever the bytes written for the same arguments change
MANIFEST_NAME = "sample_manifest.json"
CATALOG_NAME = "catalog.json"
LOG_SUFFIX = ".events.log"
DEFAULT_START = datetime(2025, 10, 27, tzinfo=UTC)  # a Monday
DEFAULT_DAYS = 14
# measured means; they only size the plan for events=N
MEAN_LINES_PER_CART = 5.0
MEAN_LINES_PER_VISIT = 2.8

#: The voucher message of the ``unknown-type`` deploy (not in the reader's registry).
ADD_VOUCHER = message("AddVoucher", {"code": "string", "amount": "int64"})

_SECOND = 1_000_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


class SampleError(ValueError):
    """Bad arguments to :func:`write_sample` (the CLI prints it on one line, exit status 2)."""


# =============================================================================================
# Go's json.Marshal: orjson's output with Go's escapes (go_escape)

_STRING_CACHE: dict[str, bytes] = {}


def go_string(s: str) -> bytes:
    """A Go ``string`` as ``json.Marshal`` writes it, quotes included."""
    hit = _STRING_CACHE.get(s)
    if hit is not None:
        return hit
    out = go_escape(orjson.dumps(s))
    if len(s) < 200:
        if len(_STRING_CACHE) > 50_000:
            _STRING_CACHE.clear()
        out = bytes(memoryview(out))  # orjson's buffer may be far larger than its bytes
        _STRING_CACHE[s] = out
    return out


def _int_bytes(t: GoType, v: Any) -> bytes:
    if type(v) is bool or not isinstance(v, int):
        raise TypeError(f"{t.name} needs an int, not {type(v).__name__}")
    bits = t.bits  # type: ignore[attr-defined]
    lo, hi = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if t.kind == "int"
              else (0, (1 << bits) - 1))
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit in {t.name}")
    return str(v).encode()


def _value(t: GoType, v: Any) -> bytes:
    """A value of Go type ``t`` (no omitempty: that applies to struct fields only)."""
    kind = t.kind
    if kind == "string":
        if not isinstance(v, str):
            raise TypeError(f"string needs a str, not {type(v).__name__}")
        return go_string(v)
    if kind in ("int", "uint"):
        return _int_bytes(t, v)
    if kind == "bool":
        if not isinstance(v, bool):
            raise TypeError(f"bool needs a bool, not {type(v).__name__}")
        return b"true" if v else b"false"
    if kind == "ptr":
        return b"null" if v is None else _value(t.elem, v)  # type: ignore[attr-defined]
    if kind == "slice":
        if v is None:
            return b"null"
        elem = t.elem  # type: ignore[attr-defined]
        return b"[" + b",".join(_value(elem, x) for x in v) + b"]"
    if kind == "struct":
        if v is None:  # a nil *T inside a slice
            return b"null"
        return encode_message(t, v)  # type: ignore[arg-type]
    raise TypeError(f"cannot marshal Go type {t.name}")


def _is_empty(t: GoType, v: Any) -> bool:
    """encoding/json's isEmptyValue for the kinds used here."""
    kind = t.kind
    if kind in ("ptr", "slice"):
        return v is None or (kind == "slice" and len(v) == 0)
    if kind == "string":
        return v == ""
    if kind == "bool":
        return v is False
    if kind in ("int", "uint"):
        return v == 0
    return False  # a struct value is never empty


def encode_message(schema: Struct, msg: Mapping[str, Any]) -> bytes:
    """``json.Marshal`` of a message struct whose fields are all ``json:"<key>,omitempty"``.

    ``msg`` maps json keys to values (a missing key is the zero value; ``None`` a nil pointer or
    slice); fields come out in the schema's (struct) order.
    """
    unknown = set(msg) - {k for k, _ in schema.fields}
    if unknown:
        raise KeyError(f"{schema.name} has no field {sorted(unknown)[0]!r}")
    parts = []
    for key, t in schema.fields:
        if key not in msg:
            continue
        v = msg[key]
        if _is_empty(t, v):
            continue
        parts.append(b'"' + key.encode() + b'":' + _value(t, v))
    return b"{" + b",".join(parts) + b"}"


def schema_of(type_name: str) -> Struct:
    """The message struct the writer marshals for ``type_name`` (the ten types, AddVoucher)."""
    if type_name == "AddVoucher":
        return ADD_VOUCHER
    try:
        return DEFAULT_SCHEMAS[type_name]
    except KeyError:
        raise KeyError(f"no message schema for {type_name!r}") from None


def rfc3339nano(ns: int) -> str:
    """Go's ``time.Unix(0, ns).UTC().Format(time.RFC3339Nano)``: trailing zeros of the fraction
    dropped, no fraction when it is zero. (Go's ``MarshalJSON`` refuses years outside 0..9999;
    this refuses year 0 too.)"""
    sec, frac = divmod(ns, _SECOND)
    days, rest = divmod(sec, 86_400)
    try:
        day = date.fromordinal(_UNIX_EPOCH_ORDINAL + days)
    except (ValueError, OverflowError):
        raise ValueError(f"{ns} ns since 1970 is outside years 1..9999") from None
    hh, rest = divmod(rest, 3600)
    mm, ss = divmod(rest, 60)
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _ts_bytes(ts: int | str) -> bytes:
    if isinstance(ts, str):
        return b'"' + ts.encode() + b'"'
    return str(int(ts)).encode()


def encode_event(ts: int | str, type_name: str, payload: Mapping[str, Any] | bytes) -> bytes:
    """One log line as the writer appends it, ``"\\n"`` included.

    ``ts``: an int is the seed's ``Timestamp int64`` (Unix seconds); a str is written as a JSON
    string (the fixed writer's ``time.Time``; use :func:`rfc3339nano`). ``payload``: a mapping of
    the message's fields (marshalled with the type's schema) or bytes already marshalled.

    >>> encode_event(1761680531, "ChangeQuantity", {"Id": 2, "quantity": 3})
    b'{"ts":1761680531,"type":"ChangeQuantity","payload":{"Id":2,"quantity":3}}\\n'
    """
    if not isinstance(payload, bytes):
        payload = encode_message(schema_of(type_name), payload)
    return (b'{"ts":' + _ts_bytes(ts) + b',"type":' + go_string(type_name) + b',"payload":'
            + payload + b"}\n")


# =============================================================================================
# The catalogue

@dataclass(frozen=True)
class Product:
    """One catalogue entry: the AddItem fields the shop sends for it (quantity aside)."""

    item_id: int
    sku: str
    name: str
    price: int  # öre, incl. VAT
    org_price: int
    tax: int  # basis points
    brand: str
    category: str
    category2: str
    category3: str
    image: str
    stock: int
    disclaimer: str
    article_type: str
    seller_id: str
    seller_name: str
    outlet: str | None
    service: bool  # installation & co: added with a parentId
    head: bytes = field(repr=False, compare=False)  # '{"item_id":N,"quantity":'
    tail: bytes = field(repr=False, compare=False)  # ',"price":…' up to outlet, no '}'

    def fields(self) -> dict[str, Any]:
        """The AddItem fields (quantity, storeId and parentId aside), in struct order."""
        return {
            "item_id": self.item_id, "price": self.price, "orgPrice": self.org_price,
            "sku": self.sku, "name": self.name, "image": self.image, "stock": self.stock,
            "tax": self.tax, "brand": self.brand, "category": self.category,
            "category2": self.category2, "category3": self.category3,
            "disclaimer": self.disclaimer, "articleType": self.article_type,
            "sellerId": self.seller_id, "sellerName": self.seller_name, "country": "se",
            "outlet": self.outlet,
        }


# department, VAT (basis points), sub-categories with (product, typical price in kronor),
# brands, variants ("" = no variant in the name)
_Dept = tuple[str, int, list[tuple[str, list[tuple[str, int]]]], list[str], list[str]]
_DEPARTMENTS: list[_Dept] = [
    ("Kök & hushåll", 2500, [
        ("Kaffe & te", [("Kaffebryggare", 899), ("Vattenkokare", 449), ("Espressomaskin", 4990),
                        ("Mjölkskummare", 349)]),
        ("Köksmaskiner", [("Stavmixer", 599), ("Elvisp", 399), ("Matberedare", 2490),
                          ("Brödrost", 499), ("Våffeljärn", 399), ("Smörgåsgrill", 449)]),
        ("Kokkärl", [("Stekpanna Ø 28 cm", 499), ("Gjutjärnsgryta 4 l", 1299),
                     ("Kastrull 2 l", 399), ("Wokpanna", 599)]),
        ("Knivar & redskap", [("Kockkniv", 899), ("Skärbräda ek", 349), ("Osthyvel", 149),
                              ("Brödkniv", 399)]),
    ], ["Nordkök", "Hemmabra", "Björk & Sten", "Ölands Gjuteri", "Kökskompaniet"],
        ["svart", "vit", "rostfri", "mässing", "", ""]),
    ("Hem & inredning", 2500, [
        ("Textil", [("Ullpläd 130×170 cm", 899), ("Kuddfodral 50×50 cm", 199),
                    ("Badlakan", 249), ("Gardinlängd 2-pack", 399), ("Överkast", 1199)]),
        ("Belysning", [("Vägglampa", 599), ("Golvlampa", 1299), ("Ljusslinga 40 lampor", 299),
                       ("LED-lampa E14 dimbar", 79)]),
        ("Dekoration", [("Doftljus Skog & Mossa", 149), ("Ljusstake", 299), ("Vas", 399),
                        ("Tavelram 30×40 cm", 199)]),
    ], ["Åre Textil", "Linnéa Design", "Form & Funktion", "Hemfrid", "Ljus i Norr"],
        ["grå melerad", "natur", "svart", "vit", "crème", "", ""]),
    ("Elektronik", 2500, [
        ("Ljud", [("Hörlurar brusreducerande", 1990), ("Bluetooth-högtalare", 799),
                  ("Öronsnäckor", 599)]),
        ("Mobil", [("Mobilskal", 199), ("Laddkabel USB-C 2 m", 149), ("Powerbank 10 000 mAh",
                                                                     349), ("Skärmskydd", 149)]),
        ("Personvård", [("Hårtork", 599), ("Eltandborste", 899), ("Rakapparat", 1290)]),
        ("Datorer", [("Tangentbord", 699), ("Datormus", 349), ("Webbkamera", 899),
                     ("Skärm 27\" 4K", 3990)]),
    ], ["Ljudbolaget", "Volt & Watt", "Norrsken", "Bit & Byte", "Fjärran"],
        ["svart", "vit", "grå", "", ""]),
    ("Livsmedel", 1200, [
        ("Kaffe & te", [("Kaffe mörkrost 450 g", 69), ("Kaffe mellanrost 450 g", 64),
                        ("Te Earl Grey 100 g", 49), ("Kaffebönor espresso 1 kg", 229)]),
        ("Skafferi", [("Knäckebröd råg & havre", 34), ("Lingonsylt 400 g", 39),
                      ("Flingsalt 250 g", 44), ("Havregryn 1,5 kg", 29), ("Saffran 1 g", 59)]),
        ("Godis & choklad", [("Mjölkchoklad 200 g", 39), ("Mörk choklad 70 %", 34),
                             ("Lakritsbåtar 300 g", 44), ("Polkagrisar 6-pack", 99)]),
    ], ["Rosteriet på Söder", "Gårdsbageriet", "Fjällbär", "Salt & Sten", "Kakaobönan"],
        [""]),
    ("Böcker", 600, [
        ("Mat & dryck", [("Kärlek & kaffe – en bok om bönor", 249), ("Svensk husmanskost", 299),
                         ("Surdeg för nybörjare", 279), ("Ölbryggning hemma", 229)]),
        ("Skönlitteratur", [("Mörkt vatten", 199), ("Sommaren på Öland", 229),
                            ("Huset vid älven", 219), ("Röda stugan i Ådalen", 249)]),
        ("Fakta", [("Fåglar i Norden", 349), ("Årstiderna i trädgården", 299),
                   ("Stickat & virkat", 279), ("Svampar i skog & mark", 329)]),
    ], ["Förlaget Ugglan", "Lönn & Lind förlag", "Bokförlaget Ström"],
        ["(inbunden)", "(pocket)", ""]),
    ("Leksaker", 2500, [
        ("Småbarn", [("Dragbil i trä", 249), ("Stapeltorn", 149), ("Gosedjur älg", 199),
                     ("Skallra", 99)]),
        ("Spel & pussel", [("Pussel 1000 bitar", 199), ("Kortspel Finns i sjön", 79),
                           ("Brädspel Fia", 249)]),
        ("Bygg", [("Byggklossar 100 st", 349), ("Kulbana", 599), ("Trätåg med räls", 499)]),
    ], ["Lekladan", "Trä & Lek", "Spelhörnan"], [""]),
    ("Trädgård", 2500, [
        ("Odling", [("Planteringsjord 50 l", 89), ("Odlingslåda", 599), ("Vattenkanna 10 l", 149),
                    ("Fröpåse tomat", 29)]),
        ("Redskap", [("Sekatör", 349), ("Grensax", 499), ("Trädgårdsslang 20 m", 399),
                     ("Lövräfsa", 229)]),
        ("Fåglar", [("Fågelholk", 249), ("Fågelmat 5 kg", 149), ("Talgbollar 30-pack", 119)]),
    ], ["Åkessons Trädgård", "Grönt & Skönt", "Odlarboden"], [""]),
]
_SELLERS = [("1", "Hemma & Co Sverige AB")] * 8 + [
    ("2041", "Nordisk Design & Form AB"), ("3307", "Åkessons Trädgård"),
    ("5150", "Bok & Bild i Lund"), ("7720", "Lekladan Öst AB"),
]
_DISCLAIMERS = {
    "Leksaker": ["Varning! Ej lämplig för barn < 3 år. Innehåller smådelar.", ""],
    "Livsmedel": ["Kan innehålla spår av nötter & mandel.", "", ""],
    "Hem & inredning": ["Tvättas i 40 °C.\u2028Får ej torktumlas.", "", ""],
    "Elektronik": ["Energiklass A > B. Laddare ingår ej.", "", "", ""],
}
_OUTLETS = ["Outlet Barkarby", "Outlet Kungens Kurva", "Outlet Väla"]
_SERVICES = [
    ("Montering & installation", 49900), ("Bortforsling av gammal vara", 19900),
    ("Förlängd garanti 3 år", 29900), ("Installation & inkoppling", 69900),
]


def _shelf_price(kr: float) -> int:
    """A shop's price in öre: 24,90 kr under 100 kr, otherwise whole kronor ending in 9."""
    if kr < 100:
        return max(990, int(kr) * 100 + 90 - 100)
    k = int(kr)
    return (k - k % 10 + 9 if k % 10 else k - 1) * 100


def build_catalogue(seed: int, size: int = 420) -> list[Product]:
    """The shop's products for ``seed``: Swedish names (å, ä, ö, ``&``), prices in öre, VAT
    2500/1200/600 basis points. Deterministic."""
    rng = random.Random(f"{seed}:catalogue")
    skus = rng.sample(range(1_000_000, 9_999_999), size)
    out: list[Product] = []
    n_services = len(_SERVICES)
    for k in range(size):
        sku = str(skus[k])
        item_id = 100_000 + k * 7 + rng.randrange(7)
        if k < n_services:
            name, price = _SERVICES[k]
            dep, sub, sub3, brand, tax = "Tjänster", "Installation", "", "Hemma & Co", 2500
            org, stock, disc, art, seller, outlet = price, 0, "", "service", _SELLERS[0], None
        else:
            dep, tax, subs, brands, variants = rng.choice(_DEPARTMENTS)
            sub, nouns = rng.choice(subs)
            noun, typical = rng.choice(nouns)
            brand = rng.choice(brands)
            variant = rng.choice(variants)
            if dep == "Böcker":
                name = f"{noun} {variant}".strip()
            else:
                name = f"{brand} {noun} {variant}".strip()
            sub3 = noun.split(" ")[0] if dep not in ("Böcker", "Livsmedel") else ""
            org = _shelf_price(typical * rng.choice([0.75, 0.9, 1.0, 1.0, 1.15, 1.4]))
            price = org
            if rng.random() < 0.22:  # on sale
                price = _shelf_price(org / 100 * rng.choice([0.7, 0.75, 0.8, 0.85]))
            stock = 0 if rng.random() < 0.07 else rng.randrange(1, 400)
            disc = rng.choice(_DISCLAIMERS.get(dep, [""]))
            art = "physical"
            seller = rng.choice(_SELLERS)
            outlet = rng.choice(_OUTLETS) if rng.random() < 0.04 else None
        image = f"https://bilder.hemmaco.se/p/{sku}.jpg?w=600&h=600"
        p = dict(item_id=item_id, sku=sku, name=name, price=price, org_price=org, tax=tax,
                 brand=brand, category=dep, category2=sub, category3=sub3, image=image,
                 stock=stock, disclaimer=disc, article_type=art, seller_id=seller[0],
                 seller_name=seller[1], outlet=outlet, service=k < n_services)
        out.append(_with_templates(p))
    return out


def _with_templates(p: dict[str, Any]) -> Product:
    prod = Product(**p, head=b"", tail=b"")
    full = encode_message(DEFAULT_SCHEMAS["AddItem"], {**prod.fields(), "quantity": 1})
    marker = b',"quantity":1'
    i = full.index(marker) + len(marker) - 1
    head, tail = full[:i], full[i + 1 : -1]
    return Product(**p, head=head, tail=tail)


def _add_item_payload(p: Product, qty: int, store: str | None, parent: int | None) -> bytes:
    out = p.head + str(qty).encode() + p.tail
    if store is not None:
        out += b',"storeId":' + go_string(store)
    if parent is not None:
        out += b',"parentId":' + str(parent).encode()
    return out + b"}"


# =============================================================================================
# Places

_STORES = ["1137", "1204", "2011", "3045", "4410"]
_STORE_NAMES = {"1137": "Hemma & Co Barkarby", "1204": "Hemma & Co Kungens Kurva",
                "2011": "Hemma & Co Bäckebol", "3045": "Hemma & Co Malmö Svågertorp",
                "4410": "Hemma & Co Uppsala Gränby"}
_PICKUP_POINTS = [
    ("SE-750311", "ICA Nära Söderhallen", "Götgatan 51", "Stockholm", "11826"),
    ("SE-412203", "Pressbyrån Göteborg C", "Drottningtorget 5", "Göteborg", "41103"),
    ("SE-211409", "Hemköp Triangeln", "Södra Förstadsgatan 41", "Malmö", "21143"),
    ("SE-753204", "Coop Forum Gränby", "Marknadsgatan 1", "Uppsala", "75323"),
    ("SE-582201", "OKQ8 Ryd & Tvätt", "Rydsvägen 2", "Linköping", "58431"),
    ("SE-907331", "Circle K Ålidhem", "Ålidhemsvägen 3", "Umeå", "90736"),
    ("SE-703611", "Tempo Örebro Väster", "Västra vägen 10", "Örebro", "70362"),
    ("SE-972230", "ICA Kvantum Luleå", "Storgatan 3", "Luleå", "97231"),
]
_LOCKERS = [
    ("IB-1182", "Instabox Hemköp Hötorget", "Kungsgatan 48", "Stockholm", "11135"),
    ("IB-2240", "Instabox Coop Linné", "Linnégatan 21", "Göteborg", "41304"),
    ("IB-3391", "Instabox Willys Hyllie", "Hyllie Boulevard 19", "Malmö", "21532"),
]
_STREETS = ["Storgatan", "Drottninggatan", "Kungsgatan", "Östra Hamngatan", "Sveavägen",
            "Järnvägsgatan", "Åsögatan", "Linnégatan", "Skolgatan", "Ringvägen"]
_CITIES = [("Stockholm", "11453"), ("Göteborg", "41301"), ("Malmö", "21122"),
           ("Uppsala", "75320"), ("Västerås", "72211"), ("Örebro", "70210"),
           ("Linköping", "58223"), ("Jönköping", "55318"), ("Umeå", "90326")]
_VOUCHERS = [("HÖSTREA", 5000), ("VÄLKOMMEN10", 10000), ("BLACKWEEK", 20000),
             ("KÖP&SPARA", 15000)]


# =============================================================================================
# Time: a window of days, the deploys, a daily rhythm

# Europe/Stockholm local hour → relative share of sessions started
_HOUR_WEIGHTS = [2.0, 1.0, 0.5, 0.3, 0.3, 0.5, 1.5, 3.0, 4.0, 5.0, 5.5, 6.0, 7.0, 6.5, 6.0, 6.0,
                 6.0, 6.5, 7.0, 8.5, 9.5, 9.0, 6.0, 3.5]
_HOUR_CW = [sum(_HOUR_WEIGHTS[: i + 1]) for i in range(24)]


def _last_sunday(year: int, month: int) -> date:
    d = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return d - timedelta(days=(d.weekday() + 1) % 7)


def _stockholm_offset_hours(day: date) -> int:
    """CET/CEST: UTC+2 from the last Sunday of March to the last Sunday of October."""
    return 2 if _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10) else 1


@dataclass(frozen=True)
class Timeline:
    """The window and the two deploys, in Unix nanoseconds."""

    start_ns: int
    end_ns: int
    fix_ns: int  # the ts fix's rolling update starts
    fix_end_ns: int  # every pod runs the fix
    voucher_ns: int  # AddVoucher deployed

    @classmethod
    def make(cls, start: datetime, days: int) -> Timeline:
        s = int(start.timestamp()) * _SECOND
        fix = s + (days // 2) * _DAY + 8 * _HOUR
        voucher = s + ((3 * days) // 4) * _DAY + 13 * _HOUR
        return cls(s, s + days * _DAY, fix, fix + 20 * _MINUTE, voucher)

    def to_json(self) -> dict[str, str]:
        return {"start": rfc3339nano(self.start_ns), "end": rfc3339nano(self.end_ns),
                "fix_deploy": rfc3339nano(self.fix_ns),
                "fix_rollout_done": rfc3339nano(self.fix_end_ns),
                "voucher_deploy": rfc3339nano(self.voucher_ns)}


class _Rhythm:
    """Draws session start times: days weighted (weekends busier), hours by the Swedish daily
    rhythm in local time (CET/CEST)."""

    def __init__(self, tl: Timeline):
        self.tl = tl
        days = self.days = (tl.end_ns - tl.start_ns) // _DAY
        first = datetime.fromtimestamp(tl.start_ns // _SECOND, UTC).date()
        weights = []
        for d in range(days):
            wd = (first + timedelta(days=d)).weekday()
            weights.append(1.3 if wd >= 5 else (1.15 if wd == 0 else 1.0))
        self.day_cw = [sum(weights[: i + 1]) for i in range(days)]
        self.offsets = [_stockholm_offset_hours(first + timedelta(days=d)) for d in range(days)]

    def draw(self, rng: random.Random) -> int:
        d = min(bisect.bisect_right(self.day_cw, rng.random() * self.day_cw[-1]), self.days - 1)
        h = min(bisect.bisect_right(_HOUR_CW, rng.random() * _HOUR_CW[-1]), 23)
        ns = self.tl.start_ns + d * _DAY + (h - self.offsets[d]) * _HOUR + rng.randrange(_HOUR)
        return ns + _DAY if ns < self.tl.start_ns else ns


def _session_starts(rng: random.Random, n: int, tl: Timeline) -> list[int]:
    rhythm = _Rhythm(tl)
    return sorted(rhythm.draw(rng) for _ in range(n))


# =============================================================================================
# One shopper's session, simulated against a mirror of the cart model (docs/model.md), so that
# every id in a mutation refers to something that exists and the replay applies the line.

@dataclass
class _Item:
    id: int
    sku: str
    store: str | None
    qty: int
    product: Product | None


# An event: (true time in ns (the written ts may differ: clock-step), type as bytes, payload,
# the incident that planted it or None)
_Event = tuple[int, bytes, bytes, "str | None"]


# -ln(1 - i/64) × 1e6: quantiles of the exponential distribution, as integers so that sampling
# needs no libm (whose last bit may differ between platforms) and writes the same bytes anywhere
_EXP_Q = [
    0, 15748, 31749, 48009, 64539, 81346, 98440, 115832, 133531, 151550, 169899, 188591, 207639,
    227057, 246860, 267063, 287682, 308735, 330242, 352221, 374693, 397683, 421213, 445311,
    470004, 495321, 521297, 547965, 575364, 603535, 632523, 662376, 693147, 724896, 757686,
    791587, 826679, 863046, 900787, 940007, 980829, 1023389, 1067841, 1114361, 1163151, 1214444,
    1268511, 1325670, 1386294, 1450833, 1519826, 1593934, 1673976, 1760988, 1856298, 1961659,
    2079442, 2212973, 2367124, 2549445, 2772589, 3060271, 3465736, 4158883,
]


def _exponential(rng: random.Random) -> float:
    """An Exponential(1) draw from the quantile table, linear within each 1/64 (the last bucket
    is memoryless: its start plus another draw). IEEE arithmetic only."""
    base = 0
    while True:
        u = rng.random() * 64
        k = int(u)
        if k < 63:
            lo = _EXP_Q[k]
            return (base + lo + (_EXP_Q[k + 1] - lo) * (u - k)) / 1_000_000
        base += _EXP_Q[63]


_ARCHETYPES = ("browse", "delivery", "checkout", "completed")
_ARCHETYPE_CW = [0.52, 0.64, 0.72, 1.0]


_ENCODED: dict[bytes, bytes] = {}


def _encode_cached(type_name: str, body: dict[str, Any]) -> bytes:
    """encode_message, memoised: deliveries repeat the same few pickup points and addresses."""
    key = type_name.encode() + orjson.dumps(body)
    hit = _ENCODED.get(key)
    if hit is None:
        if len(_ENCODED) > 20_000:
            _ENCODED.clear()
        hit = _ENCODED[key] = encode_message(DEFAULT_SCHEMAS[type_name], body)
    return hit


class _Session:
    def __init__(self, rng: random.Random, cat: _Catalogue, t0: int, order_id: str):
        self.rng = rng
        self.cat = cat
        self.t = t0
        self.order_id = order_id
        self.items: list[_Item] = []
        self.deliveries: list[tuple[int, list[int], str]] = []  # id, items, provider
        self.last_item = 0
        self.last_delivery = 0
        self.events: list[_Event] = []

    # -- clock ---------------------------------------------------------------------------------
    def think(self, scale: float = 25.0) -> None:
        """A shopper's pause: a couple of seconds to minutes, now and then much longer."""
        r = self.rng.random
        secs = 2.0 + scale * _exponential(self.rng)
        if r() < 0.08:
            secs *= 6.0
        self.t += int(min(secs, 1800.0) * _SECOND)

    def emit(self, type_name: bytes, payload: bytes, mark: str | None = None) -> None:
        self.events.append((self.t, type_name, payload, mark))

    # -- the model's handlers, mirrored ----------------------------------------------------------
    def _undelivered(self) -> list[int]:
        taken = {i for _, ids, _ in self.deliveries for i in ids}
        return [it.id for it in self.items if it.id not in taken]

    def add_item(self, p: Product, qty: int, store: str | None = None,
                 parent: int | None = None) -> _Item:
        self.emit(b"AddItem", _add_item_payload(p, qty, store, parent))
        for it in self.items:
            if it.sku == p.sku and it.store == store:
                it.qty += qty
                return it
        self.last_item += 1
        it = _Item(self.last_item, p.sku, store, qty, p)
        self.items.append(it)
        return it

    def add_request(self, p: Product, qty: int, store: str | None = None) -> None:
        body = b'{"quantity":%d,"sku":%s,"country":"se"' % (qty, go_string(p.sku))
        if store is not None:
            body += b',"storeId":' + go_string(store)
        self.emit(b"AddRequest", body + b"}")
        self._request(p, qty, store)

    def _request(self, p: Product, qty: int, store: str | None) -> None:
        for it in self.items:
            if it.sku == p.sku:
                it.qty += qty
                return
        self.last_item += 1
        self.items.append(_Item(self.last_item, p.sku, store, qty, p))

    def set_cart(self, entries: list[tuple[Product, int]]) -> None:
        self.emit(b"SetCartRequest", encode_message(DEFAULT_SCHEMAS["SetCartRequest"], {
            "items": [{"quantity": q, "sku": p.sku, "country": "se"} for p, q in entries]}))
        self.items = []
        for p, q in entries:
            self._request(p, q, None)

    def change_quantity(self, it: _Item, qty: int, mark: str | None = None) -> None:
        self.emit(b"ChangeQuantity", b'{"Id":%d,"quantity":%d}' % (it.id, qty) if qty
                  else b'{"Id":%d}' % it.id, mark)
        if mark is not None:
            return
        if qty <= 0:
            self._drop(it)
        else:
            it.qty = qty

    def remove_item(self, it: _Item) -> None:
        self.emit(b"RemoveItem", b'{"Id":%d}' % it.id)
        self._drop(it)

    def _drop(self, it: _Item) -> None:
        self.items = [x for x in self.items if x.id != it.id]
        self.deliveries = [(d, [i for i in ids if i != it.id], pr)
                           for d, ids, pr in self.deliveries]

    def set_delivery(self, provider: str, ids: list[int] | None, msg: dict[str, Any],
                     mark: str | None = None) -> None:
        body = {"provider": provider, "items": ids, **msg}
        self.emit(b"SetDelivery", _encode_cached("SetDelivery", body) if "address" not in msg
                  else encode_message(DEFAULT_SCHEMAS["SetDelivery"], body), mark)
        if mark is not None:
            return
        covered = ids if ids else self._undelivered()
        self.last_delivery += 1
        self.deliveries.append((self.last_delivery, list(covered), provider))

    # -- the shopper ---------------------------------------------------------------------------
    def add_something(self, allow_request: bool = True) -> _Item | None:
        rng = self.rng
        p = self.cat.pick(rng)
        r = rng.random()
        qty = 1 if r < 0.74 else 2 if r < 0.9 else rng.randrange(3, 7)
        if p.category == "Livsmedel" and rng.random() < 0.4:
            qty += rng.randrange(1, 4)
        store = rng.choice(_STORES) if rng.random() < 0.08 else None
        if allow_request and rng.random() < 0.1:
            self.add_request(p, qty, store)
            return None
        it = self.add_item(p, qty, store)
        if p.price >= 99900 and p.category in ("Kök & hushåll", "Elektronik") \
                and rng.random() < 0.25:
            self.think(12)
            self.add_item(rng.choice(self.cat.services), 1, None, it.id)
        return it

    def fiddle(self) -> None:
        """Change a quantity or remove an item, sometimes."""
        rng = self.rng
        if not self.items:
            return
        r = rng.random()
        if r < 0.18:
            self.think(15)
            it = rng.choice(self.items)
            q = it.qty + 1 if rng.random() < 0.6 else it.qty - 1  # 0 removes the item
            self.change_quantity(it, q)
        elif r < 0.27 and len(self.items) >= 2:
            self.think(15)
            self.remove_item(rng.choice(self.items))

    def delivery(self) -> None:
        rng = self.rng
        undelivered = self._undelivered()
        if not undelivered:
            return
        stored = [it for it in self.items if it.store is not None and it.id in undelivered]
        if stored and len(stored) < len(undelivered) and rng.random() < 0.7:
            store = stored[0].store
            assert store is not None
            ids = [it.id for it in stored if it.store == store]
            self.think(20)
            self.set_delivery("click-collect", ids, {
                "pickupPoint": {"id": store, "name": _STORE_NAMES[store]}, "country": "se"})
        if not self._undelivered():
            return
        self.think(30)
        r = rng.random()
        city, zip_ = rng.choice(_CITIES)
        if r < 0.45:
            pid, name, addr, pcity, pzip = rng.choice(_PICKUP_POINTS)
            self.set_delivery("postnord", None, {
                "pickupPoint": {"id": pid, "name": name, "address": addr, "city": pcity,
                                "zip": pzip, "country": "SE"}, "country": "se", "zip": pzip})
        elif r < 0.7:
            pid, name, addr, pcity, pzip = rng.choice(_LOCKERS)
            self.set_delivery("instabox", None, {
                "pickupPoint": {"id": pid, "name": name, "address": addr, "city": pcity,
                                "zip": pzip, "country": "SE"}, "country": "se", "zip": pzip})
        else:
            street = f"{rng.choice(_STREETS)} {rng.randrange(1, 80)}"
            if rng.random() < 0.2:
                street += rng.choice([" lgh 1102", " 2 tr", "B"])
            self.set_delivery(rng.choice(["budbee", "airmee", "postnord-hem"]), None, {
                "country": "se", "zip": zip_, "address": street, "city": city})
        d_id, _, provider = self.deliveries[-1]
        if provider in ("postnord", "instabox") and rng.random() < 0.15:
            self.think(20)
            pid, name, addr, pcity, pzip = rng.choice(
                _PICKUP_POINTS if provider == "postnord" else _LOCKERS)
            self.emit(b"SetPickupPoint", _encode_cached("SetPickupPoint", {
                "deliveryId": d_id, "id": pid, "name": name, "address": addr, "city": pcity,
                "zip": pzip, "country": "SE"}))
        elif rng.random() < 0.06:
            self.think(20)
            self.emit(b"RemoveDelivery", b'{"id":%d}' % d_id)
            self.deliveries = [d for d in self.deliveries if d[0] != d_id]
            self.think(20)
            city, zip_ = rng.choice(_CITIES)
            self.set_delivery("budbee", None, {
                "country": "se", "zip": zip_,
                "address": f"{rng.choice(_STREETS)} {rng.randrange(1, 80)}", "city": city})

    def checkout(self, complete: bool) -> None:
        rng = self.rng
        self.think(40)
        oid = orjson.dumps(self.order_id)  # "HB-…": nothing for Go to escape
        init = b'{"orderId":' + oid + b',"status":"checkout_incomplete","paymentInProgress":true}'
        self.emit(b"InitializeCheckout", init)
        if rng.random() < 0.12:  # payment retried
            self.think(60)
            self.emit(b"InitializeCheckout", init)
        if complete:
            self.think(50)
            self.emit(b"OrderCreated", b'{"orderId":' + oid + b',"status":"checkout_complete"}')


class _Catalogue:
    def __init__(self, products: list[Product]):
        self.products = [p for p in products if not p.service]
        self.services = [p for p in products if p.service]
        # popularity: a long tail (Zipf-like)
        self.cw = list(_cumsum(1.0 / (rank + 8) for rank in range(len(self.products))))

    def pick(self, rng: random.Random) -> Product:
        i = bisect.bisect_right(self.cw, rng.random() * self.cw[-1])
        return self.products[min(i, len(self.products) - 1)]


def _cumsum(xs: Iterable[float]) -> Iterable[float]:
    s = 0.0
    for x in xs:
        s += x
        yield s


def _long_image(rng: random.Random) -> str:
    """An inline JPEG as a seller's tool pastes it: big enough to pass the 256 KiB line limit."""
    size = rng.randrange(200_000, 236_000)
    jfif = bytes.fromhex("ffd8ffe000104a46494600010101004800480000ffdb004300")
    return "data:image/jpeg;base64," + base64.b64encode(jfif + rng.randbytes(size)).decode()


def _simulate(rng: random.Random, cat: _Catalogue, t0: int, tl: Timeline, order_id: str,
              plant: str | None, variant: int, rollout: bool, visits: int = 1) -> _Session:
    """One cart. ``plant`` forces what the incident needs and marks its records. ``visits``: the
    shopper's visits; all but the last only add and change items."""
    s = _Session(rng, cat, t0, order_id)
    for v in range(visits - 1, 0, -1):
        for _ in range(1 + int(1.6 * _exponential(rng))):
            s.add_something()
            s.fiddle()
            s.think()
        room = max(2 * _HOUR, (tl.end_ns - s.t) // (v + 1))
        s.t += _HOUR + rng.randrange(room)
    arche = _ARCHETYPES[bisect.bisect_right(_ARCHETYPE_CW, rng.random())]
    n = 1
    while n < 12 and rng.random() < 0.64:
        n += 1
    need = {"long-line": 3, "crash": 2, "clock-step": 3, "two-writers": 2,
            "handler-errors": 3}.get(plant or "", 1)
    if rollout:
        need = 3
    n = max(n, need)
    if plant in ("unknown-type", "clock-step", "long-line") or rollout:
        arche = rng.choice(["checkout", "completed", "completed"])
    if plant == "handler-errors" and variant == 1 and arche == "browse":
        arche = "completed"
    # -- items --
    first = 0
    if plant is None and not rollout and not s.events and rng.random() < 0.04:
        k = rng.randrange(2, 5)
        s.set_cart([(cat.pick(rng), rng.randrange(1, 3)) for _ in range(k)])
        first = 1
        n = max(n - k + 1, 1)
    for k in range(first, n):
        if k:
            s.think()
        s.add_something()
        if plant == "long-line" and k == 0:
            s.think(90)
            seller = cat.pick(rng)
            p = _with_templates({
                **{f: getattr(seller, f) for f in (
                    "price", "org_price", "tax", "brand", "category", "category2", "category3",
                    "stock", "disclaimer", "article_type", "outlet", "service")},
                "item_id": 900_000 + rng.randrange(99_999),
                "sku": f"MP-{rng.randrange(10**6, 10**7)}",
                "name": f"{seller.name} (säljarens egen bild)",
                "image": _long_image(rng), "seller_id": "8801",
                "seller_name": "Fyndhörnan & Co (marknadsplats)",
            })
            s.add_item(p, 1)
            s.events[-1] = s.events[-1][:3] + ("long-line",)
        elif plant is None:
            s.fiddle()
    if not s.items:  # everything removed, or only AddRequests of one item removed
        s.think()
        s.add_item(cat.pick(rng), 1)
    if plant == "two-writers":
        s.think()
        a = rng.choice(s.items)
        b = rng.choice(s.items)
        s.emit(b"ChangeQuantity", b'{"Id":%d,"quantity":%d}' % (a.id, a.qty + 1), "two-writers")
        s.t += rng.randrange(1, 400_000_000)
        qb = b.qty + (2 if b is a else 1)
        s.emit(b"ChangeQuantity", b'{"Id":%d,"quantity":%d}' % (b.id, qb), "two-writers")
        # what the live cart did: both applied
        a.qty += 1
        b.qty = qb
    if plant == "handler-errors" and variant == 0:
        s.think(20)
        gone = rng.choice(s.items)
        s.remove_item(gone)
        s.t += rng.randrange(300_000_000, 3 * _SECOND)
        s.change_quantity(gone, gone.qty + 1, mark="handler-errors")
        if not s.items:
            s.think()
            s.add_item(cat.pick(rng), 1)
    if arche == "browse":
        if plant is None and not rollout and rng.random() < 0.12:
            s.t += rng.randrange(_HOUR, 3 * _DAY)
            if s.t < tl.end_ns:
                s.add_something()
                s.fiddle()
        return s
    if plant is None and not rollout and rng.random() < 0.12:  # came back later
        s.t += rng.randrange(_HOUR, 3 * _DAY)
        if s.t >= tl.end_ns:
            return s
    # -- delivery --
    if plant == "handler-errors" and variant == 1:
        ids = s._undelivered()
        pid, name, addr, pcity, pzip = rng.choice(_PICKUP_POINTS)
        msg = {"pickupPoint": {"id": pid, "name": name, "address": addr, "city": pcity,
                               "zip": pzip, "country": "SE"}, "country": "se", "zip": pzip}
        s.think(30)
        s.set_delivery("postnord", ids, msg)
        s.t += rng.randrange(400_000_000, 2 * _SECOND)  # the form, submitted twice
        s.set_delivery("postnord", ids, msg, mark="handler-errors")
    else:
        s.delivery()
    if arche == "delivery":
        return s
    if plant == "unknown-type":
        code, amount = rng.choice(_VOUCHERS)
        s.think(30)
        s.emit(b"AddVoucher", encode_message(ADD_VOUCHER, {"code": code, "amount": amount}),
               "unknown-type")
        if rng.random() < 0.3:
            code2, amount2 = rng.choice(_VOUCHERS)
            s.think(20)
            s.emit(b"AddVoucher", encode_message(ADD_VOUCHER, {"code": code2, "amount": amount2}),
                   "unknown-type")
    s.checkout(arche == "completed")
    return s


# =============================================================================================
# Laying a session out as bytes, with the physical incidents

@dataclass
class _Cart:
    data: bytes
    lines: int
    planted: dict[str, list[int]]
    note: str | None


def _layout(s: _Session, rng: random.Random, tl: Timeline, numeric_on: bool,
            plant: str | None, variant: int) -> _Cart:
    events = s.events
    n = len(events)
    step_at, step_ns = n, 0
    if plant == "clock-step":
        step_at = rng.randrange(2, n - 1)
        gap = events[step_at][0] - events[step_at - 1][0]
        step_ns = gap + rng.randrange(90, 1800) * _SECOND + rng.randrange(_SECOND)
    records: list[bytes] = []
    numeric: list[int] = []  # 1-based lines with a numeric ts (= event index + 1 until a plant)
    fix, fix_end = tl.fix_ns, tl.fix_end_ns
    rollout = fix_end - fix
    for i, (t, typ, payload, _) in enumerate(events):
        clock = t - step_ns if i >= step_at else t
        if numeric_on and (t < fix or (t < fix_end and rng.random() * rollout < fix_end - t)):
            ts = b"%d" % (clock // _SECOND)
            numeric.append(i + 1)
        else:
            ts = _rfc3339_quoted(clock)
        records.append(b'{"ts":' + ts + b',"type":"' + typ + b'","payload":' + payload
                       + b"}\n")
    if plant is None or plant == "numeric-ts":
        return _Cart(b"".join(records), n, {"numeric-ts": numeric} if numeric else {}, None)
    is_numeric = set(numeric)
    planted: dict[str, list[int]] = {}
    note = None
    out: list[bytes] = []
    line = 0
    i = 0
    while i < n:
        mark = events[i][3]
        if mark == "two-writers":
            a, b = records[i], records[i + 1]
            if variant == 0:
                out.append(a[:-1] + b + b"\n")  # A's "\n" came after B's whole write
                note = "glued: {..}{..} then an empty line"
            else:
                cut = rng.randrange(12, len(a) - 3)
                out.append(a[:cut] + b + a[cut:])
                note = f"torn: the first record split after byte {cut}, the second inside it"
            planted.setdefault("two-writers", []).extend([line + 1, line + 2])
            line += 2
            i += 2
            continue
        rec = records[i]
        line += 1
        whole = True
        if i == n - 1 and plant == "crash":
            if variant == 0:
                rec = rec[:-1]
                note = "the last record whole, its newline lost"
            else:
                cut = rng.randrange(20, len(rec) - 2)
                rec = rec[:cut]
                whole = False
                note = f"the last record cut after {cut} of {len(records[i]) - 1} bytes"
            planted["crash"] = [line]
        if mark is not None:
            planted.setdefault(mark, []).append(line)
            if plant == "long-line":
                note = f"AddItem of {len(rec) - 1:,} bytes, then {n - 1 - i} more lines"
            elif plant == "handler-errors":
                note = ("ChangeQuantity of an item removed just before" if variant == 0
                        else "SetDelivery submitted twice for the same items")
        if i == step_at:
            planted["clock-step"] = [line]
            note = f"the clock steps back {step_ns / _SECOND:.1f} s"
        if whole and i + 1 in is_numeric:
            planted.setdefault("numeric-ts", []).append(line)
        out.append(rec)
        i += 1
    if plant == "unknown-type":
        note = f"{len(planted.get('unknown-type', []))} AddVoucher line(s)"
    return _Cart(b"".join(out), line, planted, note)


_MINUTES: dict[int, bytes] = {}


def _rfc3339_quoted(ns: int) -> bytes:
    """``b'"' + rfc3339nano(ns) + b'"'``, with the date and minute cached."""
    sec, frac = divmod(ns, _SECOND)
    minute, second = divmod(sec, 60)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) > 100_000:
            _MINUTES.clear()
        head = _MINUTES[minute] = ('"' + rfc3339nano(minute * 60 * _SECOND)[:17]).encode()
    if frac:
        return head + (b"%02d.%09d" % (second, frac)).rstrip(b"0") + b'Z"'
    return head + b'%02dZ"' % second


# =============================================================================================
# The plan: which carts carry which incident

# incident -> (share of carts, at least); numeric-ts: carts that straddle the rolling deploy
_SHARE = {
    "numeric-ts": (0.005, 2), "unknown-type": (0.05, 3), "two-writers": (0.01, 2),
    "crash": (0.01, 2), "long-line": (0.001, 2), "clock-step": (0.01, 2),
    "handler-errors": (0.02, 2),
}


def _plan(n: int, starts: list[int], tl: Timeline, incidents: Sequence[str],
          rng: random.Random) -> dict[int, tuple[str, int]]:
    """cart index → (incident, variant). Carts for every incident are reserved whether it is on
    or not (so switching one off leaves the others' carts alone) when there are enough carts."""
    counts = {name: max(least, round(share * n)) for name, (share, least) in _SHARE.items()}
    names = list(_SHARE) if sum(counts.values()) <= n else [x for x in _SHARE if x in incidents]
    need = sum(counts[x] for x in names)
    if need > n:
        raise SampleError(
            f"{n} carts are too few for the incidents asked for (they need {need}); "
            "ask for more carts or fewer incidents")
    plan: dict[int, tuple[str, int]] = {}
    late = tl.end_ns - 6 * _HOUR
    if "numeric-ts" in names:  # sessions during the rolling deploy
        mid = tl.fix_ns
        near = sorted(range(n), key=lambda i: (abs(starts[i] - mid), i))[: counts["numeric-ts"]]
        for k, i in enumerate(sorted(near)):
            starts[i] = tl.fix_ns + rng.randrange(10 * _MINUTE)
            plan[i] = ("numeric-ts", k)
    if "unknown-type" in names:
        lo = tl.voucher_ns + 10 * _MINUTE
        hi = max(late, lo + _HOUR)
        ok = [i for i in range(n) if i not in plan and lo <= starts[i] <= hi]
        k_need = counts["unknown-type"]
        chosen = rng.sample(ok, k_need) if len(ok) >= k_need else ok
        if len(chosen) < k_need:
            rest = [i for i in range(n) if i not in plan and i not in set(chosen)]
            extra = rng.sample(rest, k_need - len(chosen))
            for i in extra:
                starts[i] = lo + rng.randrange(hi - lo)
            chosen = chosen + extra
        for k, i in enumerate(sorted(chosen)):
            plan[i] = ("unknown-type", k)
    free = [i for i in range(n) if i not in plan and starts[i] <= late]
    if len(free) < sum(counts[x] for x in names if x not in ("numeric-ts", "unknown-type")):
        free = [i for i in range(n) if i not in plan]
    # alternate the eras: the k-th cart of an incident before the ts fix when k is even, after
    # it when k is odd, so that each incident shows both masked by numeric ts and as itself
    early = [i for i in free if starts[i] < tl.fix_ns - 2 * _HOUR]
    later = [i for i in free if starts[i] > tl.fix_end_ns + 2 * _HOUR]
    between = [i for i in free if tl.fix_ns - 2 * _HOUR <= starts[i] <= tl.fix_end_ns + 2 * _HOUR]
    for pool in (early, later, between):
        rng.shuffle(pool)
    for name in names:
        if name in ("numeric-ts", "unknown-type"):
            continue
        for k in range(counts[name]):
            first, second = (early, later) if k % 2 == 0 else (later, early)
            pool = first or second or between
            plan[pool.pop()] = (name, k)
    return plan


# =============================================================================================
# The manifest

@dataclass
class SampleManifest:
    """What :func:`write_sample` wrote and planted.

    ``files``: ``(file name, physical lines)`` per cart, in cart-id order. ``planted``:
    incident → ``[(cart_id, line), ...]`` (1-based physical lines, as ``read_events`` numbers
    them); ``lines_by_incident`` holds the same as incident → cart_id → lines (a ``range`` when
    they are consecutive). ``notes``: incident → cart_id → what was planted there, in words.
    """

    out_dir: Path
    seed: int
    carts: int
    incidents: tuple[str, ...]
    start: str
    days: int
    events: int | None
    visits: int
    timeline: dict[str, str]
    file_lines: Sequence[int]  # physical lines of cart-1001, cart-1002, ...
    bytes_written: int
    lines_by_incident: dict[str, dict[str, Sequence[int]]]
    notes: dict[str, dict[str, str]]

    @property
    def files(self) -> list[tuple[str, int]]:
        """``(file name, physical lines)`` of every log written, in cart-id order."""
        return [(f"cart-{1001 + i}{LOG_SUFFIX}", n) for i, n in enumerate(self.file_lines)]

    @property
    def lines(self) -> int:
        """Physical lines written, over all files."""
        return sum(self.file_lines)

    @property
    def planted(self) -> dict[str, list[tuple[str, int]]]:
        """incident → every ``(cart_id, line)`` it planted (an incident switched off: [])."""
        return {name: [(cid, ln) for cid, lines in self.lines_by_incident.get(name, {}).items()
                       for ln in lines]
                for name in ALL_INCIDENTS}

    def carts_of(self, incident: str) -> list[str]:
        """The carts an incident planted lines in."""
        return list(self.lines_by_incident.get(incident, {}))

    def command(self) -> str:
        """The command line that writes the same bytes (OUT left as ``OUT``)."""
        size = f"--events {self.events}" if self.events is not None else f"--carts {self.carts}"
        args = ["cartforensics sample OUT", size, f"--seed {self.seed}"]
        if set(self.incidents) != set(ALL_INCIDENTS):
            args += [f"--incident {x}" for x in self.incidents] or ["--no-incidents"]
        if self.start != rfc3339nano(int(DEFAULT_START.timestamp()) * _SECOND):
            args.append(f"--start {self.start}")
        if self.days != DEFAULT_DAYS:
            args.append(f"--days {self.days}")
        if self.visits != 1:
            args.append(f"--visits {self.visits}")
        return " ".join(args)

    def to_json(self) -> bytes:
        """``sample_manifest.json``: deterministic, one entry a line where it helps reading."""
        buf = io.BytesIO()
        self.write_json(buf)
        return buf.getvalue()

    def write_json(self, fh: BinaryIO) -> None:
        """:meth:`to_json`, written piece by piece."""
        head = {
            "generator": GENERATOR, "version": GENERATOR_VERSION, "command": self.command(),
            "seed": self.seed, "carts": self.carts, "events": self.events, "visits": self.visits,
            "incidents": list(self.incidents), "start": self.start, "days": self.days,
            "timeline": self.timeline, "lines": self.lines, "bytes": self.bytes_written,
        }
        w = fh.write
        w(b"{\n")
        for k, v in head.items():
            w(b"  " + orjson.dumps(k) + b": " + orjson.dumps(v) + b",\n")
        w(b'  "notes": {')
        sep = b"\n"
        for name, per_cart in self.notes.items():
            w(sep + b"    " + orjson.dumps(name) + b": " + orjson.dumps(per_cart))
            sep = b",\n"
        w(b"\n  },\n")
        w(b'  "planted": {')
        sep = b"\n"
        for name in ALL_INCIDENTS:
            w(sep + b"    " + orjson.dumps(name) + b": {")
            inner = b"\n"
            for cid, lines in self.lines_by_incident.get(name, {}).items():
                w(inner + b"      " + orjson.dumps(cid) + b": " + orjson.dumps(list(lines)))
                inner = b",\n"
            w(b"\n    }")
            sep = b",\n"
        w(b"\n  },\n")
        w(b'  "files": [')
        sep = b"\n"
        for i, n in enumerate(self.file_lines):
            w(sep + b'    ["cart-%d%s", %d]' % (1001 + i, LOG_SUFFIX.encode(), n))
            sep = b",\n"
        w(b"\n  ]\n}\n")


# =============================================================================================
# write_sample

def _parse_start(start: datetime | date | str) -> datetime:
    if isinstance(start, str):
        text = start.strip()
        try:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SampleError(f"--start {text!r} is not a date or an ISO 8601 time") from None
    if isinstance(start, datetime):
        return start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    if isinstance(start, date):
        return datetime(start.year, start.month, start.day, tzinfo=UTC)
    raise SampleError(f"start must be a datetime, a date or a string, not {start!r}")


def _prepare_out(out: Path) -> None:
    """OUT must be new, empty, or a previous sample (whose files are then removed)."""
    if out.exists() and not out.is_dir():
        raise SampleError(f"{out}: exists and is not a directory")
    if not out.exists():
        out.mkdir(parents=True)
        return
    entries = list(out.iterdir())
    if not entries:
        return
    mpath = out / MANIFEST_NAME
    previous: dict[str, Any] | None = None
    if mpath.is_file():
        try:
            previous = orjson.loads(mpath.read_bytes())
        except orjson.JSONDecodeError:
            previous = None
    if not isinstance(previous, dict) or previous.get("generator") != GENERATOR:
        raise SampleError(
            f"{out}: not empty and not a previous sample (no {MANIFEST_NAME}); "
            "give a new or empty directory")
    listed = {str(f[0]) for f in previous.get("files", []) if isinstance(f, list) and f}
    listed = {x for x in listed if "/" not in x and "\\" not in x and x.endswith(LOG_SUFFIX)}
    strangers = sorted(p.name for p in entries if p.is_file() and p.name not in listed and (
        p.name.endswith(LOG_SUFFIX) or p.name.endswith(LOG_SUFFIX + ".gz")))
    if strangers:
        raise SampleError(
            f"{out}: holds logs that are not from the previous sample ({strangers[0]}, ...); "
            "give a new or empty directory")
    for name in [*listed, CATALOG_NAME, MANIFEST_NAME]:
        (out / name).unlink(missing_ok=True)


def write_sample(
    out_dir: str | Path,
    carts: int = 300,
    seed: int = 0,
    incidents: Iterable[str] = ALL_INCIDENTS,
    start: datetime | date | str = DEFAULT_START,
    days: int = DEFAULT_DAYS,
    events: int | None = None,
    visits: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SampleManifest:
    """Write a deterministic corpus of cart logs to ``out_dir`` and return its manifest.

    ``carts``: how many carts (one ``cart-<n>.events.log`` each, ids from ``cart-1001`` in
    order of their first event). ``events``: instead of ``carts``, write exactly this many lines
    (carts as needed; the last one may be cut short). ``visits``: the shopper's visits per cart
    (1: one session; more: long-lived carts, fewer and longer files, e.g. for benchmarks).
    ``incidents``: which of
    :data:`ALL_INCIDENTS` to plant. ``start``/``days``: the window (UTC). ``out_dir`` must be new,
    empty, or hold a previous sample (its files are replaced; other files such as a README are
    kept). ``progress(lines_written, lines_expected)`` is called now and then.
    """
    incidents = (incidents,) if isinstance(incidents, str) else tuple(incidents)
    bad = [x for x in incidents if x not in ALL_INCIDENTS]
    if bad:
        raise SampleError(f"unknown incident {bad[0]!r}: choose from {', '.join(ALL_INCIDENTS)}")
    incidents = tuple(x for x in ALL_INCIDENTS if x in incidents)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SampleError(f"seed must be a non-negative integer, not {seed!r}")
    if isinstance(visits, bool) or not isinstance(visits, int) or not 1 <= visits <= 1000:
        raise SampleError(f"visits must be an integer from 1 to 1000, not {visits!r}")
    per_cart = MEAN_LINES_PER_CART + (visits - 1) * MEAN_LINES_PER_VISIT
    if events is not None:
        if isinstance(events, bool) or not isinstance(events, int) or events < 1:
            raise SampleError(f"events must be a positive integer, not {events!r}")
        carts = max(1, math.ceil(events / per_cart))
    elif isinstance(carts, bool) or not isinstance(carts, int) or carts < 1:
        raise SampleError(f"carts must be a positive integer, not {carts!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise SampleError(f"days must be an integer from 1 to 3650, not {days!r}")
    t0 = _parse_start(start)
    tl = Timeline.make(t0, days)
    out = Path(out_dir)

    starts = _session_starts(random.Random(f"{seed}:starts"), carts, tl)
    plan = _plan(carts, starts, tl, incidents, random.Random(f"{seed}:plan"))
    _prepare_out(out)  # only once the arguments are known to be good
    products = build_catalogue(seed)
    cat = _Catalogue(products)
    out_s = os.fspath(out)
    numeric_on = "numeric-ts" in incidents

    file_lines = array("L")
    lines_by: dict[str, dict[str, list[int]]] = {x: {} for x in incidents}
    notes: dict[str, dict[str, str]] = {x: {} for x in incidents if x != "numeric-ts"}
    total_lines = 0
    total_bytes = 0
    i = 0
    extra_rng = random.Random(f"{seed}:extra")  # carts beyond the plan (events=N)
    rhythm = _Rhythm(tl)
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short-lived objects and no cycles: the collector only costs time
    try:
        while True:
            if events is None and i >= carts:
                break
            if events is not None and total_lines >= events:
                break
            cid = f"cart-{1001 + i}"
            rng = random.Random(f"{seed}:cart:{i}")
            start_ns = starts[i] if i < carts else rhythm.draw(extra_rng)
            planned, k_th = plan.get(i, (None, 0))
            variant = (k_th + k_th // 2) % 2  # both variants, in both eras, from 3 carts on
            plant = planned if planned in incidents and planned != "numeric-ts" else None
            rollout = planned == "numeric-ts"
            order_id = f"HB-{200_000 + i * 3 + rng.randrange(3)}"
            s = _simulate(rng, cat, start_ns, tl, order_id, plant, variant, rollout, visits)
            cart = _layout(s, rng, tl, numeric_on, plant, variant)
            if events is not None and total_lines + cart.lines > events:
                # the last cart: a plain session, cut to the lines still wanted
                rng = random.Random(f"{seed}:cart:{i}:last")
                s = _simulate(rng, cat, start_ns, tl, order_id, None, 0, False, visits)
                s.events = s.events[: events - total_lines]
                cart = _layout(s, rng, tl, numeric_on, None, 0)
                rollout = False
            name = cid + LOG_SUFFIX
            fd = os.open(os.path.join(out_s, name), _WRITE_FLAGS, 0o644)
            try:
                os.write(fd, cart.data)
            finally:
                os.close(fd)
            file_lines.append(cart.lines)
            total_lines += cart.lines
            total_bytes += len(cart.data)
            for inc, lines in cart.planted.items():
                if inc in lines_by:
                    compact = lines[-1] - lines[0] + 1 == len(lines)  # ascending, consecutive
                    lines_by[inc][cid] = range(lines[0], lines[-1] + 1) if compact else lines
            if cart.note is not None and plant is not None:
                notes[plant][cid] = cart.note
            if rollout and numeric_on:
                num = set(cart.planted.get("numeric-ts", []))
                kinds = "".join("n" if ln in num else "s" for ln in range(1, cart.lines + 1))
                notes.setdefault("numeric-ts", {})[cid] = (
                    "during the rolling deploy: ts per line " + kinds + " (n number, s string)")
            i += 1
            if progress is not None and i % 2000 == 0:
                progress(total_lines, events if events is not None else int(carts * per_cart))
    finally:
        if gc_was_on:
            gc.enable()
    (out / CATALOG_NAME).write_bytes(_catalog_json(products))
    manifest = SampleManifest(
        out_dir=out, seed=seed, carts=len(file_lines), incidents=incidents,
        start=rfc3339nano(tl.start_ns), days=days, events=events, visits=visits,
        timeline=tl.to_json(),
        file_lines=file_lines, bytes_written=total_bytes, lines_by_incident=lines_by,
        notes={k: v for k, v in notes.items() if k in incidents},
    )
    with open(out / MANIFEST_NAME, "wb") as fh:
        manifest.write_json(fh)
    return manifest


def _catalog_json(products: list[Product]) -> bytes:
    """sku → AddItem fields (what the product service answered), one product a line."""
    lines = []
    for p in products:
        fields = {k: v for k, v in p.fields().items() if v not in (None, "", 0)}
        lines.append(b"  " + orjson.dumps(p.sku) + b": " + orjson.dumps(fields))
    return b"{\n" + b",\n".join(lines) + b"\n}\n"


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """``sample_manifest.json`` of a sample directory, as written (planted lines per cart)."""
    return orjson.loads((Path(out_dir) / MANIFEST_NAME).read_bytes())


# =============================================================================================
# The command
