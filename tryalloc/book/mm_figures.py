"""Pictures of the page allocator's state: free blocks per order (``/proc/buddyinfo``), the memory map,
a CPU's pcp count over time, and the deferred-free list ``zone->trylock_free_pages`` (from patch 2 on)."""
from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import Patch as LegendPatch
from matplotlib.patches import Rectangle

from ..errors import InvalidArgumentError
from .style import FIGURE_WIDTH, MONO, SMALL_FONT, integer_ticks, new_axes, styled

#: Colour of each memory-map state (in the order of ``tryalloc.mm.debug.PFN_STATE_NAMES``: allocated, buddy, pcp,
#: deferred -- the last waits on ``zone->trylock_free_pages``, from patch 2 on).
PFN_STATE_COLOURS = ("#d7191c", "#abd9e9", "#fdae61", "#7b3294")
#: Bar colours of buddyinfo snapshots, in the order given (before, after ...).
SNAPSHOT_COLOURS = ("#92c5de", "#2166ac", "#f4a582", "#b2182b")


@styled
def buddyinfo_bars(snapshots: dict[str, list[int]], ax=None, title: str | None = None) -> Figure:
    """Grouped bars of free blocks per order, one group per order and one bar per snapshot.

    ``snapshots`` maps a label ("before", "after a split" ...) to the counts of
    :func:`tryalloc.mm.debug.free_counts` (the numbers ``/proc/buddyinfo`` prints).  Every snapshot
    must have the same number of orders, else :class:`~tryalloc.errors.InvalidArgumentError`.
    """
    lengths = {len(c) for c in snapshots.values()}
    if len(lengths) != 1:
        raise InvalidArgumentError(f"buddyinfo_bars: snapshots need one count per order, all alike; got {lengths}")
    nr_orders = lengths.pop()
    fig, ax = new_axes(ax, 3.4)
    width = 0.8 / len(snapshots)
    for i, (label, counts) in enumerate(snapshots.items()):
        xs = [order - 0.4 + width * (i + 0.5) for order in range(nr_orders)]
        bars = ax.bar(xs, counts, width, label=label, color=SNAPSHOT_COLOURS[i % len(SNAPSHOT_COLOURS)])
        ax.bar_label(bars, fontsize=SMALL_FONT)
    ax.set_xticks(range(nr_orders))
    ax.set_xlabel("order (a free block of order n is 2**n pages)")
    ax.set_ylabel("free blocks")
    integer_ticks(ax.yaxis)
    ax.margins(y=0.15)
    fig.legend(loc="outside lower center", ncols=min(3, len(snapshots)), frameon=False)
    if title:
        ax.set_title(title)
    return fig


def memory_map_grid(states, width: int) -> list[list[int]]:
    """Cut a memory map's per-pfn states (:func:`tryalloc.mm.debug.pfn_states`) into rows of ``width``
    pfns; row ``r`` column ``c`` is pfn ``r * width + c``.  ``len(states)`` must be a multiple of
    ``width`` (:class:`~tryalloc.errors.InvalidArgumentError` otherwise)."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or len(states) % width:
        raise InvalidArgumentError(f"memory_map_grid: {len(states)} pfns do not make rows of {width!r}")
    return [list(states[r:r + width]) for r in range(0, len(states), width)]


@styled
def memory_map(states, width: int = 64, ax=None, title: str | None = None) -> Figure:
    """Draw every page frame as a cell coloured by state: allocated, free in buddy, or on a pcp list."""
    from matplotlib.colors import ListedColormap

    from ..mm.debug import PFN_STATE_NAMES

    grid = memory_map_grid(states, width)
    fig, ax = new_axes(ax, 1.3 + len(grid) * (FIGURE_WIDTH - 0.8) / width)  # square cells
    ax.imshow(grid, cmap=ListedColormap(PFN_STATE_COLOURS), vmin=-0.5, vmax=len(PFN_STATE_COLOURS) - 0.5,
              aspect="auto", interpolation="nearest", extent=(0, width, len(grid), 0))
    counts = [sum(row.count(s) for row in grid) for s in range(len(PFN_STATE_NAMES))]
    # states no frame is in (the deferred one before patch 2) stay out of the legend
    handles = [LegendPatch(facecolor=c, edgecolor="black", label=f"{name} ({n})")
               for c, name, n in zip(PFN_STATE_COLOURS, PFN_STATE_NAMES, counts, strict=True) if n]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
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


@styled
def pcp_history(counts: list[int], ops: list[str], high: int, batch: int, ax=None,
                title: str | None = None) -> Figure:
    """Plot ``pcp->count`` over a sequence of order-0 allocations and frees, with ``high`` and the
    refills and bulk frees of :func:`pcp_marks` marked and labelled with the pages they moved."""
    marks = pcp_marks(counts, ops)
    fig, ax = new_axes(ax, 3.8)
    ax.step(range(len(counts)), counts, where="post", color="black", linewidth=1, label="pcp->count")
    ax.axhline(high, color="#2166ac", linestyle="--", linewidth=1, label=f"pcp->high = {high}")
    ax.axhline(batch, color="#1b7837", linestyle=":", linewidth=1, label=f"pcp->batch = {batch}")
    for kind, colour, marker in (("refill", "#1b7837", "^"), ("bulk free", "#e08214", "v")):
        picked = [m for m in marks if m.kind == kind]
        ax.scatter([m.step for m in picked], [counts[m.step] for m in picked], color=colour, marker=marker,
                   s=40, zorder=5, label=f"{kind} ({len(picked)}x, {sum(m.pages for m in picked)} pages)")
    frees = [i for i, op in enumerate(ops, start=1) if op == "free"]
    if frees:
        ax.axvspan(frees[0] - 0.5, frees[-1] + 0.5, color="#eeeeee", zorder=0)
    ax.set_xlabel("operation (shaded: frees)")
    ax.set_ylabel("pages on this CPU's pcp")
    integer_ticks(ax.xaxis)
    integer_ticks(ax.yaxis)
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    if title:
        ax.set_title(title)
    return fig


def zone_llist(z) -> list[tuple[int, int]]:
    """The pages waiting on ``zone->trylock_free_pages`` as ``(pfn, order)``, head first (the last
    deferred page is the head: ``llist_add`` pushes at the front).  Levels before patch 2 have no such
    list: empty."""
    head = getattr(z, "trylock_free_pages", None)
    return [] if head is None else [(n.payload.pfn, n.payload.order) for n in head]


@styled
def deferred_llist(entries: list[tuple[int, int]], ax=None, title: str | None = None) -> Figure:
    """Draw ``zone->trylock_free_pages`` as :func:`zone_llist` gives it: the head, then one box per
    deferred page with its pfn and order (and the 2**order pages it stands for), linked by arrows."""
    fig, ax = new_axes(ax, 1.7)
    ax.add_patch(Rectangle((0, 0.2), 1.6, 0.6, facecolor="white", edgecolor="black"))
    ax.text(0.8, 0.5, "zone->\ntrylock_free_pages", ha="center", va="center", fontsize=SMALL_FONT, family=MONO)
    for i, (pfn, order) in enumerate(entries, start=1):
        x = 2.2 * i
        ax.annotate("", (x, 0.5), (x - 0.6, 0.5), arrowprops={"arrowstyle": "->"})
        ax.add_patch(Rectangle((x, 0.15), 1.6, 0.7, facecolor=PFN_STATE_COLOURS[3], edgecolor="black"))
        ax.text(x + 0.8, 0.5, f"pfn {pfn:#x}\norder {order}\n({1 << order} pages)", ha="center", va="center",
                fontsize=SMALL_FONT, color="white")
    end = 2.2 * (len(entries) + 1)
    ax.annotate("", (end, 0.5), (end - 0.6, 0.5), arrowprops={"arrowstyle": "->"})
    ax.text(end + 0.05, 0.5, "NULL", va="center", fontsize=SMALL_FONT, family=MONO)
    ax.set_xlim(-0.1, max(end + 0.7, 7.4))  # the same box size for a short list
    ax.set_ylim(0, 1)
    ax.axis("off")
    if title:
        ax.set_title(title, loc="left")
    return fig


