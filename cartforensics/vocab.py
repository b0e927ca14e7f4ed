"""The words every layer shares: outcomes and their codes, modes, ts kinds, outcome labels and
colours, and how much evidence a finding shows. This module imports nothing of the package;
the compiled cores read their numbering from it when they are imported.

>>> from cartforensics.vocab import MODES, OUTCOME_CODES, OUTCOME_LABELS, OUTCOMES, TS_INT, TS_KINDS
>>> OUTCOMES[OUTCOME_CODES["too_long"]], OUTCOME_LABELS["too_long"]
('too_long', 'over 256 KiB')
>>> TS_KINDS[TS_INT], MODES
('number', ('go', 'lenient'))
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# -- outcomes: what replaying a line gave; a line's code is its index in OUTCOMES -----------
OUTCOMES: Final[tuple[str, ...]] = (
    "applied", "malformed", "unknown_type", "payload_error", "apply_error", "too_long",
    "not_reached",
)
OUTCOME_CODES: Final[dict[str, int]] = {o: i for i, o in enumerate(OUTCOMES)}
APPLIED: Final[int] = OUTCOME_CODES["applied"]
MALFORMED: Final[int] = OUTCOME_CODES["malformed"]
UNKNOWN_TYPE: Final[int] = OUTCOME_CODES["unknown_type"]
PAYLOAD_ERROR: Final[int] = OUTCOME_CODES["payload_error"]
APPLY_ERROR: Final[int] = OUTCOME_CODES["apply_error"]
TOO_LONG: Final[int] = OUTCOME_CODES["too_long"]
NOT_REACHED: Final[int] = OUTCOME_CODES["not_reached"]
# the seed's counters: replay failures and mutation errors, by outcome
FAILURE_OUTCOMES: Final[tuple[str, ...]] = ("malformed", "unknown_type", "too_long")
MUTATION_ERROR_OUTCOMES: Final[tuple[str, ...]] = ("payload_error", "apply_error")
# the error of a line over bufio.MaxScanTokenSize (the scanner stops there)
TOO_LONG_ERROR: Final[str] = "scanner error: bufio.Scanner: token too long"

# -- modes: go replays as the service does, lenient as the writer meant ---------------------
Mode = Literal["go", "lenient"]
MODES: Final[tuple[Mode, ...]] = get_args(Mode)

# -- ts kinds: read_events' ts_kind categories; a kind's code is its index in TS_KINDS, the
# numbering of the line scan's ts_kind array too ----------------------------------------------
TS_KINDS: Final[tuple[str, ...]] = ("string", "number", "null", "missing", "invalid")
TS_KIND_CODES: Final[dict[str, int]] = {k: i for i, k in enumerate(TS_KINDS)}
TS_STR: Final[int] = TS_KIND_CODES["string"]
TS_INT: Final[int] = TS_KIND_CODES["number"]
TS_NULL: Final[int] = TS_KIND_CODES["null"]
TS_MISSING: Final[int] = TS_KIND_CODES["missing"]
TS_INVALID: Final[int] = TS_KIND_CODES["invalid"]

# -- how outcomes are shown: the same colour in every chart, widget and report --------------
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
OUTCOME_COLORS: Final[dict[str, str]] = {
    "applied": "#009E73",  # bluish green
    "malformed": "#D55E00",  # vermillion
    "unknown_type": "#E69F00",  # orange
    "payload_error": "#CC79A7",  # reddish purple
    "apply_error": "#0072B2",  # blue
    "too_long": "#000000",  # black
    "not_reached": "#999999",  # grey
}
OUTCOME_LABELS: Final[dict[str, str]] = {
    "applied": "applied",
    "malformed": "malformed",
    "unknown_type": "unknown type",
    "payload_error": "payload error",
    "apply_error": "handler error",
    "too_long": "over 256 KiB",
    "not_reached": "not reached",
}
RATE_COLORS: Final[dict[str, str]] = {
    "failure_rate": OUTCOME_COLORS["malformed"],
    "unknown_type_rate": OUTCOME_COLORS["unknown_type"],
    "mutation_error_rate": OUTCOME_COLORS["apply_error"],
}

# -- evidence: the lines a finding shows (HTML report, fleet summary) and a chunk keeps -----
EVIDENCE_ROWS: Final[int] = 20

PROMISED_UNKNOWN_METRIC: Final[str] = "cartforensics_promised_unknown_types_total"
"""The one name, everywhere, of the unknown-type count the seed's comments promise for
``cart_event_log_unknown_types_total`` (its code never increments that counter). Not a metric
the service has, so it is not in the service's ``cart_event_log_`` namespace."""

__all__ = [
    "APPLIED", "APPLY_ERROR", "EVIDENCE_ROWS", "FAILURE_OUTCOMES", "MALFORMED", "MODES",
    "MUTATION_ERROR_OUTCOMES", "NOT_REACHED", "OUTCOMES", "OUTCOME_CODES", "OUTCOME_COLORS",
    "OUTCOME_LABELS", "PAYLOAD_ERROR", "PROMISED_UNKNOWN_METRIC", "RATE_COLORS", "TOO_LONG",
    "TOO_LONG_ERROR", "TS_INT",
    "TS_INVALID", "TS_KINDS", "TS_KIND_CODES", "TS_MISSING", "TS_NULL", "TS_STR", "UNKNOWN_TYPE",
    "Mode",
]
