"""Per-CPU context timelines, drawn from a run's event log.

Everything is computed first and drawn second: :func:`timeline_spans` turns the event tuples
``(index, cpu, "task>nmi", op, obj)`` of ``Kernel.events`` (or ``KernelReport.events``) into context
bands, lock-holding spans and waits, which tests check without looking at pixels; the drawing
functions only place those spans.  Figures are built with :class:`matplotlib.figure.Figure`, never
pyplot's global state, so they need no display and no backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch as LegendPatch
from matplotlib.patches import Rectangle

from ..errors import InvalidArgumentError
from .events import outcome_of_report
from .style import CONTEXT_COLOURS, ENDING_MARKS, FIGURE_WIDTH, SMALL_FONT, integer_ticks, lock_colour, styled

_RESOLVES = ("acquired", "trylock-failed")
_WAITS = ("spin", "sleep")


@dataclass(frozen=True)
class Band:
    """One context on a CPU's stack, alive from event ``start`` to event ``end`` (inclusive).

    ``open`` is true when the log ends before the context returned (the run stopped inside it).
    """

    cpu: int
    kind: str
    depth: int
    start: int
    end: int
    open: bool = False
    label: str = ""


@dataclass(frozen=True)
class Hold:
    """Context ``depth`` of ``cpu`` holds ``lock`` from event ``start`` to ``end``.

    A release is announced at a scheduling point and takes effect when the releasing context runs
    again, so ``end`` is that context's next event; ``open`` when it never ran again.
    """

    cpu: int
    depth: int
    lock: str
    start: int
    end: int
    open: bool = False


@dataclass(frozen=True)
class Wait:
    """Context ``depth`` of ``cpu`` spins (or sleeps) on ``lock`` from event ``start`` to ``end``."""

    cpu: int
    depth: int
    lock: str
    start: int
    end: int
    open: bool = False


@dataclass(frozen=True)
class Stuck:
    """A lock attempt (event ``index``, operation ``op``) that the log never saw succeed or fail:
    the point where the run stopped, a deadlock when the run ended with one."""

    cpu: int
    depth: int
    index: int
    op: str
    lock: str


@dataclass(frozen=True)
class Failed:
    """A trylock of ``lock`` by context ``depth`` of ``cpu`` that failed at event ``index``."""

    cpu: int
    depth: int
    index: int
    lock: str


@dataclass
class Spans:
    """Everything :func:`context_timeline` draws, computed from the events alone."""

    cpus: list[int] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)
    stuck: list[Stuck] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    last: int = -1  # index of the last event

    @property
    def locks(self) -> list[str]:
        """Lock names in the order they were first held or waited for."""
        seen: dict[str, None] = {}
        for item in sorted(self.holds + self.waits + self.stuck + self.failed,
                           key=lambda s: getattr(s, "start", getattr(s, "index", 0))):
            seen.setdefault(item.lock, None)
        return list(seen)


def _is_attempt(op: str, obj) -> bool:
    # lock, trylock and irqsave forms of every lock type announce "...lock..." before acting
    return obj is not None and "lock" in op and "unlock" not in op and op not in _RESOLVES


def timeline_spans(events) -> Spans:
    """Compute the bands, holds, waits and stuck attempts of an event log.

    Raises :class:`~tryalloc.errors.InvalidArgumentError` if an event is not an
    ``(index, cpu, path, op, obj)`` tuple.
    """
    spans = Spans()
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    exited: set[int] = set()
    irq_open: dict[tuple[int, int], tuple[str, int, str]] = {}
    held: dict[tuple[int, int, str], list[int]] = {}
    releasing: dict[tuple[int, int], list[tuple[str, int]]] = {}
    attempts: dict[tuple[int, int, str], tuple[int, str]] = {}
    waiting: dict[tuple[int, int, str], int] = {}
    for ev in events:
        if not (isinstance(ev, tuple) and len(ev) == 5 and isinstance(ev[2], str)):
            raise InvalidArgumentError(f"not an event tuple (index, cpu, path, op, obj): {ev!r}")
        idx, cpu, path, op, obj = ev
        depth = path.count(">")
        first.setdefault(cpu, idx)
        last[cpu] = idx
        spans.last = idx
        # a release announced earlier by this very context has happened once it runs again
        for lock, _ in releasing.pop((cpu, depth), []):
            start = held[(cpu, depth, lock)].pop()
            spans.holds.append(Hold(cpu, depth, lock, start, idx))
        if op == "exit":
            exited.add(cpu)
        elif op.endswith("-entry"):
            irq_open[(cpu, depth)] = (op[:-len("-entry")], idx, obj or "")
        elif op.endswith("-exit") and (cpu, depth) in irq_open:
            kind, start, label = irq_open.pop((cpu, depth))
            spans.bands.append(Band(cpu, kind, depth, start, idx, label=label))
        elif op == "acquired":
            attempts.pop((cpu, depth, obj), None)
            if (cpu, depth, obj) in waiting:
                spans.waits.append(Wait(cpu, depth, obj, waiting.pop((cpu, depth, obj)), idx))
            held.setdefault((cpu, depth, obj), []).append(idx)
        elif op == "trylock-failed":
            attempts.pop((cpu, depth, obj), None)
            spans.failed.append(Failed(cpu, depth, idx, obj))
        elif op in _WAITS:
            waiting[(cpu, depth, obj)] = idx
        elif obj is not None and "unlock" in op and held.get((cpu, depth, obj)):
            releasing.setdefault((cpu, depth), []).append((obj, idx))
        elif _is_attempt(op, obj):
            attempts[(cpu, depth, obj)] = (idx, op)
    end = spans.last
    for (cpu, depth, lock), starts in held.items():
        spans.holds.extend(Hold(cpu, depth, lock, s, end, open=True) for s in starts)
    for (cpu, depth, lock), start in waiting.items():
        spans.waits.append(Wait(cpu, depth, lock, start, end, open=True))
    for (cpu, depth), (kind, start, label) in irq_open.items():
        spans.bands.append(Band(cpu, kind, depth, start, end, open=True, label=label))
    for (cpu, depth, lock), (idx, op) in attempts.items():
        spans.stuck.append(Stuck(cpu, depth, idx, op, lock))
    spans.cpus = sorted(first)
    tasks = [Band(cpu, "task", 0, first[cpu], last[cpu] if cpu in exited else end, open=cpu not in exited)
             for cpu in spans.cpus]
    spans.bands = tasks + sorted(spans.bands, key=lambda b: (b.cpu, b.start))
    spans.holds.sort(key=lambda h: (h.cpu, h.start))
    spans.waits.sort(key=lambda w: (w.cpu, w.start))
    spans.stuck.sort(key=lambda s: s.index)
    return spans


# -- drawing ----------------------------------------------------------------------------------------
_BAND_HEIGHT = {0: 0.8, 1: 0.6, 2: 0.42, 3: 0.26}
_SLOT = 0.24  # vertical room of one lock row under a lane
_LANE_INCHES = 0.8  # drawn height of one unit of lane


def run_events(run) -> tuple[list, str | None]:
    """``(events, ending)`` of ``run``: a :class:`~tryalloc.errors.KernelReport`, of the package or of a
    level of the series (ending ``"deadlock"``,
    ``"per-CPU corruption"`` or the report's class name), a run result with ``events`` (ending ``None``:
    it finished), or an event list itself (ending ``None``)."""
    if isinstance(run, BaseException) and hasattr(run, "events"):  # a report of the package or of a level
        return list(run.events), outcome_of_report(run)
    events = getattr(run, "events", run)
    if not isinstance(events, (list, tuple)):
        raise InvalidArgumentError(f"a timeline needs a report, a run result or an event list, not {run!r}")
    return list(events), None


def _lane(spans: Spans) -> float:
    return 1.0 + _SLOT * len(spans.locks)


def _draw(ax, events, ending: str | None, spans: Spans, xmax: int) -> dict:
    """Draw one run into ``ax``; return its legend entries (label -> handle)."""
    locks = spans.locks
    lane = _lane(spans)
    centre = {cpu: -i * lane for i, cpu in enumerate(spans.cpus)}
    legend: dict = {}
    for b in spans.bands:
        h = _BAND_HEIGHT.get(b.depth, 0.2)
        colour = CONTEXT_COLOURS.get(b.kind, "#bbbbbb")
        ax.add_patch(Rectangle((b.start - 0.4, centre[b.cpu] - h / 2), b.end - b.start + 0.8, h,
                               facecolor=colour, edgecolor="black", linewidth=0.6,
                               linestyle="--" if b.open else "-", zorder=1 + b.depth))
        legend.setdefault(b.kind, LegendPatch(facecolor=colour, edgecolor="black", label=b.kind))
    ax.scatter([ev[0] for ev in events], [centre[ev[1]] for ev in events], marker="|", color="black", s=30,
               zorder=10)

    def row(cpu, lock):
        return centre[cpu] - 0.5 - _SLOT * (locks.index(lock) + 0.5)

    for item in spans.holds + spans.waits:
        colour, waits = lock_colour(item.lock), isinstance(item, Wait)
        ax.add_patch(Rectangle((item.start, row(item.cpu, item.lock) - _SLOT * 0.35),
                               max(item.end - item.start, 0.3), _SLOT * 0.7,
                               facecolor="white" if waits else colour, edgecolor=colour,
                               hatch="////" if waits else None, linewidth=1, zorder=5))
        if waits:
            legend.setdefault("spins", LegendPatch(facecolor="white", edgecolor="black", hatch="////",
                                                   label="spins / sleeps on"))
        else:
            legend.setdefault(f"holds {item.lock}", LegendPatch(facecolor=colour, edgecolor=colour,
                                                                label=f"holds {item.lock}"))
    for f in spans.failed:
        ax.plot([f.index], [row(f.cpu, f.lock)], marker="o", color="white", markeredgecolor="black",
                markersize=8, markeredgewidth=2, zorder=6)
        legend.setdefault("failed", Line2D([], [], marker="o", color="white", markeredgecolor="black",
                                           markeredgewidth=2, linestyle="", label="trylock fails"))
    marker, colour, words = ENDING_MARKS.get(ending, ENDING_MARKS[None])
    if ending is not None and ending not in ENDING_MARKS:  # another report: named, with the neutral mark
        words = f"the run stopped: {ending}"
    for s in spans.stuck:
        y = centre[s.cpu]
        ax.plot([s.index], [y], marker=marker, color=colour, markersize=13, markeredgecolor="white", zorder=12)
        ax.annotate(f"{s.op}({s.lock})\n{words}", (s.index, y), xytext=(8, 12), textcoords="offset points",
                    color=colour, fontsize=SMALL_FONT, fontweight="bold", zorder=12,
                    ha="right" if s.index > xmax / 2 else "left",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": colour, "alpha": 0.9})
        legend.setdefault(f"end {ending}", Line2D([], [], marker=marker, color=colour, markeredgecolor="white",
                                                  markersize=11, linestyle="", label=ending or "stopped"))
    ax.set_yticks([centre[c] for c in spans.cpus], [f"CPU{c}" for c in spans.cpus])
    ax.set_xlim(-1, xmax + 1)
    ax.set_ylim(-(len(spans.cpus) - 1) * lane - 0.5 - _SLOT * len(locks) - 0.1, 0.55)
    integer_ticks(ax.xaxis)
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    return legend


def _legend(fig, entries: dict) -> None:
    order = [k for k in CONTEXT_COLOURS if k in entries] + [k for k in entries if k not in CONTEXT_COLOURS]
    fig.legend(handles=[entries[k] for k in order], loc="outside lower center", ncols=min(3, len(order)),
               frameon=False)


def _height(all_spans: list[Spans], legend_rows: int) -> float:
    lanes = sum(_lane(s) * len(s.cpus) for s in all_spans)
    return 0.75 + 0.5 * len(all_spans) + _LANE_INCHES * lanes + 0.28 * legend_rows


@styled
def context_timeline(run, ax=None, title: str | None = None) -> Figure:
    """Draw a run's per-CPU context timeline and return its figure.

    ``run`` is a kernel report, a run result or an event log (:func:`run_events`).  x is the event
    index; each CPU has a lane whose nested bands show the contexts on its stack (task, then softirq,
    hardirq, NMI on top); under the bands, one row per lock shows when each context of that CPU held it
    (solid, in the lock's colour of :func:`~tryalloc.book.style.lock_colour`) or waited for it (hatched);
    a ring marks a trylock that failed, and the attempt the run stopped in is marked by how the run
    ended (:data:`~tryalloc.book.style.ENDING_MARKS`: a cross for a deadlock, a diamond for per-CPU
    corruption).
    """
    events, ending = run_events(run)
    spans = timeline_spans(events)
    fig = ax.figure if ax is not None else Figure(figsize=(FIGURE_WIDTH, _height([spans], 2)), layout="constrained")
    ax = ax if ax is not None else fig.add_subplot()
    _legend(fig, _draw(ax, events, ending, spans, spans.last))
    ax.set_xlabel("event index")
    if title:
        ax.set_title(title, loc="left")
    return fig


@styled
def compare_timelines(runs: dict) -> Figure:
    """Several runs' timelines stacked on one event axis, each titled by its key in ``runs`` (a title to a
    report, run result or event log, as :func:`context_timeline` takes), with one legend."""
    if not runs:
        raise InvalidArgumentError("compare_timelines: no runs to draw")
    parsed = {title: run_events(run) for title, run in runs.items()}
    spans = {title: timeline_spans(events) for title, (events, _) in parsed.items()}
    lanes = [_lane(s) * len(s.cpus) for s in spans.values()]
    fig = Figure(figsize=(FIGURE_WIDTH, _height(list(spans.values()), 3)), layout="constrained")
    axes = fig.subplots(len(runs), 1, sharex=True, squeeze=False, height_ratios=lanes)[:, 0]
    xmax = max(s.last for s in spans.values())
    legend: dict = {}
    for ax, (title, (events, ending)) in zip(axes, parsed.items(), strict=True):
        legend.update(_draw(ax, events, ending, spans[title], xmax))
        ax.set_title(title, loc="left")
    axes[-1].set_xlabel("event index")
    _legend(fig, legend)
    return fig
