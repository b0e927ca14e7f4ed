"""What the rest of the package uses of a replay, as protocols, so that code reading a replay
does not depend on :mod:`cartforensics.model.replay` (nor it on that code).

Four classes answer like a replay: :class:`~cartforensics.model.replay.Replay` (the logs
replayed), :class:`~cartforensics.model.replay.ReplayWithout` (one cart replayed without some of
its lines), :class:`~cartforensics.analysis.fleet.StoredReplay` (a converted dataset's stored
outcomes) and the report's stand-in for no noted cart. Every one is a :class:`ReplayLike`;
:class:`ReplayOfEvents` adds the events frame (all but ``ReplayWithout``), :class:`ReplayOfStates`
the state at any line (``Replay`` and ``ReplayWithout``).

>>> import cartforensics as cf                                     # doctest: +SKIP
>>> isinstance(cf.replay("sample_data"), ReplayOfStates)           # doctest: +SKIP
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # for the annotations only: nothing of these is imported when running
    import pandas as pd

    from cartforensics.go.version import GoSemantics

__all__ = ["ReplayLike", "ReplayOfEvents", "ReplayOfStates"]


@runtime_checkable
class ReplayLike(Protocol):
    """What every replay answers: its mode and toolchain, one ``outcomes`` row per line
    (``cart_id``, ``line``, ``ts``, ``type``, ``outcome``, ``error``), its carts in replay
    order, which ``outcomes`` rows are a cart's lines, and a cart's final state JSON."""

    @property
    def mode(self) -> str:
        """``"go"`` (the service's reader) or ``"lenient"`` (what the writer meant)."""
        ...

    @property
    def semantics(self) -> GoSemantics:
        """The toolchain replayed as (:mod:`cartforensics.go.version`)."""
        ...

    @property
    def outcomes(self) -> pd.DataFrame:
        """One row per line: ``cart_id``, ``line``, ``ts``, ``type``, ``outcome``, ``error``."""
        ...

    @property
    def cart_ids(self) -> list[str]:
        """The carts, in replay order."""
        ...

    def rows_of(self, cart_id: str) -> list[int]:
        """Positions in ``outcomes`` of the cart's lines, in line order."""
        ...

    def final_state(self, cart_id: str) -> dict[str, Any]:
        """The cart's state JSON after its last line (SPEC §5); KeyError for no such cart."""
        ...


@runtime_checkable
class ReplayOfEvents(ReplayLike, Protocol):
    """A replay of whole logs: also the events it replayed (``read_events``' frame, row for
    row with ``outcomes``) and the catalog and registry it replayed them with (None where it
    was not replayed here: a dataset's stored outcomes). Findings, metrics, plots, the
    report and its notes read these."""

    @property
    def events(self) -> pd.DataFrame:
        """The lines replayed, row for row with ``outcomes`` (``attrs``: files, problems)."""
        ...

    @property
    def catalog(self) -> Any:
        """The catalog AddRequest lines looked items up in (None: none)."""
        ...

    @property
    def registry(self) -> Any:
        """The mutation types' registry replayed with (None: not replayed here)."""
        ...


@runtime_checkable
class ReplayOfStates(ReplayLike, Protocol):
    """A replay that rebuilds a cart's state after any of its lines: blame and the scrubber
    read these."""

    def state_at(self, cart_id: str, ts: Any = None, line: int | None = None
                 ) -> dict[str, Any]:
        """The state JSON after ``line`` lines (exact), or at time ``ts``."""
        ...

    def line_at(self, cart_id: str, ts: Any) -> int:
        """How many of the cart's lines are in the longest prefix whose ts are all ≤ ``ts``."""
        ...

    def history(self, cart_id: str) -> pd.DataFrame:
        """One row per line: outcome, error and a summary of the state after it."""
        ...
