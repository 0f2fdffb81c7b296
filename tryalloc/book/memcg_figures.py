"""Pictures of the chapters on patches 4 and 5 (the per-CPU memcg stock, and usage against a limit) and of
the flipped polarity after v6 (the page-counter work per charge).

Plain matplotlib (:class:`~matplotlib.figure.Figure`, no pyplot state), drawn from the data that
:mod:`tryalloc.book.memcg_scenarios` returns, at the book's width and sizes (:mod:`tryalloc.book.style`;
a chapter's figure cell ends with :func:`~tryalloc.book.style.as_svg`).
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..errors import InvalidArgumentError
from .style import FIGURE_WIDTH, FONT, SMALL_FONT, integer_ticks, styled

_HELD = "#d7191c"
_FREE = "#2c7bb6"
_HELD_BG = "#f4c2c2"  # a snapshot taken while a context is inside stock_lock
_FREE_BG = "#e8e8e8"


@styled
def stock_snapshots(snapshots: dict[str, dict], batch: int = 64, title: str | None = None) -> Figure:
    """One column per snapshot of CPU0's stock (``{"cached", "nr_pages", "locked_by"}`` as
    :func:`~tryalloc.book.memcg_scenarios.nmi_charge_inside_stock` records them): a bar of the pages
    it holds with the memcg it caches written above, on a red background while a context is inside
    ``stock_lock``, and the batch (the most a stock keeps) as a dashed line."""
    if not snapshots:
        raise InvalidArgumentError("stock_snapshots: no snapshot to draw")
    fig = Figure(figsize=(FIGURE_WIDTH, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, snap in enumerate(snapshots.values()):
        ax.axvspan(i - 0.45, i + 0.45, color=_HELD_BG if snap["locked_by"] else _FREE_BG, zorder=0)
        ax.bar(i, snap["nr_pages"], width=0.5, color=_FREE, zorder=2)
        cached = snap["cached"] or "none"
        ax.text(i, snap["nr_pages"] + batch * 0.04, f"cached: {cached}\n{snap['nr_pages']} pages", ha="center",
                va="bottom", fontsize=SMALL_FONT, zorder=3)
    ax.axhline(batch, linestyle="--", color="grey", linewidth=1, zorder=1)
    ax.text(-0.45, batch * 1.02, f"MEMCG_CHARGE_BATCH = {batch}", ha="left", va="bottom", fontsize=SMALL_FONT,
            color="grey")
    ax.set_xticks(range(len(snapshots)))
    ax.set_xticklabels(list(snapshots), fontsize=SMALL_FONT)
    ax.set_xlim(-0.5, len(snapshots) - 0.5)
    ax.set_ylim(0, batch * 1.45)
    ax.set_ylabel("pages in CPU0's stock")
    ax.legend(handles=[Patch(color=_HELD_BG, label="stock_lock held"), Patch(color=_FREE_BG, label="stock_lock free")],
              loc="upper right", fontsize=SMALL_FONT, frameon=False)
    if title:
        ax.set_title(title, fontsize=FONT)
    return fig


@styled
def usage_over_run(run: dict, title: str | None = None) -> Figure:
    """``memory.current`` (the page counter's usage) step by step over a
    :func:`~tryalloc.book.memcg_scenarios.near_limit_run`, split into the pages charged to live pages
    and the pages the stock holds, with the limit and a cross at every allocation that got NULL."""
    steps = run["steps"]
    if not steps:
        raise InvalidArgumentError("usage_over_run: the run has no step")
    xs = range(1, len(steps) + 1)
    fig = Figure(figsize=(FIGURE_WIDTH, 3.6), layout="constrained")
    ax = fig.subplots()
    charged = [s["charged"] for s in steps]
    stocked = [s["stock"] for s in steps]
    ax.bar(xs, charged, color="#1a9641", label="charged to live pages")
    ax.bar(xs, stocked, bottom=charged, color="#a6d96a", label="held in the stock")
    ax.step(xs, [s["usage"] for s in steps], where="mid", color="black", linewidth=1.4, label="usage")
    ax.axhline(run["limit"], linestyle="--", color=_HELD, linewidth=1.2, label=f"memory.max = {run['limit']}")
    nulls = [x for x, s in zip(xs, steps, strict=True) if s["result"] == "NULL"]
    ax.scatter(nulls, [run["limit"] + 0.5] * len(nulls), marker="x", color=_HELD, s=60, zorder=3,
               label="try_alloc_pages: NULL")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([s["op"] for s in steps], fontsize=SMALL_FONT)
    ax.set_xlabel("step (A: try_alloc_pages, F: free_pages_nolock)")
    ax.set_ylabel("pages")
    integer_ticks(ax.yaxis)
    ax.set_ylim(0, run["limit"] + 2)
    ax.legend(loc="upper left", fontsize=SMALL_FONT, frameon=False, ncols=2)
    if title:
        ax.set_title(title, fontsize=FONT)
    return fig


@styled
def charge_cost_figure(runs: dict[str, dict], title: str | None = None) -> Figure:
    """Two panels from :func:`~tryalloc.book.memcg_scenarios.charge_cost` runs, one colour per run
    (``{label: run}``, the first drawn red, the second blue): on the left the running total of
    ``page_counter_try_charge`` calls against the charges made; on the right the page counters
    charged per charge, each bar with its value."""
    if not runs:
        raise InvalidArgumentError("charge_cost_figure: no run to draw")
    colours = [_HELD, _FREE, "grey", "black"]
    fig = Figure(figsize=(FIGURE_WIDTH, 3.6), layout="constrained")
    total, per = fig.subplots(1, 2, width_ratios=(2, 1))
    for (label, run), colour in zip(runs.items(), colours, strict=False):
        total.step(range(1, run["n"] + 1), run["calls"], where="post", color=colour, linewidth=1.6, label=label)
    total.set_xlabel("one-page charges made")
    total.set_ylabel("page_counter_try_charge calls")
    integer_ticks(total.yaxis)
    total.legend(loc="upper left", fontsize=SMALL_FONT, frameon=False)
    values = [run["counters_per_charge"] for run in runs.values()]
    per.bar(range(len(runs)), values, color=colours[:len(runs)], width=0.6)
    for i, value in enumerate(values):
        per.text(i, value, f"{value:.3g}", ha="center", va="bottom", fontsize=SMALL_FONT)
    per.set_xticks(range(len(runs)))
    per.set_xticklabels(list(runs), fontsize=SMALL_FONT)
    per.set_ylabel("page counters charged per charge")
    per.set_ylim(0, max(values) * 1.2 or 1)
    if title:
        fig.suptitle(title, fontsize=FONT)
    return fig
