"""The series' history as a picture: its postings up to the 6.15 merge, then what followed
(from :data:`tryalloc.series.history.HISTORY`).

Time runs down each panel, to scale; each milestone's label sits to the right, pushed down just enough
not to overlap the one before, with a leader line to its date, so no label ever covers another."""
from __future__ import annotations

import textwrap
from datetime import date, timedelta

from matplotlib.figure import Figure
from matplotlib.patches import Patch as LegendPatch

from ..series.history import HISTORY, KINDS, MERGE, Milestone
from .style import FIGURE_WIDTH, FONT, SMALL_FONT, styled

_KIND_COLOURS = {"version": "#2b83ba", "merge": "#1a9641", "fix": "#d7191c", "later": "#7b3294",
                 "proposed": "#999999"}


_LINE, _TEXT_X, _SPACING, _TOP = 0.75, 1.0, 0.42, 0.2  # inches: time axis, labels, label pitch, top pad
_WRAP = 30  # characters of a label line


def label_positions(wanted: list[float], spacing: float) -> list[float]:
    """Label heights as close to ``wanted`` (ascending) as they can be while ``spacing`` apart."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, placed[-1] + spacing) if placed else y)
    return placed


def _months(first: date, last: date) -> list[date]:
    month = date(first.year, first.month, 1)
    out = []
    while month <= last:
        out.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def _draw_history(ax, entries: list[Milestone], title: str, width: float, height: float) -> None:
    first, last = entries[0].when - timedelta(days=3), entries[-1].when + timedelta(days=3)
    span = (height - 2 * _TOP - _SPACING) / max((last - first).days, 1)

    def y_of(day: date) -> float:
        return _TOP + (day - first).days * span

    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    ax.plot([_LINE, _LINE], [y_of(first), y_of(last)], color="black", linewidth=1)
    for month in _months(first, last):
        if first <= month:
            ax.plot([_LINE - 0.06, _LINE], [y_of(month)] * 2, color="black", linewidth=1)
            ax.text(_LINE - 0.1, y_of(month), month.strftime("%b %Y"), ha="right", va="center",
                    fontsize=SMALL_FONT, color="#444444").set_gid("tick")
    ys = label_positions([y_of(m.when) for m in entries], _SPACING)
    for m, y in zip(entries, ys, strict=True):
        c = _KIND_COLOURS[m.kind]
        ax.plot([_LINE], [y_of(m.when)], "o", color=c, markersize=6, zorder=3)
        ax.plot([_LINE, _TEXT_X - 0.05], [y_of(m.when), y], color=c, linewidth=0.6)
        words = textwrap.shorten(m.label + ("" if m.confirmed else " (?)"), 2 * _WRAP, placeholder="...")
        ax.text(_TEXT_X, y, f"{m.when.isoformat()}  {words}" if len(words) < _WRAP - 10 else
                f"{m.when.isoformat()}\n{words}", va="center", fontsize=SMALL_FONT, color=c, linespacing=1.1)
    ax.set_title(title, loc="left", fontsize=FONT, fontweight="bold")


@styled
def series_timeline(entries: tuple[Milestone, ...] = HISTORY) -> Figure:
    """The series' history in two panels side by side: the postings up to the 6.15 merge, then what
    followed; one text per milestone in its panel (and month ticks)."""
    series = [m for m in entries if m.when <= MERGE.when]
    after = [m for m in entries if m.when > MERGE.when]
    panels = [(series, "v1 to v9 and the 6.15 merge")] + ([(after, "after the merge")] if after else [])
    height = max(2 * _TOP + _SPACING * (len(p) + 1) for p, _ in panels) + 0.3
    fig = Figure(figsize=(FIGURE_WIDTH, height + 0.45), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (part, title) in zip(axes, panels, strict=True):
        _draw_history(ax, part, title, FIGURE_WIDTH / len(panels), height)
    handles = [LegendPatch(facecolor=_KIND_COLOURS[k], label=k) for k in KINDS if any(m.kind == k for m in entries)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig
