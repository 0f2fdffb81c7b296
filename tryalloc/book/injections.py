"""Where an interrupt can arrive, and what follows: the injection strips of the book.

:func:`search_injections` delivers a machine's interrupt at every scheduling point of its task
(an exhaustive search) and returns one :class:`Injection` per point; :func:`injection_strip` draws them
as cells coloured by outcome, wrapped into rows of :data:`CELLS_PER_ROW`, each labelled with what the
task was about to do when the interrupt came (:func:`~tryalloc.book.events.describe_point`).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import InvalidArgumentError
from .events import describe_point, outcome_of_report
from .style import FIGURE_WIDTH, FONT, OUTCOME_COLOURS, SMALL_FONT, styled

#: Cells in one row of a strip: a longer strip wraps, so a cell keeps its drawn size on every page.
CELLS_PER_ROW = 6
_LABEL_CHARS = 16  # characters of a point's description per line, at SMALL_FONT in one cell


@dataclass(frozen=True)
class Injection:
    """An interrupt that entered after the interrupted task had logged ``position`` events, the last
    one the announced operation ``point`` ("spin_lock_irqsave zone->lock"); the run ended in ``outcome``.
    ``op`` and ``obj`` are that operation's fields (``None`` before the task's first event)."""

    position: int
    point: str
    outcome: str
    op: str | None = field(default=None, compare=False)
    obj: object = field(default=None, compare=False)

    @property
    def description(self) -> str:
        """What the task was about to do, in words (:func:`~tryalloc.book.events.describe_point`)."""
        return describe_point(self.op, self.obj) if self.op else "before the task starts"


def injection_of(events, outcome: str, cpu: int = 0, kind: str = "nmi") -> Injection | None:
    """Where the first ``kind`` interrupt entered on ``cpu`` in an event log, as an :class:`Injection`
    with ``outcome``; ``None`` if none entered.  ``point`` is ``"(before the task)"`` when it came
    before the task's first event."""
    entry = next((ev for ev in events if ev[1] == cpu and ev[3] == f"{kind}-entry"), None)
    if entry is None:
        return None
    before = [ev for ev in events if ev[1] == cpu and ev[2] == "task" and ev[0] < entry[0]]
    if not before:
        return Injection(0, "(before the task)", outcome)
    _, _, _, op, obj = before[-1]
    return Injection(len(before), f"{op} {obj}" if obj else op, outcome, op, obj)


def injection_cells(injections) -> list[Injection]:
    """The injections ordered by position, one per position (``None`` entries, runs without an
    interrupt, are dropped).  Two different outcomes at one position raise
    :class:`~tryalloc.errors.InvalidArgumentError`: the strip would have to hide one."""
    cells: dict[int, Injection] = {}
    for inj in injections:
        if inj is None:
            continue
        seen = cells.setdefault(inj.position, inj)
        if seen != inj:
            raise InvalidArgumentError(f"two outcomes at one injection point: {seen} and {inj}")
    return [cells[p] for p in sorted(cells)]


def search_injections(explore, build, label) -> tuple:
    """Search every point at which ``build()``'s interrupt can arrive (``explore`` of the level the
    machine comes from, preemption bound 0, not stopping at the first report) and return
    ``(the search's result, its Injection cells)``: a run that ends normally is labelled
    ``label(kernel, run_result)``, one that ends in a report by
    :func:`~tryalloc.book.events.outcome_of_report`."""
    found = explore(build, preemption_bound=0, stop_on_failure=False,
                    outcome=lambda k, res: injection_of(res.events, label(k, res)))
    cells = list(found.outcomes) + [injection_of(f.events, outcome_of_report(f)) for f in found.failures]
    return found, injection_cells(cells)


def wrap_label(text: str, width: int = _LABEL_CHARS) -> list[str]:
    """``text`` in lines of at most ``width`` characters where it can be: at spaces, and a longer name
    after its last ``.``, ``>`` or ``_`` that fits (``memcg_stock.`` / ``stock_lock``)."""
    lines = []
    for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False):
        while len(line) > width:
            cut = max(line.rfind(c, 0, width) for c in "._>") + 1
            if cut <= 0:
                break
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _ink(colour: str) -> str:
    r, g, b = to_rgb(colour)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else "white"


# inches: a strip's title, a cell's box, the room for its description, the gap after a row
_TITLE, _BOX, _TEXT, _GAP, _MARGIN = 0.34, 0.40, 0.64, 0.10, 0.05


def strip_rows(cells: list, per_row: int = CELLS_PER_ROW) -> list[list]:
    """The cells cut into rows of ``per_row`` (the last row may be shorter)."""
    if isinstance(per_row, bool) or not isinstance(per_row, int) or per_row < 1:
        raise InvalidArgumentError(f"strip_rows: per_row must be a positive int, not {per_row!r}")
    return [cells[i:i + per_row] for i in range(0, len(cells), per_row)]


@styled
def injection_strip(rows: dict[str, list], title: str | None = None, per_row: int = CELLS_PER_ROW) -> Figure:
    """One strip per scenario (``rows``: its name to its injections): a cell per point at which the
    interrupt can arrive, coloured and labelled by the outcome, with what the task was about to do
    there written under it; ``per_row`` cells a row, a longer strip wraps."""
    strips = {name: strip_rows(injection_cells(injs), per_row) for name, injs in rows.items()}
    height = sum(_TITLE + max(len(r), 1) * (_BOX + _TEXT + _GAP) for r in strips.values()) + (_TITLE if title else 0)
    fig = Figure(figsize=(FIGURE_WIDTH, height + 2 * _MARGIN))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, FIGURE_WIDTH)
    ax.set_ylim(height + 2 * _MARGIN, 0)  # y in inches from the top
    ax.axis("off")
    cell = (FIGURE_WIDTH - 2 * _MARGIN) / per_row
    y = _MARGIN
    if title:
        ax.text(_MARGIN, y + _TITLE / 2, title, va="center", fontsize=FONT + 1, fontweight="bold")
        y += _TITLE
    for name, lines in strips.items():
        ax.text(_MARGIN, y + _TITLE / 2, name, va="center", fontsize=FONT, fontweight="bold")
        y += _TITLE
        for line in lines:
            for i, c in enumerate(line):
                x = _MARGIN + i * cell
                colour = OUTCOME_COLOURS.get(c.outcome, "#bbbbbb")
                ax.add_patch(Rectangle((x + 0.03, y), cell - 0.06, _BOX, facecolor=colour, edgecolor="black",
                                       linewidth=0.6))
                ax.text(x + cell / 2, y + _BOX / 2, "\n".join(wrap_label(c.outcome, 12)), ha="center",
                        va="center", fontsize=SMALL_FONT, fontweight="bold", color=_ink(colour))
                ax.text(x + cell / 2, y + _BOX + 0.05, "\n".join(wrap_label(c.description)), ha="center",
                        va="top", fontsize=SMALL_FONT, linespacing=1.15)
            y += _BOX + _TEXT + _GAP
        if not lines:
            y += _BOX + _TEXT + _GAP
    return fig
