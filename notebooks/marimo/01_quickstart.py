import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _(mo):
    mo.md(
        r"""
        # 01 · Quickstart (marimo): load, replay, and step through a cart with problems

        You will learn how the service's replay (**go** mode, bugs and all) differs from what the
        writer meant (**lenient** mode), and how to step through one cart line by line in the
        time-travel scrubber, the same widget as in the Jupyter notebook `01_quickstart.ipynb`.
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
    go = cf.replay(ev, mode="go")
    le = cf.replay(ev, mode="lenient")
    return go, le


@app.cell
def _(go, le, mo):
    applied_go = int((go.outcomes["outcome"].astype(str) == "applied").sum())
    applied_le = int((le.outcomes["outcome"].astype(str) == "applied").sum())
    n = len(go.outcomes)
    mo.md(
        f"The service applied **{applied_go:,}** of {n:,} lines; read as the writer meant "
        f"them, **{applied_le:,}** apply. The difference is what the service dropped."
    )
    return


@app.cell
def _(cf, go, le, mo):
    # the cart that lost the most lines (applied only as the writer meant them)
    lost = cf.dropped_lines(go, le)
    PROBLEM_CART = lost["cart_id"].value_counts().index[0]
    scrubber = mo.ui.anywidget(cf.TimelineScrubber(go, cart_id=PROBLEM_CART, lenient=le))
    mo.vstack([
        mo.md(
            f"**{PROBLEM_CART}** in the scrubber. It opens at the first line where go and "
            "lenient part; the buttons step line by line, jump between problem lines, or go "
            "to the end. Choose a field in the blame to go to the line that set it."
        ),
        scrubber,
    ])
    return (scrubber,)


if __name__ == "__main__":
    app.run()
