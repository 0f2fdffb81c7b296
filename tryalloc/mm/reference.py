"""The reference scenarios of the searches: each on any level of the series, with I1-I5 at every step.

Each scenario takes ``L``, the package as of a level (:func:`tryalloc.series.load`; the package itself
for the level it is), and returns a :class:`Reference`: the machine's options and a setup for
``L.explore(setup, boot=options)``, what a run leaves (its outcome), and the first level it applies
at.  Before that level the same programs use what the level has, and the search finds the
counterexample the patch removed (the reference's ``counterexample`` names its report).

* :func:`mixed_interrupts` (a): CPUs allocating and freeing while a hardirq allocates and frees with
  ``GFP_ATOMIC`` and an NMI calls ``try_alloc_pages`` / ``free_pages_nolock`` (from level 1; level 1
  has no ``free_pages_nolock``, so the NMI keeps its page).  At level 0 the NMI's program is an
  ordinary allocation: it spins on a lock its own CPU holds.
* :func:`memcg_stock` (b): two CPUs charging and uncharging one memcg through their per-CPU stocks,
  an NMI charging through ``try_alloc_pages`` (from level 5; at level 4 the NMI charges by hand with
  the same non-spinning mask).  At level 3, before patch 4, the NMI's charge walks into the stock its
  task is inside.
* :func:`llist_deferral` (c): an NMI frees a page with ``free_pages_nolock`` while both CPUs free
  pages of the same order ordinarily, so a busy ``zone->lock`` defers the NMI's page onto the zone's
  llist and an ordinary free drains it (from level 2).  At level 1 the NMI frees ordinarily and
  spins on the ``zone->lock`` its task holds.

:func:`search` runs one under :class:`~tryalloc.mm.invariants.StepInvariants` at every point and
:func:`~tryalloc.mm.invariants.finish` after every run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ..errors import InvalidArgumentError

#: The reference scenarios by name, and the levels the book and the benchmark show them at.
NAMES = ("mixed interrupts", "memcg stock", "llist deferral")
#: Lockdep off: its irq-usage prediction would name the pre-series deadlocks before they happen, and
#: the searches are after the deadlock itself (and I1, which is stricter than lockdep for these locks).
QUIET = {"lockdep": "off"}


@dataclass(frozen=True)
class Reference:
    """One reference scenario at one level: ``explore(setup, boot=options, outcome=outcome)``.
    ``applies`` says whether the level has what the scenario is about; if not, ``counterexample``
    is the report class a search finds (by name, as levels have their own classes)."""

    name: str
    level: str
    setup: Callable
    options: dict
    outcome: Callable
    applies: bool
    counterexample: str | None


def _level(L) -> str:
    return L.series.LEVEL


def _at_least(L, level: str) -> bool:
    levels = L.series.LEVELS
    return levels.index(_level(L)) >= levels.index(level)


def nolock_alloc(L, order: int = 0):
    """The level's nolock allocation, charged to the context's memcg: ``try_alloc_pages``, on a
    machine of release 6.16 or later its successor ``alloc_pages_nolock`` (with ``__GFP_ACCOUNT``
    from 6.18, where the caller asks for the charge)."""
    A = L.mm.page_alloc
    fixed = getattr(A, "fixed", None)  # the release's fixes exist at the last level only
    if fixed is None or not fixed("nolock-rename"):
        return A.try_alloc_pages(A.NUMA_NO_NODE, order)
    if not fixed("nolock-gfp-argument"):
        return A.alloc_pages_nolock(A.NUMA_NO_NODE, order)
    return A.alloc_pages_nolock(L.include.gfp.__GFP_ACCOUNT, A.NUMA_NO_NODE, order)


# --- (a) CPUs, hardirqs and NMIs allocating and freeing ---------------------------------------------
def _task_alloc_free(A, gfp: int) -> int:
    page = A.alloc_pages(gfp, 0)
    pfn = page.pfn
    A.__free_pages(page, 0)
    return pfn


def _irq_alloc_free(k, A, gfp: int) -> None:
    page = A.alloc_pages(gfp, 0)
    k.irq_got.append(page is not None)
    if page is not None:
        A.__free_pages(page, 0)


def _nmi_alloc_free(k, L) -> None:
    """The NMI's program: the nolock pair where the level has it."""
    A = L.mm.page_alloc
    page = nolock_alloc(L)
    k.nmi_got.append(page is not None)
    if page is not None and hasattr(A, "free_pages_nolock"):
        A.free_pages_nolock(page, 0)


def _mixed_setup(L, nr_cpus: int, with_nmi: bool, k) -> None:
    A, G = L.mm.page_alloc, L.include.gfp
    A.setup_per_zone_wmarks(k, 0)
    k.irq_got, k.nmi_got = [], []
    if hasattr(A, "try_alloc_pages"):
        nmi = partial(_nmi_alloc_free, k, L)
    else:
        nmi = partial(_irq_alloc_free, k, A, G.GFP_ATOMIC)
    for cpu in range(nr_cpus):
        k.spawn(cpu, partial(_task_alloc_free, A, G.GFP_KERNEL))
    k.on_interrupt(0, "hardirq", partial(_irq_alloc_free, k, A, G.GFP_ATOMIC))
    if with_nmi:
        k.on_interrupt(nr_cpus - 1, "nmi", nmi)


def _page_outcome(k, result) -> tuple:
    """The tasks' pfns, each CPU's pcp count, the buddy lists' lengths, the deferred pages, and what
    the interrupts' allocations got (a JSON-friendly tuple)."""
    z = k.zones[0]
    deferred = len(getattr(z, "trylock_free_pages", ()))
    return (tuple(sorted(result.results.items())), tuple(p.count for p in z.per_cpu_pageset),
            tuple(len(lst) for area in z.free_area for lst in area.free_list), deferred,
            tuple(getattr(k, "irq_got", ())), tuple(getattr(k, "nmi_got", ())))


def mixed_interrupts(L, nr_cpus: int = 2, nmi: bool = True) -> Reference:
    """(a) ``nr_cpus`` (2-4) tasks allocate and free an order-0 page; a hardirq on CPU 0 allocates and
    frees with ``GFP_ATOMIC``; an NMI on the last CPU runs the nolock pair (see the module docstring).
    ``nmi=False`` leaves the NMI out: the scenario of every level, the baseline's included."""
    if isinstance(nr_cpus, bool) or nr_cpus not in (2, 3, 4):
        raise InvalidArgumentError(f"mixed_interrupts: 2 to 4 CPUs, not {nr_cpus!r}")
    applies = _at_least(L, "1") or not nmi
    return Reference(NAMES[0], _level(L), partial(_mixed_setup, L, nr_cpus, nmi),
                     dict(nr_cpus=nr_cpus, pages_per_node=64, max_order=3, pageblock_order=3, memcg=False,
                          detectors=QUIET),
                     _page_outcome, applies, None if applies else "DeadlockError")


# --- (b) memcg charges under stock contention --------------------------------------------------------
def _memcg_task(A, G) -> int:
    page = A.alloc_pages(G.GFP_KERNEL_ACCOUNT, 0)
    pfn = page.pfn
    A.__free_pages(page, 0)
    return pfn


def _nmi_charge(k, L) -> None:
    """The NMI's charge, to ``app`` as a BPF program's map would have it (``set_active_memcg``):
    ``try_alloc_pages`` charges itself from patch 5; before, the program charges the page it got with
    the same non-spinning mask.  The page goes back with ``free_pages_nolock``, which uncharges it."""
    A, M, G = L.mm.page_alloc, L.mm.memcontrol, L.include.gfp
    old = M.set_active_memcg(k.memcg.memcgs["app"])
    page = nolock_alloc(L)
    if page is not None and not _at_least(L, "5"):
        mask = G.__GFP_NOWARN | G.__GFP_ZERO | G.__GFP_NOMEMALLOC | G.__GFP_ACCOUNT
        if M.__memcg_kmem_charge_page(page, mask, 0):
            A.free_pages_nolock(page, 0)
            page = None
    k.nmi_got.append(page is not None)
    if page is not None:
        A.free_pages_nolock(page, 0)
    M.set_active_memcg(old)


def _memcg_setup(L, k) -> None:
    A, M, G = L.mm.page_alloc, L.mm.memcontrol, L.include.gfp
    A.setup_per_zone_wmarks(k, 0)
    app = M.mem_cgroup_create(k, "app")
    k.nmi_got = []
    for cpu in range(2):
        M.task_set_memcg(k, cpu, app)
        k.spawn(cpu, partial(_memcg_task, A, G))
    k.on_interrupt(0, "nmi", partial(_nmi_charge, k, L))


def _memcg_outcome(L, k, result) -> tuple:
    """The page outcome, and the memcg's usage and each CPU's stock."""
    M = L.mm.memcontrol
    app = k.memcg.memcgs["app"]
    return _page_outcome(k, result) + (app.memory.usage, tuple(r["nr_pages"] for r in M.memcg_stock_view(k)))


def memcg_stock(L) -> Reference:
    """(b) Two CPUs of memcg ``app`` allocate and free an accounted page; an NMI on CPU 0 charges
    through ``try_alloc_pages`` (see the module docstring).  Needs ``free_pages_nolock`` (level 2)
    and, for the NMI's charge, patch 3's per-CPU lock type."""
    if not _at_least(L, "3"):
        raise InvalidArgumentError(f"memcg_stock: the NMI's program needs levels 3 and up, not {_level(L)}")
    applies = _at_least(L, "4")
    return Reference(NAMES[1], _level(L), partial(_memcg_setup, L),
                     dict(nr_cpus=2, pages_per_node=64, max_order=3, pageblock_order=3, detectors=QUIET),
                     partial(_memcg_outcome, L), applies, None if applies else "PerCpuCorruptionError")


# --- (c) llist deferral and draining -----------------------------------------------------------------
DEFER_ORDER = 4  # above PAGE_ALLOC_COSTLY_ORDER: no pcp, every free goes to zone->lock


def _free_high(A, page) -> int:
    A.__free_pages(page, DEFER_ORDER)
    return page.pfn


def _nmi_free(A, page) -> None:
    (A.free_pages_nolock if hasattr(A, "free_pages_nolock") else A.__free_pages)(page, DEFER_ORDER)


def _llist_setup(L, k) -> None:
    A, G = L.mm.page_alloc, L.include.gfp
    A.setup_per_zone_wmarks(k, 0)
    pages = [k.call(A.alloc_pages, G.GFP_KERNEL, DEFER_ORDER) for _ in range(3)]
    for cpu in range(2):
        k.spawn(cpu, partial(_free_high, A, pages[cpu]))
    k.on_interrupt(0, "nmi", partial(_nmi_free, A, pages[2]))


def llist_deferral(L) -> Reference:
    """(c) Both CPUs free an order-4 page ordinarily; an NMI on CPU 0 frees a third with
    ``free_pages_nolock`` (see the module docstring)."""
    applies = _at_least(L, "2")
    return Reference(NAMES[2], _level(L), partial(_llist_setup, L),
                     dict(nr_cpus=2, pages_per_node=64, max_order=5, pageblock_order=5, memcg=False, detectors=QUIET),
                     _page_outcome, applies, None if applies else "DeadlockError")


SCENARIOS = dict(zip(NAMES, (mixed_interrupts, memcg_stock, llist_deferral), strict=True))


def search(L, ref: Reference, *, reduce: bool = True, preemption_bound: int | None = 1, invariants: bool = True,
           machine: dict | None = None, **options):
    """Every schedule of ``ref`` within the bound, I1-I5 checked at every point and after every run
    (``invariants=False``: only the detectors, which see a bug once it happens rather than the step
    that starts it).  ``machine`` adds Kernel options (``spin_polarity="as_posted"``); ``options`` go
    to ``L.explore``."""
    inv = L.mm.invariants
    return L.explore(ref.setup, boot={**ref.options, **(machine or {})}, outcome=ref.outcome, reduce=reduce,
                     preemption_bound=preemption_bound, check_step=inv.StepInvariants() if invariants else None,
                     check=inv.finish, **options)


def summarize(L, name: str, preemption_bound: int | None = 1) -> dict:
    """Search scenario ``name`` at ``L`` without and with reduction (I1-I5 at every point) and say what
    was found: ``level``, ``applies``, ``outcomes`` (distinct), ``executions`` (without reduction),
    ``reduced`` (with it, the executions the reduction cut short included), ``seconds`` (both
    searches); where the scenario does not apply yet, the shortest counterexample's ``kind`` (its
    report class), ``title`` and ``replay``.  Where it applies, both searches are asserted complete,
    clean and equal in outcomes (:class:`~tryalloc.errors.InvariantError` otherwise)."""
    if name not in SCENARIOS:
        raise InvalidArgumentError(f"summarize: no reference scenario {name!r}; known: {', '.join(NAMES)}")
    ref = SCENARIOS[name](L)
    full, red = (search(L, ref, reduce=reduce, preemption_bound=preemption_bound, stop_on_failure=not ref.applies)
                 for reduce in (False, True))
    row = dict(name=name, level=ref.level, applies=ref.applies, outcomes=len(full.outcomes),
               executions=full.executions, reduced=red.executions + red.pruned, seconds=full.seconds + red.seconds)
    if not ref.applies:
        report = full.shortest
        return {**row, "kind": type(report).__name__, "title": report.title, "replay": report.replay}
    if not (full.complete and red.complete and full.ok and red.ok and set(full.outcomes) == set(red.outcomes)):
        raise L.errors.InvariantError(f"{name} at level {ref.level}: {full.summary()} / {red.summary()}",
                                      title="reference scenario: the searches disagree or found a report")
    return row
