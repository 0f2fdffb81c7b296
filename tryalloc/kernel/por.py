"""Partial-order reduction: which scheduling choices commute, so a search may skip one order.

Two steps of different CPUs that touch disjoint data give the same state in either order; a
search that has explored "A then B" need not explore "B then A".  The search keeps a *sleep set*
(Godefroid 1996; the reduction CHESS and loom use): an option already explored at a decision stays
asleep in the sibling subtrees explored after it, until a step that does not commute with it runs.

What a step touches comes from what its scheduling point *announces* (``Context.announced``, set
by :func:`~tryalloc.kernel.sched.point` and the lock code), a ``(kind, obj)`` pair:

* ``ACQUIRE``: a lock acquire (``spin_lock``, ``local_lock``); the step takes the lock and runs the
  critical section up to the next point.
* ``TRYLOCK``: the same if the lock is free; if it is held the trylock fails and the caller goes on.
* ``RELEASE``: a release; the step goes on in whatever the context still holds, or outside any lock.
* ``STEP``: an llist step whose continuation stays inside the llist code (``llist_add``'s read).
* ``ACCESS``: a step on ``obj`` after which the caller's own code goes on (an llist exchange).

A step's footprint is the announced object plus every lock its CPU's contexts hold, *if* the step
stays inside a critical section; a step that runs on outside any lock, an unannotated point, a task
that has not started and every interrupt injection touch **everything** (``None``).

Soundness rests on one assumption, the model's locking discipline: between two scheduling points,
code inside a critical section touches only the data of the locks its context holds, its own CPU's
per-CPU data, and the announced object.  Per-CPU data is safe because steps of one CPU (its task
and the interrupts on it) never commute here: an interrupt depends on everything.  Code outside any
lock (the watermark check, ``post_alloc_hook``, memcg's ``page_counter_try_charge``) reads and
writes shared counters without a lock, which is why such steps are dependent with every other step.
The tests compare the outcomes of reduced and unreduced searches on the allocator's scenarios.
"""
from __future__ import annotations

from .sched import RUN

ACQUIRE, TRYLOCK, RELEASE, STEP, ACCESS = range(5)


def _key(lock, cpu_id: int) -> str:
    """A name that is the same in every execution of a scenario (footprints outlive the run that
    computed them).  A ``local_lock_t`` is one lock per CPU.  Two objects sharing a name only make
    steps look dependent, which costs reduction, never soundness."""
    if hasattr(lock, "_holder"):
        return f"{lock.name}[cpu{cpu_id}]"
    return lock.name


def footprint(run, action: tuple[int, int]) -> frozenset | None:
    """What ``action`` (an option of the current decision) touches, or ``None`` for everything."""
    kind, arg = action
    if kind != RUN:
        return None  # an interrupt: its handler's first step is unknown, and it changes its CPU
    cpu = run.cpus[arg]
    ctx = cpu.stack[-1]
    announced = ctx.announced
    if announced is None:
        return None
    what, obj = announced
    held = len(ctx.held)
    if what == TRYLOCK:
        inside = held > 0 or not (run.smp and obj.owner is not None)  # a failed trylock goes on
    elif what == RELEASE:
        inside = held > 1
    elif what == ACCESS:
        inside = held > 0
    else:  # ACQUIRE, STEP
        inside = True
    if not inside:
        return None
    keys = {_key(obj, cpu.id)}
    for c in cpu.stack:
        for lock in c.held:
            keys.add(_key(lock, cpu.id))
    return frozenset(keys)


def independent(a: tuple, fa: frozenset | None, b: tuple, fb: frozenset | None) -> bool:
    """Do the steps ``a`` and ``b`` (with footprints ``fa``, ``fb``) commute?  Only steps of two
    different CPUs, both inside critical sections, with nothing in common."""
    return fa is not None and fb is not None and a[1] != b[1] and fa.isdisjoint(fb)
