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

A step's footprint is a set of keys: the announced object, every lock its CPU's contexts hold,
and, if the step may run on outside every lock, what code outside locks touches
(:func:`unlocked`: a *read* of each zone's free counts and watermarks, written as ``?zone->lock``
because ``zone->lock`` protects them, and memcg's page counters).  A task that has not started
and an interrupt injection (whose step is the handler's first segment, up to its first point:
outside any lock, since the new context holds none) have that unlocked footprint; an
unannotated point touches **everything** (``None``).  Two steps are independent if they run on
different CPUs and neither writes a key the other reads or writes (:func:`conflict`).

**Soundness** rests on the model's locking discipline: between two scheduling points, code inside
a critical section touches only the data of the locks its CPU holds, its own CPU's per-CPU data
and the announced object; code outside any lock (the scenario's own code included) writes only its
CPU's data, pages it holds and memcg's counters, and reads the zone's counters.  Per-CPU data is
safe because steps of one CPU (its task and the interrupts on it) are never independent.  An
interrupt's footprint is only its first segment's because the sleep set checks each later step
of the handler as that step comes.  The tests compare the outcomes of reduced and unreduced
searches on the allocator's scenarios, with and without a bound and with NMIs.

**Under a preemption bound** plain sleep sets lose schedules (Coons, Musuvathi and McKinley,
*Bounded Partial-Order Reduction*, OOPSLA 2013): an execution pruned because "``u`` first" was
explored may be within the bound while "``u`` first" is not.  The sleep set's argument goes
through if the covering order never costs more preemptions.  Let ``u`` be explored at a decision
``p`` (where ``l`` ran last), and skipped at a later decision ``n`` after the steps ``w1 .. wk``
(each independent of ``u``).  The pruned execution is ``w1 .. wk u R``, the covering one
``u w1 .. wk R``.  Their costs differ only at ``u``, at ``w1`` (it now follows ``u``'s CPU), and at
the first step of ``R`` (it now follows ``wk``'s CPU, not ``u``'s): the steps ``w2 .. wk`` follow
the same CPUs in both and ``u`` changes no lock one of them waits for (a ``u`` that releases a
lock might: it never prunes under a bound).  So the covering order costs at most
``debt = cost_p(u) + [w1 is a CPU's step] + 1 - cost_p(w1)`` more than the pruned one *before*
counting ``cost_n(u)``, what ``u`` costs at ``n``; ``u`` is skipped only if ``debt <= cost_n(u)``.
Every option that enters a sleep set carries its debt (:func:`debt`), computed once at ``p``.
"""
from __future__ import annotations

from .sched import RUN

ACQUIRE, TRYLOCK, RELEASE, STEP, ACCESS = range(5)
READ = "?"  # a footprint key ``?x`` reads what ``x`` writes


def _key(lock, cpu_id: int) -> str:
    """A name that is the same in every execution of a scenario (footprints outlive the run that
    computed them).  A ``local_lock_t`` is one lock per CPU.  Two objects sharing a name only make
    steps look dependent, which costs reduction, never soundness."""
    if hasattr(lock, "_holder"):
        return f"{lock.name}[cpu{cpu_id}]"
    return lock.name


def unlocked(kernel) -> frozenset:
    """What code outside every lock touches besides its own CPU's data and the pages it holds: it
    *reads* each zone's free counts and watermarks (``?zone->lock``: the data ``zone->lock``
    protects), and with memcg it charges and uncharges the memcg page counters (``memcg``)."""
    keys = {f"{READ}{z.lock.name}" for z in getattr(kernel, "zones", ())}
    if kernel.config.memcg:
        keys.add("memcg")
    return frozenset(keys)


def footprint(run, action: tuple[int, int]) -> frozenset | None:
    """What ``action`` (an option of the current decision) touches, or ``None`` for everything."""
    kind, arg = action
    if kind != RUN:
        return unlocked(run.kernel)  # the handler's first segment, up to its first point
    cpu = run.cpus[arg]
    if cpu.id in run._unstarted:
        return unlocked(run.kernel)  # the task's first segment
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
    keys = {_key(obj, cpu.id)}
    for c in cpu.stack:
        for lock in c.held:
            keys.add(_key(lock, cpu.id))
    if not inside:
        keys |= unlocked(run.kernel)
    return frozenset(keys)


def conflict(fa: frozenset, fb: frozenset) -> bool:
    """Do two footprints share an object one of them writes?  (Two reads of it commute.)"""
    for k in fa:
        if k[0] == READ:
            if k[1:] in fb:
                return True
        elif k in fb or READ + k in fb:
            return True
    return False


def cpu_of(run, action: tuple[int, int]) -> int:
    """The CPU an option runs on: the CPU itself, or the one an interrupt source targets."""
    kind, arg = action
    return arg if kind == RUN else run.sources[arg].cpu


def independent(run, a: tuple, fa: frozenset | None, b: tuple, fb: frozenset | None) -> bool:
    """Do the steps ``a`` and ``b`` (with footprints ``fa``, ``fb``) commute?  Only steps of two
    different CPUs, both with known footprints, with nothing in common."""
    return (fa is not None and fb is not None and cpu_of(run, a) != cpu_of(run, b)
            and not conflict(fa, fb))


NEVER = 1 << 20  # the debt of an option no later switch can pay for: it never prunes under a bound


def switch_cost(run, last: int | None, last_on: bool, action: tuple[int, int]) -> int:
    """The preemptions ``action`` costs after ``last`` ran: 1 for a switch to another CPU while
    ``last`` could have gone on (``last_on``), else 0 (an interrupt never counts)."""
    return int(action[0] == RUN and last_on and action[1] != last)


def releases(run, action: tuple[int, int]) -> bool:
    """Does the step release a lock (which may let a CPU spinning on it go on)?"""
    if action[0] != RUN or action[1] in run._unstarted:
        return False
    announced = run.cpus[action[1]].stack[-1].announced
    return announced is not None and announced[0] == RELEASE


def debt(u_cost: int, w: tuple[int, int], w_cost: int) -> int:
    """How many preemptions more, at most, "``u`` first" may cost than "``w`` first, then ``u``
    later", before counting what ``u`` itself costs where it is pruned; see :mod:`the module
    docstring <tryalloc.kernel.por>`."""
    return u_cost + (w[0] == RUN) + 1 - w_cost
