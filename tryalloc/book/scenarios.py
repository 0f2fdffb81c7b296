"""Scenarios the book's chapters and their exercises share, so that a cell says *what* it runs in one
short call and the harness lives here, documented and tested.

:func:`nmi_program_on_lock` is the series' central experiment: a task on CPU 0 allocates, and an NMI
arrives at one chosen point of it (by default just after the task acquired ``zone->lock``) and runs a
perf-event BPF program that allocates a page.  The program calls ``try_alloc_pages`` where the level has
it and ``alloc_pages(GFP_ATOMIC)`` otherwise.  The result is an :class:`NmiOutcome`: whether the run
deadlocked, what the program got, and the program's lock operations, read from the event log
(:func:`program_lock_ops`, which also reads the log of a program attached anywhere else).

:func:`nmi_free_on_lock` is its counterpart on the free side (patch 2): the NMI frees a block
instead, and :class:`NmiFreeOutcome` says where the block went: the pcp list, buddy, or the zone's
deferred list; :func:`free_in_context` frees on a quiet machine, to see what the path decides alone.

The machine chapters' exercises share :func:`lock_orders` (CPUs taking locks in given orders, for a
search), :func:`interrupt_at_acquire` (where a requested interrupt comes in) and
:func:`inside_a_spinlock` (what a spinlock's holder may be, !RT or RT); :func:`call_lock_ops` lists
the lock operations of one call.

Every scenario takes the level's package (``series.load("1")``, or ``tryalloc`` itself) as its first
argument, so one call runs the same schedule on any level.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidArgumentError


@dataclass(frozen=True)
class NmiOutcome:
    """What one run of :func:`nmi_program_on_lock` did.

    ``report`` is the title of the kernel-style report that stopped the run (a deadlock, a sleeping
    lock in NMI on PREEMPT_RT), or ``""`` when the run completed; ``program_got`` is
    ``"a page"``, ``"NULL"``, or ``""`` if the program never returned; ``program_ops`` lists the
    program's lock operations (:func:`program_lock_ops`).
    """

    report: str
    program_got: str
    program_ops: tuple[tuple[str, str], ...]
    events: tuple

    @property
    def completed(self) -> bool:
        return not self.report

    def trylocks(self, lock: str) -> tuple[int, int]:
        """``(tried, failed)``: how often the program tried ``lock``, and how often that failed."""
        return trylocks(self.program_ops, lock)

    def describe(self) -> str:
        """One sentence for a table or the prose: NULL is written NULL."""
        if self.report:
            return self.report
        return f"the NMI's program gets {self.program_got}; the task completes"


def program_lock_ops(events) -> tuple[tuple[str, str], ...]:
    """The lock operations of the first BPF program run in an event log, as ``(operation, lock)`` pairs
    in order: every event from its ``bpf_prog_run`` on, in the program's context, that names a lock
    (``trylock-failed`` marks a failed try).  Empty if no program ran.  A program that runs in the
    context it interrupts (a tracepoint's, in the task's) shares that context, so the task's later
    lock operations are listed too; an NMI's program has a context of its own."""
    start = next((i for i, e in enumerate(events) if e[3] == "bpf_prog_run"), None)
    if start is None:
        return ()
    return _context_lock_ops(events[start:], events[start][2])


def trylocks(ops, lock: str) -> tuple[int, int]:
    """``(tried, failed)`` trylocks of ``lock`` among ``(operation, lock)`` pairs."""
    tried = sum(op.startswith(("spin_trylock", "raw_spin_trylock")) and obj == lock for op, obj in ops)
    failed = sum(op == "trylock-failed" and obj == lock for op, obj in ops)
    return tried, failed


def call_lock_ops(k, fn, *args, **kwargs) -> tuple:
    """``(result, ops)``: ``k.call(fn, *args, **kwargs)``'s result and the lock operations it announced
    or logged, as ``(operation, lock)`` pairs in order (``trylock-failed`` marks a failed try)."""
    result = k.call(fn, *args, **kwargs)
    ops = tuple((op, obj) for _, _, _, op, obj in k.events
                if isinstance(obj, str) and ("lock" in op or op == "trylock-failed"))
    return result, ops


def program_alloc(L, order: int = 0):
    """The page allocation a non-sleeping program makes at level ``L``: ``try_alloc_pages`` where the
    level has it, ``alloc_pages(GFP_ATOMIC)`` before."""
    A, G = L.mm.page_alloc, L.include.gfp
    if hasattr(A, "try_alloc_pages"):
        return lambda: A.try_alloc_pages(A.NUMA_NO_NODE, order)
    return lambda: A.alloc_pages(G.GFP_ATOMIC, order)


def nmi_program_on_lock(L, *, task_order: int = 0, program_order: int = 0, op: str = "acquired",
                        lock: str = "zone->lock", preempt_rt: bool = False,
                        pages: int = 1024, smp: bool = True) -> NmiOutcome:
    """Run a task's ``alloc_pages(GFP_KERNEL, task_order)`` on CPU 0 of a fresh one-CPU machine and
    deliver an NMI the first time the task announces ``op`` on ``lock``; the NMI runs a perf-event
    program that allocates ``program_order`` (see :func:`program_alloc`).  A kernel-style report (a
    deadlock, an invalid context) ends the run and is returned, not raised.

    ``smp=False`` boots a uniprocessor kernel (whose ``spin_trylock`` cannot fail).
    ``op``/``lock`` name an event of the log such as ``("acquired", "pcp->lock[cpu0]")``.  A point the
    task never reaches raises the machine's :class:`~tryalloc.errors.TriggerError` (the NMI would
    never arrive, and the run would show nothing).
    """
    if task_order < 0 or program_order < 0:
        raise InvalidArgumentError(f"nmi_program_on_lock: orders must be >= 0, got {task_order}, {program_order}")
    k = L.Kernel(nr_cpus=1, pages_per_node=pages, preempt_rt=preempt_rt, smp=smp, detectors={"lockdep": "warn"})
    got: list = []
    alloc = program_alloc(L, program_order)
    L.bpf.prog.bpf_prog_attach_perf_event(k, 0, lambda ctx: got.append(alloc()))
    k.spawn(0, lambda: L.mm.page_alloc.alloc_pages(L.include.gfp.GFP_KERNEL, task_order))
    title, events = _run_with_nmi_at(L, k, op, lock)
    program_got = "" if not got else ("NULL" if got[0] is None else "a page")
    return NmiOutcome(title, program_got, program_lock_ops(events), events)


@dataclass(frozen=True)
class NmiFreeOutcome:
    """What one run of :func:`nmi_free_on_lock` did: ``report`` as in :class:`NmiOutcome`;
    ``program_ops`` the NMI's lock operations; :attr:`went` where the NMI put the block."""

    report: str
    program_ops: tuple[tuple[str, str], ...]

    def trylocks(self, lock: str) -> tuple[int, int]:
        """``(tried, failed)``: how often the NMI tried ``lock``, and how often that failed."""
        return trylocks(self.program_ops, lock)

    @property
    def went(self) -> str:
        """Where the NMI put the block, read from its lock operations (the task may reuse the block
        later, so the page states at the end would not tell): ``"pcp"`` when it got its pcp lock,
        ``"buddy"`` when it got ``zone->lock``, ``"deferred"`` (the zone's lock-free list) when it got
        neither, ``""`` when a report stopped the run."""
        if self.report:
            return ""
        held = {obj for op, obj in self.program_ops if "unlock" in op}
        if any(obj.startswith("pcp->lock") for obj in held):
            return "pcp"
        return "buddy" if "zone->lock" in held else "deferred"


def nmi_free_on_lock(L, free, *, free_order: int = 4, task_order: int = 4, op: str = "acquired",
                     lock: str = "zone->lock", preempt_rt: bool = False) -> NmiFreeOutcome:
    """A task on CPU 0 allocates ``task_order``; an NMI arriving the first time the task announces
    ``op`` on ``lock`` frees a block of ``free_order`` allocated beforehand, with ``free`` (a function
    of the level, such as ``L.mm.page_alloc.free_pages_nolock``).  One CPU, 256 pages, watermarks 0.

    A point the task never reaches raises the machine's :class:`~tryalloc.errors.TriggerError`.
    """
    A, G = L.mm.page_alloc, L.include.gfp
    k = L.Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False,
                 preempt_rt=preempt_rt)
    A.setup_per_zone_wmarks(k, 0)
    victim = k.call(A.alloc_pages, G.GFP_KERNEL, free_order)
    k.call(A.drain_all_pages)
    k.spawn(0, lambda: A.alloc_pages(G.GFP_KERNEL, task_order))
    k.on_interrupt(0, "nmi", lambda: free(victim, free_order))
    title, events = _run_with_nmi_at(L, k, op, lock)
    return NmiFreeOutcome(title, _context_lock_ops(events, "nmi"))



def free_in_context(L, free, order: int = 0, *, context: str = "task",
                    preempt_rt: bool = False) -> NmiFreeOutcome:
    """Free a block of ``order`` with ``free`` (such as ``L.mm.page_alloc.free_pages_nolock``) in
    ``context`` on a quiet one-CPU machine: no lock is held by anybody, so the outcome shows only what
    the free path itself decides.  A kernel-style report (an rt_mutex tried in NMI on PREEMPT_RT) is
    returned in the outcome's ``report``, not raised."""
    A, G = L.mm.page_alloc, L.include.gfp
    k = L.Kernel(nr_cpus=1, pages_per_node=256, max_order=5, pageblock_order=5, memcg=False,
                 preempt_rt=preempt_rt)
    A.setup_per_zone_wmarks(k, 0)
    page = k.call(A.alloc_pages, G.GFP_KERNEL, order)
    try:
        _, ops = call_lock_ops(k, free, page, order, context=context)
    except L.KernelReport as report:
        return NmiFreeOutcome(report.title, ())
    return NmiFreeOutcome("", ops)


def _run_with_nmi_at(L, k, op: str, lock: str) -> tuple[str, tuple]:
    """Run ``k`` with CPU 0's NMI delivered the first time its task announces ``op`` on ``lock``:
    ``(the report's title or "", the events)``; a kernel-style report ends the run, not raised."""
    try:
        k.run(L.Scripted(L.When(cpu=0, op=op, obj=lock, inject="nmi")))
    except L.KernelReport as report:
        return report.title, tuple(report.events)
    return "", tuple(k.events)


def _context_lock_ops(events, suffix: str) -> tuple[tuple[str, str], ...]:
    """The lock operations of the first context whose name ends with ``suffix``, from its first event."""
    first = next(i for i, e in enumerate(events) if e[2].endswith(suffix))
    ctx = events[first][2]
    return tuple((op, obj) for _, _, c, op, obj in events[first:]
                 if c == ctx and obj and ("lock" in op or op == "trylock-failed"))


def lock_orders(L, *orders: str, lockdep: str = "off"):
    """A ``build()`` for a search (:func:`~tryalloc.kernel.explore.explore`): CPU ``i`` takes the
    spinlocks named by the letters of ``orders[i]`` in that order, then releases them in reverse, as
    the machine chapter's two CPUs do with ``lock_orders(L, "AB", "BA")``.  ``lockdep`` is the
    detector's mode (``"off"`` lets the search find the deadlock itself)."""
    if not orders or not all(isinstance(o, str) and o for o in orders):
        raise InvalidArgumentError(f"lock_orders: one non-empty string of lock names per CPU, got {orders!r}")
    spinlock_t, spin_lock, spin_unlock = (getattr(L.kernel.locking, n) for n in
                                          ("spinlock_t", "spin_lock", "spin_unlock"))

    def build():
        k = L.Kernel(nr_cpus=len(orders), detectors={"lockdep": lockdep})
        locks = {name: spinlock_t(name) for name in sorted(set("".join(orders)))}

        def take(order):
            for name in order:
                spin_lock(locks[name])
            for name in reversed(order):
                spin_unlock(locks[name])

        for cpu, order in enumerate(orders):
            k.spawn(cpu, lambda order=order: take(order))
        return k

    return build


@dataclass(frozen=True)
class Arrival:
    """Where a requested interrupt came in (:func:`interrupt_at_acquire`): ``entry`` is the index of
    its entry event (``-1`` if it never came), ``task_held`` the locks the task held at that moment,
    ``log`` the run's event log."""

    entry: int
    task_held: tuple[str, ...]
    log: tuple

    @property
    def inside(self) -> bool:
        """Whether the interrupt ran inside the task's critical section (the task held ``demo_lock``)."""
        return "demo_lock" in self.task_held


def interrupt_at_acquire(L, kind: str = "hardirq", *, irqsave: bool = True) -> Arrival:
    """The machine chapter's demo: a task takes ``demo_lock`` (with ``spin_lock_irqsave``, or with plain
    ``spin_lock`` when ``irqsave`` is false), releases it, and takes it again with ``spin_lock``; an
    interrupt of ``kind`` is requested right after the first acquire.  It comes in at the first
    scheduling point where it can arrive."""
    locking = L.kernel.locking
    k = L.Kernel()
    lock = locking.spinlock_t("demo_lock")

    def task():
        if irqsave:
            locking.spin_unlock_irqrestore(lock, locking.spin_lock_irqsave(lock))
        else:
            locking.spin_lock(lock)
            locking.spin_unlock(lock)
        locking.spin_lock(lock)
        locking.spin_unlock(lock)

    k.spawn(0, task)
    k.on_interrupt(0, kind, lambda: None)
    log = k.run(L.Scripted(L.When(cpu=0, op="acquired", obj="demo_lock", inject=kind))).events
    entry = next((e[0] for e in log if e[3] == f"{kind}-entry"), -1)
    before = [e[0] for e in log if e[2] == "task" and e[0] < entry]
    return Arrival(entry, log.held(before[-1]) if entry >= 0 and before else (), log)


def inside_a_spinlock(L, **options) -> dict:
    """What a task inside a ``spinlock_t`` may be: on a fresh machine booted with ``options`` (such as
    ``preempt_rt=True``), CPU 0's task takes a spinlock and asks, inside it, ``preemptible()``,
    ``irqs_disabled()`` and whether migration is disabled."""
    locking, preempt = L.kernel.locking, L.kernel.preempt
    k = L.Kernel(**options)
    lock = locking.spinlock_t("demo_lock")

    def inside():
        locking.spin_lock(lock)
        state = {"preemptible": preempt.preemptible(), "irqs_disabled": preempt.irqs_disabled(),
                 "migrate_disabled": bool(L.kernel.sched.this_cpu().migrate_disabled)}
        locking.spin_unlock(lock)
        return state

    return k.call(inside)
