"""``raw_spinlock_t`` and ``spinlock_t``, with the kernel's lock, trylock and irqsave variants.

* ``raw_spinlock_t`` always spins, with preemption disabled.
* ``spinlock_t`` spins the same way on !PREEMPT_RT.  On PREEMPT_RT it is a sleeping lock (an
  rt_mutex): taking it in NMI or hard-IRQ context, with interrupts or preemption disabled, is an
  invalid context; so is ``spin_trylock`` in NMI or hard-IRQ (it takes the rt_mutex's inner raw lock,
  unsafe in NMI, and from hard-IRQ it would make the interrupted task look like the lock's owner, as
  the comment in ``try_alloc_pages_noprof`` explains, 97769a53f117); and the ``_irqsave`` variants
  leave interrupts enabled.
* On a uniprocessor kernel (``smp=False``) the lock word is compiled away: taking a lock never waits
  and ``spin_trylock`` always succeeds, so two contexts can end up inside one critical section (a
  latent hazard of the series; 620b46ed6ae1 made the allocation side bail out in NMI on UP, S9.11.1),
  which the ``percpu`` detector reports.

Every acquire, try and release first announces itself to the scheduler (``point``), then acts.
A context that spins on a lock held lower on its own CPU's stack can never get it: that is reported
at once as a :class:`~tryalloc.errors.DeadlockError`.  The ``_irqsave`` forms return the saved
:class:`~tryalloc.kernel.context.IrqFlags`; ``spin_trylock_irqsave`` returns them on success and
``None`` on failure (C returns a bool and writes ``flags`` through a macro argument).
"""
from __future__ import annotations

from ...errors import DeadlockError, InvalidContextError, LockUsageError
from .. import sched
from ..context import HARDIRQ_MASK, NMI_MASK, PREEMPT_MASK
from ..por import ACQUIRE, RELEASE, TRYLOCK
from ..preempt import IrqFlags, check_flags, local_irq_restore, local_irq_save
from ..report import compose, interrupt_scenario, report_both_inside
from ..sched import declare_ops, wait_for

declare_ops("acquired", "spin", "sleep", "trylock-failed",
            "raw_spin_lock", "raw_spin_trylock", "raw_spin_unlock",
            "raw_spin_lock_irqsave", "raw_spin_trylock_irqsave", "raw_spin_unlock_irqrestore",
            "spin_lock", "spin_trylock", "spin_unlock", "spin_lock_irqsave", "spin_trylock_irqsave",
            "spin_unlock_irqrestore")


class raw_spinlock_t:
    """A spinning lock.  ``owner`` is the context holding it (``None`` when free); ``cls`` is the
    lockdep class, shared by all instances of one lock in the source (``&zone->lock``)."""

    sleeps_on_rt = False

    def __init__(self, name: str, cls: str | None = None):
        self.name = name
        self.cls = cls or name
        self.owner = None
        self.shadowed: list = []  # on UP: holders an interrupting context walked past

    def __repr__(self) -> str:
        who = self.owner.name if self.owner is not None else "free"
        return f"<{type(self).__name__} {self.name}: {who}>"


class spinlock_t(raw_spinlock_t):
    """``spinlock_t``: a spinning lock, or a sleeping one under PREEMPT_RT."""

    sleeps_on_rt = True


def _sleeps(run, lock) -> bool:
    return run.rt and lock.sleeps_on_rt


def _invalid_context(run, lock, op: str, why: str) -> InvalidContextError:
    cpu = run.cpu
    body = (f"{cpu.top.name} ({cpu.path()}) called {op}({lock.name}) on PREEMPT_RT, where "
            f"{lock.name} is a sleeping lock: {why}")
    return InvalidContextError(compose(f"{op}({lock.name}) in invalid context", body, "", run.cpus, run.events))


def _check_may_sleep(run, lock, op: str) -> None:
    cpu = run.cpu
    pc = cpu.preempt_count
    why = ("in NMI" if pc & NMI_MASK else "in hard-IRQ" if pc & HARDIRQ_MASK
           else "with interrupts disabled" if cpu.irqs_disabled
           else "with preemption disabled" if pc & PREEMPT_MASK else None)
    if why:
        run.kernel.detect("invalid_context", _invalid_context(run, lock, op, why))


def _take(run, lock, ctx) -> None:
    """Make ``ctx`` the owner.  On UP there is no lock word, so an owner already there is
    shadowed: both contexts are now inside the section, which the percpu detector reports."""
    if lock.owner is not None:
        lock.shadowed.append(lock.owner)
        report_both_inside(run, ctx, lock.owner, lock, "lock", "On a uniprocessor kernel spin locks are "
                           "compiled away, so nothing kept it out.", "DATA CORRUPTION")
    lock.owner = ctx
    ctx.held.append(lock)
    if run.trace:
        run.log("acquired", lock)


def _aa_deadlock(run, lock, ctx, op: str) -> DeadlockError:
    cpu = run.cpu
    owner = lock.owner
    verb = "sleeps" if _sleeps(run, lock) else "spins"
    body = (f"{ctx.name} ({cpu.path()}) is trying to acquire lock:\n    {lock.name}\n"
            f"but the lock is held by {owner.name}, which it interrupted on the same CPU:\n"
            f"{owner.name} cannot run again until {ctx.name} returns, and {ctx.name} {verb} forever.")
    if owner is ctx:
        body = (f"{ctx.name} ({cpu.path()}) is trying to acquire lock:\n    {lock.name}\n"
                f"which it already holds itself.")
        scen = f"       CPU{cpu.id}\n       ----\n  lock({lock.name});\n  lock({lock.name});\n\n *** DEADLOCK ***"
    else:
        scen = interrupt_scenario(cpu.id, f"lock({lock.name})", ctx.kind, f"{op}({lock.name})")
    return DeadlockError(compose(f"{ctx.name} {verb} on {lock.name} held by {owner.name} on the same CPU",
                                 body, scen, run.cpus, run.events), title="WARNING: deadlock: "
                         f"{ctx.name} {verb} on {lock.name} held by {owner.name}")


def _lock(lock, op: str) -> None:
    run = sched._run
    cpu = run.cpu
    sleeping = run.rt and lock.sleeps_on_rt
    if sleeping:
        _check_may_sleep(run, lock, op)
    cpu.stack[-1].announced = (ACQUIRE, lock)
    run.point(op, lock)  # the scheduling point: others may run first
    ctx = cpu.stack[-1]
    if sleeping:
        cpu.migrate_disabled += 1
    else:
        cpu.preempt_count += 1
    smp = run.smp
    if smp and lock.owner is not None and lock.owner.cpu is cpu:
        raise _aa_deadlock(run, lock, ctx, op)
    if run.lockdep:
        run.kernel.lockdep.acquire(lock, ctx, trylock=False)
    if smp and lock.owner is not None:
        run.log("sleep" if sleeping else "spin", lock)
        wait_for(lock)
    _take(run, lock, ctx)


def _trylock(lock, op: str) -> bool:
    run = sched._run
    cpu = run.cpu
    sleeping = run.rt and lock.sleeps_on_rt
    if sleeping and cpu.preempt_count & (NMI_MASK | HARDIRQ_MASK):
        why = "in NMI" if cpu.preempt_count & NMI_MASK else "in hard-IRQ"
        run.kernel.detect("invalid_context", _invalid_context(
            run, lock, op, f"{why}, an rt_mutex trylock would make the interrupted task look like the owner"))
    cpu.stack[-1].announced = (TRYLOCK, lock)
    run.point(op, lock)
    if run.smp and lock.owner is not None:
        run.log("trylock-failed", lock)
        return False
    ctx = cpu.stack[-1]
    if sleeping:
        cpu.migrate_disabled += 1
    else:
        cpu.preempt_count += 1
    if run.lockdep:
        run.kernel.lockdep.acquire(lock, ctx, trylock=True)
    _take(run, lock, ctx)
    return True


def _refuse_unlock(run, lock, op: str) -> LockUsageError:
    """Why ``op`` may not release ``lock``: the caller found it is no spin lock held by this context."""
    ctx = run.cpu.stack[-1]
    if not isinstance(lock, raw_spinlock_t):
        return LockUsageError(f"{op}: {lock!r} is not a spin lock")
    if lock.owner is None:
        return LockUsageError(f"{op}({lock.name}) on CPU{run.cpu.id}: the lock is not held")
    where = "on another CPU" if lock.owner.cpu is not run.cpu else "by another context of this CPU"
    return LockUsageError(f"{op}({lock.name}) by {ctx.name}: the lock is held {where}, by {lock.owner.name}")


def _unlock(lock, op: str) -> None:
    run = sched._run
    cpu = run.cpu
    ctx = cpu.stack[-1]
    if not isinstance(lock, raw_spinlock_t) or lock.owner is not ctx:
        raise _refuse_unlock(run, lock, op)
    ctx.announced = (RELEASE, lock)
    run.point(op, lock)
    ctx.held.remove(lock)
    lock.owner = lock.shadowed.pop() if lock.shadowed else None
    if run.rt and lock.sleeps_on_rt:
        cpu.migrate_disabled -= 1
    else:
        cpu.preempt_count -= 1


# --- the kernel's API --------------------------------------------------------------------------
def raw_spin_lock(lock: raw_spinlock_t) -> None:
    _lock(lock, "raw_spin_lock")


def raw_spin_trylock(lock: raw_spinlock_t) -> bool:
    return _trylock(lock, "raw_spin_trylock")


def raw_spin_unlock(lock: raw_spinlock_t) -> None:
    _unlock(lock, "raw_spin_unlock")


def raw_spin_lock_irqsave(lock: raw_spinlock_t) -> IrqFlags:
    flags = local_irq_save()
    _lock(lock, "raw_spin_lock_irqsave")
    return flags


def raw_spin_trylock_irqsave(lock: raw_spinlock_t) -> IrqFlags | None:
    flags = local_irq_save()
    if _trylock(lock, "raw_spin_trylock_irqsave"):
        return flags
    local_irq_restore(flags)
    return None


def raw_spin_unlock_irqrestore(lock: raw_spinlock_t, flags: IrqFlags) -> None:
    check_flags(flags)
    _unlock(lock, "raw_spin_unlock_irqrestore")
    local_irq_restore(flags)


def spin_lock(lock: spinlock_t) -> None:
    _lock(lock, "spin_lock")


def spin_trylock(lock: spinlock_t) -> bool:
    return _trylock(lock, "spin_trylock")


def spin_unlock(lock: spinlock_t) -> None:
    _unlock(lock, "spin_unlock")


def _keep_irqs() -> IrqFlags:
    # PREEMPT_RT: spin_lock_irqsave() on a sleeping lock leaves interrupts as they are
    cpu = sched._run.cpu
    return cpu.saved_flags[cpu.irqs_disabled]


def spin_lock_irqsave(lock: spinlock_t) -> IrqFlags:
    run = sched._run
    if _sleeps(run, lock):
        flags = _keep_irqs()
        _lock(lock, "spin_lock_irqsave")
        return flags
    flags = local_irq_save()
    _lock(lock, "spin_lock_irqsave")
    return flags


def spin_trylock_irqsave(lock: spinlock_t) -> IrqFlags | None:
    run = sched._run
    if _sleeps(run, lock):
        flags = _keep_irqs()
        return flags if _trylock(lock, "spin_trylock_irqsave") else None
    flags = local_irq_save()
    if _trylock(lock, "spin_trylock_irqsave"):
        return flags
    local_irq_restore(flags)
    return None


def spin_unlock_irqrestore(lock: spinlock_t, flags: IrqFlags) -> None:
    check_flags(flags)
    _unlock(lock, "spin_unlock_irqrestore")
    local_irq_restore(flags)
