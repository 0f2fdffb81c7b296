"""Pictures of the chapter on patch 6, drawn from what :mod:`tryalloc.book.bpf_scenarios` returns.

Plain matplotlib (:class:`~matplotlib.figure.Figure`, no pyplot state), sized for the book's column:
at most :data:`MAX_WIDTH_PX` pixels wide as SVG (72 points to the inch) with no text under
:data:`MIN_FONT_PX`.  :func:`~tryalloc.book.memcg_figures.as_svg` turns a figure into an SVG that
``myst_nb.glue`` and Jupyter display.

* :func:`workload_over_time`: the sampling workload's page requests over time, on !RT and RT;
* :func:`usage_against_limit`: the arena memcg's usage against ``memory.max`` over the same runs;
* :func:`sigsegv_per_run`: the spurious SIGSEGVs of :func:`~tryalloc.book.bpf_scenarios.fault_contention`
  in each random schedule.
"""
from __future__ import annotations

from matplotlib.figure import Figure

from ..errors import InvalidArgumentError

#: The widest a figure may be in the book, in SVG pixels.
MAX_WIDTH_PX = 760
#: The smallest text a figure may carry, in pixels (points, at 72 to the inch).
MIN_FONT_PX = 10
_DPI = 72
_SERIES = {"allocated": ("#1a9641", "pages allocated"), "refused": ("#fdae61", "refused by memory.max"),
           "contention": ("#d7191c", "failed: zone->lock trylock"), "deferred": ("#2c7bb6", "frees deferred")}


def _figure(width_px: int, height_px: int, panels: int = 1):
    if width_px > MAX_WIDTH_PX:
        raise InvalidArgumentError(f"a figure is at most {MAX_WIDTH_PX} px wide, asked for {width_px}")
    fig = Figure(figsize=(width_px / _DPI, height_px / _DPI), dpi=_DPI, layout="constrained")
    return fig, fig.subplots(1, panels, sharey=True, squeeze=False)[0]


def _style(ax, title: str, xlabel: str, ylabel: str | None) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=MIN_FONT_PX)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=MIN_FONT_PX)
    ax.tick_params(labelsize=MIN_FONT_PX)


def _check_runs(runs: dict, what: str) -> None:
    if not runs:
        raise InvalidArgumentError(f"{what}: no run to draw")
    for name, run in runs.items():
        if not run.get("series"):
            raise InvalidArgumentError(f"{what}: run {name!r} has no time series")


def workload_over_time(runs: dict[str, dict], width_px: int = 740) -> Figure:
    """One panel per run of :func:`~tryalloc.book.bpf_scenarios.sampler_workload` (the dict's keys
    are the panel titles): the cumulative pages allocated, requests refused by memory.max, requests
    that failed a ``zone->lock`` trylock, and frees deferred, against the request number."""
    _check_runs(runs, "workload_over_time")
    fig, axes = _figure(width_px, 300, len(runs))
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        t = [p["t"] for p in run["series"]]
        for key, (colour, label) in _SERIES.items():
            ax.step(t, [p[key] for p in run["series"]], where="post", color=colour, label=label, linewidth=1.6)
        _style(ax, name, "page request", "count" if ax is axes[0] else None)
    axes[0].legend(fontsize=MIN_FONT_PX, frameon=False, loc="upper left")
    return fig


def usage_against_limit(runs: dict[str, dict], width_px: int = 740) -> Figure:
    """The memcg's usage (pages charged, the per-CPU stocks included) after every page request of
    each run, the part of it parked in the CPUs' stocks, and its ``memory.max`` as a dashed line."""
    _check_runs(runs, "usage_against_limit")
    fig, axes = _figure(width_px, 260, len(runs))
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        t = [p["t"] for p in run["series"]]
        ax.step(t, [p["usage"] for p in run["series"]], where="post", color="#2c7bb6", linewidth=1.6,
                label="memory.current")
        ax.step(t, [p["stocked"] for p in run["series"]], where="post", color="#fdae61", linewidth=1.4,
                label="of which in per-CPU stocks")
        ax.axhline(run["limit"], linestyle="--", color="#d7191c", linewidth=1.2, label=f"memory.max = {run['limit']}")
        ax.set_ylim(0, run["limit"] * 1.25)
        _style(ax, name, "page request", "pages" if ax is axes[0] else None)
    axes[0].legend(fontsize=MIN_FONT_PX, frameon=False, loc="lower right")
    return fig


def sigsegv_per_run(results: dict[str, dict], width_px: int = 600) -> Figure:
    """Bars of the spurious SIGSEGVs in each random schedule, one group per result of
    :func:`~tryalloc.book.bpf_scenarios.fault_contention` (keys: the legend labels)."""
    if not results:
        raise InvalidArgumentError("sigsegv_per_run: no result to draw")
    fig, (ax,) = _figure(width_px, 240)
    n = len(results)
    for i, (name, res) in enumerate(results.items()):
        xs = [j + i / (n + 1) for j in range(len(res["per_seed"]))]
        ax.bar(xs, res["per_seed"], width=1 / (n + 1), label=f"{name}: {res['sigsegv']} in all")
    _style(ax, "SIGSEGV on a fault while memory is free", "random schedule (seed)", "SIGSEGVs")
    ax.legend(fontsize=MIN_FONT_PX, frameon=False)
    return fig
