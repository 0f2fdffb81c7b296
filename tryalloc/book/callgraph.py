"""The page allocator's call paths, recorded from the model itself: the map the book comes back to.

:func:`call_paths` runs allocations and frees on a small machine of a level of the series (and, from the
levels that have them, ``try_alloc_pages`` and ``free_pages_nolock`` from an NMI that arrives while the task
holds ``zone->lock``) under a profiler that notes every call between functions of ``mm/page_alloc`` and
every lock operation, attributed to the allocator function that made it.  Nothing is typed in: a call
the model does not make is not on the map, and a level that changes the calls changes the map.

The map keeps the functions that take a lock (or push onto a lock-free list) and the ones that lead to
them; :func:`call_map` draws it, with each function's locks written under its name, and highlights
a set of functions, for instance :func:`changed_functions`, those a patch of the series changes::

    call_map("1", highlight=changed_functions("0", "1"))
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..errors import InvalidArgumentError
from .style import FIGURE_WIDTH, MONO, SMALL_FONT, lock_colour, lock_key, styled

#: The kernel's macros around the pcp lock, which the model writes as functions: a lock they take belongs
#: to the allocator function that called them, and they are not steps of the map themselves.
LOCK_HELPERS = frozenset({"pcp_spin_trylock", "pcp_spin_unlock", "pcp_trylock_prepare", "pcp_trylock_finish",
                          "_pcpu_task_pin", "_pcpu_task_unpin"})
#: The lock-free list operations that count as a step's "lock" (``llist_add`` of a deferred page).
LIST_OPS = frozenset({"llist_add"})
_ALLOCATOR = ".mm.page_alloc"
_LOCK_MODULES = (".kernel.locking.spinlock", ".kernel.locking.local_lock")
_BARRIER = ".kernel.sched"  # the scheduler: an interrupt's handler is not called by the code it interrupted
_LOCK_OP = re.compile(r"^(raw_)?(spin|local)_(try)?lock(_irqsave|_irq|_bh)?$")


@dataclass
class CallMap:
    """The allocator's calls at ``level``: ``edges`` (caller, callee), ``locks`` of each function
    (``(lock name, "lock" | "trylock" | "llist")``, the name as :func:`~tryalloc.book.style.lock_key` gives
    it), and ``roots``, the entry points the runs called, in the order first seen."""

    level: str
    edges: set[tuple[str, str]] = field(default_factory=set)
    locks: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    roots: list[str] = field(default_factory=list)

    @property
    def functions(self) -> set[str]:
        return set(self.roots) | {f for edge in self.edges for f in edge}


class _Recorder:
    """A ``sys.setprofile`` function noting allocator calls and lock operations of package ``prefix``."""

    def __init__(self, prefix: str, found: CallMap):
        self.allocator = prefix + _ALLOCATOR
        self.locking = tuple(prefix + m for m in _LOCK_MODULES)
        self.llist = prefix + ".lib.llist"
        self.barrier = prefix + _BARRIER
        self.found = found

    def _step(self, frame) -> str | None:
        """The nearest allocator function up the stack from ``frame`` (not a lock helper), before the
        scheduler."""
        while frame is not None:
            module = frame.f_globals.get("__name__")
            if module == self.barrier:
                return None
            if module == self.allocator and frame.f_code.co_name not in LOCK_HELPERS:
                return frame.f_code.co_name
            frame = frame.f_back
        return None

    def __call__(self, frame, event, arg):
        if event != "call":
            return
        module, name = frame.f_globals.get("__name__"), frame.f_code.co_name
        if module == self.allocator and name not in LOCK_HELPERS and not name.startswith("<"):
            caller = self._step(frame.f_back)
            if caller is None:
                if name not in self.found.roots:
                    self.found.roots.append(name)
            elif caller != name:
                self.found.edges.add((caller, name))
        elif (module in self.locking and _LOCK_OP.match(name)) or (module == self.llist and name in LIST_OPS):
            step = self._step(frame.f_back)
            if step is not None:
                lock = frame.f_locals.get("lock")
                what = ("llist", "llist") if module == self.llist else (
                    lock_key(getattr(lock, "name", "?")), "trylock" if "trylock" in name else "lock")
                self.found.locks.setdefault(step, set()).add(what)


def _machine(pkg):
    k = pkg.Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False)
    pkg.mm.page_alloc.setup_per_zone_wmarks(k, 0)
    return k


def _runs(pkg):
    """The runs recorded: ``(machine, function)`` pairs; a function gets the machine."""
    A, G = pkg.mm.page_alloc, pkg.include.gfp

    def ordinary(k):
        pages = [k.call(A.alloc_pages, G.GFP_KERNEL, 0) for _ in range(64)]  # refills from an empty pcp
        for p in pages:  # enough frees to reach pcp->high: free_pcppages_bulk
            k.call(A.__free_pages, p, 0)
        k.call(A.__free_pages, k.call(A.alloc_pages, G.GFP_KERNEL, 4), 4)  # not pcp-cached: buddy both ways

    yield ordinary
    nolock = [f for f in ("try_alloc_pages", "free_pages_nolock") if hasattr(A, f)]
    if not nolock:
        return

    def from_nmi(k):
        victim = k.call(A.alloc_pages, G.GFP_KERNEL, 4)
        if hasattr(A, "try_alloc_pages"):
            k.call(A.try_alloc_pages, A.NUMA_NO_NODE, 0)  # an allocation that gets its page

        def nmi():
            if hasattr(A, "try_alloc_pages"):
                A.try_alloc_pages(A.NUMA_NO_NODE, 0)
            if hasattr(A, "free_pages_nolock"):
                A.free_pages_nolock(victim, 4)

        k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, 4))
        k.on_interrupt(0, "nmi", nmi)
        k.run(pkg.Scripted(pkg.When(cpu=0, op="acquired", obj="zone->lock", inject="nmi")))
        if hasattr(A, "free_pages_nolock"):
            k.call(A.__free_pages, k.call(A.alloc_pages, G.GFP_KERNEL, 4), 4)  # drains the deferred list

    yield from_nmi


def _reaching_a_lock(found: CallMap) -> set[str]:
    keep = set(found.locks)
    grew = True
    while grew:
        more = {a for a, b in found.edges if b in keep} - keep
        keep |= more
        grew = bool(more)
    return keep


def call_paths(level: str = "0") -> CallMap:
    """Record the allocator's call paths at ``level`` (see the module's docstring) and keep the functions
    that take a lock or lead to one.  An unknown level raises :class:`~tryalloc.errors.InvalidArgumentError`."""
    from ..series import load
    from ..series.rules import LEVELS

    if level not in LEVELS:
        raise InvalidArgumentError(f"call_paths: unknown level {level!r} (one of {', '.join(LEVELS)})")
    pkg = load(level)
    found = CallMap(level)
    recorder = _Recorder(pkg.__name__, found)
    for run in _runs(pkg):
        k = _machine(pkg)
        previous = sys.getprofile()
        sys.setprofile(recorder)
        try:
            run(k)
        finally:
            sys.setprofile(previous)
    keep = _reaching_a_lock(found)
    return CallMap(level, {(a, b) for a, b in found.edges if a in keep and b in keep},
                   {f: found.locks[f] for f in found.locks}, [r for r in found.roots if r in keep])


def changed_functions(old: str, new: str, path: str = "tryalloc/mm/page_alloc.py") -> set[str]:
    """The top-level functions of ``path`` that the diff from level ``old`` to ``new``
    (:func:`tryalloc.series.patch_diff`) adds to, removes from or changes: every line a hunk adds or
    removes, placed in the new level's file, falls inside one of them."""
    from ..series import package_at, patch_diff
    from . import split_diff

    parts = split_diff(patch_diff(old, new))
    if path not in parts:
        return set()
    tree = ast.parse((package_at(new) / path).read_text())
    spans = [(node.lineno, node.end_lineno, node.name) for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    touched: set[int] = set()
    line = 0
    for text in parts[path].splitlines():
        if text.startswith("@@"):
            line = int(re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", text).group(1))
        elif text.startswith(("+++", "---")):
            continue
        elif text.startswith("+"):
            touched.add(line)
            line += 1
        elif text.startswith("-"):
            touched.add(line)  # a removal is a change at the line that now follows it
        else:
            line += 1
    return {name for first, last, name in spans if any(first <= n <= last for n in touched)}


# -- drawing ----------------------------------------------------------------------------------------
_BOX_H, _ROW, _TOP = 0.46, 0.78, 0.15  # inches: a step's box, the pitch of the layers, top margin
_HIGHLIGHT = "#fff2a8"


def _layers(found: CallMap, roots: list[str]) -> dict[str, int]:
    """The layer of each function reachable from ``roots``: its longest call chain from a root, then each
    function moved down to just above its nearest callee (so an entry point that calls deep into the
    path sits beside the function it joins, and no arrow crosses a box)."""
    depth = {r: 0 for r in roots}
    bound = len(found.functions)
    for _ in range(bound):  # longest path by relaxation; a cycle stops at the bound
        changed = False
        for a, b in sorted(found.edges):
            if a in depth and depth.get(b, -1) < depth[a] + 1 and b not in roots:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    for _ in range(bound):
        changed = False
        for name in sorted(depth, key=depth.get, reverse=True):
            below = [depth[b] for a, b in found.edges if a == name and b in depth and depth[b] > depth[name]]
            if below and min(below) - 1 > depth[name]:
                depth[name] = min(below) - 1
                changed = True
        if not changed:
            break
    return depth


def _lock_words(locks: set[tuple[str, str]]) -> str:
    by_lock: dict[str, list[str]] = {}
    for name, kind in sorted(locks):
        by_lock.setdefault(name, []).append(kind)
    return ", ".join("llist" if name == "llist" else f"{name}: {' or '.join(kinds)}" for name, kinds in by_lock.items())


def _box_width(found: CallMap, name: str) -> float:
    """A step's box width in inches: its name (bold, in monospace) or its locks, whichever is longer."""
    return max(len(name) * 0.077, len(_lock_words(found.locks.get(name, set()))) * 0.072) + 0.16


def _place(found: CallMap, roots: list[str], x0: float, width: float) -> dict[str, tuple[float, int]]:
    """Each function's centre x and layer, for the part of the map reachable from ``roots``, drawn in
    the column from ``x0`` that is ``width`` wide: a lone function under its callers, several side by
    side in the order of their callers, packed about the column's middle."""
    depth = _layers(found, roots)
    layers: dict[int, list[str]] = {}
    for name in sorted(depth, key=lambda n: (depth[n], n)):
        layers.setdefault(depth[name], []).append(name)
    placed: dict[str, tuple[float, int]] = {}

    def callers_x(n):
        xs = [placed[a][0] for a, b in found.edges if b == n and a in placed]
        return sum(xs) / len(xs) if xs else x0 + width / 2

    for d in sorted(layers):
        names = sorted(layers[d], key=callers_x)
        widths = [_box_width(found, n) for n in names]
        gap = 0.15
        if len(names) == 1:
            half = widths[0] / 2 + 0.04
            placed[names[0]] = (min(max(callers_x(names[0]), x0 + half), x0 + width - half), d)
            continue
        x = x0 + (width - sum(widths) - gap * (len(names) - 1)) / 2
        for name, w in zip(names, widths, strict=True):
            placed[name] = (x + w / 2, d)
            x += w + gap
    return placed


@styled
def call_map(level: str = "0", highlight=(), title: str | None = None, found: CallMap | None = None) -> Figure:
    """Draw the allocator's call paths at ``level`` (:func:`call_paths`, or the given ``found``): the
    allocation entry points on the left, the free ones on the right, each call an arrow down to the
    callee, and under a function's name the locks it takes (in each lock's colour), ``trylock`` where it
    only tries.  Functions in ``highlight`` (names, e.g. :func:`changed_functions`) are drawn filled and
    bold.  A name in ``highlight`` that is not on the map is ignored: a patch also changes functions
    that take no lock."""
    found = found if found is not None else call_paths(level)
    highlight = set(highlight)
    frees = [r for r in found.roots if "free" in r]
    allocs = [r for r in found.roots if r not in frees]
    placed = _place(found, allocs, 0, FIGURE_WIDTH / 2) if allocs else {}
    placed.update({n: p for n, p in _place(found, frees, FIGURE_WIDTH / 2, FIGURE_WIDTH / 2).items()
                   if n not in placed})
    rows = 1 + max((d for _, d in placed.values()), default=0)
    height = _TOP * 2 + rows * _ROW + (0.3 if title else 0) + 0.35
    fig = Figure(figsize=(FIGURE_WIDTH, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, FIGURE_WIDTH)
    ax.set_ylim(height, 0)
    ax.axis("off")
    top = _TOP + (0.3 if title else 0)
    if title:
        ax.text(0.05, _TOP + 0.1, title, fontsize=SMALL_FONT + 2, fontweight="bold", va="center")
    ax.plot([FIGURE_WIDTH / 2] * 2, [top, height - 0.4], color="#cccccc", linewidth=0.8)
    centre = {n: (x, top + d * _ROW + _BOX_H / 2) for n, (x, d) in placed.items()}
    for a, b in sorted(found.edges):
        if a in centre and b in centre:
            (xa, ya), (xb, yb) = centre[a], centre[b]
            ax.add_patch(FancyArrowPatch((xa, ya + _BOX_H / 2), (xb, yb - _BOX_H / 2), arrowstyle="-|>",
                                         mutation_scale=9, color="#555555", linewidth=0.8, shrinkA=1, shrinkB=1))
    for name, (x, y) in centre.items():
        marked = name in highlight
        words = _lock_words(found.locks.get(name, set()))
        w = _box_width(found, name)
        ax.add_patch(FancyBboxPatch((x - w / 2, y - _BOX_H / 2), w, _BOX_H, boxstyle="round,pad=0.02",
                                    facecolor=_HIGHLIGHT if marked else "white",
                                    edgecolor="black" if marked else "#777777", linewidth=1.6 if marked else 0.7))
        ax.text(x, y - (0.09 if words else 0), name, ha="center", va="center", family=MONO, fontsize=SMALL_FONT,
                fontweight="bold" if marked else "normal")
        if words:
            first = sorted(found.locks[name])[0][0]
            ax.text(x, y + 0.11, words, ha="center", va="center", fontsize=SMALL_FONT,
                    color=lock_colour(first) if first != "llist" else "#444444")
    legend = [Line2D([], [], marker="s", markersize=9, linestyle="", markerfacecolor=_HIGHLIGHT,
                     markeredgecolor="black", label="changed by this patch")] if highlight & set(centre) else []
    legend += [Line2D([], [], color=lock_colour(n), linewidth=3, label=n)
               for n in sorted({n for f in centre for n, _ in found.locks.get(f, ()) if n != "llist"})]
    ax.legend(handles=legend, loc="lower center", ncols=max(len(legend), 1), frameon=False, fontsize=SMALL_FONT,
              bbox_to_anchor=(0.5, 0.0))
    return fig
