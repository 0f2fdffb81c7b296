"""The invariants I1-I5 as one check run at every scheduling point of a search.

``explore(..., check_step=StepInvariants())`` calls the checker with the run at every scheduling point,
before the step the running CPU announced; a broken invariant raises
:class:`~tryalloc.errors.InvariantError` (or the subsystem's own report) naming it, which ends the run
with its replay string.  Between two points the model runs a step atomically, so a point sees the
machine as another CPU would:

* **I1** the step about to run is a blocking acquire (``spin_lock``, ``local_lock``) of ``zone->lock``,
  a pcp lock, ``memcg_stock.stock_lock``, ``pool_lock`` or ``stack_list_lock`` by a context inside
  ``try_alloc_pages`` or ``free_pages_nolock``.  ``stack_list_lock`` counts only on a machine with the
  2025 page_owner fix (S9.13.1, release 6.18 of the model): the registry's reading of I1 at 6.15.
  "Inside" is read off the running context's Python frames, up to the frame that delivered it (an
  interrupt's frames sit on top of the interrupted context's in the same greenlet); a trylock is
  never a violation.
* **I2** :func:`~tryalloc.mm.debug.check_invariants`: conservation (buddy + pcp + deferred llist +
  allocated = total) and no page in two places, so a deferred page handed out before its drain shows.
  It is checked at every point where no CPU holds ``zone->lock`` or a pcp lock: inside those sections
  the holder keeps the books open (``rmqueue_bulk`` lists the pages before it adds them to
  ``pcp->count``), as it may, since no one else can look.
* **I3** a ``pcp->count`` above ``pcp->high``, seen while no one holds that pcp's lock, was raised
  there by an ``FPI_TRYLOCK`` free (a context inside ``free_pages_nolock``) -- or by an allocation's
  refill: ``nr_pcp_alloc`` fetches at least ``pcp->batch`` pages whatever the count, so the kernel
  itself passes the mark that way (the spec's I3 names only the frees; the kernel wins).  The raise
  is seen inside the section (the release is announced before it happens, with the raiser's frames
  still on the stack) and licenses the count until it is back at or below the mark; an ordinary free
  may pass the mark inside its section, but must bulk-free before it leaves.
* **I4** no memcg page counter (``memory``, ``kmem``) is negative; :func:`finish` adds memcg's full
  books at the end of a run (every charge returned once: :func:`~tryalloc.mm.memcontrol.memcg_invariants`),
  which a point in the middle of a charge cannot demand.
* **I5** (!RT) ``memcg_stock.stock_lock``'s ``active`` flag of each CPU is 1 exactly while a context of
  that CPU is inside the section (patch 3's ``local_trylock_t``; the flag is ``acquired`` in 6.15).

The frame walk is the model's stand-in for the kernel's call graph (:mod:`tryalloc.series.traceability`
lists the static one); it runs only at a blocking acquire of a named lock or a pcp count over its mark.
"""
from __future__ import annotations

import sys

from ..errors import InvariantError
from ..kernel.por import ACQUIRE
from ..series.mutants import fixed
from .debug import check_invariants
from .memcontrol import memcg_invariants

#: The lock classes I1 forbids a nolock path to acquire by spinning.
I1_LOCKS = frozenset({"&zone->lock", "&pcp->lock", "memcg_stock.stock_lock", "pool_lock", "stack_list_lock"})
#: The nolock entries of the series (6.15's names and the later releases').
NOLOCK_ALLOC = frozenset({"try_alloc_pages", "alloc_pages_nolock", "alloc_frozen_pages_nolock"})
NOLOCK_FREE = frozenset({"free_pages_nolock", "free_frozen_pages_nolock"})
#: What may leave a pcp over its mark (I3): an FPI_TRYLOCK free, or an allocation refilling the pcp.
PCP_HIGH_RAISERS = NOLOCK_FREE | {"rmqueue_pcplist"}
_ALLOCATOR_LOCKS = frozenset({"&zone->lock", "&pcp->lock"})
_CONTEXT_BOUNDARY = "deliver_handler"  # Run.deliver_handler: below it, the interrupted context's frames


def nolock_caller(names: frozenset) -> str | None:
    """The innermost function of ``names`` the running context is inside, or ``None``: a walk of the
    caller's frames that stops where an interrupt was delivered."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_name
        if name in names:
            return name
        if name == _CONTEXT_BOUNDARY:
            return None
        frame = frame.f_back
    return None


def check_no_spinning(run) -> None:
    """I1: raise if the running context, inside a nolock entry, is about to spin on a named lock."""
    announced = run.cpu.stack[-1].announced
    if announced is None or announced[0] != ACQUIRE:
        return
    lock = announced[1]
    cls = getattr(lock, "cls", None)
    if cls not in I1_LOCKS or (cls == "stack_list_lock" and not fixed("stack-record-spins", run.kernel)):
        return
    entry = nolock_caller(NOLOCK_ALLOC | NOLOCK_FREE)
    if entry is not None:
        raise InvariantError(f"I1: {run.cpu.stack[-1].name} inside {entry} is about to spin on {lock.name}",
                             title=f"I1 broken: {entry} acquires {lock.cls} by blocking")


def allocator_locked(run) -> bool:
    """Does some context hold ``zone->lock`` or a pcp lock (the allocator's books may be open)?"""
    return any(getattr(lock, "cls", None) in _ALLOCATOR_LOCKS
               for cpu in run.cpus for ctx in cpu.stack for lock in ctx.held)


def check_memcg_counters(kernel) -> None:
    """I4's part that holds at every point: no memcg counter below zero."""
    state = getattr(kernel, "memcg", None)
    if state is None:
        return
    for memcg in state.memcgs.values():
        if memcg.memory.usage < 0 or memcg.kmem < 0:
            raise InvariantError(f"I4: {memcg.name}'s counters went negative (usage {memcg.memory.usage}, "
                                 f"kmem {memcg.kmem})", title="I4 broken: a memcg counter is negative")


def check_stock_flag(kernel) -> None:
    """I5: the ``local_trylock_t`` of the memcg stock has its flag set exactly while someone is inside."""
    state = getattr(kernel, "memcg", None)
    lock = getattr(state, "stock_lock", None)
    active = getattr(lock, "active", None)
    if active is None or kernel.config.preempt_rt:  # before patch 3 (no flag), or RT (a real lock)
        return
    for cpu, flag in enumerate(active):
        inside = lock._holder[cpu]
        if flag != (inside is not None):
            who = f"{inside.name} is inside" if inside else "no context is inside"
            raise InvariantError(f"I5: {lock.name} on CPU {cpu} has its flag {flag} while {who}",
                                 title=f"I5 broken: {lock.name}'s flag disagrees with its holder")


class StepInvariants:
    """The per-step check of I1-I5 (see the module docstring): ``explore(..., check_step=StepInvariants())``.
    It remembers, for the run it is checking, each pcp's count at the last point and whether its count
    over the mark came from a licensed raise (I3)."""

    def __init__(self):
        self._run = None
        self._counts: dict = {}
        self._licensed: set = set()

    def __call__(self, run) -> None:
        if run is not self._run:
            self._run, self._counts, self._licensed = run, {}, set()
        kernel = run.kernel
        check_no_spinning(run)
        if not allocator_locked(run):
            check_invariants(kernel)
        self._check_pcp_high(run)
        check_memcg_counters(kernel)
        check_stock_flag(kernel)

    def _check_pcp_high(self, run) -> None:
        """I3 (see the module docstring)."""
        counts, licensed = self._counts, self._licensed
        for z in run.kernel.zones:
            for cpu, pcp in enumerate(z.per_cpu_pageset):
                key = (z.nid, cpu)
                count, before = pcp.count, counts.get(key, pcp.count)
                counts[key] = count
                if count <= pcp.high:
                    licensed.discard(key)
                elif count > before and nolock_caller(PCP_HIGH_RAISERS) is not None:
                    licensed.add(key)
                elif pcp.lock.owner is None and key not in licensed:
                    raise InvariantError(f"I3: cpu {cpu}'s pcp->count is {count}, over pcp->high {pcp.high}, "
                                         f"and no FPI_TRYLOCK free or refill put it there",
                                         title="I3 broken: pcp->count over pcp->high without FPI_TRYLOCK")


def finish(kernel, result) -> None:
    """The end-of-run half (``explore(..., check=finish)``): I2 and memcg's full books (I4)."""
    check_invariants(kernel)
    state = getattr(kernel, "memcg", None)
    if state is not None and kernel.config.memcg:
        memcg_invariants(kernel)
