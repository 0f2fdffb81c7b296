"""Scenarios of the chapters on patches 3, 4 and 5, built on any level of the series.

Each function takes ``L``, the package as of a level (:func:`tryalloc.series.load`), so a chapter runs
the same scenario before and after a patch and compares.  They return plain data (strings, dicts,
lists) that the chapters print, glue and draw (:mod:`tryalloc.book.memcg_figures`):

* :func:`local_lock_nmi_build`: an NMI on a CPU whose task takes a per-CPU lock (patch 3), and
  :func:`nmi_on_local_lock`, one run of it with the NMI at a chosen point;
* :func:`nmi_charge_inside_stock`: an NMI charging memcg while its task is inside ``stock_lock``
  (patch 4), with the stock before and after the NMI's charge;
* :func:`near_limit_run`: ``try_alloc_pages`` in a memcg close to its limit, step by step (patch 5);
* :func:`charge_cost`: the page-counter work of ordinary charges, the measure of the flipped
  polarity of ``gfpflags_allow_spinning()`` (after v6);
* :func:`memcg_matrix_rows`: the rows of the RT / !RT / UP matrix that these patches add;
* :func:`accounted_steps`: accounted allocations and frees on the CPUs of a memcg, for the baseline's
  memcg chapter and its exercises.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

from ..errors import InvalidArgumentError

#: The machines of the RT / !RT / UP matrix (the same columns as :data:`tryalloc.book.matrix.MATRIX_MACHINES`).
COLUMNS = {"!RT SMP": {}, "RT": {"preempt_rt": True}, "!RT UP": {"smp": False, "nr_cpus": 1}}
LOCK = "memcg_stock.stock_lock"


def nospin_mask(L) -> int:
    """The mask ``try_alloc_pages`` charges with from patch 5: no reclaim bit, so it may not spin."""
    G = L.include.gfp
    return G.__GFP_NOWARN | G.__GFP_ZERO | G.__GFP_NOMEMALLOC | G.__GFP_ACCOUNT


def local_lock_module(L):
    """``L``'s ``kernel/locking/local_lock.py`` (the package's ``locking.local_lock`` is the function)."""
    return importlib.import_module(f"{L.__name__}.kernel.locking.local_lock")


def has_trylock(L) -> bool:
    """Does level ``L`` have ``local_trylock_t`` (patch 3)?"""
    return hasattr(local_lock_module(L), "local_trylock_t")


def local_lock_nmi_build(L, preempt_rt: bool = False) -> Callable:
    """A builder (for ``L.explore``): one CPU whose task enters and leaves a per-CPU lock with
    ``local_lock_irqsave``; one NMI that wants the same lock.  The lock and the NMI's call are the
    newest the level has: a ``local_trylock_t`` and ``local_trylock_irqsave`` from level 3, a
    ``local_lock_t`` and ``local_lock_irqsave`` before.  The kernel's ``nmi_got`` lists what the
    NMI's attempt gave: ``"entered"`` or ``"trylock failed"``."""
    LL = local_lock_module(L)
    trylock = has_trylock(L)

    def build():
        k = L.Kernel(nr_cpus=1, preempt_rt=preempt_rt, detectors={"lockdep": "off"}, pages_per_node=64,
                     max_order=5, pageblock_order=5)
        lock = (LL.local_trylock_t if trylock else LL.local_lock_t)(LOCK, 1)
        k.nmi_got = []

        def task():
            LL.local_unlock_irqrestore(lock, LL.local_lock_irqsave(lock))

        def nmi():
            flags = LL.local_trylock_irqsave(lock) if trylock else LL.local_lock_irqsave(lock)
            k.nmi_got.append("trylock failed" if flags is None else "entered")
            if flags is not None:
                LL.local_unlock_irqrestore(lock, flags)

        k.spawn(0, task)
        k.on_interrupt(0, "nmi", nmi)
        return k
    return build


def nmi_on_local_lock(L, op: str = "acquired", preempt_rt: bool = False) -> str:
    """Run :func:`local_lock_nmi_build`'s machine once, its NMI delivered the first time the task logs
    ``op`` on the lock (``"acquired"``: inside the section; ``"local_lock_irqsave"``: just before
    it).  Returns the title of the report that stopped the run, or ``"the run completes; the NMI's
    attempt: "`` and what the attempt gave (``entered``, ``trylock failed``)."""
    k = local_lock_nmi_build(L, preempt_rt)()
    try:
        k.run(L.Scripted(L.When(cpu=0, op=op, obj=LOCK, inject="nmi")))
    except L.KernelReport as report:
        return report.title
    return f"the run completes; the NMI's attempt: {k.nmi_got[0]}"


def local_lock_label(k, result) -> str:
    """The outcome of a run of :func:`local_lock_nmi_build` that no report stopped."""
    return "trylock fails" if k.nmi_got == ["trylock failed"] else "completes"


def accounted_steps(L, steps, nr_cpus: int = 2) -> dict:
    """Run ``steps`` one at a time on a fresh machine of ``nr_cpus`` CPUs whose tasks all run in the
    memcg ``app``: ``("alloc", cpu, order)`` allocates with ``GFP_KERNEL_ACCOUNT`` on that CPU,
    ``("free", cpu, i)`` frees the ``i``-th page allocated so far, on that CPU.  Returns ``usage`` (the
    memcg's counter, in pages), ``stock`` (the pages each CPU's stock holds) and ``cached`` (the memcg
    each stock caches, ``None`` for none)."""
    M, A, G = L.mm.memcontrol, L.mm.page_alloc, L.include.gfp
    k = L.Kernel(nr_cpus=nr_cpus, pages_per_node=1024)
    app = M.mem_cgroup_create(k, "app")
    for cpu in range(nr_cpus):
        M.task_set_memcg(k, cpu, app)
    pages: list = []
    for step in steps:
        if not (isinstance(step, tuple) and len(step) == 3 and step[0] in ("alloc", "free")):
            raise InvalidArgumentError(f"accounted_steps: a step is ('alloc', cpu, order) or ('free', cpu, i), "
                                       f"not {step!r}")
        what, cpu, arg = step
        if what == "alloc":
            pages.append((k.call(A.alloc_pages, G.GFP_KERNEL_ACCOUNT, arg, cpu=cpu), arg))
        else:
            page, order = pages[arg]
            k.call(A.__free_pages, page, order, cpu=cpu)
    M.memcg_invariants(k)
    view = M.memcg_stock_view(k)
    return {"usage": app.memory.usage, "stock": [row["nr_pages"] for row in view],
            "cached": [row["cached"] for row in view]}


def _stock(L, k) -> dict:
    row = L.mm.memcontrol.memcg_stock_view(k)[0]
    return {"cached": row["cached"], "nr_pages": row["nr_pages"], "locked_by": row["locked_by"]}


def nmi_charge_inside_stock(L, where: str = "consume_stock", **config) -> dict:
    """CPU0's task, in memcg ``a``, charges one page of it with ``GFP_KERNEL``: a stock miss
    (``consume_stock``, the first section) and then the refill of the surplus (``refill_stock``, the
    second).  An NMI arrives inside the section named by ``where`` and charges one page to memcg
    ``b`` with the non-spinning mask, as a BPF program would through ``try_alloc_pages``.

    Returns the outcome (``"completes"`` or the report's title), the NMI's charge result, the stock
    when the NMI arrived and after its charge, at the end, and both memcgs' usage.  ``config`` goes to
    the machine (``spin_polarity="as_posted"``).
    """
    M = L.mm.memcontrol
    if where not in ("consume_stock", "refill_stock"):
        raise InvalidArgumentError(f"where must be consume_stock or refill_stock, got {where!r}")
    k = L.Kernel(nr_cpus=1, pages_per_node=512, detectors={"lockdep": "off"}, **config)
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    M.task_set_memcg(k, 0, a)
    out = {"where": where}

    def nmi():
        out["stock_at_nmi"] = _stock(L, k)
        old = M.set_active_memcg(b)
        out["nmi_ret"] = M.try_charge_memcg(b, nospin_mask(L), 1)
        M.set_active_memcg(old)
        out["stock_after_nmi"] = _stock(L, k)

    k.spawn(0, lambda: M.try_charge_memcg(a, L.include.gfp.GFP_KERNEL, 1))
    k.on_interrupt(0, "nmi", nmi)
    nth = 1 if where == "consume_stock" else 2
    try:
        k.run(L.Scripted(L.When(cpu=0, op="acquired", obj=LOCK, inject="nmi", nth=nth)))
        out["outcome"] = "completes"
    except L.KernelReport as report:
        out["outcome"] = report.title
    out["stock_end"] = _stock(L, k)
    out["usage"] = {"a": a.memory.usage, "b": b.memory.usage}
    out["events"] = k.events
    return out


@contextlib.contextmanager
def counting_calls(module, name: str):
    """Count the calls of ``module.name`` made inside the block (the list it yields gets one entry
    per call); the function is restored afterwards.  The chapters use it to show which free path a
    failed charge takes, which the event log alone does not tell."""
    original = getattr(module, name)
    calls: list = []

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    setattr(module, name, counted)
    try:
        yield calls
    finally:
        setattr(module, name, original)


def near_limit_run(L, limit: int = 6, pattern: str = "AAAAAAAFFAAAFFFFAAAA") -> dict:
    """A task in memcg ``a`` (``memory.max`` = ``limit`` pages) runs ``pattern``: ``A`` allocates a
    page with ``try_alloc_pages``, ``F`` frees the oldest page it holds with ``free_pages_nolock``.

    Returns per step the operation, the result (``"page"``, ``"NULL"``, ``"freed"``), ``a``'s usage,
    the pages its stock holds, the pages charged (the ledger) and the pages out of the allocator; and
    the totals: how many allocations failed, how many of those freed their page through
    ``free_pages_nolock``, and the pages out of the allocator before and after the run.
    """
    A, M = L.mm.page_alloc, L.mm.memcontrol
    debug = importlib.import_module(f"{L.__name__}.mm.debug")  # the facade does not import the checker
    if set(pattern) - {"A", "F"}:
        raise InvalidArgumentError(f"pattern may hold only A and F, got {pattern!r}")
    k = L.Kernel(nr_cpus=1, pages_per_node=512)
    a = M.mem_cgroup_create(k, "a", max=limit)
    M.task_set_memcg(k, 0, a)

    def out_of_allocator():
        return sum(s == debug.PFN_ALLOCATED for s in debug.pfn_states(k))

    held, steps, failed_frees = [], [], 0
    before = out_of_allocator()
    for op in pattern:
        if op == "A":
            with counting_calls(A, "free_pages_nolock") as frees:
                page = k.call(A.try_alloc_pages, A.NUMA_NO_NODE, 0)
            if page is None:
                failed_frees += len(frees)
                result = "NULL"
            else:
                held.append(page)
                result = "page"
        elif held:
            k.call(A.free_pages_nolock, held.pop(0), 0)
            result = "freed"
        else:
            result = "nothing to free"
        steps.append({"op": op, "result": result, "usage": a.memory.usage,
                      "stock": M.memcg_stock_view(k)[0]["nr_pages"], "charged": len(k.memcg.charged),
                      "held": len(held), "out": out_of_allocator()})
    debug.check_invariants(k)
    M.memcg_invariants(k)
    return {"limit": limit, "steps": steps, "failures": sum(s["result"] == "NULL" for s in steps),
            "failed_frees": failed_frees, "out_before": before, "out_after": out_of_allocator(),
            "held": len(held), "max_usage": max(s["usage"] for s in steps), "kernel": k}


#: The memcgs of :func:`charge_cost`, parent first: a workload's cgroup below a slice, as systemd nests them.
CHARGE_COST_MEMCGS = ("system.slice", "workload.service")


def charge_cost(L, gfp: int, n: int = 256, **config) -> dict:
    """A task in ``workload.service`` (under ``system.slice``, under root) allocates ``n`` pages of
    order 0 with ``gfp | __GFP_ACCOUNT`` and frees none: ``n`` ordinary kmem charges of one page.

    Counted on the model, by wrapping ``page_counter_try_charge`` for the run: its calls, the pages
    each asked for, and the counters they charged (each call charges the memcg's counter and every
    ancestor's, up to root's); per charge and as a running total after each allocation (``calls``),
    with this CPU's stock at the end.  ``config`` goes to the machine (``spin_polarity=...``).
    """
    A, M, G = L.mm.page_alloc, L.mm.memcontrol, L.include.gfp
    k = L.Kernel(**{"nr_cpus": 1, "pages_per_node": max(512, 2 * n), **config})
    memcg = None
    for name in CHARGE_COST_MEMCGS:
        memcg = M.mem_cgroup_create(k, name, parent=memcg)
    M.task_set_memcg(k, 0, memcg)
    running = []
    with counting_calls(M, "page_counter_try_charge") as calls:
        for _ in range(n):
            if k.call(A.alloc_pages, gfp | G.__GFP_ACCOUNT, 0) is None:
                raise InvalidArgumentError(f"charge_cost: n={n} pages do not fit the machine")
            running.append(len(calls))
    M.memcg_invariants(k)
    written = sum(len(list(counter.ancestors())) for counter, _ in calls)
    return {"n": n, "calls": running, "pages_asked": [nr for _, nr in calls],
            "calls_per_charge": len(calls) / n, "counters_per_charge": written / n,
            "stock": M.memcg_stock_view(k)[0]["nr_pages"], "usage": memcg.memory.usage}


# -- the matrix rows of patches 3 to 5 --------------------------------------------------------------------
def _machine(L, column: str):
    return L.Kernel(pages_per_node=256, max_order=5, pageblock_order=5, detectors={"lockdep": "off"},
                    **COLUMNS[column])


def _trylock_in_nmi(held: bool):
    def cell(L, k):
        LL = local_lock_module(L)
        lock = LL.local_trylock_t(LOCK, k.config.nr_cpus)
        got = []

        def nmi():
            flags = LL.local_trylock_irqsave(lock)
            got.append("fails" if flags is None else "succeeds")
            if flags is not None:
                LL.local_unlock_irqrestore(lock, flags)

        if held:
            k.spawn(0, lambda: LL.local_unlock_irqrestore(lock, LL.local_lock_irqsave(lock)))
            k.on_interrupt(0, "nmi", nmi)
            trigger = f"{LOCK}[cpu0]" if k.config.preempt_rt else LOCK
            k.run(L.Scripted(L.When(cpu=0, op="acquired", obj=trigger, inject="nmi")))
        else:
            k.call(nmi, context="nmi")
        return got[0]
    return cell


def _charge_in_nmi_on_stock_holder(L, k):
    M = L.mm.memcontrol
    a, b = M.mem_cgroup_create(k, "a"), M.mem_cgroup_create(k, "b")
    got = []

    def nmi():
        got.append(M.try_charge_memcg(b, nospin_mask(L), 1))

    k.spawn(0, lambda: M.try_charge_memcg(a, L.include.gfp.GFP_KERNEL, 1))
    k.on_interrupt(0, "nmi", nmi)
    trigger = f"{LOCK}[cpu0]" if k.config.preempt_rt else LOCK
    try:
        k.run(L.Scripted(L.When(cpu=0, op="acquired", obj=trigger, inject="nmi")))
    except L.KernelReport as report:
        return type(report).__name__
    direct = b.memory.usage == 1 and M.memcg_stock_view(k)[0]["cached"] == "a"
    return f"{'charged' if got[0] == 0 else 'ENOMEM'}; {'page counter directly' if direct else 'via the stock'}"


def _try_alloc_in_nmi_with_memcg(L, k):
    M, A = L.mm.memcontrol, L.mm.page_alloc
    b = M.mem_cgroup_create(k, "b")

    def nmi():
        old = M.set_active_memcg(b)
        page = A.try_alloc_pages(0, 0)
        M.set_active_memcg(old)
        return page

    page = k.call(nmi, context="nmi")
    if page is None:
        return "NULL"
    return "a page, charged to b" if page.memcg_data else "a page, not charged"


#: Situations the patches add to the matrix: (name, the patch that brings it, cell function).
MATRIX_ROWS = (
    ("`local_trylock_irqsave` in NMI, lock free", 3, _trylock_in_nmi(False)),
    ("`local_trylock_irqsave` in NMI on the holder", 3, _trylock_in_nmi(True)),
    ("non-spinning memcg charge in NMI on the `stock_lock` holder", 4, _charge_in_nmi_on_stock_holder),
    ("`try_alloc_pages` in NMI with `int_active_memcg` set", 5, _try_alloc_in_nmi_with_memcg),
)


def memcg_matrix_rows(L, level: int) -> list[list[str]]:
    """The rows of :data:`MATRIX_ROWS` up to patch ``level``, run on ``L`` on a fresh machine per
    column of :data:`COLUMNS`: ``[situation, patch, cell per column]``."""
    return [[name, str(patch)] + [cell(L, _machine(L, column)) for column in COLUMNS]
            for name, patch, cell in MATRIX_ROWS if patch <= level]
