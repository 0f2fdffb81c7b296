"""Pictures for the book: per-CPU context timelines drawn from a run's event log, the series' history,
and the page allocator's state (buddyinfo bars, the memory map, pcp counts, where an interrupt deadlocks).

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

from ..series.history import HISTORY, KINDS, MERGE, Milestone

#: Fill colour of each context kind (task at the bottom of the stack).
CONTEXT_COLOURS = {"task": "#d9d9d9", "softirq": "#a6d96a", "hardirq": "#fdae61", "nmi": "#d7191c"}
_LOCK_COLOURS = ("#2b83ba", "#7b3294", "#008837", "#e66101", "#5e3c99", "#a6611a", "#018571", "#c51b7d")
_KIND_COLOURS = {"version": "#2b83ba", "merge": "#1a9641", "fix": "#d7191c", "later": "#7b3294",
                 "proposed": "#999999"}

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
    from ..errors import InvalidArgumentError

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
_SLOT = 0.22  # vertical room of one lock row under a lane


def _new_axes(ax, width: float, height: float):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def context_timeline(events, ax=None, title: str | None = None) -> Figure:
    """Draw a run's per-CPU context timeline and return its figure.

    x is the event index; each CPU has a lane whose nested bands show the contexts on its stack
    (task, then softirq, hardirq, NMI on top); under the bands, one row per lock shows when each
    context of that CPU held it (solid) or waited for it (hatched); a red cross marks a lock
    attempt that never completed and a ring a trylock that failed.
    """
    spans = timeline_spans(events)
    locks = spans.locks
    colour = {name: _LOCK_COLOURS[i % len(_LOCK_COLOURS)] for i, name in enumerate(locks)}
    lane = 1.0 + _SLOT * len(locks)
    fig, ax = _new_axes(ax, max(6.0, min(14.0, 4 + 0.25 * (spans.last + 1))), 1.2 + 1.1 * lane * len(spans.cpus))
    centre = {cpu: -i * lane for i, cpu in enumerate(spans.cpus)}
    for b in spans.bands:
        h = _BAND_HEIGHT.get(b.depth, 0.2)
        ax.add_patch(Rectangle((b.start - 0.4, centre[b.cpu] - h / 2), b.end - b.start + 0.8, h,
                               facecolor=CONTEXT_COLOURS.get(b.kind, "#bbbbbb"), edgecolor="black",
                               linewidth=0.6, linestyle="--" if b.open else "-", zorder=1 + b.depth))
    ax.scatter([ev[0] for ev in events], [centre[ev[1]] for ev in events], marker="|", color="black", s=36,
               zorder=10)
    for item in spans.holds + spans.waits:
        y = centre[item.cpu] - 0.5 - _SLOT * (locks.index(item.lock) + 0.5)
        hatched = isinstance(item, Wait)
        ax.add_patch(Rectangle((item.start, y - _SLOT * 0.35), max(item.end - item.start, 0.3), _SLOT * 0.7,
                               facecolor="white" if hatched else colour[item.lock], edgecolor=colour[item.lock],
                               hatch="////" if hatched else None, linewidth=1, zorder=5))
    for f in spans.failed:
        y = centre[f.cpu] - 0.5 - _SLOT * (locks.index(f.lock) + 0.5)
        ax.plot([f.index], [y], marker="o", color="white", markeredgecolor="black", markersize=8,
                markeredgewidth=2, zorder=6)
    for s in spans.stuck:
        y = centre[s.cpu]
        ax.plot([s.index], [y], marker="X", color="#b2182b", markersize=14, markeredgecolor="white", zorder=12)
        ax.annotate(f"{s.op}({s.lock}) never returns", (s.index, y), xytext=(8, 10), textcoords="offset points",
                    color="#b2182b", fontsize=9, fontweight="bold", zorder=12,
                    ha="right" if s.index > spans.last / 2 else "left",
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "#b2182b", "alpha": 0.9})
    ax.set_yticks([centre[c] for c in spans.cpus], [f"CPU{c}" for c in spans.cpus])
    ax.set_xlim(-1, spans.last + 1)
    ax.set_ylim(-(len(spans.cpus) - 1) * lane - 0.5 - _SLOT * len(locks) - 0.1, 0.55)
    ax.set_xlabel("event index")
    ax.grid(axis="x", linestyle=":", linewidth=0.5)
    kinds = [k for k in CONTEXT_COLOURS if any(b.kind == k for b in spans.bands)]
    handles = [LegendPatch(facecolor=CONTEXT_COLOURS[k], edgecolor="black", label=k) for k in kinds]
    handles += [LegendPatch(facecolor=colour[n], edgecolor=colour[n], label=f"holds {n}") for n in locks]
    if spans.waits:
        handles.append(LegendPatch(facecolor="white", edgecolor="black", hatch="////", label="spins/sleeps"))
    if spans.failed:
        handles.append(Line2D([], [], marker="o", color="white", markeredgecolor="black", markeredgewidth=2,
                              label="trylock failed"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    return fig


def _stagger(n: int) -> list[float]:
    # alternate stems above and below the axis, at three heights, so neighbouring labels do not collide
    heights = (1.2, -1.2, 2.6, -2.6, 4.0, -4.0)
    return [heights[i % len(heights)] for i in range(n)]


def _draw_history(ax, entries: list[Milestone], title: str) -> None:
    import matplotlib.dates as mdates

    ys = _stagger(len(entries))
    ax.axhline(0, color="black", linewidth=1)
    for m, y in zip(entries, ys, strict=True):
        c = _KIND_COLOURS[m.kind]
        ax.vlines(m.when, 0, y, color=c, linewidth=1)
        ax.plot([m.when], [0], "o", color=c, markersize=6, zorder=3)
        label = f"{m.label}\n{m.when.isoformat()}" + ("" if m.confirmed else " (?)")
        ax.annotate(label, (m.when, y), xytext=(0, 4 if y > 0 else -4), textcoords="offset points",
                    ha="center", va="bottom" if y > 0 else "top", fontsize=8, color=c,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": c, "linewidth": 0.5})
    ax.set_ylim(-5.4, 5.4)
    ax.yaxis.set_visible(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))
    ax.set_title(title, loc="left", fontsize=10)


def series_timeline(entries: tuple[Milestone, ...] = HISTORY) -> Figure:
    """The series' history in two panels: the postings up to the 6.15 merge, then what followed."""
    from datetime import timedelta

    series = [m for m in entries if m.when <= MERGE.when]
    after = [m for m in entries if m.when > MERGE.when]
    fig = Figure(figsize=(13, 8.5), layout="constrained")
    axes = fig.subplots(2, 1) if after else [fig.add_subplot()]
    pad = timedelta(days=6)
    _draw_history(axes[0], series, "v1 to v9, bpf-next and the 6.15 merge")
    axes[0].set_xlim(series[0].when - pad, series[-1].when + pad)
    if after:
        _draw_history(axes[1], after, "after the merge: fixes and follow-ups")
        axes[1].set_xlim(after[0].when - 6 * pad, after[-1].when + 6 * pad)
    handles = [LegendPatch(facecolor=_KIND_COLOURS[k], label=k) for k in KINDS if any(m.kind == k for m in entries)]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig


# -- the page allocator's state (the baseline chapter) ------------------------------------------------
#: Colour of each memory-map state (in the order of ``tryalloc.mm.debug.PFN_STATE_NAMES``: allocated, buddy, pcp,
#: deferred -- the last waits on ``zone->trylock_free_pages``, from patch 2 on).
PFN_STATE_COLOURS = ("#d7191c", "#abd9e9", "#fdae61", "#7b3294")


def buddyinfo_bars(snapshots: dict[str, list[int]], ax=None, title: str | None = None) -> Figure:
    """Grouped bars of free blocks per order, one group per order and one bar per snapshot.

    ``snapshots`` maps a label ("before", "after a split" ...) to the counts of
    :func:`tryalloc.mm.debug.free_counts` (the numbers ``/proc/buddyinfo`` prints).  Every snapshot
    must have the same number of orders, else :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    from ..errors import InvalidArgumentError

    lengths = {len(c) for c in snapshots.values()}
    if len(lengths) != 1:
        raise InvalidArgumentError(f"buddyinfo_bars: snapshots need one count per order, all alike; got {lengths}")
    nr_orders = lengths.pop()
    fig, ax = _new_axes(ax, max(6.0, 0.7 * nr_orders + 2), 3.2)
    width = 0.8 / len(snapshots)
    for i, (label, counts) in enumerate(snapshots.items()):
        xs = [order - 0.4 + width * (i + 0.5) for order in range(nr_orders)]
        bars = ax.bar(xs, counts, width, label=label, color=_LOCK_COLOURS[i % len(_LOCK_COLOURS)])
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(nr_orders))
    ax.set_xlabel("order (a free block of order n is 2**n pages)")
    ax.set_ylabel("free blocks")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.margins(y=0.15)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if title:
        ax.set_title(title)
    return fig


def memory_map_grid(states, width: int) -> list[list[int]]:
    """Cut a memory map's per-pfn states (:func:`tryalloc.mm.debug.pfn_states`) into rows of ``width``
    pfns; row ``r`` column ``c`` is pfn ``r * width + c``.  ``len(states)`` must be a multiple of
    ``width`` (:class:`~tryalloc.errors.InvalidArgumentError` otherwise)."""
    from ..errors import InvalidArgumentError

    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or len(states) % width:
        raise InvalidArgumentError(f"memory_map_grid: {len(states)} pfns do not make rows of {width!r}")
    return [list(states[r:r + width]) for r in range(0, len(states), width)]


def memory_map(states, width: int = 64, ax=None, title: str | None = None) -> Figure:
    """Draw every page frame as a cell coloured by state: allocated, free in buddy, or on a pcp list."""
    from matplotlib.colors import ListedColormap

    from ..mm.debug import PFN_STATE_NAMES

    grid = memory_map_grid(states, width)
    fig, ax = _new_axes(ax, 9.0, 1.4 + 0.14 * len(grid) * 64 / width)
    ax.imshow(grid, cmap=ListedColormap(PFN_STATE_COLOURS), vmin=-0.5, vmax=len(PFN_STATE_COLOURS) - 0.5,
              aspect="auto", interpolation="nearest", extent=(0, width, len(grid), 0))
    counts = [sum(row.count(s) for row in grid) for s in range(len(PFN_STATE_NAMES))]
    # states no frame is in (the deferred one before patch 2) stay out of the legend
    handles = [LegendPatch(facecolor=c, edgecolor="black", label=f"{name} ({n})")
               for c, name, n in zip(PFN_STATE_COLOURS, PFN_STATE_NAMES, counts, strict=True) if n]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_xlabel(f"pfn % {width}")
    ax.set_ylabel(f"pfn // {width}")
    if title:
        ax.set_title(title)
    return fig


@dataclass(frozen=True)
class PcpMark:
    """Step ``step`` of a pcp history moved ``pages`` pages between the pcp and buddy: ``kind`` is
    ``"refill"`` (``rmqueue_bulk`` filled an empty list) or ``"bulk free"`` (``free_pcppages_bulk``)."""

    step: int
    kind: str
    pages: int


def pcp_marks(counts: list[int], ops: list[str]) -> list[PcpMark]:
    """Find the steps where ``pcp->count`` did more than follow one page in or out.

    ``counts[0]`` is the count before any operation and ``counts[i]`` the count after ``ops[i - 1]``,
    each ``"alloc"`` or ``"free"`` of one order-0 page on that CPU.  An allocation should lower the
    count by one; any more is a refill from buddy.  A free should raise it by one; any less is a bulk
    free to buddy.  Malformed input raises :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    from ..errors import InvalidArgumentError

    if len(counts) != len(ops) + 1 or any(op not in ("alloc", "free") for op in ops):
        raise InvalidArgumentError("pcp_marks: need len(ops) + 1 counts and ops of 'alloc' or 'free'")
    marks = []
    for step, op in enumerate(ops, start=1):
        moved = counts[step] - counts[step - 1] + (1 if op == "alloc" else -1)
        if moved > 0:
            marks.append(PcpMark(step, "refill", moved))
        elif moved < 0:
            marks.append(PcpMark(step, "bulk free", -moved))
    return marks


def pcp_history(counts: list[int], ops: list[str], high: int, batch: int, ax=None,
                title: str | None = None) -> Figure:
    """Plot ``pcp->count`` over a sequence of order-0 allocations and frees, with ``high`` and the
    refills and bulk frees of :func:`pcp_marks` marked and labelled with the pages they moved."""
    marks = pcp_marks(counts, ops)
    fig, ax = _new_axes(ax, 10.0, 3.6)
    ax.step(range(len(counts)), counts, where="post", color="black", linewidth=1, label="pcp->count")
    ax.axhline(high, color=_LOCK_COLOURS[0], linestyle="--", linewidth=1, label=f"pcp->high = {high}")
    ax.axhline(batch, color=_LOCK_COLOURS[2], linestyle=":", linewidth=1, label=f"pcp->batch = {batch}")
    for kind, colour, marker in (("refill", _LOCK_COLOURS[2], "^"), ("bulk free", _LOCK_COLOURS[3], "v")):
        picked = [m for m in marks if m.kind == kind]
        ax.scatter([m.step for m in picked], [counts[m.step] for m in picked], color=colour, marker=marker,
                   s=40, zorder=5, label=f"{kind} ({len(picked)}x, {sum(m.pages for m in picked)} pages)")
    frees = [i for i, op in enumerate(ops, start=1) if op == "free"]
    if frees:
        ax.axvspan(frees[0] - 0.5, frees[-1] + 0.5, color="#eeeeee", zorder=0)
    ax.set_xlabel("operation (shaded: frees)")
    ax.set_ylabel("pages on this CPU's pcp")
    ax.legend(fontsize=8, loc="center left", frameon=False)
    if title:
        ax.set_title(title)
    return fig


#: Colour of each outcome of an injected interrupt (other outcomes are grey).
OUTCOME_COLOURS = {"completes": "#1a9641", "lockdep warns": "#fdae61", "deadlock": "#d7191c",
                   "per-CPU corruption": "#7b3294"}


@dataclass(frozen=True)
class Injection:
    """An interrupt that entered after the interrupted task had logged ``position`` events, the last
    one the announced operation ``point`` ("spin_lock_irqsave zone->lock"); the run ended in ``outcome``."""

    position: int
    point: str
    outcome: str


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
    return Injection(len(before), f"{op} {obj}" if obj else op, outcome)


def injection_cells(injections) -> list[Injection]:
    """The injections ordered by position, one per position (``None`` entries, runs without an
    interrupt, are dropped).  Two different outcomes at one position raise
    :class:`~tryalloc.errors.InvalidArgumentError`: the strip would have to hide one."""
    from ..errors import InvalidArgumentError

    cells: dict[int, Injection] = {}
    for inj in injections:
        if inj is None:
            continue
        seen = cells.setdefault(inj.position, inj)
        if seen != inj:
            raise InvalidArgumentError(f"two outcomes at one injection point: {seen} and {inj}")
    return [cells[p] for p in sorted(cells)]


def injection_strip(rows: dict[str, list], title: str | None = None) -> Figure:
    """One strip per scenario: a cell per injection point of the interrupt, coloured by the outcome,
    labelled with the operation the task had announced when the interrupt came."""
    cells = {name: injection_cells(injs) for name, injs in rows.items()}
    widest = max(len(c) for c in cells.values())
    fig = Figure(figsize=(max(6.0, 1.3 * widest + 2), 1.9 * len(cells) + 0.6), layout="constrained")
    axes = fig.subplots(len(cells), 1, squeeze=False)[:, 0]
    for ax, (name, row) in zip(axes, cells.items(), strict=True):
        for i, cell in enumerate(row):
            ax.add_patch(Rectangle((i, 0), 0.94, 1, facecolor=OUTCOME_COLOURS.get(cell.outcome, "#bbbbbb"),
                                   edgecolor="black", linewidth=0.6))
            ax.text(i + 0.47, 0.5, cell.outcome.replace(" ", "\n"), ha="center", va="center", fontsize=8,
                    color="white" if cell.outcome in ("deadlock", "per-CPU corruption") else "black")
        ax.set_xlim(-0.1, widest)  # one cell width for every strip
        ax.set_ylim(0, 1)
        ax.set_xticks([i + 0.47 for i in range(len(row))])
        ax.set_xticklabels([c.point.replace(" ", "\n", 1) for c in row], fontsize=8)
        ax.set_yticks([])
        for side in ("left", "right", "top", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title(name, loc="left", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


# -- the series' chapters: the deferred free list, and the RT / !RT / UP matrix -----------------------------
def zone_llist(z) -> list[tuple[int, int]]:
    """The pages waiting on ``zone->trylock_free_pages`` as ``(pfn, order)``, head first (the last
    deferred page is the head: ``llist_add`` pushes at the front).  Levels before patch 2 have no such
    list: empty."""
    head = getattr(z, "trylock_free_pages", None)
    return [] if head is None else [(n.payload.pfn, n.payload.order) for n in head]


def deferred_llist(entries: list[tuple[int, int]], ax=None, title: str | None = None) -> Figure:
    """Draw ``zone->trylock_free_pages`` as :func:`zone_llist` gives it: the head, then one box per
    deferred page with its pfn and order (and the 2**order pages it stands for), linked by arrows."""
    fig, ax = _new_axes(ax, max(5.0, 2.2 * (len(entries) + 1)), 1.8)
    ax.add_patch(Rectangle((0, 0.2), 1.6, 0.6, facecolor="white", edgecolor="black"))
    ax.text(0.8, 0.5, "zone->\ntrylock_free_pages", ha="center", va="center", fontsize=8, family="monospace")
    for i, (pfn, order) in enumerate(entries, start=1):
        x = 2.2 * i
        ax.annotate("", (x, 0.5), (x - 0.6, 0.5), arrowprops={"arrowstyle": "->"})
        ax.add_patch(Rectangle((x, 0.15), 1.6, 0.7, facecolor=PFN_STATE_COLOURS[3], edgecolor="black"))
        ax.text(x + 0.8, 0.5, f"pfn {pfn:#x}\norder {order}\n({1 << order} pages)", ha="center", va="center",
                fontsize=8, color="white")
    end = 2.2 * (len(entries) + 1)
    ax.annotate("", (end, 0.5), (end - 0.6, 0.5), arrowprops={"arrowstyle": "->"})
    ax.text(end + 0.05, 0.5, "NULL", va="center", fontsize=8, family="monospace")
    ax.set_xlim(-0.1, end + 0.7)
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return fig


#: The columns of the RT / !RT / UP matrix (spec section 10) and the machine each one boots.
MATRIX_MACHINES = {"!RT SMP": {"preempt_rt": False, "nr_cpus": 2},
                   "RT": {"preempt_rt": True, "nr_cpus": 2},
                   "!RT UP": {"smp": False, "nr_cpus": 1}}
#: Rows of spec section 10 that belong to patches the model does not carry yet.
MATRIX_LATER = {"`local_trylock_irqsave` in NMI": "later (patch 3)",
                "BPF `bpf_map_alloc_pages` from process context": "later (patch 6)"}


def _matrix_machine(pkg, column: str):
    k = pkg.Kernel(pages_per_node=256, max_order=5, pageblock_order=5, memcg=False, **MATRIX_MACHINES[column])
    pkg.mm.page_alloc.setup_per_zone_wmarks(k, 0)
    return k


def lock_trail(events, ctx: str) -> str:
    """What the contexts of kind ``ctx`` ("nmi", "task" ...) did with locks, from an event log:
    ``"spin_trylock(pcp->lock[cpu0]) failed → spin_trylock_irqsave(zone->lock) failed → llist"``
    ("llist": a page deferred to ``zone->trylock_free_pages``); ``"no lock"`` when they took none."""
    steps = []
    for _, _, path, op, obj in events:
        if not path.endswith(ctx):
            continue
        if op == "trylock-failed":
            steps[-1] += " failed"
        elif op == "deferred-free":
            steps.append("llist")
        elif "lock" in op and not op.startswith(("spin_unlock", "raw_spin_unlock", "llist", "trace:")):
            steps.append(f"{op}({obj})")
    return " → ".join(steps) or "no lock"


def _nmi_on_holder(pkg, k, holder, nmi, obj="zone->lock"):
    """CPU0's task runs ``holder``; an NMI running ``nmi`` arrives just after it acquired ``obj``.
    Returns ``(the NMI's result, the report that stopped the run or None)``."""
    got = []
    k.spawn(0, holder)
    k.on_interrupt(0, "nmi", lambda: got.append(nmi()))
    try:
        k.run(pkg.Scripted(pkg.When(cpu=0, op="acquired", obj=obj, inject="nmi")))
    except pkg.KernelReport as report:
        return None, report
    return (got[0] if got else None), None


def _outcome(result: str, report, events, ctx: str = "nmi") -> str:
    """``result`` and the context's lock trail; a report instead of the result when one stopped the run
    (with its title when the report came before the lock was even tried)."""
    if report is not None:
        trail = lock_trail(report.events, ctx)
        if trail == "no lock":  # raised before the operation was logged: its headline names it
            trail = next((line for line in str(report).splitlines()[1:] if "(" in line), report.title)
        return f"{type(report).__name__}; {trail}"
    return f"{result}; {lock_trail(events, ctx)}"


def _page_or_null(page) -> str:
    return "NULL" if page is None else "a page"


def _try_alloc_in(context: str):
    def cell(pkg, k):
        page = k.call(pkg.mm.page_alloc.try_alloc_pages, 0, 0, context=context)
        return _outcome(_page_or_null(page), None, k.events, context)
    return cell


def _try_alloc_on_zone_lock_holder(pkg, k):
    A, G = pkg.mm.page_alloc, pkg.include.gfp
    page, report = _nmi_on_holder(pkg, k, lambda: A.alloc_pages(G.GFP_KERNEL, 4), lambda: A.try_alloc_pages(0, 0))
    return _outcome(_page_or_null(page), report, k.events)


def _state(pkg) -> str:
    P = pkg.kernel.preempt
    cpu = pkg.kernel.sched.this_cpu()
    pinned = "migration off" if cpu.migrate_disabled else ("preemption off" if cpu.preempt_count else "preemptible")
    return f"IRQs {'off' if P.irqs_disabled() else 'on'}, {pinned}"


def _pcp_holder(pkg, k):
    A = pkg.mm.page_alloc

    def hold():  # the fast path's own lock sequence (rmqueue_pcplist, free_unref_page)
        flags = A.pcp_trylock_prepare()
        pcp = A.pcp_spin_trylock(k.zones[0].per_cpu_pageset)
        state = _state(pkg)
        A.pcp_spin_unlock(pcp)
        A.pcp_trylock_finish(flags)
        return state

    return k.call(hold)


def _zone_lock_holder(pkg, k):
    A, G = pkg.mm.page_alloc, pkg.include.gfp
    seen = []
    # both fire with zone->lock held: in __rmqueue_smallest, and where a fallback steals a block
    for name in ("mm_page_alloc_zone_locked", "mm_page_alloc_extfrag"):
        pkg.trace.register_trace(k, name, lambda **f: seen.append(_state(pkg)))
    k.call(A.alloc_pages, G.GFP_KERNEL, 4)
    kind = "sleeping rt lock" if k.config.preempt_rt and k.zones[0].lock.sleeps_on_rt else "spinning lock"
    return f"{kind}; {seen[0]}"


def _free_nolock_on_holder(order: int):
    def cell(pkg, k):
        A, G = pkg.mm.page_alloc, pkg.include.gfp
        victim = k.call(A.alloc_pages, G.GFP_KERNEL, order)
        # order 0: the task refills its empty pcp list, so it holds its pcp lock and zone->lock
        _, report = _nmi_on_holder(pkg, k, lambda: A.alloc_pages(G.GFP_KERNEL, order),
                                   lambda: A.free_pages_nolock(victim, order))
        return _outcome("freed", report, k.events)
    return cell


#: The situations of the matrix the model runs, in the spec's order: each a function of the level's
#: package and a booted machine returning the cell's text.
MATRIX_SITUATIONS = {
    "`try_alloc_pages` in NMI": _try_alloc_in("nmi"),
    "`try_alloc_pages` in hard-IRQ": _try_alloc_in("hardirq"),
    "`try_alloc_pages` in an NMI on the holder of `zone->lock`": _try_alloc_on_zone_lock_holder,
    "pcp lock holder (fast path)": _pcp_holder,
    "`zone->lock` holder": _zone_lock_holder,
    "`free_pages_nolock` in NMI, pcp order, on the holder of both locks": _free_nolock_on_holder(0),
    "`free_pages_nolock` in NMI, order 4 (not pcp-allowed), on the `zone->lock` holder": _free_nolock_on_holder(4),
}


def rt_matrix(pkg) -> list[list[str]]:
    """Spec section 10's RT / !RT / UP matrix, measured: run every situation of
    :data:`MATRIX_SITUATIONS` on a fresh machine of each column of :data:`MATRIX_MACHINES`, on
    ``pkg`` (the package, or a level from :func:`tryalloc.series.load`), and return the rows
    ``[situation, cell per column]``; then the rows of :data:`MATRIX_LATER`.  A kernel report that
    stops a run is the cell's outcome (its class name, then the locks the interrupt tried)."""
    rows = []
    for name, situation in MATRIX_SITUATIONS.items():
        rows.append([name] + [situation(pkg, _matrix_machine(pkg, column)) for column in MATRIX_MACHINES])
    rows += [[name, *[later] * len(MATRIX_MACHINES)] for name, later in MATRIX_LATER.items()]
    return rows


#: The outcome label of each kernel report a search can end in (others keep their class name).
REPORT_OUTCOMES = {"DeadlockError": "deadlock", "PerCpuCorruptionError": "per-CPU corruption"}


def search_injections(explore, build, label) -> tuple:
    """Search every point at which ``build()``'s interrupt can arrive (``explore`` of the level the
    machine comes from, preemption bound 0, not stopping at the first report) and return
    ``(the search's result, its Injection cells)``: a run that ends normally is labelled
    ``label(kernel, run_result)``, one that ends in a report by :data:`REPORT_OUTCOMES`."""
    found = explore(build, preemption_bound=0, stop_on_failure=False,
                    outcome=lambda k, res: injection_of(res.events, label(k, res)))
    cells = list(found.outcomes) + [injection_of(f.events, REPORT_OUTCOMES.get(type(f).__name__, type(f).__name__))
                                    for f in found.failures]
    return found, injection_cells(cells)
