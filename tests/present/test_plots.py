"""Charts: each returns a Figure with a title, draws into a given Axes, renders headless, and
colours an outcome the same way everywhere."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.colors import to_hex, to_rgba
from matplotlib.figure import Figure

from cartforensics import read_events, replay
from cartforensics.analysis.findings import findings
from cartforensics.model.replay import OUTCOMES
from cartforensics.present.plots import (
    OUTCOME_COLORS,
    mpl_text,
    pick_freq,
    plot_failures_heatmap,
    plot_lines_lost,
    plot_outcome_mix,
    plot_rates,
    plot_unknown_types,
)

T0 = 1740823200


def rec(ts: Any, type_: str, payload: Any) -> bytes:
    return json.dumps({"ts": ts, "type": type_, "payload": payload},
                      separators=(",", ":")).encode()


def iso(unix: int) -> str:
    return pd.Timestamp(unix, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("plots")
    (d / "a.events.log").write_bytes(b"".join(
        rec(T0 + 600 * i, "AddItem", {"sku": str(i), "quantity": 1}) + b"\n" for i in range(6)))
    (d / "b$x$.events.log").write_bytes(b"\n".join([
        rec(iso(T0 + 100), "AddItem", {"sku": "x", "quantity": 1}),
        rec(iso(T0 + 200), "Add$Voucher$", {"code": "Q"}),  # a $ must not start mathtext
        rec(iso(T0 + 4000), "AddVoucher", {"code": "R"}),
        rec(iso(T0 + 4100), "RemoveItem", {"Id": 4}),
    ]) + b"\n")
    ev = read_events(d)
    go, le = replay(ev), replay(ev, mode="lenient")
    return {"go": go, "lenient": le, "findings": findings(go, le)}


def render(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


def charts(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "outcome_mix": lambda ax=None: plot_outcome_mix(p["go"], ax=ax),
        "rates": lambda ax=None: plot_rates(p["go"], p["findings"], ax=ax),
        "heatmap": lambda ax=None: plot_failures_heatmap(p["go"], ax=ax),
        "lost": lambda ax=None: plot_lines_lost(p["go"], p["lenient"], ax=ax),
        "unknown": lambda ax=None: plot_unknown_types(p["lenient"], ax=ax),
    }


@pytest.mark.parametrize("name", ["outcome_mix", "rates", "heatmap", "lost", "unknown"])
def test_returns_a_titled_figure(pair: dict[str, Any], name: str) -> None:
    fig = charts(pair)[name]()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title(loc="left")
    render(fig)


@pytest.mark.parametrize("name", ["outcome_mix", "rates", "heatmap", "lost", "unknown"])
def test_draws_into_a_given_ax(pair: dict[str, Any], name: str) -> None:
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(2, 1)
    out = charts(pair)[name](ax=axes[1])
    assert out is fig
    assert axes[1].get_title(loc="left") and not axes[0].get_title(loc="left")
    render(fig)


def test_time_axes_say_utc(pair: dict[str, Any]) -> None:
    for name in ("outcome_mix", "rates", "heatmap"):
        ax = charts(pair)[name]().axes[0]
        assert "UTC" in ax.get_xlabel()
        assert ax.get_ylabel()


def test_outcome_colours_fixed_and_distinct() -> None:
    assert list(OUTCOME_COLORS) == list(OUTCOMES)
    assert len({to_hex(c) for c in OUTCOME_COLORS.values()}) == len(OUTCOMES)


def test_outcome_mix_uses_the_outcome_colours(pair: dict[str, Any]) -> None:
    ax = plot_outcome_mix(pair["go"], freq="1h").axes[0]
    labels = {t.get_text(): h for h, t in zip(ax.get_legend().legend_handles,
                                              ax.get_legend().get_texts(), strict=True)}
    assert to_rgba(labels["malformed"].get_facecolor()) == to_rgba(OUTCOME_COLORS["malformed"])
    assert to_rgba(labels["applied"].get_facecolor()) == to_rgba(OUTCOME_COLORS["applied"])
    # stacked heights add up to the lines per window
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == len(pair["go"].outcomes)


def test_lines_lost_bars_by_go_outcome(pair: dict[str, Any]) -> None:
    ax = plot_lines_lost(pair["go"], pair["lenient"]).axes[0]
    widths = {}
    for p in ax.patches:
        widths[to_hex(p.get_facecolor())] = widths.get(to_hex(p.get_facecolor()), 0) + \
            p.get_width()
    assert widths == {to_hex(OUTCOME_COLORS["malformed"]): 6}  # cart a's six numeric lines
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a"]


def test_unknown_types_counts(pair: dict[str, Any]) -> None:
    ax = plot_unknown_types(pair["lenient"]).axes[0]
    assert sorted(p.get_width() for p in ax.patches) == [1, 1]
    assert {t.get_text() for t in ax.get_yticklabels()} == {"AddVoucher", r"Add\$Voucher\$"}


def test_rates_mark_findings(pair: dict[str, Any]) -> None:
    ax = plot_rates(pair["go"], pair["findings"], freq="1h").axes[0]
    assert len(ax.get_legend().get_texts()) == min(6, len(pair["findings"]))


def test_empty_inputs_still_give_titled_figures(tmp_path: Path) -> None:
    (tmp_path / "ok.events.log").write_bytes(rec(iso(T0), "AddItem", {"sku": "a",
                                                                      "quantity": 1}) + b"\n")
    ev = read_events(tmp_path)
    go, le = replay(ev), replay(ev, mode="lenient")
    for fig in (plot_failures_heatmap(go), plot_lines_lost(go, le), plot_unknown_types(le),
                plot_outcome_mix(go), plot_rates(go, [])):
        assert fig.axes[0].get_title(loc="left")
        render(fig)
    (tmp_path / "ok.events.log").write_bytes(b"not json\n")
    go = replay(tmp_path)
    fig = plot_outcome_mix(go)
    assert "no line has a readable ts" in [t.get_text() for t in fig.axes[0].texts]


def test_helpers() -> None:
    assert mpl_text("a$b$c") == r"a\$b\$c"
    assert mpl_text("x" * 100, 10) == "x" * 9 + "…"
    assert mpl_text("a\nb") == "a b"
    ts = pd.Series(pd.to_datetime([T0, T0 + 3 * 86400], unit="s", utc=True))
    assert pick_freq(ts) == "6h"
    assert pick_freq(pd.Series([], dtype="datetime64[ns, UTC]")) == "1h"
