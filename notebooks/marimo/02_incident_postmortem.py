import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _(mo):
    mo.md(
        r"""
        # 02 · Post-mortem (marimo): carts came back empty after a restart

        **You will learn** how to find from the logs alone why carts came back empty after the
        cart service restarted, how large the damage is, and how to go from the fleet's rates
        to the one line that shows it, with the same fleet dashboard and time-travel scrubber
        as the Jupyter notebook `02_incident_postmortem.ipynb` (which has the full write-up).
        """
    )
    return


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    import cartforensics as cf

    here = mo.notebook_dir() or Path.cwd()
    ROOT = next(p for p in (here, *here.parents) if (p / "sample_data").exists())
    return ROOT, cf, mo


@app.cell
def _(ROOT, cf):
    ev = cf.read_events(ROOT / "sample_data", progress=False)
    go = cf.replay(ev, mode="go")  # what the service rebuilt
    le = cf.replay(ev, mode="lenient")  # what the writer meant
    cmp = cf.compare(go, le).set_index("cart_id")
    return cmp, ev, go, le


@app.cell
def _(cmp, ev, go, le, mo):
    meant = cmp["items_lenient"] > 0
    empty = meant & (cmp["items_go"] == 0)
    go_out = go.outcomes["outcome"].astype(str)
    numeric = (ev["ts_kind"].astype(str) == "number").to_numpy()
    dropped_numeric = int((numeric & (go_out != "applied").to_numpy()).sum())
    lost_kr = cmp["total_lost"].clip(lower=0).sum() / 100
    mo.md(
        f"""
        ## The symptom and the cause

        Of **{int(meant.sum()):,}** carts that held items as the writer meant them, the
        service rebuilt **{int(empty.sum()):,}** empty, **{lost_kr:,.2f} kr** of carts lost in
        all. **{int(numeric.sum()):,}** lines carry `ts` as a JSON number (the writer's
        format) and the service's reader dropped **{dropped_numeric:,}** of them: Go's
        `time.Time` unmarshals only from an RFC 3339 string. A reader that also accepts the
        number applies {int((le.outcomes["outcome"].astype(str) == "applied").sum()):,}
        lines instead of {int((go_out == "applied").sum()):,}.
        """
    )
    return


@app.cell
def _(cf, go, le, mo):
    # the fleet: filter by date, type and outcome; "open" shows a cart in the scrubber below,
    # at the first of its lines the filters match (here, first, the worst cart)
    dash = cf.FleetDashboard(go, lenient=le)
    scrubber = dash.open_cart(dash.worst_carts().index[0])
    mo.vstack([
        mo.md(
            "## From the fleet to one line\n\nThe rates fall when the fix reaches the "
            "writer. Filter to *handler error* to see the lines the service refused only "
            "because it had dropped the lines before them, and open one of those carts: the "
            "scrubber shows the refused line, both modes side by side."
        ),
        mo.ui.anywidget(dash),
        mo.ui.anywidget(scrubber),
    ])
    return dash, scrubber


if __name__ == "__main__":
    app.run()
