"""The RT / !RT / UP matrix, measured on the model: what the series does on a PREEMPT_RT kernel, an SMP
!RT kernel and a uniprocessor one, every situation run on a fresh machine of each kind, each cell the
outcome the run shows."""
from __future__ import annotations

import contextlib

from .bpf_scenarios import map_alloc_pages
from .events import lock_trail
from .memcg_scenarios import counting_calls

#: The columns of the RT / !RT / UP matrix and the machine each one boots.
MATRIX_MACHINES = {"!RT SMP": {"preempt_rt": False, "nr_cpus": 2},
                   "RT": {"preempt_rt": True, "nr_cpus": 2},
                   "!RT UP": {"smp": False, "nr_cpus": 1}}
#: Rows of the matrix that belong to patches the model does not carry yet.
MATRIX_LATER = {"`local_trylock_irqsave` in NMI": "later (patch 3)"}
#: The matrix's row for patch 6's change.
BPF_ROW = "BPF `bpf_map_alloc_pages` from process context"
#: The allocators a BPF map's page can come from (the names ``kernel/bpf/syscall.c`` calls).
BPF_ALLOCATORS = ("alloc_pages_node", "try_alloc_pages")


def _matrix_machine(pkg, column: str):
    k = pkg.Kernel(pages_per_node=256, max_order=5, pageblock_order=5, memcg=False, **MATRIX_MACHINES[column])
    pkg.mm.page_alloc.setup_per_zone_wmarks(k, 0)
    return k


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


def _bpf_from_process_context(pkg, k):
    """The allocator a plain task's ``bpf_map_alloc_pages`` of one page calls, counted on the level's
    ``bpf/syscall``: before patch 6 the caller's mask (here ``GFP_KERNEL``) goes to
    ``alloc_pages_node``; from patch 6 the context chooses (R6.1)."""
    S = pkg.bpf.syscall
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 1)
    with contextlib.ExitStack() as stack:
        calls = {name: stack.enter_context(counting_calls(S, name)) for name in BPF_ALLOCATORS if hasattr(S, name)}
        k.call(map_alloc_pages, S, m, pkg.include.gfp.GFP_KERNEL, pkg.mm.page_alloc.NUMA_NO_NODE, 1, [None])
    return ", ".join(f"`{name}`" for name, made in calls.items() if made)


#: The situations of the matrix the model runs, in the table's order: each a function of the level's
#: package and a booted machine returning the cell's text.
MATRIX_SITUATIONS = {
    "`try_alloc_pages` in NMI": _try_alloc_in("nmi"),
    "`try_alloc_pages` in hard-IRQ": _try_alloc_in("hardirq"),
    "`try_alloc_pages` in an NMI on the holder of `zone->lock`": _try_alloc_on_zone_lock_holder,
    "pcp lock holder (fast path)": _pcp_holder,
    "`zone->lock` holder": _zone_lock_holder,
    "`free_pages_nolock` in NMI, pcp order, on the holder of both locks": _free_nolock_on_holder(0),
    "`free_pages_nolock` in NMI, order 4 (not pcp-allowed), on the `zone->lock` holder": _free_nolock_on_holder(4),
    BPF_ROW: _bpf_from_process_context,
}


def matrix_row(pkg, name: str) -> list[str]:
    """One row of the matrix, ``[name, cell per column]``: situation ``name`` of
    :data:`MATRIX_SITUATIONS` run on ``pkg`` on a fresh machine of each column."""
    situation = MATRIX_SITUATIONS[name]
    return [name] + [situation(pkg, _matrix_machine(pkg, column)) for column in MATRIX_MACHINES]


def rt_matrix(pkg) -> list[list[str]]:
    """The RT / !RT / UP matrix, measured: run every situation of
    :data:`MATRIX_SITUATIONS` on a fresh machine of each column of :data:`MATRIX_MACHINES`, on
    ``pkg`` (the package, or a level from :func:`tryalloc.series.load`), and return the rows
    ``[situation, cell per column]``; then the rows of :data:`MATRIX_LATER`.  A kernel report that
    stops a run is the cell's outcome (its class name, then the locks the interrupt tried)."""
    rows = [matrix_row(pkg, name) for name in MATRIX_SITUATIONS]
    rows += [[name, *[later] * len(MATRIX_MACHINES)] for name, later in MATRIX_LATER.items()]
    return rows


