"""Scenarios of the chapter on patch 6 (BPF through ``try_alloc_pages``), built on any level.

Each function takes ``L``, the package as of a level (:func:`tryalloc.series.load`), and returns plain
data that the chapter prints, glues and draws (:mod:`tryalloc.book.bpf_figures`):

* :func:`map_alloc_pages`: ``bpf_map_alloc_pages`` called the way the level spells it;
* :func:`can_alloc_table`: ``can_alloc_pages()`` and the allocator chosen, in every context, !RT and RT;
* :func:`chain_run`: allocator → tracepoint or perf NMI → BPF program → ``bpf_map_alloc_pages`` →
  allocator, and what the level makes of it;
* :func:`fault_contention`: user-space faults on an arena while other CPUs contend for ``zone->lock``,
  counting the faults that get SIGSEGV although memory is free; :func:`one_fault_build`, the
  smallest such case, for an exhaustive search;
* :func:`sampler_workload`: a program recording samples into arena pages that user space faults in
  and gives back, under a memcg limit, with the counts over time.
"""
from __future__ import annotations

import importlib
import inspect
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from ..errors import InvalidArgumentError
from .memcg_scenarios import counting_calls

#: The contexts of the ``can_alloc_pages()`` table: label -> (the context ``Kernel.call`` enters, what
#: the code does first inside it).
CONTEXTS = {
    "task": ("task", None),
    "task, preemption off": ("task", "preempt"),
    "task, bottom halves off": ("task", "bh"),
    "task, irqs off": ("task", "irq"),
    "softirq": ("softirq", None),
    "hardirq": ("hardirq", None),
    "NMI": ("nmi", None),
}
#: The machines of the table, as in the RT / !RT / UP matrix.
COLUMNS = {"!RT": {}, "RT": {"preempt_rt": True}, "!RT UP": {"smp": False}}


class Hook(NamedTuple):
    """Where the chain's program runs: a tracepoint's name or ``"perf"`` (a perf event's NMI), the
    context whose allocations drive it (``"task"`` or ``"softirq"``), and whether the program runs
    with that context holding ``zone->lock``."""

    attach: str
    context: str
    under_zone_lock: bool


#: Where the chain's program is attached, by label.
HOOKS = {
    "mm_page_alloc (task)": Hook("mm_page_alloc", "task", False),
    "mm_page_alloc (softirq)": Hook("mm_page_alloc", "softirq", False),
    "mm_page_alloc_zone_locked (zone->lock held)": Hook("mm_page_alloc_zone_locked", "task", True),
    "mm_page_pcpu_drain (zone->lock held)": Hook("mm_page_pcpu_drain", "task", True),
    "perf NMI on a task, outside the allocator": Hook("perf", "task", False),
    "perf NMI while the task holds zone->lock": Hook("perf", "task", True),
    "perf NMI while a softirq holds zone->lock": Hook("perf", "softirq", True),
}

#: Pages the chain's workload allocates and then frees: enough for pcp refills and a drain.
CHAIN_PAGES = 48


def _debug(L):
    return importlib.import_module(f"{L.__name__}.mm.debug")  # the facade does not import the checker


def has_patch6(L) -> bool:
    """Does level ``L`` have patch 6 (``bpf_map_alloc_pages`` without a ``gfp`` argument)?"""
    return "gfp" not in inspect.signature(L.bpf.syscall.bpf_map_alloc_pages).parameters


def map_alloc_pages(syscall, bpf_map, gfp: int, nid: int, nr_pages: int, pages: list) -> int:
    """``syscall.bpf_map_alloc_pages`` at any level: before patch 6 the caller passes ``gfp``; from
    patch 6 there is no such argument and the context chooses the allocator (``gfp`` is dropped)."""
    if "gfp" in inspect.signature(syscall.bpf_map_alloc_pages).parameters:
        return syscall.bpf_map_alloc_pages(bpf_map, gfp, nid, nr_pages, pages)
    return syscall.bpf_map_alloc_pages(bpf_map, nid, nr_pages, pages)


def allocated(L, k) -> int:
    """Pages handed out and not yet freed (wherever the free ones sit: buddy, pcp or llist)."""
    debug = _debug(L)
    return sum(s == debug.PFN_ALLOCATED for s in debug.pfn_states(k))


def check_books(L, k) -> None:
    """The allocator's conservation checks and memcg's ledger, raising on any leak."""
    _debug(L).check_invariants(k)
    L.mm.memcontrol.memcg_invariants(k)


def entered(L, how: str | None, fn: Callable) -> Callable:
    """``fn`` run after disabling preemption, bottom halves or interrupts (``how``), undone after."""
    P = L.kernel.preempt
    if how is None:
        return fn
    enter, leave = {"preempt": (P.preempt_disable, P.preempt_enable),
                    "bh": (P.local_bh_disable, P.local_bh_enable),
                    "irq": (P.local_irq_disable, P.local_irq_enable)}[how]

    def body():
        enter()
        try:
            return fn()
        finally:
            leave()
    return body


def _one_page(L, k, label: str) -> dict:
    """One ``bpf_map_alloc_pages`` of one page in the context ``label``: what was chosen and got."""
    S, A, M = L.bpf.syscall, L.mm.page_alloc, L.mm.memcontrol
    memcg = M.mem_cgroup_create(k, f"map-{len(k.memcg.objcgs)}")
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 1, memcg=memcg)
    context, how = CONTEXTS[label]
    pages = [None]
    can = []

    def body():
        can.append(S.can_alloc_pages())
        return S.bpf_map_alloc_pages(m, A.NUMA_NO_NODE, 1, pages)

    with counting_calls(S, "try_alloc_pages") as tries, counting_calls(S, "alloc_pages_node") as sleeps:
        ret = k.call(entered(L, how, body), context=context)
    page = pages[0]
    row = {"can_alloc_pages": can[0], "allocator": "try_alloc_pages" if tries else "alloc_pages_node",
           "ret": ret, "zeroed": page is not None and page.contents == L.mm.page.CONTENT_ZERO,
           "charged": memcg.kmem}
    assert len(tries) + len(sleeps) == 1
    if page is not None:
        k.call(A.free_pages_nolock, page, 0)
    return row


def can_alloc_table(L) -> dict[str, dict[str, dict]]:
    """For every context of :data:`CONTEXTS`, on each machine of :data:`COLUMNS`: ``can_alloc_pages()``, the
    allocator ``__bpf_alloc_page`` called, the return value, whether the page came zeroed and how many
    pages the map's memcg was charged.  Patch 6 and later only."""
    if not has_patch6(L):
        raise InvalidArgumentError(f"can_alloc_table: {L.__name__} has no can_alloc_pages (patch 6)")
    return {label: {column: one_map_page(L, label, **config) for column, config in COLUMNS.items()}
            for label in CONTEXTS}


def one_map_page(L, label: str, **config) -> dict:
    """One cell of :func:`can_alloc_table`: a map's ``bpf_map_alloc_pages`` of one page in the context
    ``label`` (a key of :data:`CONTEXTS`) on a fresh one-CPU machine booted with ``config`` (such as
    ``preempt_rt=True``), the books checked afterwards."""
    if not has_patch6(L):
        raise InvalidArgumentError(f"one_map_page: {L.__name__} has no can_alloc_pages (patch 6)")
    if label not in CONTEXTS:
        raise InvalidArgumentError(f"one_map_page: label must be one of {', '.join(CONTEXTS)}, got {label!r}")
    k = L.Kernel(nr_cpus=1, pages_per_node=512, **config)
    row = _one_page(L, k, label)
    check_books(L, k)
    return row


def _outcome(err: Exception) -> str:
    return str(err).splitlines()[0]


def chain_run(L, hook: str, preempt_rt: bool = False) -> dict:
    """A BPF program at ``hook`` (a label of :data:`HOOKS`) that asks its map for one page whenever it
    runs, while a task (``GFP_KERNEL``) or a softirq (``GFP_ATOMIC``) allocates and frees enough to
    refill and drain its pcp list; a perf event's NMI arrives once, where the hook says.

    Before patch 6 the program's call passes ``GFP_ATOMIC`` (the best a v6.13 caller that may not
    sleep could do); from patch 6 ``bpf_map_alloc_pages`` chooses.  Returns the outcome (``"completes"``
    or the first line of the report that stopped the run), the program's runs and misses, the pages
    it got and the NULLs, whether the books balanced afterwards, and ``seen``: the
    ``(preempt_count(), irqs_disabled())`` the program found the first time it ran.
    """
    if hook not in HOOKS:
        raise InvalidArgumentError(f"chain_run: hook must be one of {', '.join(HOOKS)}, got {hook!r}")
    S, A, P, G = L.bpf.syscall, L.mm.page_alloc, L.bpf.prog, L.include.gfp
    attach, context, under_lock = HOOKS[hook]
    k = L.Kernel(nr_cpus=1, pages_per_node=512, preempt_rt=preempt_rt, detectors={"lockdep": "off"})
    m = S.bpf_map_init_from_attr(k, S.BPF_MAP_TYPE_ARRAY, 64, memcg=L.mm.memcontrol.mem_cgroup_create(k, "map"))
    got, nulls, seen = [], [], []

    def prog(ctx):
        seen.append((L.kernel.preempt.preempt_count(), L.kernel.preempt.irqs_disabled()))
        pages = [None]
        if map_alloc_pages(S, m, G.GFP_ATOMIC, A.NUMA_NO_NODE, 1, pages) == 0:
            got.append(pages[0])
        else:
            nulls.append(1)

    def workload():
        gfp = G.GFP_KERNEL if context == "task" else G.GFP_ATOMIC
        held = [A.alloc_pages(gfp, 0) for _ in range(CHAIN_PAGES)]
        for page in held:
            A.__free_pages(page, 0)

    triggers = []
    if context == "task":
        k.spawn(0, workload)
    else:
        k.spawn(0, lambda: L.kernel.sched.point("idle"))
        k.on_interrupt(0, context, workload)
        triggers.append(L.When(cpu=0, op="start", inject=context))
    if attach == "perf":
        p = P.bpf_prog_attach_perf_event(k, 0, prog)
        where = {"op": "acquired", "obj": "zone->lock", "context": context} if under_lock else {"op": "start"}
        triggers.append(L.When(cpu=0, inject="nmi", **where))
    else:
        p = P.bpf_prog_attach_tracepoint(k, attach, prog)
    strategy = L.Scripted(*triggers)
    try:
        k.run(strategy)
        outcome = "completes"
    except L.TryallocError as err:
        return {"outcome": _outcome(err), "runs": p.run_cnt, "misses": p.misses, "got": len(got),
                "nulls": len(nulls), "balanced": None, "seen": seen[0] if seen else None}
    for page in got:
        k.call(A.__free_pages, page, 0)
    check_books(L, k)
    return {"outcome": outcome, "runs": p.run_cnt, "misses": p.misses, "got": len(got), "nulls": len(nulls),
            "balanced": allocated(L, k) == 0, "seen": seen[0] if seen else None}


def _contender(L, rounds: int) -> Callable:
    """A task that takes ``zone->lock`` over and over: order-4 allocations (above what the pcp lists
    cache) and their frees both go to the buddy lists under the lock."""
    A, G = L.mm.page_alloc, L.include.gfp

    def body():
        for _ in range(rounds):
            page = A.alloc_pages(G.GFP_KERNEL, 4)
            if page is not None:
                A.__free_pages(page, 4)
    return body


def one_fault_build(L, preempt_rt: bool) -> Callable:
    """A builder (for ``L.explore``): CPU0's user space touches the one page of a fresh arena while
    CPU1 allocates and frees an order-4 block under ``zone->lock``.  The kernel's ``fault`` lists
    what ``arena_vm_fault`` returned (0 or ``VM_FAULT_SIGSEGV``)."""
    AR, A, G = L.bpf.arena, L.mm.page_alloc, L.include.gfp

    def build():
        k = L.Kernel(nr_cpus=2, pages_per_node=512, preempt_rt=preempt_rt, detectors={"lockdep": "off"})
        arena = AR.arena_map_alloc(k, 1, memcg=L.mm.memcontrol.mem_cgroup_create(k, "a"))
        k.fault = []
        k.spawn(0, lambda: k.fault.append(AR.arena_vm_fault(arena, arena.user_vm_start)))
        k.spawn(1, lambda: A.__free_pages(A.alloc_pages(G.GFP_KERNEL, 4), 4))
        return k
    return build


def zone_trylocks_failed(events: list) -> int:
    """How many trylocks of ``zone->lock`` CPU0 failed among ``events``."""
    return sum(cpu == 0 and op == "trylock-failed" and obj == "zone->lock" for _, cpu, _, op, obj in events)


def fault_contention(L, preempt_rt: bool, nr_cpus: int = 3, faults: int = 64, seeds=range(20)) -> dict:
    """User space on CPU0 touches ``faults`` fresh pages of an arena (one ``arena_vm_fault`` each)
    while every other CPU runs a :func:`_contender`; one random schedule per seed.

    Memory is plentiful (the arena's memcg has no limit, the zone has thousands of free pages), so
    every SIGSEGV is spurious.  Returns the SIGSEGVs per seed and in all, how many of them followed a
    failed trylock of ``zone->lock`` by CPU0 during that fault (the explanation) and how many such
    trylocks each took (``trylocks_per_segv``: count -> SIGSEGVs), how many of them left
    their page offset free in the range tree, the faults made, and the pages left out of the
    allocator after the arenas were freed (0: nothing leaked).
    """
    if not 2 <= nr_cpus <= 4:
        raise InvalidArgumentError(f"fault_contention: nr_cpus must be 2..4, got {nr_cpus!r}")
    AR, M = L.bpf.arena, L.mm.memcontrol
    per_seed, explained, leaked, offsets_free = [], 0, 0, 0
    trylocks: Counter = Counter()  # failed zone trylocks per SIGSEGV -> how many SIGSEGVs
    for seed in seeds:
        k = L.Kernel(nr_cpus=nr_cpus, pages_per_node=2048, preempt_rt=preempt_rt, detectors={"lockdep": "off"})
        arena = AR.arena_map_alloc(k, faults, memcg=M.mem_cgroup_create(k, "a"))
        segv = []

        def user(arena=arena, segv=segv):
            events = L.kernel.sched.running().events
            for i in range(faults):
                start = len(events)
                if AR.arena_vm_fault(arena, arena.user_vm_start + i * AR.PAGE_SIZE) == AR.VM_FAULT_SIGSEGV:
                    segv.append((i, zone_trylocks_failed(events[start:])))
        k.spawn(0, user)
        for cpu in range(1, nr_cpus):
            k.spawn(cpu, _contender(L, 30))
        k.run(L.Random(seed))
        explained += sum(failed > 0 for _, failed in segv)
        trylocks.update(failed for _, failed in segv)
        per_seed.append(len(segv))
        # a failed fault gives its offset back: free in the range tree, nothing mapped there
        offsets_free += sum(AR.is_range_tree_set(arena.rt, i, 1) == 0 and i not in arena.kern_vm for i, _ in segv)
        k.call(AR.arena_free_pages, arena, arena.user_vm_start, faults)
        check_books(L, k)
        leaked += allocated(L, k)
    return {"per_seed": per_seed, "sigsegv": sum(per_seed), "faults": faults * len(per_seed),
            "explained": explained, "leaked": leaked, "runs": len(per_seed), "offsets_free": offsets_free,
            "trylocks_per_segv": dict(trylocks)}


def _deferred(events: list) -> int:
    """Frees pushed onto ``zone->trylock_free_pages`` so far."""
    return sum(e[3] == "deferred-free" for e in events)


def sampler_workload(L, preempt_rt: bool, nr_cpus: int = 3, rounds: int = 40, limit: int = 32, window: int = 8,
                     seed: int = 0, check_every: int = 0) -> dict:
    """A sampling workload on ``nr_cpus`` CPUs (2..4), one random schedule (``seed``).

    One arena (``rounds * nr_cpus`` pages) created in memcg ``app`` whose ``memory.max`` is ``limit``
    pages.  On each CPU but the last, a sleepable program takes one arena page per round with
    ``bpf_arena_alloc_pages`` to record its next batch of samples; on the last CPU, user space faults
    in every page written so far (``arena_vm_fault`` maps the program's page, no allocation) and a
    scratch page of its own (a fault that allocates), then gives back all but the newest ``window``
    pages of samples with ``bpf_arena_free_pages`` (a syscall program; pages are freed with
    ``__free_page``).

    Returns a time series, one point after every operation of any CPU: the pages allocated, the
    failed requests split into those refused by memory.max and the others (lock contention), the
    frees deferred onto ``zone->trylock_free_pages``, the memcg's usage and how much of it is charges
    parked in the CPUs' stocks; plus the totals, and the
    pages left over after the arena is freed.  With ``check_every`` = n > 0 the memcg ledger is
    checked after every n-th request, inside the run (the page allocator's conservation check needs a
    quiet machine: it runs at the end).
    """
    if not 2 <= nr_cpus <= 4:
        raise InvalidArgumentError(f"sampler_workload: nr_cpus must be 2..4, got {nr_cpus!r}")
    AR, M, A = L.bpf.arena, L.mm.memcontrol, L.mm.page_alloc
    k = L.Kernel(nr_cpus=nr_cpus, pages_per_node=2048, preempt_rt=preempt_rt, detectors={"lockdep": "off"})
    app = M.mem_cgroup_create(k, "app", max=limit)
    producers = nr_cpus - 1
    size = rounds * (producers + 1)
    arena = AR.arena_map_alloc(k, size, memcg=app)
    written: list[int] = []  # user addresses of sample pages, oldest first
    series_: list[dict] = []
    totals = {"allocated": 0, "refused": 0, "contention": 0, "other": 0}

    def attempt(fn) -> object:
        """``fn()``, counted as one page request: allocated; refused, if the memcg charge failed
        (memory.max); contention, if this CPU failed a ``zone->lock`` trylock and got no page to
        charge; other failures should not happen."""
        run = L.kernel.sched.running()
        start = len(run.events)
        got = fn()
        cpu = run.cpu.id
        mine = [(op, obj) for _, c, _, op, obj in run.events[start:] if c == cpu]
        if got:
            totals["allocated"] += 1
        elif any(op == "memcg_charge_failed" for op, _ in mine):
            totals["refused"] += 1
        elif ("trylock-failed", "zone->lock") in mine:
            totals["contention"] += 1
        else:
            totals["other"] += 1
        stocked = sum(r["nr_pages"] for r in M.memcg_stock_view(k) if r["cached"] == app.name)
        series_.append({"t": len(series_), **totals, "usage": app.memory.usage, "stocked": stocked,
                        "deferred": _deferred(run.events)})
        if check_every and len(series_) % check_every == 0:
            M.memcg_invariants(k)
        return got

    other_work = _contender(L, 1)

    def producer():
        for _ in range(rounds):
            addr = attempt(lambda: AR.bpf_arena_alloc_pages(arena, None, 1, A.NUMA_NO_NODE, 0))
            if addr is not None:
                written.append(addr)
            other_work()

    def user():
        for r in range(rounds):
            for addr in list(written):
                AR.arena_vm_fault(arena, addr)
            scratch = arena.user_vm_start + (size - 1 - r) * AR.PAGE_SIZE
            attempt(lambda addr=scratch: AR.arena_vm_fault(arena, addr) == 0)
            AR.bpf_arena_free_pages(arena, scratch, 1)
            while len(written) > window:
                AR.bpf_arena_free_pages(arena, written.pop(0), 1)

    for cpu in range(producers):
        k.spawn(cpu, producer)
    k.spawn(producers, user)
    res = k.run(L.Random(seed))
    deferred = _deferred(res.events)
    k.call(AR.arena_free_pages, arena, arena.user_vm_start, size)
    for cpu in range(nr_cpus):
        k.call(M.drain_local_stock, cpu=cpu)  # the stocks hold charges ahead of use
    check_books(L, k)
    return {"series": series_, "limit": limit, "nr_cpus": nr_cpus, "preempt_rt": preempt_rt,
            "requests": len(series_), **totals, "deferred": deferred,
            "max_usage": max(p["usage"] for p in series_),
            "leaked": allocated(L, k), "usage_after": app.memory.usage}
