"""Which Go built the service: every toolchain-dependent rule of the port, in one place.

The service's reader is ``encoding/json`` + ``time``. What those do depends on the toolchain:

* Go ≤ 1.26 (and Go 1.27 built with ``GOEXPERIMENT=nojsonv2``): the classic ``encoding/json``
  (json v1: ``scanner.go``, ``decode.go``).
* Go ≥ 1.27 (and Go 1.26 built with ``GOEXPERIMENT=jsonv2``): ``json.Unmarshal`` runs on
  ``encoding/json/v2`` with the v1 options (``v2_decode.go``, ``v2_inject.go``,
  ``v2_scanner.go``). The ``go`` line of go.mod does not matter, only the experiment.

A :class:`GoSemantics` names one of those rule sets; :mod:`cartforensics.go.json`,
:mod:`cartforensics.go.envelope` and :mod:`cartforensics.io.logs` ask it which rule applies. A
later toolchain is one more entry in ``_JSON_BY_RELEASE`` (and, if it changes a rule, one more
property here).

>>> semantics("1.27").json, semantics("1.26+jsonv2").json, semantics("1.27+nojsonv2").json
('v2', 'v2', 'v1')
>>> semantics("1.25").label
'Go 1.25 (encoding/json v1)'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

JSONImpl = Literal["v1", "v2"]

#: The default: Go 1.25 is what built the service whose logs this package was written for
#: (its go.mod and the seed), and what every pinned decision in docs/model.md was measured on.
DEFAULT_GO_VERSION = "1.25"

# Go release -> encoding/json implementation by default (src/internal/buildcfg/exp.go: the
# JSONv2 experiment is on by default from Go 1.27).
_JSON_BY_RELEASE: dict[str, JSONImpl] = {"1.25": "v1", "1.26": "v1", "1.27": "v2"}

_SPEC = re.compile(r"(?:go)?(1\.\d+)(?:\.\d+)?(?:\+(nojsonv2|jsonv2))?")


@dataclass(frozen=True)
class GoSemantics:
    """One toolchain's rules. ``go_version`` is the release ("1.27"), ``json`` the
    encoding/json implementation it runs ("v1" or "v2")."""

    go_version: str
    json: JSONImpl

    @property
    def spec(self) -> str:
        """The canonical ``go_version`` string that gives these semantics back."""
        default = _JSON_BY_RELEASE[self.go_version]
        if self.json == default:
            return self.go_version
        return self.go_version + ("+jsonv2" if self.json == "v2" else "+nojsonv2")

    @property
    def label(self) -> str:
        """For people: ``Go 1.27 (encoding/json on json v2)``."""
        impl = "encoding/json v1" if self.json == "v1" else "encoding/json on json v2"
        return f"Go {self.go_version} ({impl})"

    # -- the rules (each one a measured difference; docs/model.md lists them) -----------------
    @property
    def json_v2(self) -> bool:
        return self.json == "v2"

    @property
    def unescapes_time(self) -> bool:
        """v2 decodes ``time.Time`` itself: the JSON string is unescaped (invalid UTF-8
        becomes U+FFFD) before RFC 3339 parsing; v1 hands the raw bytes to
        ``Time.UnmarshalJSON``, which does not unescape."""
        return self.json_v2

    @property
    def method_errors_stop(self) -> bool:
        """v1 returns an ``UnmarshalJSON`` error at once; v2 (legacy semantics) keeps decoding
        and returns the first of all non-syntax errors."""
        return not self.json_v2

    @property
    def root_field_paths(self) -> bool:
        """Type errors name the field by its full path from the root value, with element
        indices and the keys as written (v2), instead of the innermost struct and the Go
        field names (v1)."""
        return self.json_v2


def semantics(go_version: str | GoSemantics | None = None) -> GoSemantics:
    """Parse a ``go_version``: ``"1.25"``, ``"1.26"``, ``"1.27"`` (a patch release and a ``go``
    prefix are allowed: ``"go1.27.3"``), optionally with a ``GOEXPERIMENT``-style override of
    the json implementation: ``"1.26+jsonv2"``, ``"1.27+nojsonv2"``. None: the default.

    >>> semantics("go1.27.3")
    GoSemantics(go_version='1.27', json='v2')
    """
    if go_version is None:
        go_version = DEFAULT_GO_VERSION
    if isinstance(go_version, GoSemantics):
        return go_version
    if not isinstance(go_version, str):
        raise TypeError(f"go_version must be a string such as '1.27', not {type(go_version)}")
    m = _SPEC.fullmatch(go_version.strip())
    if m is None or m.group(1) not in _JSON_BY_RELEASE:
        known = ", ".join(repr(v) for v in _JSON_BY_RELEASE)
        raise ValueError(
            f"unknown go_version {go_version!r}: use one of {known}, optionally with "
            "'+jsonv2' or '+nojsonv2' (as GOEXPERIMENT sets it), e.g. '1.27+nojsonv2'"
        )
    release = m.group(1)
    override = m.group(2)
    impl: JSONImpl = _JSON_BY_RELEASE[release] if override is None else (
        "v2" if override == "jsonv2" else "v1"
    )
    return GoSemantics(release, impl)


def other_json(sem: GoSemantics) -> GoSemantics:
    """The toolchain on the other side of the json v1/v2 line (for "what if" findings):
    Go 1.25 for a v2 toolchain, Go 1.27 for a v1 one."""
    return semantics("1.25") if sem.json_v2 else semantics("1.27")


GO_1_25 = semantics("1.25")
GO_1_27 = semantics("1.27")
DEFAULT = semantics(DEFAULT_GO_VERSION)
