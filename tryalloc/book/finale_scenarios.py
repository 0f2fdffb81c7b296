"""The finale's workload: a sampling profiler whose BPF program runs in NMI and records into arena pages
it allocates on demand, the use the series was written for (its v6 cover letter).

Each function takes ``L``, the package as of a level (:func:`tryalloc.series.load`); ``any_context``
boots the machine with the any-context arena of the follow-ups after the series (unconfirmed details,
:mod:`tryalloc.bpf.arena`), which only the last level has.

* :func:`nmi_arena_page`: one page from an NMI, as patch 6 left the arena and any-context.
* :func:`profiler_build`: a builder for the search (:func:`tryalloc.kernel.explore.explore`) and for
  one seeded run: on every CPU a perf event's NMI runs the program, which takes one arena page per
  sample with ``bpf_arena_alloc_pages`` and gives its oldest page back (``bpf_arena_free_pages``, from
  NMI) when it holds more than its window; meanwhile a task on every CPU allocates and frees pages,
  and on the last CPU user space also faults in the sample pages, gives pages back and runs the
  arena's free worker (the kworker's part).  The arena's memcg has a ``memory.max``.
* :func:`profiler_check`: what must hold after every execution: the allocator's books (I2) and the
  memcg ledger, the arena's own consistency, no NMI that spun or slept on a lock, every lost sample
  explained, and after tearing the arena down nothing left allocated or charged.
* :func:`profiler_outcome`: what an execution ended with, for the search's outcome counts.
* :func:`profiler_stress`: many seeded random schedules of a larger profiler, with totals.
* :func:`limit_sweep`: :func:`profiler_stress` under several ``memory.max``.
* :func:`plain_arena_lock`: the same arena with a plain raw spinlock, for the search to break.
* :func:`nmi_blocking_waits`, :func:`loss_cause`: reading the event log.
"""
from __future__ import annotations

import random
from collections import Counter
from contextlib import contextmanager

from ..errors import InvalidArgumentError
from .bpf_scenarios import allocated, check_books

#: The release whose arena is any-context (unconfirmed: the follow-ups reached bpf-next late in 2025).
ANY_CONTEXT_RELEASE = "2026"
#: Why a sample was lost, judged from what its NMI logged (the first that applies).
LOSS_CAUSES = ("memcg limit", "arena lock busy", "allocator lock busy")
#: The event ops that mean a context waited on a lock with no bound (a spinning or sleeping acquire).
BLOCKING = ("spin", "sleep")


def nmi_blocking_waits(events) -> list:
    """The events where a context inside an NMI waited on a lock without a bound."""
    return [e for e in events if e[3] in BLOCKING and "nmi" in e[2]]


def loss_cause(events, cpu: int) -> str:
    """Why the allocation whose events are ``events`` came back NULL on ``cpu``: a memcg charge
    refused by ``memory.max``, the arena's resilient spinlock giving up, a trylock of an allocator
    lock that failed; ``"unexplained"`` otherwise (which :func:`profiler_check` refuses)."""
    mine = [(op, obj) for _, c, _, op, obj in events if c == cpu]
    if any(op == "memcg_charge_failed" for op, _ in mine):
        return LOSS_CAUSES[0]
    if any(op in ("res_spin_deadlock", "res_spin_timeout") for op, _ in mine):
        return LOSS_CAUSES[1]
    if any(op == "trylock-failed" for op, _ in mine):
        return LOSS_CAUSES[2]
    return "unexplained"


def _boot(L, nr_cpus: int, any_context: bool):
    options = {"release": ANY_CONTEXT_RELEASE} if any_context else {}
    return L.Kernel(nr_cpus=nr_cpus, pages_per_node=512, detectors={"lockdep": "off"}, **options)


def profiler_build(L, *, nr_cpus: int = 2, any_context: bool = True, limit: int = 8, nmis: int = 1,
                   window: int = 1, task_pages: int = 1, rounds: int = 1):
    """A builder: a fresh profiler machine of ``nr_cpus`` CPUs (2..4) for one run.

    The arena (``nmis * nr_cpus + rounds + 1`` pages) belongs to memcg ``prof`` with ``memory.max`` =
    ``limit`` pages.  Each CPU's perf event fires up to ``nmis`` times; the program keeps at most
    ``window`` sample pages per CPU.  Each CPU's task allocates and frees ``task_pages`` pages per
    round for ``rounds`` rounds; the last CPU's task is also user space: each round it faults in the
    newest sample page, gives back one page of its own (fault, then ``bpf_arena_free_pages``) and runs
    the free worker if work is pending.  The kernel's ``prof`` holds the counts: ``samples``,
    ``lost`` (cause -> count), ``rings`` (CPU -> the user addresses it holds) and ``arena``.
    """
    if isinstance(nr_cpus, bool) or not isinstance(nr_cpus, int) or not 2 <= nr_cpus <= 4:
        raise InvalidArgumentError(f"profiler: nr_cpus must be 2..4, got {nr_cpus!r}")
    for name, value in (("limit", limit), ("nmis", nmis), ("window", window), ("task_pages", task_pages),
                        ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"profiler: {name} must be an int >= 1, got {value!r}")
    AR, M, A, G, P = L.bpf.arena, L.mm.memcontrol, L.mm.page_alloc, L.include.gfp, L.bpf.prog
    size = nmis * nr_cpus + rounds + 1

    def build():
        k = _boot(L, nr_cpus, any_context)
        arena = AR.arena_map_alloc(k, size, memcg=M.mem_cgroup_create(k, "prof", max=limit))
        prof = k.prof = {"samples": 0, "lost": Counter(), "rings": {c: [] for c in range(nr_cpus)},
                         "arena": arena, "faults": Counter()}

        def sample(ctx):
            run = L.kernel.sched.running()
            start = len(run.events)
            addr = AR.bpf_arena_alloc_pages(arena, None, 1, A.NUMA_NO_NODE, 0)
            ring = prof["rings"][ctx["cpu"]]
            if addr is None:
                prof["lost"][loss_cause(run.events[start:], ctx["cpu"])] += 1
                return
            prof["samples"] += 1
            ring.append(addr)
            if len(ring) > window:
                AR.bpf_arena_free_pages(arena, ring.pop(0), 1)

        def churn():
            held = [A.alloc_pages(G.GFP_KERNEL, 0) for _ in range(task_pages)]
            for page in held:
                if page is not None:
                    A.__free_pages(page, 0)

        def user():
            scratch = arena.user_vm_start + (size - 1) * AR.PAGE_SIZE
            for _ in range(rounds):
                churn()
                newest = [ring[-1] for ring in prof["rings"].values() if ring]
                for addr in newest[-1:]:
                    prof["faults"][AR.arena_vm_fault(arena, addr)] += 1
                prof["faults"][AR.arena_vm_fault(arena, scratch)] += 1
                AR.bpf_arena_free_pages(arena, scratch, 1)
                if getattr(arena, "free_work_pending", False):
                    AR.arena_free_worker(arena)

        def task():
            for _ in range(rounds):
                churn()

        for cpu in range(nr_cpus):
            k.spawn(cpu, user if cpu == nr_cpus - 1 else task)
            P.bpf_prog_attach_perf_event(k, cpu, sample, budget=nmis)
        return k
    return build


def nmi_arena_page(L, any_context: bool) -> str:
    """One ``bpf_arena_alloc_pages`` of one page from an NMI on an idle one-CPU machine: ``"a page"``
    with the page mapped, or the first line of the report that stopped it."""
    AR, M = L.bpf.arena, L.mm.memcontrol
    k = _boot(L, 1, any_context)
    arena = AR.arena_map_alloc(k, 4, memcg=M.mem_cgroup_create(k, "prof"))
    try:
        addr = k.call(AR.bpf_arena_alloc_pages, arena, None, 1, L.mm.page_alloc.NUMA_NO_NODE, 0, context="nmi")
    except L.TryallocError as report:
        return str(report).splitlines()[0]
    return "a page" if addr == arena.user_vm_start and len(arena.kern_vm) == 1 else "NULL"


def _arena_consistent(L, arena) -> None:
    """No page mapped at two offsets, no mapped offset free in the range tree."""
    pages = list(arena.kern_vm.values())
    assert len(set(pages)) == len(pages), "a page is mapped at two arena offsets"
    for off in arena.kern_vm:
        assert L.bpf.arena.is_range_tree_set(arena.rt, off, 1) != 0, f"offset {off} is mapped and free"


def teardown(L, k) -> None:
    """Run the pending deferred frees, free the whole arena and drain the stocks (the map's end)."""
    AR, M = L.bpf.arena, L.mm.memcontrol
    arena = k.prof["arena"]
    if getattr(arena, "free_work_pending", False):
        k.call(AR.arena_free_worker, arena)
    k.call(AR.arena_free_pages, arena, arena.user_vm_start, arena.map.max_entries)
    for cpu in range(len(k.cpus)):
        k.call(M.drain_local_stock, cpu=cpu)


def profiler_check(L):
    """A ``check(kernel, result)`` for the search: see the module docstring.  Assertion errors are
    turned into :class:`~tryalloc.errors.InvariantError` reports by nothing here: they propagate."""
    def check(k, res):
        check_books(L, k)
        arena = k.prof["arena"]
        _arena_consistent(L, arena)
        assert not nmi_blocking_waits(res.events), "an NMI waited on a lock without a bound"
        assert "unexplained" not in k.prof["lost"], "a sample was lost for no reason the log shows"
        teardown(L, k)
        check_books(L, k)
        memcg = arena.map.objcg.memcg
        assert allocated(L, k) == 0 and memcg.memory.usage == 0, "pages or charges left after the arena"
    return check


def profiler_outcome(k, res) -> tuple:
    """``(samples, causes)`` of one execution: the samples recorded and the cause of each lost one, sorted."""
    return k.prof["samples"], tuple(sorted(k.prof["lost"].elements()))


def limit_sweep(L, limits=(4, 8, 16, 32), **stress) -> dict[int, dict]:
    """:func:`profiler_stress` once per ``memory.max`` of ``limits`` (the same seeds each time):
    ``{limit: totals}``."""
    return {limit: profiler_stress(L, limit=limit, **stress) for limit in limits}


@contextmanager
def plain_arena_lock(L):
    """The counterfactual: the any-context arena with ``arena->spinlock`` taken as a plain raw spinlock
    (``raw_spin_lock_irqsave``, which cannot fail) instead of a resilient one.  Inside the block, arenas
    created on ``L`` get a ``raw_spinlock_t`` and the arena's lock calls are the plain ones."""
    AR, S = L.bpf.arena, L.kernel.locking.spinlock
    saved = AR.rqspinlock_t, AR.raw_res_spin_lock_irqsave, AR.raw_res_spin_unlock_irqrestore
    AR.rqspinlock_t = S.raw_spinlock_t
    AR.raw_res_spin_lock_irqsave = lambda lock: (0, S.raw_spin_lock_irqsave(lock))
    AR.raw_res_spin_unlock_irqrestore = S.raw_spin_unlock_irqrestore
    try:
        yield
    finally:
        AR.rqspinlock_t, AR.raw_res_spin_lock_irqsave, AR.raw_res_spin_unlock_irqrestore = saved


def profiler_stress(L, *, seeds=range(20), nr_cpus: int = 4, limit: int = 12, nmis: int = 4, window: int = 2,
                    task_pages: int = 4, rounds: int = 6, seed: int = 0) -> dict:
    """Run a larger profiler once per seed of ``seeds`` under random schedules (``L.Random``), checking
    every run with :func:`profiler_check`.  Returns the totals: runs, samples, lost by cause,
    deferred frees and worker runs (from the event logs), the NMIs' unbounded waits (0), and the
    highest memcg usage a run reached (sampled after each run's last NMI: the end of the run)."""
    build = profiler_build(L, nr_cpus=nr_cpus, limit=limit, nmis=nmis, window=window, task_pages=task_pages,
                           rounds=rounds)
    check = profiler_check(L)
    totals = {"runs": 0, "samples": 0, "lost": Counter(), "deferred": 0, "worker": 0, "nmi_waits": 0,
              "retries": 0}
    draws = random.Random(seed)
    for _ in seeds:
        k = build()
        res = k.run(L.Random(draws.randrange(2**32)))
        ops = Counter(e[3] for e in res.events)
        totals["runs"] += 1
        totals["samples"] += k.prof["samples"]
        totals["lost"].update(k.prof["lost"])
        totals["deferred"] += ops["arena_free_deferred"]
        totals["worker"] += ops["arena_free_worker"]
        totals["retries"] += k.prof["faults"][L.bpf.arena.VM_FAULT_RETRY]
        totals["nmi_waits"] += len(nmi_blocking_waits(res.events))
        check(k, res)
    totals["lost"] = dict(totals["lost"])
    return totals
