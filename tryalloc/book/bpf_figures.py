"""Pictures of the chapter on patch 6, drawn from what :mod:`tryalloc.book.bpf_scenarios` returns.

Plain matplotlib (:class:`~matplotlib.figure.Figure`, no pyplot state), at the book's width and sizes
(:mod:`tryalloc.book.style`: :data:`~tryalloc.book.style.FIGURE_WIDTH` inches, text of at least
:data:`~tryalloc.book.style.SMALL_FONT` points); a chapter's figure cell ends with
:func:`~tryalloc.book.style.as_svg`.

* :func:`workload_over_time`: the sampling workload's page requests over time, on !RT and RT;
* :func:`usage_against_limit`: the arena memcg's usage against ``memory.max`` over the same runs;
* :func:`sigsegv_per_run`: the spurious SIGSEGVs of :func:`~tryalloc.book.bpf_scenarios.fault_contention`
  in each random schedule.
"""
from __future__ import annotations

from matplotlib.figure import Figure

from ..errors import InvalidArgumentError
from .style import FIGURE_WIDTH, integer_ticks, styled

_SERIES = {"allocated": ("#1a9641", "pages allocated"), "refused": ("#fdae61", "refused by memory.max"),
           "contention": ("#d7191c", "failed: zone->lock trylock"), "deferred": ("#2c7bb6", "frees deferred")}


def _figure(height: float, panels: int = 1):
    fig = Figure(figsize=(FIGURE_WIDTH, height), layout="constrained")
    return fig, fig.subplots(1, panels, sharey=True, squeeze=False)[0]


def _style(ax, title: str, xlabel: str, ylabel: str | None) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    integer_ticks(ax.xaxis)


def _check_runs(runs: dict, what: str) -> None:
    if not runs:
        raise InvalidArgumentError(f"{what}: no run to draw")
    for name, run in runs.items():
        if not run.get("series"):
            raise InvalidArgumentError(f"{what}: run {name!r} has no time series")


@styled
def workload_over_time(runs: dict[str, dict]) -> Figure:
    """One panel per run of :func:`~tryalloc.book.bpf_scenarios.sampler_workload` (the dict's keys
    are the panel titles): the cumulative pages allocated, requests refused by memory.max, requests
    that failed a ``zone->lock`` trylock, and frees deferred, against the request number."""
    _check_runs(runs, "workload_over_time")
    fig, axes = _figure(4.0, len(runs))
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        t = [p["t"] for p in run["series"]]
        for key, (colour, label) in _SERIES.items():
            ax.step(t, [p[key] for p in run["series"]], where="post", color=colour, label=label, linewidth=1.6)
        _style(ax, name, "page request", "count" if ax is axes[0] else None)
    axes[0].legend(frameon=False, loc="upper left")
    return fig


@styled
def usage_against_limit(runs: dict[str, dict]) -> Figure:
    """The memcg's usage (pages charged, the per-CPU stocks included) after every page request of
    each run, the part of it parked in the CPUs' stocks, and its ``memory.max`` as a dashed line."""
    _check_runs(runs, "usage_against_limit")
    fig, axes = _figure(3.4, len(runs))
    for ax, (name, run) in zip(axes, runs.items(), strict=True):
        t = [p["t"] for p in run["series"]]
        ax.step(t, [p["usage"] for p in run["series"]], where="post", color="#2c7bb6", linewidth=1.6,
                label="memory.current")
        ax.step(t, [p["stocked"] for p in run["series"]], where="post", color="#fdae61", linewidth=1.4,
                label="of which in per-CPU stocks")
        ax.axhline(run["limit"], linestyle="--", color="#d7191c", linewidth=1.2, label=f"memory.max = {run['limit']}")
        ax.set_ylim(0, run["limit"] * 1.25)
        _style(ax, name, "page request", "pages" if ax is axes[0] else None)
    axes[0].legend(frameon=False, loc="lower right")
    return fig


@styled
def sigsegv_per_run(results: dict[str, dict]) -> Figure:
    """Bars of the spurious SIGSEGVs in each random schedule, one group per result of
    :func:`~tryalloc.book.bpf_scenarios.fault_contention` (keys: the legend labels)."""
    if not results:
        raise InvalidArgumentError("sigsegv_per_run: no result to draw")
    fig, (ax,) = _figure(3.0)
    n = len(results)
    for i, (name, res) in enumerate(results.items()):
        xs = [j + i / (n + 1) for j in range(len(res["per_seed"]))]
        ax.bar(xs, res["per_seed"], width=1 / (n + 1), label=f"{name}: {res['sigsegv']} in all")
    _style(ax, "SIGSEGV on a fault while memory is free", "random schedule (seed)", "SIGSEGVs")
    integer_ticks(ax.yaxis)
    ax.legend(frameon=False)
    return fig
