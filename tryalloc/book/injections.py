"""Where an interrupt can arrive, and what follows: the injection strips of the book.

:func:`search_injections` delivers a machine's interrupt at every scheduling point of its task
(an exhaustive search) and returns one :class:`Injection` per point; :func:`injection_strip` draws them
as cells coloured by outcome, wrapped into rows of :data:`CELLS_PER_ROW`, each labelled with what the
task was about to do when the interrupt came, in the event log's own words
(:meth:`Event.describe <tryalloc.kernel.events.Event.describe>`, its short form), so a strip and a report
say the same.  Every label is wrapped to the width of its cell as matplotlib measures the text
(:func:`~tryalloc.book.style.fit_lines`), so none runs into its neighbour.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..errors import InvalidArgumentError
from ..kernel.events import Event, EventLog
from .events import outcome_of_report
from .style import FIGURE_WIDTH, FONT, OUTCOME_COLOURS, SMALL_FONT, fit_lines, line_height, styled

#: Cells in one row of a strip: a longer strip wraps, so a cell keeps its drawn size on every page.
CELLS_PER_ROW = 6


@dataclass(frozen=True)
class Injection:
    """An interrupt that entered after the interrupted task had logged ``position`` events, the last
    one the announced operation ``point`` ("spin_lock_irqsave zone->lock"); the run ended in ``outcome``.
    ``event`` is that last event with its state (:class:`~tryalloc.kernel.events.Event`), ``None``
    before the task's first event."""

    position: int
    point: str
    outcome: str
    event: Event | None = field(default=None, compare=False)

    @property
    def description(self) -> str:
        """What the task was about to do, in the log's words: ``about to spin_unlock_irqrestore
        zone->lock, still holding it`` (:meth:`Event.describe <tryalloc.kernel.events.Event.describe>`,
        short form)."""
        return self.event.describe(short=True) if self.event else "before the task starts"


def injection_of(events, outcome: str, cpu: int = 0, kind: str = "nmi") -> Injection | None:
    """Where the first ``kind`` interrupt entered on ``cpu`` in an event log, as an :class:`Injection`
    with ``outcome``; ``None`` if none entered.  ``point`` is ``"(before the task)"`` when it came
    before the task's first event."""
    entry = next((ev for ev in events if ev[1] == cpu and ev[3] == f"{kind}-entry"), None)
    if entry is None:
        return None
    before = [i for i, ev in enumerate(events) if ev[1] == cpu and ev[2] == "task" and ev[0] < entry[0]]
    if not before:
        return Injection(0, "(before the task)", outcome)
    event = EventLog.of(events).at(before[-1])
    point = f"{event.op} {event.obj}" if event.obj else event.op
    return Injection(len(before), point, outcome, event)


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


def _ink(colour: str) -> str:
    r, g, b = to_rgb(colour)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else "white"


# inches: a strip's title, a cell's least box height, the padding around a label, the gap after a row,
# the gap between two cells, the figure's margin
_TITLE, _BOX, _PAD, _GAP, _SPACE, _MARGIN = 0.34, 0.40, 0.06, 0.10, 0.06, 0.05
_LINESPACING = 1.15


def strip_rows(cells: list, per_row: int = CELLS_PER_ROW) -> list[list]:
    """The cells cut into rows of ``per_row`` (the last row may be shorter)."""
    if isinstance(per_row, bool) or not isinstance(per_row, int) or per_row < 1:
        raise InvalidArgumentError(f"strip_rows: per_row must be a positive int, not {per_row!r}")
    return [cells[i:i + per_row] for i in range(0, len(cells), per_row)]


@dataclass(frozen=True)
class _Row:
    """One row of a strip laid out: each cell's outcome and description lines, and the heights (inches)
    of the row's boxes and of the text under them, from its tallest cell."""

    cells: list
    outcomes: list
    descriptions: list
    box: float
    text: float


def _layout(cells: list, label_width: float) -> _Row:
    outcomes = [fit_lines(c.outcome, label_width, SMALL_FONT, "bold") for c in cells]
    descriptions = [fit_lines(c.description, label_width, SMALL_FONT) for c in cells]
    tall = max((len(lines) for lines in outcomes), default=1)
    deep = max((len(lines) for lines in descriptions), default=1)
    box = max(_BOX, tall * line_height(SMALL_FONT, _LINESPACING) + 2 * _PAD)
    return _Row(cells, outcomes, descriptions, box, deep * line_height(SMALL_FONT, _LINESPACING) + 2 * _PAD)


@styled
def injection_strip(rows: dict[str, list], title: str | None = None, per_row: int = CELLS_PER_ROW) -> Figure:
    """One strip per scenario (``rows``: its name to its injections): a cell per point at which the
    interrupt can arrive, coloured and labelled by the outcome, with what the task was about to do
    there written under it; ``per_row`` cells a row, a longer strip wraps.  Labels are wrapped to the
    cell's width (:func:`~tryalloc.book.style.fit_lines`) and a row is as tall as its longest label."""
    cut = {name: strip_rows(injection_cells(injs), per_row) for name, injs in rows.items()}
    cell = (FIGURE_WIDTH - 2 * _MARGIN) / per_row
    strips = {name: [_layout(r, cell - _SPACE - 2 * _PAD) for r in laid] for name, laid in cut.items()}
    height = (_TITLE if title else 0) + sum(
        _TITLE + (sum(r.box + r.text + _GAP for r in laid) if laid else _BOX + _GAP) for laid in strips.values())
    fig = Figure(figsize=(FIGURE_WIDTH, height + 2 * _MARGIN))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, FIGURE_WIDTH)
    ax.set_ylim(height + 2 * _MARGIN, 0)  # y in inches from the top
    ax.axis("off")
    y = _MARGIN
    if title:
        ax.text(_MARGIN, y + _TITLE / 2, title, va="center", fontsize=FONT + 1, fontweight="bold")
        y += _TITLE
    for name, laid in strips.items():
        ax.text(_MARGIN, y + _TITLE / 2, name, va="center", fontsize=FONT, fontweight="bold")
        y += _TITLE
        for row in laid:
            for i, c in enumerate(row.cells):
                x = _MARGIN + i * cell
                colour = OUTCOME_COLOURS.get(c.outcome, "#bbbbbb")
                ax.add_patch(Rectangle((x + _SPACE / 2, y), cell - _SPACE, row.box, facecolor=colour,
                                       edgecolor="black", linewidth=0.6))
                ax.text(x + cell / 2, y + row.box / 2, "\n".join(row.outcomes[i]), ha="center", va="center",
                        fontsize=SMALL_FONT, fontweight="bold", color=_ink(colour), linespacing=_LINESPACING)
                ax.text(x + cell / 2, y + row.box + _PAD, "\n".join(row.descriptions[i]), ha="center",
                        va="top", fontsize=SMALL_FONT, linespacing=_LINESPACING)
            y += row.box + row.text + _GAP
        if not laid:
            y += _BOX + _GAP
    return fig
